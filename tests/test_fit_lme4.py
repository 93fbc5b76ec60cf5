"""Parity with R's lme4 (and lmerTest) on every fixture case, REML and ML."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.fit import fit_structure
from tests.lme4_fixtures import case_names, load_case

CASES = [(c, reml) for c in case_names() for reml in (True, False)]
IDS = [f"{c}-{'reml' if r else 'ml'}" for c, r in CASES]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def fitted(request):
    case, reml = request.param
    fx, df, con = load_case(case, reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmmcore.fit(fx["formula"], df, REML=reml, contrasts=con)
    return fx, res


def test_objective_matches_tight_optimum(fitted):
    fx, res = fitted
    tight = fx["tight_refit"]["objective"]
    assert res.objective - tight <= 1e-6
    assert abs(res.objective - tight) <= 1e-6
    assert res.objective <= fx["objective"] + 1e-6
    # the REML criterion or the deviance, whichever lme4 minimised
    assert res.objective == pytest.approx(
        fx["REMLcrit"] if fx["REML"] else fx["deviance"],
        abs=max(1e-6, fx["tight_refit"]["objective_improvement"] + 1e-6),
    )


def test_fixed_effects_se_sigma(fitted):
    fx, res = fitted
    t = fx["tight_refit"]
    assert list(res.fe_params.index) == fx["fixef_names"]
    np.testing.assert_allclose(
        res.fe_params.to_numpy(), list(t["fixef"].values()), rtol=1e-5, atol=1e-8
    )
    np.testing.assert_allclose(res.bse.to_numpy(), list(t["se"].values()), rtol=1e-4)
    assert res.sigma == pytest.approx(t["sigma"], rel=1e-5)
    ref = np.array(t["vcov"]["matrix"])
    # small off-diagonal covariances: compare on the matrix's own scale
    np.testing.assert_allclose(res.vcov.to_numpy(), ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_varcorr_sds_and_correlations(fitted):
    fx, res = fitted
    ours = res.varcorr
    theirs = fx["tight_refit"]["varcorr"]
    assert [v["name"] for v in ours] == [v["name"] for v in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["terms"] == b["terms"]
        sd_ref = np.array(b["sd"])
        for x, ref in zip(a["sd"], sd_ref, strict=True):
            if ref < 1e-6:
                assert x < 1e-4
            else:
                assert x == pytest.approx(ref, rel=1e-3)
        if len(b["terms"]) > 1:
            np.testing.assert_allclose(a["corr"], np.array(b["corr"]), atol=1e-3)


def test_theta_and_names(fitted):
    fx, res = fitted
    assert list(res.theta_series.index) == fx["theta"]["names"]
    np.testing.assert_allclose(res.theta, fx["tight_refit"]["theta"], rtol=1e-4, atol=1e-4)


def test_singularity_flag(fitted):
    fx, res = fitted
    assert res.is_singular == fx["isSingular"]
    assert res.is_singular == fx["tight_refit"]["isSingular"]


def test_loglik_aic_bic(fitted):
    fx, res = fitted
    t = fx["tight_refit"]
    assert res.llf == pytest.approx(t["logLik"], abs=1e-6)
    assert res.aic == pytest.approx(t["AIC"], abs=1e-6)
    assert res.bic == pytest.approx(t["BIC"], abs=1e-6)
    assert res.nobs == fx["nobs"]
    assert res.ngroups == fx["ngrps"]


def test_blups(fitted):
    fx, res = fitted
    for group, ref in fx["tight_refit"]["ranef"].items():
        ours = res.random_effects[group]
        assert list(ours.columns) == ref["terms"]
        ours = ours.loc[ref["levels"]]
        vals = np.array(ref["values"])
        scale = np.abs(vals).max()
        np.testing.assert_allclose(ours.to_numpy(), vals, rtol=1e-4, atol=1e-4 * scale + 1e-10)


def test_fitted_plus_resid_is_y(fitted):
    fx, res = fitted
    np.testing.assert_allclose(res.fittedvalues + res.resid, res.y)
    # wrss from the fixture's devcomp at the default optimum is close to ours
    wrss = fx["devcomp"]["cmp"]["wrss"]
    assert float(res.resid @ res.resid) == pytest.approx(wrss, rel=1e-3, abs=1e-6)


def test_satterthwaite_df_and_p(fitted):
    fx, res = fitted
    ref = fx["satterthwaite"]["coef"]
    names = fx["fixef_names"]
    # lmerTest evaluates at lme4's default (less tight) optimum: 1e-3 relative is realistic
    np.testing.assert_allclose(res.df.to_numpy(), [ref[n]["df"] for n in names], rtol=1e-3)
    np.testing.assert_allclose(
        res.pvalues.to_numpy(), [ref[n]["p"] for n in names], rtol=1e-2, atol=1e-12
    )


def test_batched_satterthwaite_matches_lmertest(fitted):
    from lmmcore.batch_inference import batch_satterthwaite
    from lmmcore.refit import refit_batch

    fx, res = fitted
    fits = refit_batch(res.engine, res.y[:, None], res.theta, REML=res.REML)
    resp = res.engine.responses(res.y)
    df = batch_satterthwaite(res.engine, resp, fits, res.REML)[0]
    ref = fx["satterthwaite"]["coef"]
    np.testing.assert_allclose(df, [ref[n]["df"] for n in fx["fixef_names"]], rtol=1e-3)
    np.testing.assert_allclose(df, res.df.to_numpy(), rtol=1e-3)
    # the fast path reuses the refit's forward stencil: O(h) truncation error, h = 1e-4
    # against theta of order 0.1 gives a few 1e-3 at most
    assert not fits.fallback[0]  # Newton settled it, so its stencil is there to reuse
    assert np.isfinite(fits.stencil.center[0]).all()
    fast = batch_satterthwaite(res.engine, resp, fits, res.REML, reuse=True)[0]
    np.testing.assert_allclose(fast, df, rtol=5e-3)


def test_newton_reaches_the_bobyqa_reference_optimum(fitted):
    """Single fits run the refit engine's Newton iteration; BOBYQA (lme4's optimiser, run
    to tight tolerances with restarts) stays as the reference: the same optimum within
    1e-6."""
    fx, res = fitted
    assert res.optimizer.optimizer.startswith("Newton")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fit_structure(res.structure, REML=res.REML, optimizer="bobyqa")
    assert ref.optimizer.optimizer == "nlopt LN_BOBYQA"
    assert res.objective - ref.objective < 1e-6
    assert abs(res.objective - ref.objective) < 1e-6


def test_unknown_optimizer_is_a_spec_error():
    fx, df, con = load_case("dyestuff")
    with pytest.raises(lmmcore.SpecError, match="Unknown optimizer 'nm'"):
        lmmcore.fit(fx["formula"], df, optimizer="nm")


def test_newton_settles_where_the_criterion_is_large():
    """With 100,000 rows the criterion is ~1e6 and its rounding ~1e-10: Newton's
    tolerances scale with it. (With an absolute 1e-12 the full step at the optimum
    looked like an increase, and the fit fell back to BOBYQA.)"""
    rng = np.random.default_rng(7)
    ns, ni, per = 1000, 300, 100
    subj = np.repeat(np.arange(ns), per)
    item = np.concatenate([rng.choice(ni, per, replace=False) for _ in range(ns)])
    x = rng.choice([-0.5, 0.5], ns * per)
    u, w = rng.normal(0, 50, ns)[subj], rng.normal(0, 30, ni)[item]
    y = 500 + 30 * x + u + w + rng.normal(0, 80, ns * per)
    df = pd.DataFrame({"subj": subj.astype(str), "item": item.astype(str), "x": x, "y": y})
    res = lmmcore.fit("y ~ x + (1 | subj) + (1 | item)", df)
    assert res.optimizer.optimizer.startswith("Newton (")  # no BOBYQA fallback
    ref = fit_structure(res.structure, optimizer="bobyqa")
    assert res.objective - ref.objective < 1e-6


def test_single_fit_starts_at_the_scale_of_its_optimum():
    """A 3 x 3 random-slope block whose SDs are 5x the residual's (as nlme's Machines):
    from lme4's identity start Newton walks there in many steps; a single fit first scans
    start * (1/8 .. 8) in one batched call and starts at the best, reaching the same
    optimum (BOBYQA's) with fewer evaluations."""
    rng = np.random.default_rng(11)
    rows = [(w, m, r) for w in range(8) for m in range(3) for r in range(3)]
    df = pd.DataFrame(rows, columns=["worker", "machine", "rep"])
    u = rng.multivariate_normal(
        [0, 0, 0], 25 * np.array([[1, 0.7, 0.5], [0.7, 1, 0.6], [0.5, 0.6, 1]]), 8
    )
    df["y"] = 60 + 5 * df.machine + u[df.worker, df.machine] + rng.normal(size=len(df))
    df[["worker", "machine"]] = df[["worker", "machine"]].astype(str).astype("category")
    formula = "y ~ machine + (machine | worker)"
    scanned = lmmcore.fit(formula, df)
    plain = lmmcore.fit(formula, df, start=scanned.structure.theta0)  # a given start: no scan
    ref = fit_structure(scanned.structure, optimizer="bobyqa")
    assert np.abs(scanned.theta).max() > 2.5  # the optimum is far from the identity
    assert scanned.optimizer.feval < plain.optimizer.feval
    assert abs(scanned.objective - ref.objective) < 1e-6
    assert abs(plain.objective - ref.objective) < 1e-6
