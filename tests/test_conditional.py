"""Conditional Monte Carlo power (`PowerResult.table`'s ``power_cmc``): each replicate's
probability of rejecting given its variance estimates, averaged.

Its expectation is the power, exactly (the oracle estimate b0 is normal and independent of
everything else the fit sees), so on the same replicates it must agree with the share of
rejections within the Monte-Carlo error of their paired difference, while having a much
smaller variance itself.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lmmcore import PRESETS, Design, Factor, ModelSpec, approx_power, power
from lmmcore.power import _cached, _make_problem, _oracle, _seeds

pytestmark = pytest.mark.filterwarnings("ignore::lmmcore.errors.LmmWarning")


def scaled(spec: ModelSpec, k: float) -> ModelSpec:
    return dataclasses.replace(spec, fixed={n: v * k for n, v in spec.fixed.items()})


NESTED = ModelSpec(
    "y ~ t + (1 | school) + (1 | class)",
    {"(Intercept)": 0.0, "t": 0.8},
    {"school": {"sd": {"(Intercept)": 0.6}}, "class": {"sd": {"(Intercept)": 0.5}}},
    1.0,
)
NESTED_DESIGN = Design(
    nested=[("school", 6), ("class", 2), ("pupil", 4)],
    factors=[Factor("t", ["c", "d"], "between_subject", at="class")],
)

CASES = {
    # tiny crossed design, half the refits singular
    "P5 4 x 6": (scaled(PRESETS["P5"].spec, 0.3), PRESETS["P5"].design.with_size(4, 6), None),
    # the analysis model leaves out the true random slope (a misspecified model)
    "P1 misspecified": (
        PRESETS["P1"].spec,
        PRESETS["P1"].design.with_size(10, 10),
        "RT ~ 1 + X_i + (1 | item_id) + (1 | subj_id)",
    ),
    "nested": (NESTED, NESTED_DESIGN, None),
}


@pytest.mark.parametrize("test", ["satterthwaite", "wald", "kr"])
@pytest.mark.parametrize("case", list(CASES))
def test_conditional_power_is_the_share_of_rejections_with_less_noise(case, test):
    spec, design, formula = CASES[case]
    nsim = 300 if test == "kr" else 2000
    res = power(spec, design, nsim=nsim, test=test, seed=11, formula=formula, type1=True)
    t = res.table
    for what, p, rej in (("power", res.p, res.rej), ("type I", res.p_null, res.rej_null)):
        for c, name in enumerate(res.names):
            ok = np.isfinite(p[:, c])
            if what == "type I" and not np.isfinite(rej[ok, c]).all():
                continue  # not computed for this effect
            hit = (p[ok, c] < res.alpha).astype(float)
            d = hit - rej[ok, c]
            assert np.isfinite(rej[ok, c]).all() and ((rej[ok, c] >= 0) & (rej[ok, c] <= 1)).all()
            # the paired difference has mean 0 and variance E[rej (1 - rej)] (the decision
            # is Bernoulli(rej) given the rest): 4 SE leaves a 6e-5 chance per comparison
            r = rej[ok, c]
            se = np.sqrt(np.mean(r * (1 - r)) / ok.sum())
            assert abs(d.mean()) <= 4 * se + 1e-12, (what, name, d.mean(), se)
            if 0.1 < hit.mean() < 0.9:  # far less variance than the 0/1 decisions
                assert rej[ok, c].std() < 0.6 * hit.std(), (what, name)
        if what == "power":
            np.testing.assert_allclose(t["power_cmc"], np.nanmean(res.rej, axis=0))


def test_the_oracle_is_generalised_least_squares_at_the_truth():
    """b0's mean is the true beta and its variance the approximation's SE^2, which is
    C = (X'V^-1 X)^-1 at the truth, computed independently in q-space."""
    p1 = PRESETS["P1"]
    design = p1.design.with_size(30, 12)
    _, design_seed = _seeds(3)
    pr, names, _ = _make_problem(p1.spec, design, "wald", 0.05, None, None, design_seed)
    _, mean, var = _cached(pr, "oracle", lambda: _oracle(pr))
    np.testing.assert_allclose(mean, pr.beta, rtol=1e-9)
    se = approx_power(p1.spec, design, test="wald").loc[names, "se"].to_numpy()
    np.testing.assert_allclose(np.sqrt(var), se, rtol=1e-8)


def test_lrt_has_no_conditional_estimate():
    p5 = PRESETS["P5"]
    res = power(scaled(p5.spec, 0.3), p5.design.with_size(4, 6), nsim=10, test="lrt", seed=1)
    assert np.isnan(res.rej).all() and res.table["power_cmc"].isna().all()
    assert res.table["power"].notna().all()
