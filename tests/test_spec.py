"""Tests of lmmcore.spec: theta conversion, validation, JSON, order invariance, moments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.design import Design, Factor
from lmmcore.errors import SpecError
from lmmcore.simulate import child_seeds, seed_sequence
from lmmcore.spec import ModelSpec, psd_cholesky

P1_FORMULA = "RT ~ 1 + X_i + (1 | item_id) + (1 + X_i | subj_id)"


def p1_spec(**changes) -> ModelSpec:
    kw = dict(
        formula=P1_FORMULA,
        fixed={"(Intercept)": 800.0, "X_i": 50.0},
        random={
            "subj_id": {"sd": {"(Intercept)": 100.0, "X_i": 40.0}, "corr": [[1, 0.2], [0.2, 1]]},
            "item_id": {"sd": {"(Intercept)": 80.0}},
        },
        sigma=200.0,
    )
    kw.update(changes)
    return ModelSpec(**kw)


def p1_design(subjects: int = 100) -> Design:
    return Design(
        subjects=subjects,
        items=50,
        factors=[Factor("X_i", ["ingroup", "outgroup"], "within_subject")],
        subject_col="subj_id",
        item_col="item_id",
    )


@pytest.fixture(scope="module")
def sleep_fit():
    return lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))


def test_theta_round_trip_sleepstudy(sleep_fit):
    spec = ModelSpec.from_fit(sleep_fit)
    assert spec.fixed == pytest.approx(dict(sleep_fit.fe_params))
    theta = spec.theta_for(sleep_fit.structure)
    np.testing.assert_allclose(theta, sleep_fit.solution.theta, rtol=1e-10, atol=1e-12)
    # and on a fresh structure from the data (response present)
    s = spec.structure(lmmcore.load_dataset("sleepstudy"))
    np.testing.assert_allclose(spec.theta_for(s), sleep_fit.solution.theta, atol=1e-12)


def test_theta_double_bar_and_p1():
    df = p1_design(10).conditions()
    spec = p1_spec()
    s = spec.structure(df)  # no RT column: a placeholder is added
    theta = spec.theta_for(s)
    # blocks sorted by number of levels: item_id (50) then subj_id (10)
    assert s.theta_names == (
        "item_id.(Intercept)",
        "subj_id.(Intercept)",
        "subj_id.X_i.(Intercept)",
        "subj_id.X_i",
    )
    L = np.array([[theta[1], 0], [theta[2], theta[3]]]) * 200
    np.testing.assert_allclose(L @ L.T, [[100**2, 0.2 * 4000], [0.2 * 4000, 40**2]])
    assert theta[0] == pytest.approx(80 / 200)
    # (X_i || subj_id): two blocks of the same factor, corr None or identity
    f2 = "RT ~ 1 + X_i + (1 | item_id) + (1 + X_i || subj_id)"
    for corr in (None, [[1, 0], [0, 1]]):
        sp2 = p1_spec(
            formula=f2,
            random={
                "subj_id": {"sd": {"(Intercept)": 100.0, "X_i": 40.0}, "corr": corr},
                "item_id": {"sd": {"(Intercept)": 80.0}},
            },
        )
        np.testing.assert_allclose(sp2.theta_for(sp2.structure(df)), [0.4, 0.5, 0.2])
    bad = p1_spec(formula=f2)
    with pytest.raises(SpecError, match=r"formula makes them uncorrelated.*set it to 0"):
        bad.theta_for(bad.structure(df))


def test_zero_sd_is_safe():
    np.testing.assert_allclose(
        psd_cholesky(np.array([[0.0, 0.0], [0.0, 4.0]])), [[0.0, 0.0], [0.0, 2.0]]
    )
    spec = p1_spec(
        random={
            "subj_id": {"sd": {"(Intercept)": 100.0, "X_i": 0.0}, "corr": [[1, 0.5], [0.5, 1]]},
            "item_id": {"sd": {"(Intercept)": 0.0}},
        }
    )
    df = p1_design(10).conditions()
    theta = spec.theta_for(spec.structure(df))
    np.testing.assert_allclose(theta, [0.0, 0.5, 0.0, 0.0])
    # perfectly correlated (singular, nonzero SDs) also works
    spec = p1_spec(
        random={
            "subj_id": {"sd": {"(Intercept)": 100.0, "X_i": 40.0}, "corr": [[1, 1], [1, 1]]},
            "item_id": {"sd": {"(Intercept)": 80.0}},
        }
    )
    theta = spec.theta_for(spec.structure(df))
    np.testing.assert_allclose(theta[1:], [0.5, 0.2, 0.0], atol=1e-12)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sigma": 0.0}, r"sigma \(the residual SD\) must be > 0, got 0"),
        ({"sigma": -1}, r"sigma \(the residual SD\) must be > 0"),
        ({"sigma": "x"}, r"sigma must be a number"),
        (
            {
                "random": {
                    "subj_id": {"sd": {"(Intercept)": -1.0, "X_i": 4}},
                    "item_id": {"sd": {"(Intercept)": 1}},
                }
            },
            r"\['sd'\]\['\(Intercept\)'\] = -1 is negative; an SD must be >= 0",
        ),
        (
            {"random": {"subj": {"sd": {"(Intercept)": 1.0}}}},
            r"unknown grouping factor 'subj'; the formula's grouping factors are: item_id, subj_id",
        ),
        (
            {"random": {"subj_id": {"sd": {"(Intercept)": 1.0, "X_i": 1.0}}}},
            r"random lacks grouping factor\(s\) item_id",
        ),
        (
            {
                "random": {
                    "subj_id": {
                        "sd": {"(Intercept)": 1.0, "X_i": 1.0},
                        "corr": [[1, 0.2], [0.3, 1]],
                    },
                    "item_id": {"sd": {"(Intercept)": 1.0}},
                }
            },
            r"not symmetric: entry \[0\]\[1\] = 0.2 but \[1\]\[0\] = 0.3; make them equal",
        ),
        (
            {
                "random": {
                    "subj_id": {
                        "sd": {"(Intercept)": 1.0, "X_i": 1.0},
                        "corr": [[1, 1.5], [1.5, 1]],
                    },
                    "item_id": {"sd": {"(Intercept)": 1.0}},
                }
            },
            r"entry \[0\]\[1\] = 1.5 is outside \[-1, 1\]",
        ),
        (
            {
                "random": {
                    "subj_id": {
                        "sd": {"(Intercept)": 1.0, "X_i": 1.0},
                        "corr": [[1, 0.2, 0], [0.2, 1, 0]],
                    },
                    "item_id": {"sd": {"(Intercept)": 1.0}},
                }
            },
            r"must be a 2 x 2 matrix, one row and column per term .*\(Intercept\), X_i",
        ),
    ],
)
def test_validation_messages(change, match):
    with pytest.raises(SpecError, match=match):
        p1_spec(**change)


def test_not_psd_message():
    f = "y ~ 1 + (1 + a + b | g)"
    corr = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]
    with pytest.raises(SpecError, match=r"not positive semi-definite.*Use smaller correlations"):
        ModelSpec(
            f,
            {"(Intercept)": 0},
            {"g": {"sd": {"(Intercept)": 1, "a": 1, "b": 1}, "corr": corr}},
            1.0,
        )


def test_name_validation_needs_data():
    df = p1_design(10).conditions()
    spec = p1_spec(fixed={"(Intercept)": 800.0, "Xi": 50.0})
    with pytest.raises(
        SpecError,
        match=r"unknown coefficient\(s\) Xi and no value for X_i; .*are: \(Intercept\), X_i",
    ):
        spec.structure(df)
    spec = p1_spec(fixed={"(Intercept)": 800.0})
    with pytest.raises(SpecError, match=r"no value for X_i"):
        spec.simulate(df)
    spec = p1_spec(
        random={
            "subj_id": {"sd": {"(Intercept)": 100.0, "slope": 40.0}},
            "item_id": {"sd": {"(Intercept)": 80.0}},
        }
    )
    with pytest.raises(
        SpecError, match=r"unknown term\(s\) slope and no SD for X_i; the terms of 'subj_id' are"
    ):
        spec.structure(df)


def test_json_round_trip(sleep_fit):
    for spec in (p1_spec(), ModelSpec.from_fit(sleep_fit), p1_spec(contrasts={"x": "sum"})):
        d = json.loads(json.dumps(spec.to_dict()))
        assert d["kind"] == "lmmcore.ModelSpec" and d["version"] == 1
        back = ModelSpec.from_dict(d)
        assert back == spec and back.to_dict() == spec.to_dict()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(kind="other"), r"field 'kind' must be 'lmmcore.ModelSpec'"),
        (lambda d: d.update(version=99), r"field 'version' is 99"),
        (lambda d: d.pop("sigma"), r"field 'sigma' is missing"),
        (lambda d: d.update(extra=1), r"unknown field\(s\) \['extra'\]"),
        (lambda d: d["fixed"].update(X_i="big"), r"fixed\['X_i'\] must be a number"),
        (
            lambda d: d["random"]["subj_id"].update(sd=[1, 2]),
            r"random\['subj_id'\]\['sd'\] must be",
        ),
        (lambda d: d["random"]["subj_id"].update(cor=1), r"random\['subj_id'\] has unknown key"),
    ],
)
def test_from_dict_errors(mutate, match):
    d = p1_spec().to_dict()
    mutate(d)
    with pytest.raises(SpecError, match=match):
        ModelSpec.from_dict(d)


def test_order_invariance():
    spec = p1_spec()
    df = p1_design(20).conditions()
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    _, e1 = spec.simulate(df, nsim=2, seed=11, return_effects=True)
    _, e2 = spec.simulate(shuffled, nsim=2, seed=11, return_effects=True)
    for g in ("subj_id", "item_id"):
        pd.testing.assert_frame_equal(e1[g], e2[g].loc[e1[g].index])
    # the same as string (non-categorical) labels in another order
    plain = shuffled.astype({"subj_id": str, "item_id": str})
    _, e3 = spec.simulate(plain, nsim=1, seed=11, return_effects=True)
    np.testing.assert_allclose(e1["subj_id"].to_numpy(), e3["subj_id"].loc[e1["subj_id"].index])


def test_simulate_matches_draw_conventions():
    spec = p1_spec()
    df = p1_design(10).conditions()
    Y, effects = spec.simulate(df, nsim=3, seed=5, return_effects="all")
    assert Y.shape == (len(df), 3) and len(effects) == 3
    assert np.array_equal(Y, spec.simulate(df, nsim=3, seed=5))
    # replicate i is child i: simulating child 2's seed alone gives column 2's random effects
    s = spec.structure(df)
    seeds = child_seeds(seed_sequence(5), 0, 3)
    for i in range(3):
        u = np.concatenate(
            [effects[i][b.group][list(b.terms)].to_numpy().ravel() for b in s.blocks]
        )
        resid = Y[:, i] - s.X @ spec.beta_for(s) - s.Z @ u
        rng = np.random.default_rng(seeds[i])
        rng.standard_normal(s.q)
        np.testing.assert_allclose(resid, 200 * rng.standard_normal(s.n), atol=1e-8)
    # a Design is accepted and built with the seed
    assert np.array_equal(spec.simulate(p1_design(10), seed=5), spec.simulate(df, seed=5))
    out = spec.simulate_data(p1_design(10), seed=5)
    assert np.array_equal(out["RT"].to_numpy(), Y[:, 0])


def test_p1_recovers_sds_and_correlation():
    """Sample moments of 2,000 drawn subject (and item) effects match the spec.

    Tolerance: for n = 2,000 normal draws the SE of a sample SD is about sd / sqrt(2n)
    (100 -> 1.58, 40 -> 0.63, 80 -> 1.26) and that of a correlation (1 - r^2) / sqrt(n)
    (0.2 -> 0.021). We allow 4 SE, so a correct implementation fails with probability
    well under 1e-3 per check; the seed is fixed, so the test is deterministic anyway.
    """
    spec = p1_spec()
    _, effects = spec.simulate(p1_design(100), nsim=40, seed=2021, return_effects="all")
    subj = pd.concat([e["subj_id"] for e in effects[:20]])  # 20 x 100 subjects
    item = pd.concat([e["item_id"] for e in effects])  # 40 x 50 items
    assert len(subj) == len(item) == 2000
    n = 2000
    sd = subj.std(ddof=0)
    assert abs(sd["(Intercept)"] - 100) < 4 * 100 / np.sqrt(2 * n)
    assert abs(sd["X_i"] - 40) < 4 * 40 / np.sqrt(2 * n)
    r = np.corrcoef(subj["(Intercept)"], subj["X_i"])[0, 1]
    assert abs(r - 0.2) < 4 * (1 - 0.2**2) / np.sqrt(n)
    assert abs(item["(Intercept)"].std(ddof=0) - 80) < 4 * 80 / np.sqrt(2 * n)
    # means are zero within 4 SE too
    assert abs(subj["(Intercept)"].mean()) < 4 * 100 / np.sqrt(n)


@pytest.mark.parametrize("preset", ["P1", "P3"])
def test_preset_effects_recover_sds_and_correlations(preset):
    """2,000 simulated datasets reproduce every specified SD and correlation.

    The drawn effects of all datasets are pooled (2,000 x 40..100 levels per factor, n
    draws); same tolerance reasoning as above: SE(sd) ~ sd / sqrt(2n),
    SE(r) ~ (1 - r^2) / sqrt(n), 4 SE per check.
    """
    from lmmcore import PRESETS

    spec, design = PRESETS[preset].spec, PRESETS[preset].design
    data = design.conditions(seed=1)
    Y, eff = spec.simulate(data, nsim=2000, seed=100, return_effects="all")
    assert Y.shape == (len(data), 2000)
    for g, cfg in spec.random.items():
        draws = pd.concat([e[g] for e in eff])
        n = len(draws)
        terms = list(cfg["sd"])
        for t in terms:
            target = cfg["sd"][t]
            assert abs(draws[t].std(ddof=0) - target) < 4 * target / np.sqrt(2 * n), (g, t)
        corr = np.asarray(cfg["corr"]) if cfg.get("corr") is not None else np.eye(len(terms))
        emp = np.corrcoef(draws[terms].to_numpy().T)
        for a in range(len(terms)):
            for b in range(a + 1, len(terms)):
                r = corr[a, b]
                assert abs(emp[a, b] - r) < 4 * (1 - r**2) / np.sqrt(n), (g, a, b)
