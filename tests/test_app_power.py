"""AppTest checks of the "Power" page (views/power.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import lmmcore
from tests.apptest_utils import errors, unescape
from views._common import SEED_KEY

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
POWER = "views/power.py"
P1 = lmmcore.PRESETS["P1"]
SMALL = P1.design.with_size(subjects=8, items=10)


def open_page(small: bool = False) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    if small:
        at.session_state["spec"] = P1.spec
        at.session_state["design"] = SMALL
    at.run()
    at.switch_page(POWER).run()
    assert not at.exception, at.exception
    return at


def test_power_page_renders_defaults_with_p1_fallback():
    at = open_page()
    assert at.title[0].value == "Power"
    assert any("preset P1" in i.value for i in at.info)
    assert at.multiselect(key="power_effects").value == ["X_i"]
    assert at.selectbox(key="power_test").value == "satterthwaite"
    assert at.number_input(key="power_nsim").value == 1000
    assert at.number_input(key="power_target").value == 0.8
    assert not errors(at)
    assert any("cap" in c.value for c in at.caption)
    assert "power_curve_df" not in at.session_state


@pytest.mark.parametrize("text", ["10, twenty", "0, 10", "", "10.5"])
def test_bad_vary_input_shows_error(text):
    at = open_page()
    at.text_input(key="power_subjects").set_value(text).run()
    assert not at.exception, at.exception
    assert errors(at), "expected an st.error for bad sizes"
    assert at.button(key="power_run_button").disabled


def test_design_error_is_shown_not_raised():
    at = open_page(small=True)
    at.radio(key="power_vary").set_value("items").run()
    at.text_input(key="power_items").set_value("5, 10").run()  # odd: X_i varies between items
    assert not at.exception, at.exception
    assert errors(at)


def test_small_run_matches_power_curve_and_extends():
    at = open_page(small=True)
    assert not at.info or not any("preset P1" in i.value for i in at.info)
    at.session_state[SEED_KEY] = 7
    at.selectbox(key="power_test").set_value("wald")
    at.number_input(key="power_nsim").set_value(50)
    at.text_input(key="power_subjects").set_value("6, 10").run()
    at.button(key="power_run_button").click().run()
    assert not at.exception, at.exception
    df = at.session_state["power_curve_df"]
    with pytest.warns(lmmcore.errors.LmmWarning):
        ref = lmmcore.power_curve(
            P1.spec, SMALL, {"subjects": [6, 10]}, nsim=50, test="wald", seed=7, effects=["X_i"]
        )
    np.testing.assert_array_equal(df["subjects"], ref["subjects"])
    np.testing.assert_allclose(df["power"], ref["power"])
    np.testing.assert_allclose(df["ci_lower"], ref["ci_lower"])
    assert list(df["nsim"]) == [50, 50]
    assert any("anticonservative" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 1
    # the diagnostics, and the disagreements with the approximation if any
    off = any("outside the simulation's" in w.value for w in at.warning)
    assert len(at.dataframe) == 1 + off
    # Results survive a plain rerun.
    at.run()
    assert "power_curve_df" in at.session_state
    assert len(at.get("plotly_chart")) == 1

    # Add 1,000 more simulations to 10 subjects: equals one run of 1,050.
    at.selectbox(key="power_extend_point").set_value("10 subjects")
    at.button(key="power_extend").click().run()
    assert not at.exception, at.exception
    df2 = at.session_state["power_curve_df"]
    row = df2[df2["subjects"] == 10].iloc[0]
    assert row["nsim"] == 1050
    with pytest.warns(lmmcore.errors.LmmWarning):
        direct = lmmcore.power(
            P1.spec, SMALL.with_size(subjects=10), nsim=50, test="wald", seed=7, effects=["X_i"]
        ).extend(nsim=1000)
    assert row["power"] == pytest.approx(direct.table.loc["X_i", "power_cmc"])
    assert row["power_rejections"] == pytest.approx(direct.power("X_i"))
    assert df2[df2["subjects"] == 6].iloc[0]["nsim"] == 50


def test_two_dimensional_run_draws_heatmap():
    at = open_page(small=True)
    at.number_input(key="power_nsim").set_value(20)
    at.selectbox(key="power_test").set_value("wald")
    at.radio(key="power_vary").set_value("subjects and items").run()
    at.text_input(key="power_subjects").set_value("6, 8")
    at.text_input(key="power_items").set_value("6, 10").run()
    at.button(key="power_run_button").click().run()
    assert not at.exception, at.exception
    df = at.session_state["power_curve_df"]
    assert sorted(zip(df["subjects"], df["items"], strict=True)) == [
        (6, 6),
        (6, 10),
        (8, 6),
        (8, 10),
    ]
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and '"heatmap"' in charts[0].proto.spec
    # one warning per kind, naming the points, however many points warned
    texts = [w.value for w in at.warning]
    assert len(texts) == len(set(texts))
    singular = [t for t in texts if "singular" in t.lower()]  # 65-85% of these tiny designs' refits
    assert len(singular) == 1 and "Singular refits at 4 design points" in singular[0]


def test_partial_results_kept_when_a_point_fails(monkeypatch):
    """run_curve keeps the finished design points when a later one raises."""
    import views.power as page

    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        import pandas as pd

        return pd.DataFrame({"subjects": [args[2][0][1]], "effect": ["X_i"], "power": [0.5]}), []

    class Bar:
        def progress(self, *a, **k):
            pass

        def empty(self):
            pass

    state: dict = {}
    monkeypatch.setattr(page, "power_point", fake)
    monkeypatch.setattr(page.st, "session_state", state)
    settings = {
        "points": [(("subjects", 6),), (("subjects", 8),), (("subjects", 10),)],
        **dict.fromkeys(["spec_json", "design_json", "test", "effects"], ""),
        "nsim": 1,
        "alpha": 0.05,
        "seed": 1,
    }
    with pytest.raises(KeyboardInterrupt):
        page.run_curve(settings, Bar())
    assert list(state["power_curve_df"]["subjects"]) == [6]
    assert state["power_run"]["complete"] is False


def test_adding_simulations_checks_the_same_budget_as_a_run(monkeypatch):
    at = open_page(small=True)
    at.selectbox(key="power_test").set_value("wald")
    at.number_input(key="power_nsim").set_value(20)
    at.text_input(key="power_subjects").set_value("10").run()
    at.button(key="power_run_button").click().run()
    rows = SMALL.with_size(subjects=10).n_rows
    assert at.session_state["power_curve_df"]["nsim"].iloc[0] == 20
    # a budget the first run fits in, but 1,020 simulations of this point do not
    monkeypatch.setattr(lmmcore.limits, "MAX_WORK", 25 * rows)
    at.button(key="power_extend").click().run()
    assert not at.exception, at.exception
    assert any(
        f"would simulate {1020 * rows:,} observations" in e and "more than the limit" in e
        for e in errors(at)
    ), errors(at)
    assert at.session_state["power_curve_df"]["nsim"].iloc[0] == 20  # nothing ran


def run_small_curve(at: AppTest, sizes: str = "6, 10", nsim: int = 30) -> AppTest:
    at.selectbox(key="power_test").set_value("wald")
    at.number_input(key="power_nsim").set_value(nsim)
    at.text_input(key="power_subjects").set_value(sizes).run()
    at.button(key="power_run_button").click().run()
    assert not at.exception, at.exception
    return at


def test_results_for_other_inputs_are_not_shown_as_current():
    """P1's curve, then preset P5 on Model & design, then back to Power (issue #11.1)."""
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/model_design.py").run()
    at.number_input(key="md_subjects").set_value(8)
    at.number_input(key="md_items").set_value(10).run()
    at.switch_page(POWER).run()
    run_small_curve(at)
    assert [c.key for c in at.get("plotly_chart")] == ["power_curve_chart"]
    assert at.button(key="power_extend")
    at.switch_page("views/model_design.py").run()
    at.selectbox(key="md_preset").set_value("P5").run()
    at.switch_page(POWER).run()
    assert not at.exception, at.exception
    assert any(
        "computed for other inputs" in w.value and "the model" in w.value for w in at.warning
    )
    charts = [c.key for c in at.get("plotly_chart")]
    assert charts == ["power_approx_chart"]  # no stale simulated curve, only the live one
    assert not [b for b in at.button if b.key == "power_extend"]  # nothing to extend
    # the same happens when only the test changes
    at.switch_page("views/model_design.py").run()
    at.selectbox(key="md_preset").set_value("P1").run()
    at.number_input(key="md_subjects").set_value(8)
    at.number_input(key="md_items").set_value(10).run()
    at.switch_page(POWER).run()
    assert not at.exception, at.exception
    assert [c.key for c in at.get("plotly_chart")] == ["power_curve_chart"]  # current again
    assert at.button(key="power_extend")  # and its settings survived the other page
    at.selectbox(key="power_test").set_value("satterthwaite").run()
    assert any("the test" in w.value for w in at.warning)
    assert [c.key for c in at.get("plotly_chart")] == ["power_approx_chart"]


def test_an_error_on_model_and_design_is_not_replaced_by_a_fallback():
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/model_design.py").run()
    at.text_input(key="md_formula").set_value("RT ~ X_q + (1 | item_id)").run()
    at.switch_page(POWER).run()
    assert not at.exception, at.exception
    assert any("has an error" in w.value and "X\\_q" in w.value for w in at.warning)
    assert not any("preset P1" in i.value for i in at.info)
    assert not at.button


def test_pilot_fit_to_power_curve_equals_the_library_call():
    """Your data -> fit -> use as the truth -> power over more subjects (issue #11)."""
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/your_data.py").run()
    at.button(key="fit").click().run()
    at.button(key="use_fit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["md_preset"] == "pilot"
    at.switch_page(POWER).run()
    assert not at.exception, at.exception
    assert at.radio(key="power_vary").options == ["Subject", "effect size"]
    at.selectbox(key="power_test").set_value("wald")
    at.number_input(key="power_nsim").set_value(40)
    at.text_input(key="power_Subject").set_value("18, 36").run()
    at.button(key="power_run_button").click().run()
    assert not at.exception, at.exception
    df = at.session_state["power_curve_df"]
    sleep = lmmcore.load_dataset("sleepstudy")
    spec = lmmcore.ModelSpec.from_fit(lmmcore.fit("Reaction ~ Days + (Days | Subject)", sleep))
    seed = at.session_state[SEED_KEY]
    for n in (18, 36):
        direct = lmmcore.power(
            spec,
            lmmcore.extend(sleep, "Subject", n),
            nsim=40,
            test="wald",
            seed=seed,
            effects=["Days"],
        )
        row = df[df["Subject"] == n].iloc[0]
        assert row["power"] == direct.table.loc["Days", "power_cmc"]
        assert row["power_rejections"] == direct.power("Days")
        assert row["mean_estimate"] == pytest.approx(
            direct.table.loc["Days", "mean_estimate"], rel=1e-12
        )


def test_sample_size_search_equals_find_sample_size():
    at = run_small_curve(open_page(small=True), "6, 10", 30)
    at.number_input(key="power_search_upper").set_value(30)
    at.button(key="power_search_button").click().run()
    assert not at.exception, at.exception
    seed = at.session_state[SEED_KEY]
    with pytest.warns(lmmcore.errors.LmmWarning):
        direct = lmmcore.find_sample_size(
            P1.spec,
            SMALL,
            "X_i",
            target=0.8,
            dimension="subjects",
            lower=3,
            upper=30,
            nsim=30,
            test="wald",
            seed=seed,
        )
    key, res = at.session_state["power_search"]
    assert res.message == direct.message and res.size == direct.size
    shown = [m.value for m in [*at.success, *at.warning] if "X\\_i" in m.value or "X_i" in m.value]
    assert any(unescape(m) == direct.message for m in shown)


def test_the_approximation_is_live_and_the_simulation_overlays_it():
    at = open_page(small=True)
    approx = at.get("plotly_chart")
    assert [c.key for c in approx] == ["power_approx_chart"]  # before any Run
    direct = lmmcore.approx_power_curve(
        P1.spec,
        SMALL,
        {"subjects": [20, 40, 60, 80, 100]},
        effects=["X_i"],
        seed=at.session_state[SEED_KEY],
    )
    spec = json.loads(approx[0].proto.spec)
    ys = spec["data"][0]["y"]
    got = (
        np.frombuffer(base64.b64decode(ys["bdata"]), ys["dtype"])
        if isinstance(ys, dict)
        else np.array(ys)
    )
    np.testing.assert_allclose(got, direct["power"])
    # a change of the model updates it at once, with no button
    at.session_state["spec"] = lmmcore.ModelSpec.from_dict(
        {**P1.spec.to_dict(), "fixed": {"(Intercept)": 800.0, "X_i": 100.0}}
    )
    at.run()
    spec2 = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec2["data"][0]["y"] != spec["data"][0]["y"]
    # Run: the simulated curve is drawn over the approximation, disagreements flagged
    run_small_curve(at, "6, 10", 40)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name") for t in fig["data"]]
    assert "X_i (approximation)" in names and "X_i" in names
    assert any("Monte-Carlo CI" in c.value for c in [*at.caption, *at.warning])


def test_a_sensitivity_curve_over_an_effects_true_value():
    at = open_page(small=True)
    at.radio(key="power_vary").set_value("effect size").run()
    at.selectbox(key="power_test").set_value("wald")
    at.number_input(key="power_nsim").set_value(30)
    at.text_input(key="power_sens_values_X_i").set_value("0, 50, 100").run()
    at.button(key="power_run_button").click().run()
    assert not at.exception, at.exception
    df = at.session_state["power_curve_df"]
    assert df["effect:X_i"].tolist() == [0.0, 50.0, 100.0]
    seed = at.session_state[SEED_KEY]
    with pytest.warns(lmmcore.errors.LmmWarning):
        ref = lmmcore.power_curve(
            P1.spec,
            SMALL,
            {"effect:X_i": [0, 50, 100]},
            nsim=30,
            test="wald",
            seed=seed,
            effects=["X_i"],
        )
    np.testing.assert_array_equal(df["power"], ref["power"])
