"""Tests of lmmcore.power: calibration, backends, extend, summaries, curves, errors."""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import numpy as np
import pytest
from scipy import stats

from lmmcore import PRESETS, Design, Factor, ModelSpec
from lmmcore.errors import LmmWarning, PowerError
from lmmcore.power import clopper_pearson, find_sample_size, power, power_curve

# the module, even where lmmcore exports the function power as lmmcore.power
pw = importlib.import_module("lmmcore.power")

pytestmark = pytest.mark.filterwarnings("ignore:The Wald z test:lmmcore.errors.LmmWarning")


def null_spec(slope_sd: float = 0.5) -> ModelSpec:
    return ModelSpec(
        "y ~ 1 + x + (1 + x | subj) + (1 | item)",
        fixed={"(Intercept)": 0.0, "x": 0.0},
        random={
            "subj": {"sd": {"(Intercept)": 1.0, "x": slope_sd}},
            "item": {"sd": {"(Intercept)": 0.5}},
        },
        sigma=1.0,
    )


def effect_spec(b: float = 0.4) -> ModelSpec:
    return ModelSpec(
        "y ~ 1 + x + (1 | subj) + (1 | item)",
        fixed={"(Intercept)": 1.0, "x": b},
        random={"subj": {"sd": {"(Intercept)": 0.5}}, "item": {"sd": {"(Intercept)": 0.3}}},
        sigma=1.0,
    )


SMALL = Design(6, 6, [Factor("x", ["a", "b"], varies="within")])


def same(a: pw.PowerResult, b: pw.PowerResult) -> None:
    np.testing.assert_array_equal(a.replicate, b.replicate)
    np.testing.assert_array_equal(a.status, b.status)
    for k in ("est", "se", "p", "df", "p_null"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-12, atol=0)


# ------------------------------------------------------------------ calibration


@pytest.mark.slow
def test_satterthwaite_calibrated_on_balanced_null():
    design = Design(30, 20, [Factor("x", ["a", "b"], varies="within_subject")])
    res = power(null_spec(1.0), design, nsim=2000, test="satterthwaite", seed=1, effects="x")
    row = res.table.loc["x"]
    assert row["quantity"] == "type I error"
    assert row["n_valid"] == 2000
    assert row["ci_lower"] <= 0.05 <= row["ci_upper"], row
    assert abs(row["coverage"] - 0.95) < 0.02


@pytest.mark.slow
def test_wald_anticonservative_with_few_subjects():
    design = Design(8, 10, [Factor("x", ["a", "b"], varies="within")])
    spec = null_spec(slope_sd=1.0)
    with pytest.warns(LmmWarning, match="only 8 levels of 'subj'.*anticonservative"):
        wald = power(spec, design, nsim=800, test="wald", seed=1, effects="x")
    wald = wald.table.loc["x"]
    satt = power(spec, design, nsim=800, test="satterthwaite", seed=1, effects="x")
    satt = satt.table.loc["x"]
    # the z test rejects a true null visibly more often than 5% with 8 subjects ...
    assert wald["ci_lower"] > 0.05, wald
    assert wald["coverage"] < 0.94
    # ... the Satterthwaite t test does not
    assert satt["ci_lower"] <= 0.05 and satt["power"] < wald["power"]


def test_power_of_real_effect_and_table_columns():
    res = power(
        effect_spec(0.5),
        Design(12, 12, [Factor("x", ["a", "b"])]),
        nsim=60,
        test="satterthwaite",
        seed=3,
    )
    t = res.table
    assert list(t.index) == ["(Intercept)", "x"]
    assert t.loc["x", "quantity"] == "power" and t.loc["x", "true_value"] == 0.5
    for col in (
        "power",
        "ci_lower",
        "ci_upper",
        "mcse",
        "mean_estimate",
        "bias",
        "rmse",
        "mean_se",
        "sd_estimate",
        "coverage",
        "n_ok",
        "n_singular",
        "n_not_converged",
        "n_failed",
    ):
        assert col in t.columns
    r = t.loc["x"]
    assert r["ci_lower"] <= r["power"] <= r["ci_upper"]
    assert r["n_ok"] + r["n_singular"] + r["n_not_converged"] == r["n_valid"] == 60
    assert abs(r["bias"]) < 3 * r["sd_estimate"] / np.sqrt(60)
    assert np.all(np.isfinite(res.df)) and np.all(res.df > 1)
    est = res.estimates
    assert len(est) == 120 and set(est.columns) >= {"replicate", "effect", "estimate", "se", "p"}


def test_clopper_pearson():
    lo, hi = clopper_pearson(5, 100)
    assert lo == pytest.approx(0.016431, abs=1e-5) and hi == pytest.approx(0.112836, abs=1e-5)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0


# ------------------------------------------------------------------ determinism, backends


def test_extend_equals_one_longer_run():
    spec, d = effect_spec(), SMALL
    a = power(spec, d, nsim=30, test="wald", seed=5).extend(nsim=20)
    b = power(spec, d, nsim=50, test="wald", seed=5, chunk_size=17)
    assert a.nsim == 50
    same(a, b)
    assert a.table.equals(b.table)


def test_same_numbers_local_processes_and_dask():
    spec, d = effect_spec(), SMALL
    local = power(spec, d, nsim=40, test="satterthwaite", seed=9)
    procs = power(spec, d, nsim=40, test="satterthwaite", seed=9, n_jobs=2, chunk_size=9)
    same(local, procs)
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        viadask = power(
            spec, d, nsim=40, test="satterthwaite", seed=9, backend=client, chunk_size=7
        )
        byaddr = power(
            spec,
            d,
            nsim=40,
            test="satterthwaite",
            seed=9,
            backend=cluster.scheduler_address,
            chunk_size=11,
        )
    same(local, viadask)
    same(local, byaddr)


def test_seed_reproducible_and_different_seeds_differ():
    a = power(effect_spec(), SMALL, nsim=10, test="wald", seed=1)
    b = power(effect_spec(), SMALL, nsim=10, test="wald", seed=1)
    c = power(effect_spec(), SMALL, nsim=10, test="wald", seed=2)
    same(a, b)
    assert not np.allclose(a.est, c.est)


# ------------------------------------------------------------------ tests and formulas


def test_lrt_and_kr_agree_roughly_with_satterthwaite():
    spec, d = effect_spec(0.6), Design(10, 10, [Factor("x", ["a", "b"])])
    kw = {"nsim": 40, "seed": 4, "effects": ["x"]}
    satt = power(spec, d, test="satterthwaite", **kw)
    lrt = power(spec, d, test="lrt", **kw)
    with pytest.warns(LmmWarning, match="slow"):
        kr = power(spec, d, test="kr", **kw)
    # balanced design: KR and Satterthwaite nearly coincide
    np.testing.assert_allclose(kr.p, satt.p, rtol=0.05, atol=1e-8)
    np.testing.assert_allclose(np.median(kr.df), np.median(satt.df), rtol=1e-3)
    assert np.all(lrt.stat >= 0)
    # LRT and the t test agree on most replicates
    agree = np.mean((lrt.p < 0.05) == (satt.p < 0.05))
    assert agree > 0.85


def test_analysis_formula_differs_from_truth():
    # truth has a by-subject slope; the analysis model omits it: anticonservative
    spec = null_spec(slope_sd=1.5)
    d = Design(10, 10, [Factor("x", ["a", "b"], varies="within")])
    res = power(
        spec,
        d,
        nsim=150,
        test="satterthwaite",
        seed=2,
        effects="x",
        formula="y ~ 1 + x + (1 | subj) + (1 | item)",
    )
    assert res.table.loc["x", "power"] > 0.2
    full = power(spec, d, nsim=150, test="satterthwaite", seed=2, effects="x")
    assert full.table.loc["x", "power"] < 0.12


# ------------------------------------------------------------------ failures, interrupts


def test_failures_are_counted_and_excluded(monkeypatch):
    real = pw.refit_batch

    def flaky(engine, Y, start, REML=True, **kw):
        fits = real(engine, Y, start, REML=REML, **kw)
        status = fits.status.astype(object)
        status[0] = "failed"  # the first replicate of every chunk fails
        fits.beta[0] = np.nan
        return dataclasses.replace(fits, status=status.astype(str))

    monkeypatch.setattr(pw, "refit_batch", flaky)
    with pytest.warns(LmmWarning, match="failed"):
        res = power(effect_spec(), SMALL, nsim=40, test="wald", seed=1, chunk_size=20)
    row = res.table.loc["x"]
    assert row["n_failed"] == 2 and row["n_valid"] == 38
    with pytest.raises(PowerError, match="First error: replicate 0"):
        power(effect_spec(), SMALL, nsim=40, test="wald", seed=1, chunk_size=5)


def test_progress_and_interrupt():
    calls = []

    def cb(done, total):
        calls.append((done, total))
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.warns(LmmWarning, match="Interrupted: returning the 20 of 50"):
        res = power(effect_spec(), SMALL, nsim=50, test="wald", seed=1, chunk_size=10, progress=cb)
    assert calls == [(10, 50), (20, 50)]
    assert res.interrupted and res.nsim == 20
    assert res.table.loc["x", "n_valid"] == 20


def test_bad_arguments():
    spec = effect_spec()
    with pytest.raises(PowerError, match="Unknown test"):
        power(spec, SMALL, test="z")
    with pytest.raises(PowerError, match="nsim"):
        power(spec, SMALL, nsim=0)
    with pytest.raises(PowerError, match="alpha"):
        power(spec, SMALL, alpha=1.5)
    with pytest.raises(PowerError, match="Unknown effect"):
        power(spec, SMALL, effects=["nope"], nsim=2)
    with pytest.raises(PowerError, match="backend"):
        power(spec, SMALL, backend="gpu", nsim=2)
    with pytest.raises(PowerError, match="n_jobs"):
        power(spec, SMALL, n_jobs=0, nsim=2)
    with pytest.raises(PowerError, match="Client or a scheduler address"):
        power(spec, SMALL, backend="dask", nsim=2)
    with pytest.raises(PowerError, match="type1 must be"):
        power(spec, SMALL, nsim=2, type1="yes")
    with pytest.raises(PowerError, match="common_draws must be"):
        power_curve(spec, SMALL, {"subjects": [4]}, nsim=2, common_draws=1)
    with pytest.raises(PowerError, match="whole numbers"):
        power_curve(spec, SMALL, {"subjects": [4.5]}, nsim=2)
    with pytest.raises(PowerError, match="not a fixed effect of the spec"):
        power_curve(spec, SMALL, {"effect:z": [0.1]}, nsim=2)
    with pytest.raises(PowerError, match="list of values"):
        power_curve(spec, SMALL, {"subjects": 4}, nsim=2)


# ------------------------------------------------------------------ curves, sample size


def test_power_curve_1d_and_2d():
    spec = effect_spec()
    kw = {"nsim": 12, "test": "wald", "seed": 1}
    one = power_curve(spec, SMALL, {"subjects": [4, 8, 16]}, **kw)
    assert one.shape[0] == 6 and list(one["subjects"].unique()) == [4, 8, 16]
    two = power_curve(spec, SMALL, {"subjects": [4, 8], "items": [4, 6]}, effects=["x"], **kw)
    assert two[["subjects", "items"]].values.tolist() == [[4, 4], [4, 6], [8, 4], [8, 6]]
    assert set(two["effect"]) == {"x"}


def test_find_sample_size_reachable_and_not():
    spec = effect_spec(0.5)
    d = Design(4, 10, [Factor("x", ["a", "b"])])
    kw = {"nsim": 40, "test": "wald", "seed": 1}
    r = find_sample_size(spec, d, "x", target=0.8, lower=2, upper=40, **kw)
    assert r.reachable and 2 <= r.size <= 40
    ev = r.evaluated.set_index("subjects")
    assert ev.loc[r.size, "ci_lower"] > 0.8
    smaller = [n for n in ev.index if n < r.size]
    assert all(ev.loc[n, "ci_lower"] <= 0.8 for n in smaller)
    # P1 with few items: more subjects cannot reach 95% power
    p1 = PRESETS["P1"]
    few = p1.design.with_size(items=4)
    nr = find_sample_size(
        p1.spec, few, "X_i", target=0.95, lower=20, upper=40, nsim=30, test="wald", seed=1
    )
    assert not nr.reachable and nr.size is None
    assert "not reachable by adding subjects" in nr.message and "Add items" in nr.message


def test_extend_after_an_interrupt_continues_with_the_unfinished_replicates():
    def stop_after_20(done, total):
        if done >= 20:
            raise KeyboardInterrupt

    spec = effect_spec()
    with pytest.warns(LmmWarning, match="Interrupted"):
        part = power(
            spec, SMALL, nsim=50, test="wald", seed=4, chunk_size=10, progress=stop_after_20
        )
    assert part.nsim == 20
    extended = part.extend(nsim=10, progress=None)
    whole = power(spec, SMALL, nsim=60, test="wald", seed=4)
    assert not extended.interrupted
    np.testing.assert_array_equal(extended.replicate, np.arange(60))
    np.testing.assert_array_equal(extended.est, whole.est)
    np.testing.assert_array_equal(extended.p, whole.p)


def test_a_backend_that_dies_raises_power_error_and_keeps_what_finished():
    from dask.distributed import Client, LocalCluster

    spec = effect_spec()
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):

        def kill_cluster(done, total):
            if done == 10:
                cluster.close()  # every worker gone mid-run

        with pytest.raises(PowerError, match="backend failed") as info:
            power(
                spec,
                SMALL,
                nsim=40,
                test="wald",
                seed=5,
                chunk_size=10,
                backend=client,
                progress=kill_cluster,
            )
    partial = info.value.partial
    assert partial is not None and partial.nsim >= 10 and partial.interrupted is False
    finished = partial.extend(nsim=10, backend=None, progress=None)
    whole = power(spec, SMALL, nsim=50, test="wald", seed=5)
    np.testing.assert_array_equal(finished.est, whole.est)
    np.testing.assert_array_equal(finished.p_null, whole.p_null)
    assert np.isfinite(partial.p_null).all() and partial.p_null.shape == partial.p.shape


def test_nsim_is_capped_before_anything_is_allocated():
    with pytest.raises(PowerError, match="more than the limit of 1,000,000"):
        power(effect_spec(), SMALL, nsim=10**9)


def test_a_test_without_p_values_names_the_reason(monkeypatch):
    real = pw.refit_batch

    def no_se(engine, Y, start, REML=True, **kw):
        fits = real(engine, Y, start, REML=REML, **kw)
        fits.se[:] = np.nan  # every statistic undefined, no refit marked failed
        return fits

    monkeypatch.setattr(pw, "refit_batch", no_se)
    with pytest.raises(PowerError, match="First error: replicate 0: the wald test gave no p-value"):
        power(effect_spec(), SMALL, nsim=10, test="wald", seed=1)


def test_mostly_singular_refits_are_warned_about_with_their_meaning():
    # 6 x 6 with a small item SD: a third of the refits put the item SD at 0
    with pytest.warns(LmmWarning, match=r"refits \(\d+%\) were singular.*does not support"):
        res = power(effect_spec(), SMALL, nsim=60, test="wald", seed=4)
    assert res.table.loc["x", "n_singular"] > pw.SINGULAR_WARN_SHARE * 60


# ------------------------------------------------------------------ type-I error beside power


@pytest.mark.parametrize("test", ["wald", "satterthwaite", "lrt"])
def test_type1_column_is_the_same_test_with_the_effect_at_zero(test):
    """The null responses are y - x beta_x on the same draws, so the type-I column equals
    a run of the spec with x = 0 and the same seed (to the refits' tolerance)."""
    d = Design(10, 8, [Factor("x", ["a", "b"])])
    kw = {"nsim": 40, "seed": 7, "test": test, "effects": ["x"]}
    res = power(effect_spec(0.6), d, type1=True, **kw)
    null = power(effect_spec(0.0), d, **kw)
    np.testing.assert_allclose(res.p_null[:, 0], null.p[:, 0], rtol=1e-4, atol=1e-7)
    row, nrow = res.table.loc["x"], null.table.loc["x"]
    assert row["quantity"] == "power" and nrow["quantity"] == "type I error"
    assert row["type1_error"] == nrow["power"]
    assert (row["type1_ci_lower"], row["type1_ci_upper"]) == (nrow["ci_lower"], nrow["ci_upper"])
    # REML tests: the null fit is the fit itself (no refit); the LRT refits the reduced
    # model once per replicate
    assert row["type1_refits"] == (40 if test == "lrt" else 0)
    assert nrow["type1_refits"] == 0 and nrow["type1_error"] == nrow["power"]
    assert np.array_equal(res.estimates["p_null"].to_numpy(), res.p_null.ravel())


def test_type1_is_on_by_default_where_it_is_free():
    d = Design(10, 8, [Factor("x", ["a", "b"])])
    satt = power(effect_spec(), d, nsim=10, seed=1).table
    assert satt["type1_error"].notna().all() and (satt["type1_refits"] == 0).all()
    lrt = power(effect_spec(), d, nsim=10, seed=1, test="lrt").table
    assert lrt["type1_error"].isna().all() and lrt["type1_refits"].isna().all()
    off = power(effect_spec(), d, nsim=10, seed=1, type1=False).table
    assert off["type1_error"].isna().all()


def test_type1_above_the_monte_carlo_range_of_alpha_is_warned_about():
    # x between 4 subjects with a large subject SD: the t test has 2 df, the z test
    # ignores them and rejects true nulls far above 5% (t_2: 19%); the t test does not
    spec = ModelSpec(
        "y ~ 1 + x + (1 | subj) + (1 | item)",
        fixed={"(Intercept)": 0.0, "x": 2.0},
        random={"subj": {"sd": {"(Intercept)": 1.0}}, "item": {"sd": {"(Intercept)": 0.3}}},
        sigma=1.0,
    )
    d = Design(4, 10, [Factor("x", ["a", "b"], varies="between_subject")])
    kw = {"nsim": 150, "seed": 2, "effects": "x"}
    with pytest.warns(LmmWarning, match=r"rejects true null hypotheses too often.*x 0\.\d+"):
        res = power(spec, d, test="wald", **kw)
    assert res.table.loc["x", "type1_ci_lower"] > 0.05
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        satt = power(spec, d, test="satterthwaite", **kw)
    assert not [w for w in caught if "too often" in str(w.message)]
    assert satt.table.loc["x", "type1_ci_lower"] <= 0.05


def test_type1_survives_extend_and_interrupts():
    spec = effect_spec()

    def stop_after_20(done, total):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.warns(LmmWarning, match="Interrupted"):
        part = power(
            spec, SMALL, nsim=50, test="wald", seed=4, chunk_size=10, progress=stop_after_20
        )
    extended = part.extend(nsim=10, progress=None)
    whole = power(spec, SMALL, nsim=60, test="wald", seed=4)
    np.testing.assert_array_equal(extended.p_null, whole.p_null)
    assert extended.table["type1_error"].equals(whole.table["type1_error"])


def test_type1_warning_allows_for_the_number_of_effects():
    """A calibrated test exceeds the 97.5% point of Binomial(n, alpha) for some effect in
    1 - 0.975^k of runs; the limit is the 1 - 0.025/k point, so runs of many effects do
    not warn more often."""
    n = 1000
    one = 67  # rejections: above the 97.5% point (64), below the 1 - 0.025/8 point (70)
    assert stats.binom.ppf(0.975, n, 0.05) < one <= stats.binom.ppf(1 - 0.025 / 8, n, 0.05)

    def result(k: int) -> pw.PowerResult:
        p0 = np.full((n, k), 0.5)
        p0[:one, 0] = 0.01
        z = np.zeros((n, k))
        return pw.PowerResult(
            [f"e{i}" for i in range(k)],
            np.ones(k),
            np.arange(n),
            z,
            z,
            z,
            z,
            z,
            np.full(n, "ok"),
            "wald",
            0.05,
            p_null=p0,
        )

    with pytest.warns(LmmWarning, match="e0 0.067"):
        result(1)._warn_type1()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result(8)._warn_type1()
