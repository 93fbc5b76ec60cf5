"""AppTest checks of the "Model & design" and "Export" pages, and the generated scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import lmmcore
from lmmcore.export import python_script, r_script
from tests.apptest_utils import errors, unescape
from views._common import APP_MAX_ROWS, SEED_KEY

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
MODEL = "views/model_design.py"
EXPORT = "views/export.py"
FIT_BOOT = "views/fit_bootstrap.py"


def open_model(**state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(MODEL).run()
    assert not at.exception, at.exception
    return at


def small(at: AppTest, subjects: int = 10, items: int = 10) -> AppTest:
    at.number_input(key="md_subjects").set_value(subjects)
    at.number_input(key="md_items").set_value(items).run()
    assert not at.exception, at.exception
    return at


def test_defaults_render_and_preview_matches_direct_simulation():
    at = open_model()
    assert at.selectbox(key="md_preset").value == "P1"
    assert not at.error
    assert len(at.get("plotly_chart")) == 3
    assert len(at.expander) >= 5
    spec, design = at.session_state["spec"], at.session_state["design"]
    assert spec == lmmcore.PRESETS["P1"].spec and design == lmmcore.PRESETS["P1"].design
    seed = at.session_state[SEED_KEY]
    direct = spec.simulate_data(design, seed)
    pd.testing.assert_frame_equal(at.session_state["sim_data"], direct)
    assert any(f"{APP_MAX_ROWS:,}" in m.value for m in at.markdown)  # the cap is shown


@pytest.mark.parametrize("preset", [*lmmcore.PRESETS, "blank"])
def test_each_preset_renders(preset):
    at = open_model()
    at.selectbox(key="md_preset").set_value(preset).run()
    assert not at.exception, at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 3
    if preset != "blank":
        p = lmmcore.PRESETS[preset]
        assert at.session_state["spec"] == p.spec
        assert at.text_input(key="md_formula").value == p.spec.formula
        assert at.query_params["preset"] == preset
    else:  # your own design travels in the link itself
        from lmmcore.export import decode_link

        spec, design = decode_link(at.query_params["model"])
        assert spec == at.session_state["spec"] and design == at.session_state["design"]


def test_resizing_and_seed_change_the_preview():
    at = small(open_model(), 12, 20)
    design = at.session_state["design"]
    assert (design.subjects, design.items) == (12, 20)
    at.sidebar.number_input(key=SEED_KEY).set_value(7).run()
    spec = at.session_state["spec"]
    pd.testing.assert_frame_equal(at.session_state["sim_data"], spec.simulate_data(design, 7))
    assert at.query_params["seed"] == "7" and at.query_params["subjects"] == "12"


def test_query_params_restore_the_view():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"preset": "P2", "seed": "99", "subjects": "16", "items": "16"})
    at.run()
    at.switch_page(MODEL).run()
    assert not at.exception, at.exception
    assert at.session_state["md_preset"] == "P2" and at.session_state[SEED_KEY] == 99
    d = at.session_state["design"]
    assert (d.subjects, d.items) == (16, 16)


def test_formula_change_gives_new_terms_zero_and_keeps_old_values():
    at = small(open_model(md_preset="P1b"))
    at.text_input(key="md_formula").set_value(
        "RT ~ 1 + X_e * X_c + (1 + X_e * X_c | item_id) + (1 + X_e * X_c | subj_id)"
    ).run()
    assert not at.exception, at.exception
    sd = at.session_state["spec"].random["item_id"]["sd"]
    assert sd == {"(Intercept)": 80.0, "X_e": 60.0, "X_c": 0.0, "X_e:X_c": 0.0}
    assert at.session_state["spec"].fixed["X_e:X_c"] == 70.0


@pytest.mark.parametrize(
    ("formula", "needle"),
    [
        ("RT ~ 1 + X_i + (1 | item_id", "parenthes"),
        ("RT ~ 1 + X_q + (1 | item_id)", "X_q"),
    ],
)
def test_bad_formula_shows_error(formula, needle):
    at = small(open_model())
    at.text_input(key="md_formula").set_value(formula).run()
    assert not at.exception, at.exception
    assert at.error and needle in errors(at)[0]


def test_negative_sd_shows_error():
    at = open_model()
    at.session_state["md_sd_vals"]["item_id"]["(Intercept)"] = -5.0
    at.session_state["md_gen"] += 1  # fresh editors read the stored values
    at.run()
    assert not at.exception, at.exception
    assert at.error and "negative" in errors(at)[0]


def test_non_pd_correlation_shows_error():
    at = open_model(md_preset="P3")
    cv = at.session_state["md_corr_vals"]["subj"]
    cv.update({"(Intercept)|frequency": 0.9, "(Intercept)|context": 0.9, "frequency|context": -0.9})
    at.session_state["md_gen"] += 1
    at.run()
    assert not at.exception, at.exception
    assert at.error and "positive semi-definite" in errors(at)[0]


def test_negative_sigma_and_too_large_design_show_errors():
    at = open_model()
    at.number_input(key="md_sigma").set_value(-1.0).run()
    assert not at.exception and at.error and "sigma" in errors(at)[0]
    at.number_input(key="md_sigma").set_value(200.0)
    at.number_input(key="md_subjects").set_value(1_000_000).run()
    assert not at.exception, at.exception
    assert at.error and "limit" in errors(at)[0]


def test_fit_simulated_dataset_shows_truth_on_fit_bootstrap():
    at = small(open_model(), 20, 20)
    at.button(key="md_fit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["truth"] == {"(Intercept)": 800.0, "X_i": 50.0}
    res = at.session_state["fit_result"]
    direct = lmmcore.fit(res.formula, at.session_state["sim_data"])
    pd.testing.assert_series_equal(res.fe_params, direct.fe_params)
    at.switch_page(FIT_BOOT).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["True value"]) == [800.0, 50.0]


def test_export_page_without_model_says_so():
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(EXPORT).run()
    assert not at.exception, at.exception
    assert any("Model & design" in i.value for i in at.info)


def test_export_json_round_trips():
    at = small(open_model(md_preset="P3"), 8, 8)
    at.switch_page(EXPORT).run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 4
    from lmmcore.export import spec_design_json

    spec, design = at.session_state["spec"], at.session_state["design"]
    d = json.loads(spec_design_json(spec, design))
    assert set(d) == {"spec", "design"}
    assert lmmcore.ModelSpec.from_dict(d["spec"]) == spec
    assert lmmcore.Design.from_dict(d["design"]) == design
    assert any("lmer(" in c.value for c in at.code)


def test_python_script_reproduces_app_data(tmp_path):
    at = small(open_model(md_preset="P2"), 16, 16)
    spec, design = at.session_state["spec"], at.session_state["design"]
    seed = at.session_state["sim_seed"]
    script = tmp_path / "sim.py"
    script.write_text(python_script(spec, design, seed))
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Fixed effects" in proc.stdout
    got = pd.read_csv(out)
    app = at.session_state["sim_data"]
    assert list(got.columns) == list(app.columns)
    pd.testing.assert_series_equal(got["rt_trunc"], app["rt_trunc"], check_exact=True)
    assert got["subj"].tolist() == app["subj"].astype(str).tolist()


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
@pytest.mark.parametrize("preset", ["P1", "P1b", "P2", "P3", "P5"])
def test_r_script_builds_the_same_design(tmp_path, preset):
    p = lmmcore.PRESETS[preset]
    design = p.design.with_size(subjects=p.design.subjects // 2 if preset != "P3" else 20)
    script = r_script(p.spec, design, 1)
    stop = script.index("# ---- the model")
    probe = script[:stop].replace("library(lmerTest)", "").replace("library(MASS)", "")
    probe += '\nwrite.csv(dat, "design.csv", row.names = FALSE)\n'
    (tmp_path / "d.R").write_text(probe)
    proc = subprocess.run(
        ["Rscript", "d.R"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(tmp_path / "design.csv")
    want = design.conditions(1)
    assert len(got) == len(want)
    for col in want.columns:
        if pd.api.types.is_numeric_dtype(want[col]):
            assert got[col].astype(float).tolist() == want[col].tolist(), col
        else:
            assert got[col].astype(str).tolist() == want[col].astype(str).tolist(), col


@pytest.mark.parametrize("preset", list(lmmcore.PRESETS))
def test_every_page_renders_on_each_preset(preset):
    """Choose a preset on Model & design, then open every other page: no exception, and
    the Power page uses that preset's model (not its P1 fallback)."""
    from views._common import PAGES

    at = open_model()
    at.selectbox(key="md_preset").set_value(preset).run()
    assert not at.exception, at.exception
    assert at.session_state["spec"].formula == lmmcore.PRESETS[preset].spec.formula
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
        if page.path.endswith("power.py"):
            assert not any("No model from" in i.value for i in at.info)


def test_nonsense_url_parameters_are_named_in_one_line():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["preset"] = "ZZZ"
    at.query_params["subjects"] = "-5"
    at.query_params["seed"] = "abc"
    at.run()
    at.switch_page(MODEL).run()
    assert not at.exception, at.exception
    notes = [w.value for w in at.warning if "link asked for values" in w.value]
    assert len(notes) == 1
    for part in ("preset='ZZZ'", "subjects='-5'", "seed='abc'"):
        assert part in notes[0]
    assert at.selectbox(key="md_preset").value == "P1"


def test_a_deep_link_to_a_huge_design_is_refused_before_any_work():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"preset": "P1", "subjects": "100000", "items": "50"})
    at.run()
    at.switch_page(MODEL).run()
    assert not at.exception, at.exception
    assert any("5,000,000 rows" in e and f"at most {APP_MAX_ROWS:,}" in e for e in errors(at))
    assert "sim_data" not in at.session_state  # no preview was simulated


def test_design_builder_by_widgets_equals_the_python_design():
    """A 2 x 3 design, one factor between subjects, built by widget interaction only."""
    at = open_model()
    at.selectbox(key="md_preset").set_value("blank").run()
    at.text_input(key="md_f0_name").set_value("load")
    at.text_input(key="md_f0_levels").set_value("low, high")
    at.selectbox(key="md_f0_varies").set_value("between_subject")
    at.button(key="md_add_factor").click().run()
    at.text_input(key="md_f1_name").set_value("cue")
    at.text_input(key="md_f1_levels").set_value("none, left, right")
    at.selectbox(key="md_f1_coding").set_value("treatment")
    at.number_input(key="md_subjects").set_value(12)
    at.number_input(key="md_items").set_value(6)
    at.text_input(key="md_formula").set_value("y ~ load * (cueleft + cueright) + (1 | subj)")
    at.run()
    assert not at.exception, at.exception
    assert not errors(at), errors(at)
    want = lmmcore.Design(
        12,
        6,
        [
            lmmcore.Factor("load", ["low", "high"], "between_subject"),
            lmmcore.Factor("cue", ["none", "left", "right"], "within", "treatment"),
        ],
    )
    got = at.session_state["design"]
    assert got == want
    pd.testing.assert_frame_equal(got.conditions(3), want.conditions(3))
    names = list(at.session_state["spec"].fixed)
    assert names == ["(Intercept)", "load", "cueleft", "cueright", "load:cueleft", "load:cueright"]
    # a proposed maximal formula for it
    at.selectbox(key="md_proposal").set_value("maximal")
    at.button(key="md_propose").click().run()
    assert at.text_input(key="md_formula").value == (
        "y ~ load * (cueleft + cueright) + (1 + (cueleft + cueright) | subj) + "
        "(1 + load * (cueleft + cueright) | item)"
    )
    assert not at.exception, at.exception


def test_residual_sd_survives_an_error_that_stops_the_page():
    at = small(open_model())
    assert at.number_input(key="md_sigma").value == 200.0
    at.text_input(key="md_formula").set_value("RT ~ 1 + X_i + (1 | item_id").run()
    assert errors(at)
    at.text_input(key="md_formula").set_value(lmmcore.PRESETS["P1"].spec.formula).run()
    assert not errors(at)
    assert at.number_input(key="md_sigma").value == 200.0
    assert at.session_state["spec"].sigma == 200.0


def test_an_error_removes_the_model_other_pages_would_use():
    at = small(open_model())
    assert "spec" in at.session_state
    at.text_input(key="md_formula").set_value("RT ~ 1 + X_q + (1 | item_id)").run()
    assert "spec" not in at.session_state and "X_q" in at.session_state["md_error"]
    at.switch_page(EXPORT).run()
    assert not at.exception, at.exception
    assert not at.get("download_button")  # nothing stale is offered
    assert any("X_q" in unescape(w.value) for w in at.warning)


def test_each_correlation_is_entered_once_and_mirrored():
    at = open_model(md_preset="P3")
    spec = at.session_state["spec"]
    terms = list(spec.random["subj"]["sd"])
    assert len(terms) == 3
    corr = np.array(spec.random["subj"]["corr"])
    np.testing.assert_array_equal(corr, corr.T)
    cv = at.session_state["md_corr_vals"]["subj"]
    assert len(cv) == 3  # k (k - 1) / 2 pairs, no second triangle to disagree
    from views.model_design import corr_pairs

    pairs = corr_pairs(terms, cv)
    assert list(zip(pairs["term"], pairs["with"], strict=True)) == [
        (terms[0], terms[1]),
        (terms[0], terms[2]),
        (terms[1], terms[2]),
    ]
    for _, r in pairs.iterrows():
        i, j = terms.index(r["term"]), terms.index(r["with"])
        assert corr[i, j] == corr[j, i] == r["correlation"]


def test_a_large_design_is_previewed_on_its_first_subjects():
    at = open_model()
    at.number_input(key="md_subjects").set_value(4000).run()  # 200,000 rows
    assert not at.exception, at.exception
    assert len(at.session_state["sim_data"]) <= 50_000
    notes = [i.value for i in at.info if "Showing" in i.value]
    assert notes and "of 4,000 subj_id" in notes[0] and "use the whole design" in notes[0]
    assert at.session_state["design"].subjects == 4000


def approx_shown(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "df (Satterthwaite)" in d.value.columns)


def test_approximate_power_follows_every_input_without_a_button():
    at = open_model()
    first = at.session_state["spec"]
    got = approx_shown(at)
    want = lmmcore.approx_power(first, at.session_state["design"], seed=at.session_state[SEED_KEY])
    assert got.loc["X_i", "power"] == pytest.approx(want.loc["X_i", "power"], abs=1e-4)
    at.number_input(key="md_items").set_value(100).run()  # more items: more power, no button
    more = approx_shown(at)
    assert more.loc["X_i", "power"] > got.loc["X_i", "power"] + 0.05


def test_the_design_survives_a_visit_to_another_page():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["preset"] = "P1"
    at.run()
    at.switch_page(MODEL).run()  # one run only, then away
    at.switch_page("views/power.py").run()
    at.switch_page(MODEL).run()
    assert not at.exception, at.exception
    assert not errors(at), errors(at)
    assert at.session_state["design"] == lmmcore.PRESETS["P1"].design
    assert at.text_input(key="md_f0_name").value == "X_i"


def test_standardized_entry_sets_values_and_sds_through_unstandardize():
    at = small(open_model())
    spec, design = at.session_state["spec"], at.session_state["design"]
    std = lmmcore.standardize(spec, design, seed=at.session_state[SEED_KEY])
    assert std.d["X_i"] > 0
    at.button(key="md_std_apply").click().run()  # unchanged values: the same spec back
    assert not at.exception, at.exception
    new = at.session_state["spec"]
    assert new.fixed["X_i"] == pytest.approx(spec.fixed["X_i"], rel=1e-9)
    assert new.sigma == pytest.approx(spec.sigma, rel=1e-9)
    sd = new.random["subj_id"]["sd"]["X_i"]
    assert sd == pytest.approx(spec.random["subj_id"]["sd"]["X_i"], rel=1e-9)
