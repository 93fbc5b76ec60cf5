"""The engine: compiled kernel vs numpy reference, and the elimination order."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmmcore
import lmmcore.engine as engine_mod
from lmmcore.engine import Engine
from lmmcore.simulate import child_seeds, draw_responses
from tests.lme4_fixtures import case_names, load_case


@pytest.mark.parametrize(
    "kernel", ["low-rank", "by-group", "by-level"], ids=["low-rank", "by-group", "by-level"]
)
@pytest.mark.parametrize("case", case_names())
def test_kernel_matches_numpy_reference(case, kernel):
    """Each compiled kernel (the low-rank one where the design allows it, else the
    by-group one) against the numpy reference on every fixture."""
    fx, df, con = load_case(case)
    s = lmmcore.build_structure(fx["formula"], df, contrasts=con)
    eng = Engine(s, group_levels=kernel != "by-level", low_rank=kernel == "low-rank")
    if kernel != "low-rank":
        assert eng.lowrank is None
    if kernel == "by-level":
        assert eng.groups is None
    rng = np.random.default_rng(1)
    Y = s.y[:, None] + rng.normal(0, s.y.std(), (s.n, 5))
    resp = eng.responses(Y)
    th = np.abs(np.array(fx["theta"]["values"]) + rng.normal(0, 0.2, (40, s.n_theta)))
    reps = np.repeat(np.arange(5), 8)
    ref = eng.parts(th, reps, resp)
    got = eng.kernel_parts(th, reps, resp)[:3]
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-8)


def test_balanced_designs_sum_by_group_and_unbalanced_by_level():
    """Levels with identical Z_l'Z_l share their factor: the balanced fixtures have one
    group. With 10% of the rows dropped, the 30 subjects of the crossed design fall in 10
    groups (the same counts per condition), still cheaper by group (the streamed
    products cost about half the per-level updates); with 30% dropped there are 20, and
    more than half as many groups as levels run by level."""
    for case in ["sleepstudy_slope", "sim_crossed_30x20", "penicillin"]:
        fx, df, con = load_case(case)
        eng = Engine(lmmcore.build_structure(fx["formula"], df, contrasts=con))
        assert eng.groups is not None and eng.groups.max() == 0, case
    fx, df, con = load_case("sim_crossed_30x20")
    rng = np.random.default_rng(1)
    some = df.drop(index=rng.choice(len(df), 60, replace=False))
    eng = Engine(lmmcore.build_structure(fx["formula"], some))
    assert eng.groups is not None and eng.groups.max() + 1 == 10
    more = df.drop(index=np.random.default_rng(1).choice(len(df), 180, replace=False))
    eng = Engine(lmmcore.build_structure(fx["formula"], more))
    assert np.unique(eng.D1.reshape(eng.L1, -1), axis=0).shape[0] == 20
    assert eng.groups is None


def test_sparse_crossed_design_sums_by_level():
    """200 subjects each see 40 of 400 items (in the same conditions, so one group per
    count): the dense by-group products would cost q2^2 = 160,000 per group against
    each subject's 40 columns, and the per-level kernel is kept."""
    rng = np.random.default_rng(3)
    rows = [(a, b) for a in range(200) for b in rng.choice(400, 40, replace=False)]
    df = pd.DataFrame(rows, columns=["subj", "item"])
    df["x"] = np.where(df.item % 2 == 0, -0.5, 0.5)
    df["y"] = rng.normal(size=len(df))
    df[["subj", "item"]] = df[["subj", "item"]].astype(str)
    eng = Engine(lmmcore.build_structure("y ~ x + (1 + x | subj) + (1 | item)", df))
    assert np.unique(eng.D1.reshape(eng.L1, -1), axis=0).shape[0] < eng.L1 / 2
    assert eng.groups is None


@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (1 + x | subj) + (1 + x | item)", "y ~ x + z + (1 + x + z | subj) + (1 | item)"],
)
def test_grouped_kernel_with_several_groups_and_vector_blocks(formula):
    """Two groups of levels (odd subjects see every item twice) and 2 x 2 or 3 x 3
    blocks: the grouped kernel equals the per-level one."""
    rng = np.random.default_rng(5)
    rows = [(s, i, c) for s in range(24) for i in range(12) for c in range(1 + (s % 2))]
    df = pd.DataFrame(rows, columns=["subj", "item", "rep"])
    df["x"] = np.where(df["item"] % 2 == 0, -0.5, 0.5)
    df["z"] = (df["item"] % 3).astype(float)
    df["y"] = rng.normal(size=len(df))
    s = lmmcore.build_structure(formula, df)
    grouped, plain = Engine(s), Engine(s, group_levels=False)
    assert grouped.blocks[0].name == "subj"
    assert grouped.groups is not None and grouped.groups.max() == 1
    Y = rng.normal(size=(s.n, 4))
    th = np.abs(rng.normal(0.5, 0.3, (30, s.n_theta)))
    reps = np.arange(30) % 4
    a = grouped.kernel_parts(th, reps, grouped.responses(Y))
    b = plain.kernel_parts(th, reps, plain.responses(Y))
    ref = plain.parts(th, reps, plain.responses(Y))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-8 * np.abs(y).max())
    for x, y in zip(a[:3], ref, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-8)


def test_elimination_order_does_not_change_the_fit(monkeypatch):
    """40 subjects (2 terms each) x 50 items: the engine eliminates subjects first,
    although lme4's order puts items first; estimates and BLUPs must not depend on it."""
    p = lmmcore.PRESETS["P1"]
    data = p.spec.simulate_data(p.design.with_size(subjects=40), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = lmmcore.fit(p.spec.formula, data)
        assert fast.engine.order == [1, 0]
        monkeypatch.setattr(engine_mod, "_elimination_order", lambda s: list(range(len(s.blocks))))
        plain = lmmcore.fit(p.spec.formula, data)
    assert plain.engine.order == [0, 1]
    assert fast.objective == pytest.approx(plain.objective, abs=1e-8)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-5, atol=1e-7)
    for g in plain.random_effects:
        np.testing.assert_allclose(
            fast.random_effects[g].to_numpy(),
            plain.random_effects[g].to_numpy(),
            rtol=1e-4,
            atol=1e-6 * np.abs(plain.random_effects[g].to_numpy()).max(),
        )
    np.testing.assert_allclose(fast.fittedvalues, plain.fittedvalues, rtol=1e-6)


FORMULAS = [
    "y ~ x + (1 + x | g1) + (1 | g2)",
    "y ~ x + (1 | g1) + (1 + x | g2)",
    "y ~ x * z + (1 + x + z | g1) + (1 | g2)",
    "y ~ x + (x || g1) + (1 | g2)",
    "y ~ x + (1 | g1) + (1 | g2) + (0 + x | g3)",
    "y ~ x + (1 | g1/g3)",
    "y ~ z + (1 + z | g1) + (1 + z | g2)",
]


@pytest.mark.parametrize("seed", range(14))
def test_kernels_agree_on_random_designs(seed):
    """Random crossed/nested designs, balanced or with rows missing, +-0.5 or continuous
    covariates: the by-group and per-level kernels equal the numpy reference."""
    rng = np.random.default_rng(seed)
    formula = FORMULAS[seed % len(FORMULAS)]
    n1, n2 = int(rng.integers(5, 25)), int(rng.integers(3, 12))
    df = pd.DataFrame([(a, b) for a in range(n1) for b in range(n2)], columns=["g1", "g2"])
    df["g3"] = rng.integers(0, 3, len(df))
    df["x"] = (
        np.where((df.g1 + df.g2) % 2 == 0, -0.5, 0.5) if seed % 2 else rng.normal(size=len(df))
    )
    df["z"] = (df.g2 % 3).astype(float)
    if seed % 3:
        df = df.drop(index=rng.choice(len(df), len(df) // (5 * (seed % 3)), replace=False))
    df["y"] = rng.normal(size=len(df)) + rng.normal(size=n1)[df.g1]
    df[["g1", "g2", "g3"]] = df[["g1", "g2", "g3"]].astype(str)
    s = lmmcore.build_structure(formula, df)
    grouped, plain = Engine(s), Engine(s, group_levels=False)
    Y = df[["y"]].to_numpy() + rng.normal(size=(len(df), 6))
    signs = np.where(s.theta_lower == 0, 1.0, np.sign(rng.normal(size=s.n_theta)))
    th = np.abs(rng.normal(0.6, 0.4, (24, s.n_theta))) * signs
    reps = np.arange(24) % 6
    ref = plain.parts(th, reps, plain.responses(Y))
    for eng in (grouped, plain):
        got = eng.kernel_parts(th, reps, eng.responses(Y))[:3]
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)


SPARSE_FORMULAS = [
    "y ~ x + (1 | g1) + (1 | g2)",
    "y ~ x + (1 + x | g1) + (1 | g2)",
    "y ~ x + (1 | g1) + (1 + x | g2) + (1 | g3)",
    "y ~ x * z + (1 + x + z | g1) + (1 + x | g2)",
    "y ~ x + (x || g1) + (1 | g2)",
]


def sparse_crossed(seed: int, formula: str):
    """Each level of g1 sees a random 5-40% of the levels of g2 (as InstEval's students
    rate a few of the lecturers), some pairs twice; g3 nests in g2."""
    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(20, 60)), int(rng.integers(15, 40))
    rows = []
    for a in range(n1):
        seen = rng.choice(n2, max(2, int(n2 * rng.uniform(0.05, 0.4))), replace=False)
        rows += [(a, b) for b in seen for _ in range(1 + int(rng.random() < 0.2))]
    df = pd.DataFrame(rows, columns=["g1", "g2"])
    df["g3"] = df["g2"].astype(str) + ":" + (df["g2"] % 3).astype(str)
    df["x"] = rng.normal(size=len(df)) if seed % 2 else np.where(df.g2 % 2 == 0, -0.5, 0.5)
    df["z"] = rng.normal(size=len(df))
    df["y"] = 100 + rng.normal(size=len(df)) + 2 * rng.normal(size=n1)[df.g1]
    df[["g1", "g2"]] = df[["g1", "g2"]].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmmcore.build_structure(formula, df), df


@pytest.mark.parametrize("seed", range(10))
def test_kernels_agree_on_sparse_crossed_designs(seed):
    """Sparse crossings (each g1 level meets a few g2 levels): the compiled kernel
    eliminates the first block over each level's own columns only (or, for a mostly full
    pattern, along whole rows); both must equal the numpy reference, which holds Z1'Z2
    densely."""
    rng = np.random.default_rng(100 + seed)
    s, df = sparse_crossed(seed, SPARSE_FORMULAS[seed % len(SPARSE_FORMULAS)])
    eng = Engine(s)
    density = np.diff(eng.ptr).mean() / max(eng.q2, 1)
    assert density < 0.6, density  # the pattern really is sparse
    Y = df[["y"]].to_numpy() + rng.normal(size=(len(df), 4))
    resp = eng.responses(Y)
    signs = np.where(s.theta_lower == 0, 1.0, np.sign(rng.normal(size=s.n_theta)))
    th = np.abs(rng.normal(0.6, 0.4, (16, s.n_theta))) * signs
    reps = np.arange(16) % 4
    ref = eng.parts(th, reps, resp)
    for dense_rows in (False, True):  # over each level's columns, or along whole rows
        eng._kernel_args["dense_rows"] = dense_rows
        got = eng.kernel_parts(th, reps, resp)[:3]
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 3, 6, 9])
def test_solution_matches_dense_algebra(seed):
    """beta, the BLUPs and X'V^-1X from the kernel's kept factor equal the dense
    textbook solution of the penalised least-squares problem (Bates et al. 2015, eq. 11)."""
    s, df = sparse_crossed(seed, SPARSE_FORMULAS[seed % len(SPARSE_FORMULAS)])
    eng = Engine(s)
    rng = np.random.default_rng(seed)
    theta = np.abs(rng.normal(0.7, 0.3, s.n_theta))
    sol = eng.solve(theta, 0, eng.responses(s.y))
    Lam = np.zeros((s.q, s.q))
    off = 0
    for b, lam in zip(s.blocks, s.lambdas(theta), strict=True):
        Lam[off : off + b.q, off : off + b.q] = np.kron(np.eye(b.nlevels), lam)
        off += b.q
    ZL = s.Z.toarray() @ Lam
    A = np.block([[ZL.T @ ZL + np.eye(s.q), ZL.T @ s.X], [s.X.T @ ZL, s.X.T @ s.X]])
    rhs = np.concatenate([ZL.T @ s.y, s.X.T @ s.y])
    x = np.linalg.solve(A, rhs)
    b, beta = x[: s.q], x[s.q :]
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.b, b, rtol=1e-7, atol=1e-9 * np.abs(b).max())
    np.testing.assert_allclose(sol.u, Lam @ b, rtol=1e-7, atol=1e-9 * np.abs(b).max())
    schur = A[s.q :, s.q :] - A[s.q :, : s.q] @ np.linalg.solve(A[: s.q, : s.q], A[: s.q, s.q :])
    np.testing.assert_allclose(sol.RXtRX, schur, rtol=1e-8, atol=1e-10 * np.abs(schur).max())
    r = s.y - s.X @ beta - ZL @ b
    assert sol.r2 == pytest.approx(r @ r + b @ b, rel=1e-9)


def test_responses_are_least_squares_residuals():
    """The engine works with y - X gamma (the criterion does not change); the reduced
    products it returns are those of y itself, and r^2 is computed accurately: a large
    mean (1e6) no longer cancels digits out of it."""
    fx, df, con = load_case("sim_crossed_30x20")
    s = lmmcore.build_structure(fx["formula"], df, contrasts=con)
    eng = Engine(s)
    th = np.array(fx["theta"]["values"])
    y = s.y - s.y.mean()
    plain = eng.responses(y)
    ld0, ldrx0, r20, MW0 = eng.kernel_parts(th[None], [0], plain)
    shifted = eng.responses(y + 1e6)
    ld1, ldrx1, r21, MW1 = eng.kernel_parts(th[None], [0], shifted)
    assert r21[0] == pytest.approx(r20[0], rel=1e-12)
    assert ld1[0] == pytest.approx(ld0[0], rel=1e-14) and ldrx1[0] == pytest.approx(ldrx0[0])
    beta0 = np.linalg.solve(MW0[0, :2, :2], MW0[0, :2, 2])
    beta1 = np.linalg.solve(MW1[0, :2, :2], MW1[0, :2, 2])
    np.testing.assert_allclose(beta1, beta0 + [1e6, 0.0], rtol=1e-12)
    np.testing.assert_allclose(shifted.gamma[0] - plain.gamma[0], [1e6, 0.0], atol=1e-6)
    assert shifted.yty[0] == pytest.approx(plain.yty[0], rel=1e-9)  # residuals' y'y


def test_too_big_a_dense_remainder_is_refused_up_front():
    """Two crossed factors of 15,000 levels each leave a dense 15,000 x 15,000 block after
    the first is eliminated (7 GiB over four arrays): a DataError names the size before
    anything dense is allocated."""
    rng = np.random.default_rng(0)
    n = 45_000
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 15_000, n).astype(str),
            "b": rng.integers(0, 15_000, n).astype(str),
            "y": rng.normal(size=n),
        }
    )
    s = lmmcore.build_structure("y ~ 1 + (1 | a) + (1 | b)", df)
    with pytest.raises(lmmcore.DataError, match=r"dense 1\d,\d{3} x 1\d,\d{3} block.*GiB"):
        Engine(s)


@pytest.mark.parametrize(("name", "groups"), [("P1", 1), ("P1b", 1), ("P3", 2), ("P2", 4)])
def test_low_rank_kernel_on_balanced_presets(name, groups):
    """In the presets every subject sees the items in one of a few arrangements (P3: two
    age groups, whose item slopes on age differ), so the dense remainder is a block
    diagonal matrix less one of rank groups x k1, never formed. The low-rank kernel
    equals the dense by-group kernel, the per-level one and the numpy reference, at the
    truth, near it, with every variance at zero and with theta scaled by 1e-3 to 100."""
    p = lmmcore.PRESETS[name]
    s = p.spec.structure(p.design.conditions(1))
    low, dense, plain = Engine(s), Engine(s, low_rank=False), Engine(s, group_levels=False)
    assert low.lowrank is not None and low.lowrank.max() + 1 == groups
    assert dense.lowrank is None and dense.groups is not None
    rng = np.random.default_rng(2)
    theta = p.spec.theta_for(s)
    seeds = child_seeds(np.random.SeedSequence(4), 0, 4)
    Y = draw_responses(s, p.spec.beta_for(s), theta, p.spec.sigma, seeds)
    th = np.abs(theta + rng.normal(0, 0.2, (12, theta.size)))
    th[0] = theta
    th[1, s.theta_lower == 0] = 0.0
    th = np.vstack([th, theta * np.array([1e-3, 0.1, 10.0, 100.0])[:, None]])
    reps = np.arange(th.shape[0]) % 4
    got = low.kernel_parts(th, reps, low.responses(Y))
    assert np.all(np.isfinite(got[0]))
    # the numpy reference (explicit inverses) only near the truth
    ref = plain.parts(th[:12], reps[:12], plain.responses(Y))
    for other in (
        dense.kernel_parts(th, reps, dense.responses(Y)),
        plain.kernel_parts(th, reps, plain.responses(Y)),
    ):
        for a, b in zip(got, other, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9 * np.abs(b).max())
    for a, b in zip(got[:3], ref, strict=True):
        np.testing.assert_allclose(a[:12], b, rtol=1e-10, atol=1e-8)


def test_low_rank_kernel_needs_few_arrangements_and_one_other_term():
    """P4 (every subject's own items) has as many arrangements as levels, and a third
    crossed factor makes the remainder more than one term: both keep the dense kernel."""
    p = lmmcore.PRESETS["P4"]
    assert Engine(p.spec.structure(p.design.conditions(1))).lowrank is None
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        [(a, b, c) for a in range(12) for b in range(6) for c in range(3)],
        columns=["g1", "g2", "g3"],
    )
    df["y"] = rng.normal(size=len(df))
    df[["g1", "g2", "g3"]] = df[["g1", "g2", "g3"]].astype(str)
    s = lmmcore.build_structure("y ~ 1 + (1 | g1) + (1 | g2) + (1 | g3)", df)
    eng = Engine(s)
    assert len(eng.rest) == 2 and eng.groups is not None and eng.lowrank is None
    s2 = lmmcore.build_structure("y ~ 1 + (1 | g1) + (1 | g2)", df)
    assert Engine(s2).lowrank is not None
