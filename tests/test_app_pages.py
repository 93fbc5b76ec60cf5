"""AppTest checks of the "Your data" and "Fit & bootstrap" pages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import lmmcore
from lmmcore.confint import on_data_scale
from tests.apptest_utils import errors
from views._common import SEED_KEY

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
YOUR_DATA = "views/your_data.py"
FIT_BOOT = "views/fit_bootstrap.py"
SLEEP = "Reaction ~ Days + (Days | Subject)"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def fit_sleepstudy(at: AppTest) -> AppTest:
    at.button(key="fit").click().run()
    assert not at.exception, at.exception
    return at


def test_your_data_defaults_to_sleepstudy_formula():
    at = open_page(YOUR_DATA)
    assert at.selectbox(key="dataset_name").value == "sleepstudy"
    assert at.text_input(key="formula").value == SLEEP
    assert at.checkbox(key="reml").value is True
    assert len(at.dataframe) == 1  # the first rows
    assert "fit_result" not in at.session_state


def test_switching_dataset_resets_formula():
    at = open_page(YOUR_DATA)
    at.selectbox(key="dataset_name").set_value("Penicillin").run()
    assert not at.exception, at.exception
    assert at.text_input(key="formula").value == lmmcore.datasets.DATASETS["Penicillin"][2]


@pytest.mark.pool  # through the real worker pool
def test_fit_sleepstudy_matches_direct_fit():
    at = fit_sleepstudy(open_page(YOUR_DATA))
    res = at.session_state["fit_result"]
    direct = lmmcore.fit(SLEEP, lmmcore.load_dataset("sleepstudy"), REML=True)
    pd.testing.assert_series_equal(res.fe_params, direct.fe_params)
    assert res.sigma == direct.sigma
    assert not at.error
    assert any("Reaction" in c.value for c in at.code)
    assert len(at.get("plotly_chart")) == 2  # random effects + residuals
    assert len(at.expander) >= 3


def test_fit_ml_when_reml_unticked():
    at = open_page(YOUR_DATA)
    at.checkbox(key="reml").uncheck().run()
    fit_sleepstudy(at)
    direct = lmmcore.fit(SLEEP, lmmcore.load_dataset("sleepstudy"), REML=False)
    assert at.session_state["fit_result"].sigma == direct.sigma


def test_bad_formula_shows_error_not_exception():
    at = open_page(YOUR_DATA)
    at.text_input(key="formula").set_value("Reaction ~ Days + (Days | Subject").run()
    fit_sleepstudy(at)
    assert at.error and "parenthes" in errors(at)[0]
    assert "fit_result" not in at.session_state


def test_unknown_column_shows_error():
    at = open_page(YOUR_DATA)
    at.text_input(key="formula").set_value("Reaction ~ Dayz + (1 | Subject)").run()
    fit_sleepstudy(at)
    assert at.error and "Dayz" in errors(at)[0]
    assert "fit_result" not in at.session_state


def test_fit_bootstrap_without_fit_says_so():
    at = open_page(FIT_BOOT)
    assert any("Your data" in i.value for i in at.info)
    assert not at.button


def test_bootstrap_matches_direct_bootmer():
    at = fit_sleepstudy(open_page(YOUR_DATA))
    at.switch_page(FIT_BOOT).run()
    assert not at.exception, at.exception
    B = at.number_input(key="boot_B")
    assert B.max == 5000 and "5000" in B.label
    B.set_value(20)
    at.selectbox(key="boot_method").set_value("basic")
    at.slider(key="boot_level").set_value(0.9)
    at.button(key="run_boot").click().run()
    assert not at.exception, at.exception
    seed = at.session_state[SEED_KEY]
    fit = at.session_state["fit_result"]
    direct = on_data_scale(lmmcore.bootMer(fit, B=20, seed=seed), fit)
    pd.testing.assert_frame_equal(at.session_state["boot_ci"], direct.ci_frame("basic", 0.9))
    # on the data scale, as lme4's confint(method = "boot", oldNames = FALSE)
    assert list(at.session_state["boot_ci"].index[:4]) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
        "sigma",
    ]
    assert at.session_state["boot_result"].B == 20
    assert [m.label for m in at.metric] == ["Ok", "Singular", "Not converged", "Failed"]
    assert len(at.get("plotly_chart")) == 1
    # a plain rerun (button now False) keeps the results from session_state
    at.run()
    assert "boot_result" in at.session_state and len(at.get("plotly_chart")) == 1


def test_every_page_renders_with_a_pilot_fit_as_the_truth():
    from views._common import PAGES

    at = fit_sleepstudy(open_page(YOUR_DATA))
    at.button(key="use_fit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["md_preset"] == "pilot"
    assert any("observed power" in i.value for i in at.info)  # why fitted values are not a plan
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
    assert [b.label for b in at.get("download_button")] == ["Simulated data (CSV)", "Spec (JSON)"]
