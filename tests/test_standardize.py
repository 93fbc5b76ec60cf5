"""Tests of lmmcore.standardize: Cohen's d and VPCs to and from a ModelSpec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from lmmcore import PRESETS, Design, Factor, ModelSpec, standardize, unstandardize
from lmmcore.errors import SpecError


def treatment_case() -> tuple[ModelSpec, Design]:
    """0/1 codes, a correlated slope and missing rows: the covariances do not cancel."""
    design = Design(
        10,
        6,
        [
            Factor("x", ["a", "b"], coding="treatment"),
            Factor("g", ["p", "q"], "between_subject", coding="sum"),
        ],
        missing=0.15,
    )
    spec = ModelSpec(
        "y ~ x * g + (1 + x | subj) + (1 | item)",
        fixed={"(Intercept)": 3.0, "x": 0.8, "g": -0.4, "x:g": 0.2},
        random={
            "subj": {"sd": {"(Intercept)": 1.5, "x": 0.9}, "corr": [[1, -0.4], [-0.4, 1]]},
            "item": {"sd": {"(Intercept)": 0.7}},
        },
        sigma=1.2,
    )
    return spec, design


def test_p1_by_hand():
    p1 = PRESETS["P1"]
    st = standardize(p1.spec, p1.design)
    # subject intercept 100, slope 40 on a +-1/2 column (40^2 / 4), item 80, residual 200;
    # the intercept-slope covariance cancels (mean of X_i is 0)
    total = 100**2 + 40**2 / 4 + 80**2 + 200**2
    assert st.total_sd == pytest.approx(math.sqrt(total), rel=1e-12)
    assert st.d == pytest.approx({"X_i": 50 / math.sqrt(total)}, rel=1e-12)
    assert st.steps == {"X_i": 1.0}
    expected = {
        "subj_id: (Intercept)": 100**2 / total,
        "subj_id: X_i": 40**2 / 4 / total,
        "item_id: (Intercept)": 80**2 / total,
        "residual": 200**2 / total,
        "covariances": 0.0,
    }
    assert st.vpc == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_total_variance_is_the_mean_variance_of_an_observation():
    spec, design = treatment_case()
    st = standardize(spec, design, seed=4)
    s = spec.structure(design.conditions(np.random.default_rng(4)))
    lams = s.lambdas(spec.theta_for(s))
    gam = sp.block_diag(
        [np.kron(np.eye(b.nlevels), lam @ lam.T) for b, lam in zip(s.blocks, lams, strict=True)]
    ).toarray()
    Z = s.Z.toarray()
    var_rows = spec.sigma**2 * (1 + np.einsum("ij,jk,ik->i", Z, gam, Z))
    assert st.total_sd**2 == pytest.approx(var_rows.mean(), rel=1e-12)
    assert sum(st.vpc.values()) == pytest.approx(1.0, rel=1e-12)
    assert st.vpc["covariances"] < 0  # a negative correlation on a 0/1 column
    assert st.steps == {"x": 1.0, "g": 2.0, "x:g": 2.0}
    assert st.d["g"] == pytest.approx(-0.4 * 2 / st.total_sd)


@pytest.mark.parametrize("name", ["P1", "P1b", "P2", "P3", "P4", "P5", "treatment"])
def test_round_trip_gives_the_spec_back(name):
    if name == "treatment":
        spec, design = treatment_case()
    else:
        spec, design = PRESETS[name].spec, PRESETS[name].design
    st = standardize(spec, design)
    back = unstandardize(spec, design, d=st.d, vpc=st.vpc, total_sd=st.total_sd)
    assert back.fixed == pytest.approx(spec.fixed, rel=1e-10, abs=1e-12)
    assert back.sigma == pytest.approx(spec.sigma, rel=1e-10)
    for g, e in spec.random.items():
        assert back.random[g]["sd"] == pytest.approx(e["sd"], rel=1e-10, abs=1e-12)
    # without 'residual' it is what remains
    shares = {k: v for k, v in st.vpc.items() if k != "residual"}
    again = unstandardize(spec, design, vpc=shares, total_sd=st.total_sd)
    assert again.sigma == pytest.approx(spec.sigma, rel=1e-10)


def test_steps_follow_the_coding():
    p2, p3 = PRESETS["P2"], PRESETS["P3"]
    assert standardize(p2.spec, p2.design).steps == {"spkr": 2.0, "prec": 2.0, "load": 2.0}
    steps = standardize(p3.spec, p3.design).steps
    assert steps["age"] == 2.0 and steps["age:frequency"] == 4.0
    assert steps["age:frequency:context"] == 8.0
    p4 = PRESETS["P4"]  # covariates: d per unit
    assert set(standardize(p4.spec, p4.design).steps.values()) == {1.0}


def test_d_and_vpcs_have_no_units():
    spec, design = treatment_case()
    st = standardize(spec, design)
    scaled = ModelSpec(
        spec.formula,
        {k: 10 * v for k, v in spec.fixed.items()},
        {
            g: {"sd": {t: 10 * v for t, v in e["sd"].items()}, "corr": e["corr"]}
            for g, e in spec.random.items()
        },
        10 * spec.sigma,
    )
    st10 = standardize(scaled, design)
    assert st10.d == pytest.approx(st.d, rel=1e-12)
    assert st10.vpc == pytest.approx(st.vpc, rel=1e-12)
    assert st10.total_sd == pytest.approx(10 * st.total_sd, rel=1e-12)


def test_only_d_or_only_total_sd():
    p1 = PRESETS["P1"]
    s = unstandardize(p1.spec, p1.design, d={"X_i": 0.2})
    assert s.to_dict()["random"] == p1.spec.to_dict()["random"] and s.sigma == p1.spec.sigma
    assert s.fixed["X_i"] == pytest.approx(0.2 * math.sqrt(56800))
    doubled = unstandardize(p1.spec, p1.design, total_sd=2 * math.sqrt(56800))
    assert doubled.sigma == pytest.approx(400.0) and doubled.fixed == p1.spec.fixed
    assert standardize(doubled, p1.design).vpc == pytest.approx(standardize(p1.spec, p1.design).vpc)


def test_bad_inputs_are_refused():
    p1 = PRESETS["P1"]
    ok = {"subj_id: (Intercept)": 0.2, "subj_id: X_i": 0.05, "item_id: (Intercept)": 0.1}
    with pytest.raises(SpecError, match="no share for 'item_id: \\(Intercept\\)'"):
        unstandardize(p1.spec, p1.design, vpc={"subj_id: (Intercept)": 0.2, "subj_id: X_i": 0.1})
    with pytest.raises(SpecError, match="unknown name"):
        unstandardize(p1.spec, p1.design, vpc={**ok, "subj: x": 0.1})
    with pytest.raises(SpecError, match="sum to 0.9"):
        unstandardize(p1.spec, p1.design, vpc={**ok, "residual": 0.55})
    with pytest.raises(SpecError, match="must be > 0"):
        unstandardize(p1.spec, p1.design, vpc={**ok, "item_id: (Intercept)": 0.8})
    with pytest.raises(SpecError, match="negative"):
        unstandardize(p1.spec, p1.design, vpc={**ok, "subj_id: X_i": -0.1})
    with pytest.raises(SpecError, match="intercept has none"):
        unstandardize(p1.spec, p1.design, d={"(Intercept)": 1.0})
    with pytest.raises(SpecError, match="total_sd must be > 0"):
        unstandardize(p1.spec, p1.design, total_sd=0.0)
    with pytest.raises(SpecError, match="Design"):
        standardize(p1.spec, p1.design.conditions())
