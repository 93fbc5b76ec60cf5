"""LMMResult.confint against lme4's confint() (tests/data/confint_lme4.csv).

The CSV was made by ``Rscript tests/data/make_confint_lme4.R`` (R 4.2.2, lme4 1.1-31) with
lme4's default settings and with a profile sampled eight times finer (delta.cutoff =
1/64). lme4 interpolates a spline through points of the profile, lmmcore finds the
crossings on the profile itself: lme4's default intervals are within 1e-3 (its spline
moves Dyestuff2's intercept bounds by 7e-4 between the two samplings), the finer ones
within 2e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.bootstrap import BootResult

REF = pd.read_csv(Path(__file__).parent / "data" / "confint_lme4.csv")
FITS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "dyestuff2": ("Yield ~ 1 + (1 | Batch)", "Dyestuff2"),
}


@pytest.fixture(scope="module")
def fits():
    with pytest.warns(lmmcore.SingularFitWarning):  # Dyestuff2's Batch SD is 0
        return {k: lmmcore.fit(f, lmmcore.load_dataset(d)) for k, (f, d) in FITS.items()}


def reference(case: str, method: str, old: bool) -> pd.DataFrame:
    sel = (REF["case"] == case) & (REF["method"] == method) & (REF["oldNames"] == old)
    return REF[sel].set_index("parm")[["lower", "upper"]]


@pytest.mark.parametrize("case", ["sleepstudy", "dyestuff2"])
def test_profile_matches_lme4(fits, case):
    res = fits[case]
    new = res.confint(method="profile", oldNames=False)
    old = res.confint()  # lme4's defaults: profile, oldNames=TRUE
    for got, names in ((new, False), (old, True)):
        want = reference(case, "profile", names)
        assert got.index.tolist() == want.index.tolist()
        assert got.columns.tolist() == ["2.5 %", "97.5 %"]
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-3)
        # lme4's spline through a finer profile is within 6e-6 of the crossings here
        fine = reference(case, "profile_fine", names)
        np.testing.assert_allclose(got.to_numpy(), fine.to_numpy(), rtol=0, atol=2e-5)
    np.testing.assert_array_equal(new.to_numpy(), old.to_numpy())
    if case == "dyestuff2":  # SD estimated at 0: the profile starts at its bound
        assert new.iloc[0, 0] == 0.0


@pytest.mark.parametrize("case", ["sleepstudy", "dyestuff2"])
def test_wald_matches_lme4(fits, case):
    res = fits[case]
    for old in (True, False):
        got, want = res.confint(method="Wald", oldNames=old), reference(case, "Wald", old)
        assert got.index.tolist() == want.index.tolist()
        # lme4's fit stops at its default tolerances: its SEs are 3e-7 (relative) away
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6)
        n_var = res.structure.n_theta + 1
        assert got.iloc[:n_var].isna().all().all() and got.iloc[n_var:].notna().all().all()
    fixed = res.confint(method="wald", parm="beta_")
    np.testing.assert_allclose(fixed.to_numpy(), res.conf_int(method="wald").to_numpy())


def test_boot_intervals_are_on_the_data_scale(fits):
    res = fits["sleepstudy"]
    got = res.confint(method="boot", nsim=60, seed=4, oldNames=False, level=0.9)
    assert got.index.tolist() == reference("sleepstudy", "profile", False).index.tolist()
    assert got.columns.tolist() == ["5 %", "95 %"]

    def sdcor_fe(r):  # the same statistic, from the fit's VarCorr
        vc = r.varcorr[0]
        return [vc["sd"][0], vc["corr"][1, 0], vc["sd"][1], r.sigma, *r.fe_params]

    boot = lmmcore.bootMer(res, statistic=sdcor_fe, B=60, seed=4)
    want = BootResult(boot.estimates, boot.names, boot.t0, boot.status).ci("perc", 0.9)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-9)
    basic = res.confint(
        method="boot", nsim=60, seed=4, boot_type="basic", parm=["sigma"], oldNames=False, level=0.9
    )
    np.testing.assert_allclose(basic.to_numpy()[0], 2 * res.sigma - got.loc["sigma"][::-1])


def test_selection_and_errors(fits):
    res = fits["dyestuff2"]
    assert res.confint(method="Wald", parm="theta_").index.tolist() == [".sig01", ".sigma"]
    assert res.confint(method="Wald", parm=["(Intercept)"]).shape == (1, 2)
    assert res.confint(method="Wald", level=0.99).columns.tolist() == ["0.5 %", "99.5 %"]
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) \['sigma'\]"):
        res.confint(method="Wald", parm="sigma")  # oldNames=True calls it .sigma
    with pytest.raises(ValueError, match="Unknown method"):
        res.confint(method="bca")
    with pytest.raises(ValueError, match="level"):
        res.confint(method="Wald", level=95)


def test_minimize_theta_upper_bounds():
    """The profile keeps correlations in [-1, 1] through minimize_theta's upper bounds."""
    from lmmcore.optimize import minimize_theta

    def f(t):
        return float((t[0] - 2.0) ** 2 + (t[1] + 3.0) ** 2)

    free = minimize_theta(f, np.array([0.5, 0.0]), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(free.theta, [2.0, -3.0], atol=1e-6)
    capped = minimize_theta(
        f, np.array([0.5, 0.0]), np.array([0.0, -1.0]), upper=np.array([1.0, 1.0])
    )
    np.testing.assert_allclose(capped.theta, [1.0, -1.0], atol=1e-9)
