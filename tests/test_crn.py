"""Tests of common random numbers across design points (lmmcore.crn, power_curve)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lmmcore import PRESETS, Design, Factor, ModelSpec
from lmmcore.crn import item_map, subject_map
from lmmcore.errors import PowerError
from lmmcore.power import _make_problem, _seeds, power, power_curve
from lmmcore.simulate import child_seeds, draw_responses

pytestmark = pytest.mark.filterwarnings("ignore::lmmcore.errors.LmmWarning")


def small_spec() -> ModelSpec:
    return ModelSpec(
        "y ~ 1 + x + (1 + x | subj) + (1 | item)",
        fixed={"(Intercept)": 1.0, "x": 0.5},
        random={
            "subj": {"sd": {"(Intercept)": 0.6, "x": 0.4}, "corr": [[1, 0.3], [0.3, 1]]},
            "item": {"sd": {"(Intercept)": 0.4}},
        },
        sigma=1.0,
    )


def test_subject_and_item_maps_take_the_first_units_of_each_group():
    d = Design(
        12,
        8,
        [
            Factor("g", ["a", "b", "c"], "between_subject"),
            Factor("h", ["p", "q"], "within_subject"),
        ],
    )
    assert subject_map(d.with_size(subjects=6), d).tolist() == [0, 1, 4, 5, 8, 9]
    assert item_map(d.with_size(items=4), d).tolist() == [0, 1, 4, 5]
    nested = Design(
        nested=[("school", 3), ("class", 4), ("pupil", 2)],
        factors=[Factor("t", ["c", "d"], "between_subject", at="class")],
    )
    small = nested.with_size(nested={"class": 2, "pupil": 1})
    # school s, class k (first of each t group), pupil 0 -> s * 8 + k * 2
    assert subject_map(small, nested).tolist() == [0, 4, 8, 12, 16, 20]


@pytest.mark.parametrize(
    "case",
    ["P3 (between-subject groups)", "P2 (counterbalanced)", "missing rows", "nested, trials"],
)
def test_a_smaller_design_reads_the_larger_designs_responses(case):
    """Where the design columns agree, the smaller design's response is exactly the
    larger design's response of the same observation."""
    if case.startswith("P3"):
        spec, big = PRESETS["P3"].spec, PRESETS["P3"].design
        small = big.with_size(subjects=16, items=24)
    elif case.startswith("P2"):
        spec, big = PRESETS["P2"].spec, PRESETS["P2"].design
        small = big.with_size(subjects=24, items=16)
    elif case == "missing rows":
        spec = small_spec()
        big = Design(10, 8, [Factor("x", ["a", "b"])], missing=0.2)
        small = big.with_size(subjects=6, items=4)
    else:
        spec = ModelSpec(
            "y ~ t + (1 | school) + (1 | class)",
            {"(Intercept)": 0.0, "t": 1.0},
            {"school": {"sd": {"(Intercept)": 1.0}}, "class": {"sd": {"(Intercept)": 0.7}}},
            1.0,
        )
        big = Design(
            nested=[("school", 4), ("class", 4), ("pupil", 3)],
            factors=[Factor("t", ["c", "d"], "between_subject", at="class")],
            trials=3,
        )
        small = big.with_size(nested={"class": 2, "pupil": 2}, trials=2)
    _, design_seed = _seeds(5)
    pr, _, _ = _make_problem(spec, small, "wald", 0.05, None, None, design_seed, False, big)
    seeds = child_seeds(np.random.SeedSequence(1), 0, 4)
    Y = draw_responses(pr.sim, pr.beta, pr.theta, pr.sigma, seeds, shared=pr.shared)
    full = dataclasses.replace(big, missing=0.0)
    whole, _, _ = _make_problem(spec, full, "wald", 0.05, None, None, design_seed)
    Yb = draw_responses(whole.sim, whole.beta, whole.theta, whole.sigma, seeds)
    rows = pr.shared.rows
    assert len(np.unique(rows)) == len(rows) == pr.sim.n
    same_row = np.all(pr.sim.X == whole.sim.X[rows], axis=1)
    assert same_row.mean() > 0.99  # all, but where a Latin square list moved
    np.testing.assert_allclose(Y[same_row], Yb[rows][same_row], rtol=1e-12, atol=1e-12)


def test_the_largest_point_is_the_plain_simulation():
    spec, d = small_spec(), Design(10, 8, [Factor("x", ["a", "b"])])
    a = power(spec, d, nsim=20, test="wald", seed=3)
    b = power(spec, d, nsim=20, test="wald", seed=3, draws_from=d)
    np.testing.assert_array_equal(a.est, b.est)
    np.testing.assert_array_equal(a.p, b.p)


def test_common_draws_cut_the_variance_of_differences_between_points():
    """P1 (20 items) at 60 and 100 subjects: the decisions of the two points differ in
    few replicates with common draws (Var of the power difference is the discordance
    rate / nsim) and in about half without."""
    p1 = PRESETS["P1"]
    big = p1.design.with_size(items=20)
    small = big.with_size(subjects=60)
    out = {}
    for shared in (True, False):
        kw = {"nsim": 200, "seed": 2, "test": "wald", "effects": "X_i"}
        draws = big if shared else None
        r100 = power(p1.spec, big, draws_from=draws, **kw)
        r60 = power(p1.spec, small, draws_from=draws, **kw)
        disc = np.mean((r100.p[:, 0] < 0.05) != (r60.p[:, 0] < 0.05))
        corr = np.corrcoef(r100.est[:, 0], r60.est[:, 0])[0, 1]
        out[shared] = (disc, corr)
    assert out[False][0] >= 3 * out[True][0], out
    # nested means: corr = sqrt(Var(100) / Var(60)), about 0.97
    assert out[True][1] > 0.95 and abs(out[False][1]) < 0.3, out


def test_conditional_estimates_with_common_draws_cut_it_tenfold():
    """The same two points: the SD of one replicate's contribution to power(100) -
    power(60) (that of the difference over seeds times sqrt(nsim)) from the conditional
    rejection probabilities with common draws, against the independent 0/1 decisions of
    the former curves: at least 10x smaller (`benchmarks/crn.py` measures it over seeds)."""
    p1 = PRESETS["P1"]
    big = p1.design.with_size(items=20)
    small = big.with_size(subjects=60)
    kw = {"nsim": 200, "seed": 2, "test": "satterthwaite", "effects": "X_i"}
    shared = [power(p1.spec, d, draws_from=big, **kw) for d in (big, small)]
    alone = [power(p1.spec, d, **kw) for d in (big, small)]
    sd_cmc = np.std(shared[0].rej[:, 0] - shared[1].rej[:, 0], ddof=1)
    sd_alone = np.std((alone[0].p[:, 0] < 0.05) * 1.0 - (alone[1].p[:, 0] < 0.05), ddof=1)
    assert sd_alone >= 10 * sd_cmc, (sd_alone, sd_cmc)
    # both estimate the same power at each point
    for r in shared:
        t = r.table.loc["X_i"]
        assert abs(t["power"] - t["power_cmc"]) < 4 * t["mcse"]


def test_curves_are_the_same_on_every_backend_and_chunking():
    spec = small_spec()
    d = Design(8, 6, [Factor("x", ["a", "b"])], missing=0.1)
    kw = {"nsim": 24, "test": "wald", "seed": 4, "effects": ["x"]}
    vary = {"subjects": [4, 8], "items": [4, 6]}
    local = power_curve(spec, d, vary, **kw)
    procs = power_curve(spec, d, vary, n_jobs=2, chunk_size=5, **kw)
    pd.testing.assert_frame_equal(local, procs)
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        viadask = power_curve(spec, d, vary, backend=client, chunk_size=7, **kw)
    pd.testing.assert_frame_equal(local, viadask)
    again = power_curve(spec, d, vary, **kw)
    pd.testing.assert_frame_equal(local, again)
    # a point is power() of that design with the largest design's draws
    point = power(spec, d.with_size(subjects=4, items=6), draws_from=d, **kw).table
    assert local.iloc[1]["power_rejections"] == point.loc["x", "power"]
    assert local.iloc[1]["power"] == point.loc["x", "power_cmc"]
    assert local.iloc[1]["mean_estimate"] == point.loc["x", "mean_estimate"]
    independent = power_curve(spec, d, vary, common_draws=False, **kw)
    assert not np.allclose(local["mean_estimate"], independent["mean_estimate"])


def test_effect_values_share_every_draw():
    spec, d = small_spec(), Design(8, 6, [Factor("x", ["a", "b"])])
    curve = power_curve(spec, d, {"effect:x": [0.0, 0.5, 1.0]}, nsim=30, seed=1, effects="x")
    assert curve["effect:x"].tolist() == [0.0, 0.5, 1.0]
    assert curve["true_value"].tolist() == [0.0, 0.5, 1.0]
    assert curve["quantity"].tolist() == ["type I error", "power", "power"]
    # same random effects and residuals: the estimates move exactly with the true value
    np.testing.assert_allclose(np.diff(curve["mean_estimate"]), 0.5, atol=1e-6)
    np.testing.assert_allclose(curve["bias"], curve["bias"].iloc[0], atol=1e-6)
    assert curve["power"].is_monotonic_increasing
    # the type-I column is the same test at 0 on the same draws, whatever the value
    np.testing.assert_allclose(curve["type1_error"], curve["power_rejections"].iloc[0])
    np.testing.assert_allclose(curve["type1_cmc"], curve["power"].iloc[0], atol=1e-6)


def test_bad_draws_from_is_refused():
    spec = small_spec()
    d = Design(8, 6, [Factor("x", ["a", "b"])])
    with pytest.raises(PowerError, match="at least as many"):
        power(spec, d, nsim=2, draws_from=d.with_size(subjects=4))
    with pytest.raises(PowerError, match="same design"):
        power(spec, d, nsim=2, draws_from=Design(8, 6, [Factor("x", ["a", "c"])]))
    with pytest.raises(PowerError, match="Designs"):
        power(spec, d.conditions(), nsim=2, draws_from=d)
