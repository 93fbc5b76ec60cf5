"""simulate, bootMer and BootResult: API, reproducibility and statistical checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import BootResult, BootstrapError
from lmmcore.errors import LmmWarning
from lmmcore.refit import refit_batch
from tests.lme4_fixtures import FIXTURES, load_case, require_fixtures


@pytest.fixture(scope="module")
def sleep():
    return lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))


def test_simulate_shape_seed_and_use_u(sleep):
    a = lmmcore.simulate(sleep, nsim=5, seed=3)
    assert a.shape == (180, 5)
    np.testing.assert_array_equal(a, lmmcore.simulate(sleep, nsim=5, seed=3))
    # replicate i does not depend on nsim
    np.testing.assert_array_equal(a[:, :2], lmmcore.simulate(sleep, nsim=2, seed=3))
    assert not np.array_equal(a, lmmcore.simulate(sleep, nsim=5, seed=4))
    u = lmmcore.simulate(sleep, nsim=2000, seed=1, use_u=True)
    # with the BLUPs held fixed, the mean is the fitted values
    se = sleep.sigma / np.sqrt(2000)
    assert np.abs(u.mean(axis=1) - sleep.fittedvalues).max() < 5 * se
    g = np.random.default_rng(0)
    assert lmmcore.simulate(sleep, nsim=1, seed=g).shape == (180, 1)
    with pytest.raises(ValueError):
        lmmcore.simulate(sleep, nsim=0)


def test_simulate_covariance_matches_model(sleep):
    """Empirical cov of y* vs Z (sigma^2 Lambda Lambda') Z' + sigma^2 I, within MC error."""
    nsim = 20000
    Y = lmmcore.simulate(sleep, nsim=nsim, seed=11)
    s = sleep.structure
    Z = s.Z.toarray()
    lam = s.lambdas(sleep.theta)[0]
    G = np.kron(np.eye(18), sleep.scale * lam @ lam.T)
    V = Z @ G @ Z.T + sleep.scale * np.eye(180)
    S = np.cov(Y)
    # MC SD of a sample covariance: sqrt((V_ij^2 + V_ii V_jj) / nsim); allow 5 SDs
    sd = np.sqrt((V**2 + np.outer(np.diag(V), np.diag(V))) / nsim)
    assert np.all(np.abs(S - V) < 5 * sd + 1e-9)
    mc_mean_sd = np.sqrt(np.diag(V) / nsim)
    assert np.all(np.abs(Y.mean(axis=1) - s.X @ sleep.solution.beta) < 5 * mc_mean_sd)


def test_bootmer_default_statistic_and_ci(sleep):
    b = lmmcore.bootMer(sleep, B=60, seed=2)
    assert isinstance(b, BootResult)
    assert b.estimates.shape == (60, 6)
    assert b.names == ["(Intercept)", "Days", "sigma", *sleep.structure.theta_names]
    np.testing.assert_allclose(b.t0[:2], sleep.fe_params.to_numpy())
    for m in ("perc", "basic", "norm"):
        ci = b.ci(method=m, level=0.9)
        assert ci.shape == (6, 2) and np.all(ci[:, 0] <= ci[:, 1])
    perc = b.ci("perc", 0.9)
    basic = b.ci("basic", 0.9)
    np.testing.assert_allclose(
        basic, np.column_stack([2 * b.t0 - perc[:, 1], 2 * b.t0 - perc[:, 0]])
    )
    summ = b.summary()
    assert list(summ.columns) == ["original", "bias", "std. error", "lower", "upper"]
    assert sum(b.status_counts().values()) == 60
    assert sleep.bootMer(B=60, seed=2).estimates.tolist() == b.estimates.tolist()


def test_summary_and_normal_interval_follow_boot(sleep):
    """summary(): bias = mean - t0 and std. error = SD (R's boot print); the normal
    interval is boot.ci's norm: (t0 - bias) -/+ z SD."""
    b = lmmcore.bootMer(sleep, B=80, seed=5)
    summ = b.summary("norm", 0.9)
    np.testing.assert_allclose(summ["original"], b.t0)
    np.testing.assert_allclose(summ["bias"], b.estimates.mean(axis=0) - b.t0)
    sd = b.estimates.std(axis=0, ddof=1)
    np.testing.assert_allclose(summ["std. error"], sd)
    z = 1.6448536269514722  # qnorm(0.95)
    centre = 2 * b.t0 - b.estimates.mean(axis=0)
    np.testing.assert_allclose(
        summ[["lower", "upper"]].to_numpy(), np.c_[centre - z * sd, centre + z * sd]
    )


def test_failed_replicates_are_reported_and_excluded(sleep, monkeypatch):
    """A failed refit is NaN (never zero), counted as failed, warned about, and left out
    of every interval and summary."""
    import lmmcore.bootstrap as bs

    real = bs.refit_batch

    def failing(*a, **k):
        fits = real(*a, **k)
        fits.status[::4] = "failed"  # replicates 0, 4, 8, ... of every chunk
        return fits

    monkeypatch.setattr(bs, "refit_batch", failing)
    with pytest.warns(LmmWarning, match="6 of 20 bootstrap refits failed"):
        b = lmmcore.bootMer(sleep, B=20, seed=3, chunk_size=10)
    assert b.status_counts()["failed"] == 6  # 0, 4, 8 and 10, 14, 18
    assert b.B == 20 and b.valid.sum() == 14
    assert np.all(np.isnan(b.estimates[b.status == "failed"]))
    good = b.estimates[b.status != "failed"]
    np.testing.assert_allclose(b.summary()["std. error"], good.std(axis=0, ddof=1))
    ref = BootResult(good, b.names, b.t0, b.status[b.status != "failed"])
    np.testing.assert_allclose(b.ci("perc"), ref.ci("perc"))


def test_show_progress_draws_a_tqdm_bar(sleep, capsys):
    lmmcore.bootMer(sleep, B=6, seed=1, show_progress=True, chunk_size=3)
    err = capsys.readouterr().err
    assert "bootMer" in err and "6/6" in err


def test_percentile_interval_follows_boot_norm_inter():
    # R: boot:::norm.inter(1:99 (sorted t), c(.025, .975)) gives order stats 2.5 and 97.5 ->
    # (R+1)*alpha = 2.5, 97.5 -> interpolated on the normal scale between t[2],t[3] etc.
    t = np.arange(1.0, 100.0)
    b = BootResult(t[:, None], ["x"], np.array([50.0]), np.array(["ok"] * 99))
    lo, hi = b.ci("perc", 0.95)[0]
    assert 2 < lo < 3 and 97 < hi < 98
    t = np.arange(1.0, 20.0)  # (19 + 1) * 0.05 = 1 -> exactly the first order statistic
    b = BootResult(t[:, None], ["x"], np.array([10.0]), np.array(["ok"] * 19))
    assert b.ci("perc", 0.9)[0].tolist() == [1.0, 19.0]


def test_bootresult_from_estimates_alone(sleep):
    """interlace's ``BootResult(estimates)``: names, t0 and status are optional."""
    full = lmmcore.bootMer(sleep, B=40, seed=5)
    alone = BootResult(full.estimates)
    assert alone.names == [f"t{i}" for i in range(1, 7)] and alone.t0 is None
    assert alone.status.tolist() == ["ok"] * 40 and alone.valid.all()
    np.testing.assert_array_equal(alone.ci(level=0.9), full.ci(level=0.9))
    # names and t0 without a status: every replicate counts (this used to crash)
    named = BootResult(full.estimates, full.names, full.t0)
    np.testing.assert_array_equal(named.ci("basic"), full.ci("basic"))
    assert BootResult(np.arange(5.0)).estimates.shape == (5, 1)
    with pytest.raises(BootstrapError, match="needs t0"):
        alone.ci("norm")
    with pytest.raises(BootstrapError, match="needs t0"):
        alone.summary()
    with pytest.raises(BootstrapError, match="3 names for 6"):
        BootResult(full.estimates, ["a", "b", "c"])
    with pytest.raises(BootstrapError, match="status has shape"):
        BootResult(full.estimates, status=np.array(["ok"]))
    with pytest.raises(BootstrapError, match="t0 has 1 values"):
        BootResult(full.estimates, t0=[1.0])


def test_simulate_method_is_the_function(sleep):
    np.testing.assert_array_equal(sleep.simulate(3, seed=8), lmmcore.simulate(sleep, 3, seed=8))
    np.testing.assert_array_equal(
        sleep.simulate(nsim=2, seed=8, use_u=True), lmmcore.simulate(sleep, 2, 8, use_u=True)
    )


def test_same_numbers_for_any_chunking_and_workers(sleep):
    a = lmmcore.bootMer(sleep, B=120, seed=7, chunk_size=120)
    b = lmmcore.bootMer(sleep, B=120, seed=7, chunk_size=1)  # one column at a time
    c = lmmcore.bootMer(sleep, B=120, seed=7, chunk_size=30, n_jobs=2)
    d = lmmcore.bootMer(sleep, B=120, seed=7, n_jobs=2)  # split in one chunk per worker
    calls = []
    e = lmmcore.bootMer(sleep, B=120, seed=7, progress=lambda i, n: calls.append((i, n)))
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        f = lmmcore.bootMer(sleep, B=120, seed=7, chunk_size=40, backend=client)
    for other in (b, c, d, e, f):
        np.testing.assert_array_equal(a.estimates, other.estimates)
    # sequential default: a first chunk of 50, then chunks sized by the time it took
    assert calls[0] == (50, 120) and calls[-1] == (120, 120)


def test_custom_statistic_and_progress(sleep):
    calls = []
    b = lmmcore.bootMer(
        sleep,
        statistic=lambda r: np.array([r.sigma, r.fe_params["Days"]]),
        B=12,
        seed=1,
        chunk_size=5,
        progress=lambda d, t: calls.append((d, t)),
    )
    d = lmmcore.bootMer(sleep, B=12, seed=1)
    np.testing.assert_allclose(b.estimates[:, 0], d.estimates[:, 2], rtol=1e-10)
    np.testing.assert_allclose(b.estimates[:, 1], d.estimates[:, 1], rtol=1e-10)
    assert calls == [(5, 12), (10, 12), (12, 12)]


def test_interrupt_returns_finished_replicates(sleep, monkeypatch):
    import lmmcore.bootstrap as bs

    real = bs._run_chunk
    n = {"calls": 0}

    def flaky(*a, **k):
        n["calls"] += 1
        if n["calls"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(bs, "_run_chunk", flaky)
    with pytest.warns(Warning, match="Interrupted: returning the 10 of 30"):
        b = lmmcore.bootMer(sleep, B=30, seed=1, chunk_size=5)
    assert b.interrupted and b.estimates.shape == (10, 6)
    assert b.ci().shape == (6, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(B=0), "B must be a positive integer"),
        (dict(B=2.5), "B must be a positive integer"),
        (dict(B=5, statistic=lambda r: np.ones((2, 2))), "1-D"),
        (dict(B=5, statistic=lambda r: 1 / 0), "ZeroDivisionError"),
        (dict(B=5, statistic="mean"), "function"),
    ],
)
def test_bad_bootstrap_arguments(sleep, kwargs, match):
    with pytest.raises(BootstrapError, match=match):
        lmmcore.bootMer(sleep, seed=1, **kwargs)


def test_statistic_changing_shape_is_reported(sleep):
    first = {"done": False}

    def stat(r):
        if not first["done"]:
            first["done"] = True
            return np.array([1.0, 2.0])
        return np.array([1.0])

    with pytest.raises(BootstrapError, match="returned shape"):
        lmmcore.bootMer(sleep, statistic=stat, B=3, seed=1)


def test_bad_ci_arguments(sleep):
    b = lmmcore.bootMer(sleep, B=10, seed=1)
    with pytest.raises(BootstrapError, match="level"):
        b.ci(level=1.5)
    with pytest.raises(BootstrapError, match="Unknown CI method"):
        b.ci(method="bca")


def test_bootstrap_distribution_matches_lme4(sleep):
    """Mean and SD of the bootstrap fixed effects vs lme4's bootMer (nsim=200, timing.json).

    Both are Monte-Carlo estimates: the difference of means has SD sd*sqrt(1/B + 1/200),
    the SD's relative SD is about sqrt(1/(2B) + 1/400). Allow 4 of those.
    """
    require_fixtures()
    ref = json.loads((FIXTURES / "timing.json").read_text())["cases"]["sleepstudy_slope"]
    B = 1000
    b = lmmcore.bootMer(sleep, B=B, seed=2024)
    for j, name in enumerate(["(Intercept)", "Days"]):
        m, sd = ref["bootmer_fixef_mean"][name], ref["bootmer_fixef_sd"][name]
        est = b.estimates[:, j]
        assert abs(est.mean() - m) < 4 * sd * np.sqrt(1 / B + 1 / 200)
        assert abs(est.std(ddof=1) / sd - 1) < 4 * np.sqrt(1 / (2 * B) + 1 / 400)


def _reference_optimum(engine, resp, rep, reml, starts):
    """Slow, tight multi-start reference: BOBYQA to tolerances far below the 1e-6 checked
    (as the fixtures' tight refits), with restarts, from several starting points."""
    from lmmcore.optimize import minimize_theta

    lower = engine.structure.theta_lower

    def f(t):
        return float(engine.criterion(t[None], np.array([rep]), resp, reml)[0])

    return min(minimize_theta(f, s, lower).fun for s in starts)


@pytest.mark.parametrize(
    "case",
    [
        "sleepstudy_slope",
        "sim_crossed_30x20",
        "sim_crossed_30x20 unbalanced",
        "sim_crossed_30x20 unbalanced by-level",
    ],
)
def test_batched_and_single_fits_reach_the_reference_optimum(case):
    """200 simulated datasets: batch refit and one-at-a-time fit within 1e-6 of a
    multi-start reference (no false singular fits). The balanced fixtures run the
    by-group kernel with one group; with 10% of the rows dropped the crossed design has
    10 groups of subjects (the same counts per condition), and runs once by group and
    once by level."""
    from lmmcore.fit import fit_structure

    fx, df, con = load_case(case.split()[0])
    if "unbalanced" in case:
        df = df.drop(index=np.random.default_rng(1).choice(len(df), len(df) // 10, replace=False))
    res = lmmcore.fit(fx["formula"], df, contrasts=con)
    eng = res.engine
    if case.endswith("by-level"):
        eng = lmmcore.engine.Engine(res.structure, group_levels=False)
    assert (eng.groups is None) == case.endswith("by-level")
    if eng.groups is not None:
        assert eng.groups.max() + 1 == (10 if "unbalanced" in case else 1)
    Y = lmmcore.simulate(res, nsim=200, seed=99)
    batch = refit_batch(eng, Y, res.theta, REML=True)
    # as bootMer refits: quasi-Newton replicates may end without a last full stencil
    lean = refit_batch(eng, Y, res.theta, REML=True, stencil=False)
    resp = eng.responses(Y)
    rng = np.random.default_rng(0)
    worst_batch = worst_single = worst_lean = 0.0
    for i in range(200):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            single = fit_structure(res.structure, engine=eng, responses=resp, rep=i, warn=False)
        starts = [
            res.structure.theta0,
            res.theta,
            np.abs(res.theta + rng.normal(0, 0.3, res.theta.size)),
        ]
        ref = _reference_optimum(eng, resp, i, True, starts)
        worst_single = max(worst_single, single.objective - ref)
        worst_batch = max(worst_batch, batch.objective[i] - ref)
        worst_lean = max(worst_lean, lean.objective[i] - ref)
        assert batch.objective[i] - single.objective < 1e-6
    assert worst_single < 1e-6
    assert worst_batch < 1e-6
    assert worst_lean < 1e-6


def test_single_fit_leaves_a_false_edge_across_the_column_sign():
    """With a random intercept SD stopped at zero, BOBYQA can sit on the wrong side of
    Lambda's column-sign symmetry (replicate 79 here stopped 2.9 above the optimum before
    the edge check flipped columns). Single fits must match the batch refits everywhere."""
    from lmmcore.fit import fit_structure

    fx, df, con = load_case("sim_singular")
    res = lmmcore.fit(fx["formula"], df, contrasts=con)
    Y = lmmcore.simulate(res, nsim=100, seed=5)
    batch = refit_batch(res.engine, Y, res.theta, REML=True)
    resp = res.engine.responses(Y)
    for i in range(100):
        single = fit_structure(res.structure, engine=res.engine, responses=resp, rep=i, warn=False)
        assert abs(single.objective - batch.objective[i]) < 1e-6, i
    single = fit_structure(res.structure, engine=res.engine, responses=resp, rep=79, warn=False)
    assert single.theta[0] > 0.1  # the intercept SD is not zero at the optimum


def test_newton_steps_stay_in_a_trust_region():
    """Dropping the fixed intercept from preset P1 leaves the random intercepts to absorb
    the grand mean: the criterion is nearly flat along one SD, and an unbounded Newton step
    overshot it by ~40x (then crept back, and most replicates ended in the slow BOBYQA
    fallback). Capped steps settle every replicate, at least as low as BOBYQA from the
    same start. (This criterion has two local optima: the subjects' or the items'
    intercepts absorb the mean; from lme4's default start BOBYQA may stop in the worse.)"""
    from lmmcore.fit import fit_structure
    from lmmcore.power import _reduced

    p = lmmcore.PRESETS["P1"]
    data = p.spec.simulate_data(p.design, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmmcore.fit(p.spec.formula, data, REML=False)
    Y = lmmcore.simulate(res, nsim=50, seed=2)
    eng = lmmcore.engine.Engine(_reduced(res.structure, 0))
    fits = refit_batch(eng, Y, res.theta, REML=False)
    assert not fits.fallback.any()
    resp = eng.responses(Y)
    for i in range(0, 50, 10):
        single = fit_structure(
            eng.structure, REML=False, engine=eng, responses=resp, rep=i, start=res.theta
        )
        assert fits.objective[i] < single.objective + 1e-6


def test_singular_refits_also_restart_from_lme4s_start():
    """A 3 x 3 random-slope block (found by fuzzing random designs): from the fitted theta,
    Newton and the column flips end on a boundary optimum 0.06 above the one a single fit
    reaches from lme4's start. Singular refits therefore also restart from there."""
    from pathlib import Path

    from lmmcore.fit import fit_structure

    df = pd.read_csv(Path(__file__).parent / "data" / "boundary_optima.csv")
    df[["g1", "g2"]] = df[["g1", "g2"]].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmmcore.fit("y ~ x * z + (1 + x + z | g1) + (1 | g2)", df)
    ystar = df[["y_star"]].to_numpy()
    batch = refit_batch(res.engine, ystar, res.theta, REML=True)
    resp = res.engine.responses(ystar)
    single = fit_structure(res.structure, engine=res.engine, responses=resp, warn=False)
    assert batch.objective[0] < single.objective + 1e-6


@pytest.mark.parametrize("case", ["P3 16x16", "sim_large_60x40"])
def test_quasi_newton_refits_reach_the_reference_optimum(case, monkeypatch):
    """Batches with one start and >= 4 variance parameters begin quasi-Newton (shared
    Hessian at the start, BFGS, forward-difference gradients) and finish with full
    Newton stencils: 12 parameters in two 3 x 3 blocks (P3's model at 16 subjects x 16
    items) and 6 in two 2 x 2 blocks. Every replicate within 1e-6 of a multi-start
    BOBYQA reference, with fewer criterion evaluations than Newton throughout."""
    import lmmcore.refit as refit_mod

    if case.startswith("P3"):
        p = lmmcore.PRESETS["P3"]
        s = p.spec.structure(p.design.with_size(subjects=16, items=16).conditions(2))
        beta, theta, sigma = p.spec.beta_for(s), p.spec.theta_for(s), p.spec.sigma
        from lmmcore.simulate import child_seeds, draw_responses

        Y = draw_responses(s, beta, theta, sigma, child_seeds(np.random.SeedSequence(4), 0, 40))
        eng = lmmcore.engine.Engine(s)
        start = theta
    else:
        fx, df, con = load_case(case)
        res = lmmcore.fit(fx["formula"], df, contrasts=con)
        Y = lmmcore.simulate(res, nsim=40, seed=8)
        eng, start = res.engine, res.theta
    resp = eng.responses(Y)
    reps = np.arange(Y.shape[1])
    starts = np.tile(start, (reps.size, 1))
    quasi = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10)
    lean = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10, stencil=False)
    # (ending on BFGS steps pays where they converge fast: few parameters, see below)
    assert lean.evals.sum() <= 1.05 * quasi.evals.sum()
    monkeypatch.setattr(refit_mod, "QUASI_MIN_R", 10**9)  # Newton throughout
    newton = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10)
    assert quasi.evals.sum() < 0.8 * newton.evals.sum()
    assert not quasi.fallback.any()
    rng = np.random.default_rng(0)
    for i in reps:
        theta0 = eng.structure.theta0
        jitter = np.abs(start + rng.normal(0, 0.2, start.size))
        ref = _reference_optimum(eng, resp, i, True, [theta0, start, jitter])
        assert quasi.fval[i] - ref < 1e-6, i
        assert lean.fval[i] - ref < 1e-6, i
        assert abs(quasi.fval[i] - newton.fval[i]) < 1e-6, i


def test_flat_valley_at_a_zero_variance_converges_in_newton(sleep):
    """With the intercept SD at zero, the criterion sees only the length of the rest of
    Lambda's first column: one direction is flat and the shifted Newton step slides along
    it, gaining nothing. 7 of these 500 replicates ran to the iteration limit and the
    BOBYQA fallback; two steps that predict < 1e-7 and gain nothing now end the
    iteration, at the reference optimum."""
    Y = lmmcore.simulate(sleep, nsim=500, seed=1)
    fits = refit_batch(sleep.engine, Y, sleep.theta, REML=True)
    assert not fits.fallback.any()
    resp = sleep.engine.responses(Y)
    s = sleep.structure
    for i in (46, 244, 311, 387, 402, 462, 483):  # the replicates that used to fall back
        ref = _reference_optimum(sleep.engine, resp, i, True, [s.theta0, sleep.theta])
        assert fits.objective[i] - ref < 1e-6, i


def test_quasi_newton_refits_do_not_depend_on_the_chunking():
    """A model with 6 variance parameters: refits start quasi-Newton from a shared Hessian,
    made from fixed replicate streams, so every chunking gives the same numbers."""
    from tests.lme4_fixtures import load_case

    fx, df, con = load_case("sim_large_60x40")
    res = lmmcore.fit(fx["formula"], df, contrasts=con)
    assert res.structure.n_theta >= 4
    a = lmmcore.bootMer(res, B=40, seed=3, chunk_size=40)
    b = lmmcore.bootMer(res, B=40, seed=3, chunk_size=7)
    c = lmmcore.bootMer(res, B=40, seed=3, chunk_size=1)
    np.testing.assert_array_equal(a.estimates, b.estimates)
    np.testing.assert_array_equal(a.estimates, c.estimates)


def test_variances_creeping_to_zero_are_tried_at_zero(monkeypatch):
    """Where a refit's optimum has the slope SD at zero, Newton steps used to shrink it by
    a quarter at a time (the criterion flattens towards the bound). Trying the bound after
    two such steps reaches the same optima in fewer evaluations (5% fewer here)."""
    import lmmcore.refit as refit_mod

    fx, df, con = load_case("sim_crossed_30x20")
    df = df.drop(index=np.random.default_rng(1).choice(len(df), len(df) // 10, replace=False))
    res = lmmcore.fit(fx["formula"], df, contrasts=con)
    Y = lmmcore.simulate(res, nsim=200, seed=3)
    eng = res.engine
    resp = eng.responses(Y)
    reps = np.arange(200)
    starts = np.tile(res.theta, (200, 1))
    snap = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10)
    monkeypatch.setattr(refit_mod, "SNAP", (0.1, 10**9))
    creep = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10)
    singular = np.any(snap.theta[:, eng.structure.theta_lower == 0] < 1e-4, axis=1)
    assert singular.sum() >= 5
    # (most of their cost is the boundary restarts, which the snap does not change)
    assert snap.evals[singular].sum() < 0.97 * creep.evals[singular].sum()
    np.testing.assert_allclose(snap.fval, creep.fval, atol=1e-7)
    # bootMer's refits keep no stencil: with 4 parameters BFGS steps end them sooner
    monkeypatch.undo()
    lean = refit_mod._optimise(eng, resp, reps, starts, True, 40, 1e-4, 1e-10, stencil=False)
    assert lean.evals.sum() < 0.95 * snap.evals.sum()
    np.testing.assert_allclose(lean.fval, snap.fval, atol=1e-7)


def test_boundary_restarts_skip_flips_that_change_nothing():
    """A zero diagonal with nothing below it (a block's last column) is a zero column, its
    own mirror image: no flip restart is run for it; one with elements below is flipped."""
    from lmmcore.optimize import flip_edge_columns, has_mirror_image

    fx, df, con = load_case("sim_crossed_30x20")
    s = lmmcore.fit(fx["formula"], df, contrasts=con).structure
    last = np.array([0.7, 0.3, 0.0, 0.5])  # the slope's own part at zero
    first = np.array([0.0, 0.3, 0.2, 0.5])  # the intercept's diagonal at zero
    assert has_mirror_image(np.stack([last, first]), s.theta_columns, 1e-4).tolist() == [
        False,
        True,
    ]
    assert flip_edge_columns(first, s.theta_columns, 1e-4)[1] == -0.3
