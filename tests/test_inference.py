"""Kenward-Roger and Satterthwaite against pbkrtest / lmerTest values in the lme4 fixtures.

The fitter is not used: X and the random-effect blocks are rebuilt from the CSVs, and the
variance parameters are taken from the fixtures' default (top-level) estimates, at which
R computed its KR and Satterthwaite results.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from lmmcore.errors import ConvergenceWarning, DataError, SpecError
from lmmcore.inference import (
    KRDesign,
    kenward_roger,
    numerical_hessian,
    numerical_jacobian,
    satterthwaite,
    satterthwaite_setup,
)
from tests.lme4_fixtures import FIXTURES

FIX = FIXTURES
if not (FIX / "manifest.json").exists():  # pragma: no cover
    if os.environ.get("CI"):
        raise RuntimeError(f"lme4 fixtures not found at {FIX}")
    pytest.skip("lme4 fixtures not available", allow_module_level=True)

MANIFEST = json.loads((FIX / "manifest.json").read_text())["cases"]
CASES = [c["case"] for c in MANIFEST]


@cache
def load(case: str, fit: str = "reml") -> tuple[dict, pd.DataFrame]:
    entry = next(c for c in MANIFEST if c["case"] == case)
    fx = json.loads((FIX / entry["files"][fit]).read_text())
    facs = fx["data"]["factors"]
    df = pd.read_csv(FIX / fx["data"]["csv"], dtype={c: str for c in facs})
    for c, spec in facs.items():
        df[c] = pd.Categorical(df[c], categories=spec["levels"], ordered=spec["ordered"])
    return fx, df


def column(fx: dict, df: pd.DataFrame, name: str) -> np.ndarray:
    """A model-matrix column named as R names it (``(Intercept)``, ``Days``,
    ``recipeB:temperature.L``, ``condincongruent``...)."""
    if name == "(Intercept)":
        return np.ones(len(df))
    out = np.ones(len(df))
    facs = fx["data"]["factors"]
    for part in name.split(":"):
        if part in fx["data"]["numeric"]:
            out = out * df[part].to_numpy(float)
            continue
        for c, spec in facs.items():
            suffixes = spec["contrast_colnames"] or []
            if part.startswith(c) and part[len(c) :] in suffixes:
                j = suffixes.index(part[len(c) :])
                cm = np.asarray(spec["contrast_matrix"], float)
                out = out * cm[df[c].cat.codes.to_numpy().astype(np.int64), j]
                break
        else:  # pragma: no cover - a fixture this helper does not understand
            raise AssertionError(f"cannot build column {name!r}")
    return out


def design(case: str, fit: str = "reml"):
    """X, blocks, covs, sigma and theta (per the fixture's varcorr block order)."""
    fx, df = load(case, fit)
    X = np.column_stack([column(fx, df, nm) for nm in fx["fixef_names"]])
    blocks, covs = [], []
    for vc in fx["varcorr"]:
        # interaction groups (``cask:batch``): any coding of the level combinations works
        key = df[vc["group"].split(":")].astype(str).agg(":".join, axis=1)
        codes = pd.factorize(key)[0].astype(np.int64)
        T = np.column_stack([column(fx, df, t) for t in vc["terms"]])
        assert codes.max() + 1 == vc["nlevels"]
        blocks.append((codes, T))
        covs.append(np.asarray(vc["cov"], float))
    y_name = fx["formula"].split("~")[0].strip()
    y = df[y_name].to_numpy(float)
    return fx, X, blocks, covs, float(fx["sigma"]), np.asarray(fx["theta"]["values"], float), y


def relerr(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def vcov_relerr(V, ref) -> float:
    """Elementwise error relative to sqrt(V_ii V_jj): exact zeros off the diagonal (cake's
    orthogonal contrasts, ~1e-16 in R) make plain relative errors meaningless."""
    V, ref = np.asarray(V, float), np.asarray(ref, float)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    return float(np.max(np.abs(V - ref) / scale))


def is_term_column(fx: dict, term: str, name: str) -> bool:
    """Is model-matrix column ``name`` (``recipeB:temperature.L``) one of ``term``'s
    (``recipe:temperature``)?"""
    facs = fx["data"]["factors"]
    parts, nparts = term.split(":"), name.split(":")
    if len(nparts) != len(parts):
        return False
    for a, b in zip(parts, nparts, strict=True):
        suff = facs.get(a, {}).get("contrast_colnames") or []
        if b != a and not (b.startswith(a) and b[len(a) :] in suff):
            return False
    return True


def type3_contrasts(fx: dict) -> dict[str, np.ndarray]:
    """lmerTest's type-III hypotheses for the fixture models, as row spaces (F tests are
    invariant to the basis).  With sum-to-zero (poly/sum) coding of the other factor or a
    single term these are the term's own columns; for cake's ``temperature`` (recipe in
    treatment coding) the temperature effect is averaged over the 3 recipes."""
    names = fx["fixef_names"]
    p = len(names)
    out = {}
    for term in fx["satterthwaite"]["anova_type3"]:
        if fx["case"] == "cake" and term == "temperature":
            rows = []
            for s in [".L", ".Q", ".C", "^4", "^5"]:
                r = np.zeros(p)
                r[names.index(f"temperature{s}")] = 1
                r[names.index(f"recipeB:temperature{s}")] = 1 / 3
                r[names.index(f"recipeC:temperature{s}")] = 1 / 3
                rows.append(r)
            out[term] = np.array(rows)
            continue
        idx = [i for i, nm in enumerate(names) if is_term_column(fx, term, nm)]
        assert idx, term
        out[term] = np.eye(p)[idx]
    return out


KR_CASES = [c for c in CASES if load(c)[0]["kenward_roger"] is not None]

# pbkrtest evaluates the same closed-form expressions (dense n x n algebra) as we do (in
# the q-dimensional random-effects space); the only differences are floating-point
# rounding: observed <= 1e-12 relative on every case.  1e-9 leaves room for other BLAS.
KR_RTOL = 1e-9


@pytest.mark.parametrize("case", KR_CASES)
def test_kenward_roger_matches_pbkrtest(case: str) -> None:
    fx, X, blocks, covs, sigma, _, _ = design(case)
    kr = kenward_roger(X, blocks, covs, sigma**2)
    ref = fx["kenward_roger"]
    # unadjusted vcov equals lme4's (it is computed, not taken from the fixture)
    assert vcov_relerr(kr.vcov, fx["vcov"]["matrix"]) < 1e-7
    assert ref["vcov_adjusted"]["names"] == fx["fixef_names"]
    assert vcov_relerr(kr.vcov_adjusted, ref["vcov_adjusted"]["matrix"]) < KR_RTOL
    beta = np.array([fx["fixef"][nm] for nm in fx["fixef_names"]])
    df_all = kr.coef_df()
    for i, nm in enumerate(fx["fixef_names"]):
        rc = ref["coef"][nm]
        t = kr.ttest(np.eye(len(beta))[i], beta)
        assert t.se == pytest.approx(rc["se"], rel=KR_RTOL)
        assert t.df == pytest.approx(rc["df"], rel=KR_RTOL)
        assert df_all[i] == pytest.approx(rc["df"], rel=KR_RTOL)
        assert t.t == pytest.approx(rc["t"], rel=KR_RTOL)
        assert t.p_value == pytest.approx(rc["p"], rel=1e-5)
    hyp = type3_contrasts(fx)
    assert set(hyp) == set(ref["anova_type3"])
    for term, L in hyp.items():
        ra = ref["anova_type3"][term]
        ft = kr.ftest(L, beta)
        assert ft.ndf == ra["num_df"]
        assert ft.ddf == pytest.approx(ra["den_df"], rel=KR_RTOL)
        # lmerTest builds cake's type-III hypotheses through zapsmall() (7 digits): its F
        # differs from the F of the exact hypothesis by 1e-7 relative (ddf are unaffected)
        assert ft.F == pytest.approx(ra["F"], rel=1e-6)
        assert ft.f_unscaled * sigma**2 == pytest.approx(ra["mean_sq"], rel=1e-6)
        assert ft.p_value == pytest.approx(ra["p"], rel=1e-5)


def _synthetic(drop_every: int = 11):
    """Deterministic unbalanced data (no RNG, so that R can rebuild it exactly)."""
    i = np.arange(240)
    i = i[i % drop_every != 3]
    return i, i % 12, (i * 7) % 9, np.sin(i), np.cos(0.37 * i)


def test_kr_three_term_block_matches_pbkrtest() -> None:
    """A 3x3 block (ordering of the 6 components) plus a crossed intercept, unbalanced.

    Reference values from R 4.2.2 / lme4 1.1-31 / pbkrtest 0.5.2::

        i <- 0:239; i <- i[(i %% 11) != 3]; fr <- function(v) v - floor(v)
        d <- data.frame(g = factor(i %% 12), h = factor((i * 7) %% 9),
                        x = sin(i), z = cos(0.37 * i))
        u1 <- fr(sin(i * 12.9898) * 43758.5453) - 0.5
        u2 <- fr(sin(i * 78.233) * 12345.678) - 0.5
        gi <- i %% 12; hi <- (i * 7) %% 9
        d$y <- 1 + 0.5*d$x - 0.3*d$z + sin(gi) * (1 + 0.8*d$x + 0.5*d$z) +
               0.7*cos(hi) + 2*u1 + u2
        m <- lmer(y ~ x + z + (1 + x + z | g) + (1 | h), data = d)   # singular fit
        vcovAdj(m); Lb_ddf(diag(3)[k, ], vcov(m), vcovAdj(m))
        KRmodcomp(m, diag(3)[2:3, ])
    """
    _, g, h, x, z = _synthetic()
    n = len(g)
    X = np.column_stack([np.ones(n), x, z])
    cov_g = np.array(
        [
            [0.48443074642384748, 0.46971970711502381, 0.23992923006182082],
            [0.46971970711502381, 0.48382106392255231, 0.21615572870800903],
            [0.23992923006182082, 0.21615572870800903, 0.12841556126308773],
        ]
    )
    kr = kenward_roger(
        X, [(g, X), (h, np.ones((n, 1)))], [cov_g, [[0.21098465794823601]]], 0.6328600696139528**2
    )
    Va = np.array(
        [
            [0.06569841370879663, 0.03916937198075756, 0.019971120938607253],
            [0.039169371980757685, 0.044182519051711472, 0.018016851742439128],
            [0.019971120938607288, 0.018016851742439114, 0.014378419438959848],
        ]
    )
    assert vcov_relerr(kr.vcov_adjusted, Va) < KR_RTOL
    np.testing.assert_allclose(
        kr.coef_df(), [17.085496464110857, 10.995061269651462, 10.917285509273309], rtol=KR_RTOL
    )
    beta = [1.1337869888059493, 0.49149988472885092, -0.31323609905456479]
    f = kr.ftest(np.eye(3)[1:], beta)
    assert f.ddf == pytest.approx(9.9086132305627963, rel=KR_RTOL)
    assert f.F == pytest.approx(19.526082767541276, rel=KR_RTOL)
    assert f.f_scaling == pytest.approx(0.90837042870345974, rel=KR_RTOL)
    assert f.p_value == pytest.approx(0.00036519639997214799, rel=1e-8)


def test_kr_unidentifiable_components_use_generalised_inverse() -> None:
    """Two intercept terms on the same grouping factor: the information is singular
    (pbkrtest's ``condi`` 1.5e-14) and pbkrtest switches to MASS::ginv.

    R: same ``i``, ``u1`` as above; ``d <- data.frame(g = factor(i %% 12), x = sin(i));
    d$g2 <- d$g; d$y <- 1 + 0.5*d$x + sin(i %% 12) + 2*u1;
    m <- lmer(y ~ x + (1 | g) + (1 | g2), d)``.
    """
    _, g, _, x, _ = _synthetic()
    n = len(g)
    X = np.column_stack([np.ones(n), x])
    one = np.ones((n, 1))
    v1, v2, sigma = 8.1830963265701437e-05, 0.42573078397031294, 0.58472243655507006
    kr = kenward_roger(X, [(g, one), (g, one)], [[[v1]], [[v2]]], sigma**2)
    assert kr.condition < 1e-10
    Va = [
        [0.037053446298879647, 1.7078155402123432e-05],
        [1.707815540212348e-05, 0.0032150919865616798],
    ]
    assert vcov_relerr(kr.vcov_adjusted, Va) < KR_RTOL
    np.testing.assert_allclose(kr.coef_df(), [10.998335875334547, 205.34768783110863], rtol=KR_RTOL)


def test_kr_design_reuse_and_parameter_layout() -> None:
    _, X, blocks, covs, sigma, _, _ = design("sim_crossed_30x20")
    d = KRDesign.from_blocks(X, blocks)
    # blocks: subj (k=2: 3 components), item (k=1: 1), residual
    assert d.n_params == 5
    a = d.kenward_roger(covs, sigma**2)
    b = kenward_roger(X, blocks, covs, sigma**2)
    np.testing.assert_allclose(a.vcov_adjusted, b.vcov_adjusted, rtol=1e-13)
    assert a.param_index == ((0, 0, 0), (0, 1, 0), (0, 1, 1), (1, 0, 0), (-1, 0, 0))
    # changing covs changes the result (no stale cache)
    c = d.kenward_roger([2 * covs[0], covs[1]], sigma**2)
    assert not np.allclose(c.vcov_adjusted, a.vcov_adjusted)


def test_kr_balanced_one_way_is_exact() -> None:
    # balanced one-way random intercept: the KR df of the mean is exactly groups - 1 and
    # no adjustment is needed (Kenward & Roger 1997)
    g = np.repeat(np.arange(7), 4)
    X = np.ones((28, 1))
    kr = kenward_roger(X, [(g, np.ones((28, 1)))], [np.array([[3.0]])], 2.0)
    assert kr.ttest([1.0]).df == pytest.approx(6.0, rel=1e-10)
    assert kr.vcov_adjusted[0, 0] == pytest.approx((3.0 + 2.0 / 4) / 7, rel=1e-10)
    f = kr.ftest([[1.0]], beta=[1.0])
    assert f.f_scaling == pytest.approx(1.0, rel=1e-10)
    assert f.F == pytest.approx(1.0 / kr.vcov_adjusted[0, 0], rel=1e-10)


def test_kr_rank_deficient_contrast_reduced() -> None:
    _, X, blocks, covs, sigma, _, _ = design("cake")
    kr = kenward_roger(X, blocks, covs, sigma**2)
    L = np.eye(X.shape[1])[[1, 2]]
    L3 = np.vstack([L, L[0] + L[1]])  # same row space, rank 2
    beta = np.linspace(0.1, 1.0, X.shape[1])
    a, b = kr.ftest(L, beta), kr.ftest(L3, beta)
    assert b.ndf == 2
    assert b.ddf == pytest.approx(a.ddf, rel=1e-9)
    assert b.F == pytest.approx(a.F, rel=1e-9)
    with pytest.raises(SpecError):
        kr.ftest(L3, beta, rhs=[1.0, 0.0, 0.0])


def test_kr_input_errors() -> None:
    g = np.repeat(np.arange(3), 2)
    X = np.ones((6, 1))
    blk = [(g, np.ones((6, 1)))]
    with pytest.raises(SpecError):
        kenward_roger(X, blk, [np.eye(2)], 1.0)
    with pytest.raises(SpecError):
        kenward_roger(X, blk, [np.eye(1)], 0.0)
    with pytest.raises(SpecError):
        kenward_roger(X, [], [], 1.0)
    with pytest.raises(SpecError):
        kenward_roger(X, [(g.astype(float), np.ones((6, 1)))], [np.eye(1)], 1.0)
    with pytest.raises(DataError):
        kenward_roger(np.ones((6, 2)), blk, [np.eye(1)], 1.0)
    kr = kenward_roger(X, blk, [np.eye(1)], 1.0)
    with pytest.raises(SpecError):
        kr.ttest([1.0, 0.0])
    with pytest.raises(SpecError):
        kr.ttest([[1.0], [1.0]])


# --------------------------------------------------------------------------------------
# Satterthwaite, with a small reference deviance (lme4's PLS formulation, dense algebra)
# --------------------------------------------------------------------------------------


def reference_model(case: str, fit: str):
    """Deviance (REML criterion or ML deviance) and vcov(beta) as functions of
    ``(theta..., sigma)``: beta profiled, sigma not (lmerTest's ``devfun_vp``)."""
    fx, X, blocks, _, sigma, theta, y = design(case, fit)
    n, p = X.shape
    Zs, lam_idx = [], []
    for codes, T in blocks:
        L, k = int(codes.max()) + 1, T.shape[1]
        Zb = np.zeros((n, L * k))
        for j in range(k):
            Zb[np.arange(n), codes * k + j] = T[:, j]
        Zs.append(Zb)
        lam_idx.append((L, k))
    Z = np.hstack(Zs)
    ZtZ, ZtX, Zty, XtX, Xty, yty = Z.T @ Z, Z.T @ X, Z.T @ y, X.T @ X, X.T @ y, y @ y
    reml = fit == "reml"

    def lam(th: np.ndarray) -> np.ndarray:
        parts, pos = [], 0
        for L, k in lam_idx:
            Lb = np.zeros((k, k))
            for c in range(k):  # lower triangle, column by column
                Lb[c:, c] = th[pos : pos + k - c]
                pos += k - c
            parts.append(np.kron(np.eye(L), Lb))
        return sla.block_diag(*parts)

    def pieces(vp: np.ndarray):
        Lam = lam(vp[:-1])
        LtZtZL = Lam.T @ ZtZ @ Lam
        Lc = np.linalg.cholesky(LtZtZL + np.eye(len(Lam)))
        RZX = sla.solve_triangular(Lc, Lam.T @ ZtX, lower=True)
        cu = sla.solve_triangular(Lc, Lam.T @ Zty, lower=True)
        RXtRX = XtX - RZX.T @ RZX
        beta = np.linalg.solve(RXtRX, Xty - RZX.T @ cu)
        # pwrss = ||y - X b - Z Lam u||^2 + ||u||^2 at the conditional modes
        pwrss = yty - 2 * beta @ Xty + beta @ XtX @ beta - np.sum((cu - RZX @ beta) ** 2)
        ldL2 = 2 * np.sum(np.log(np.diag(Lc)))
        return ldL2, pwrss, RXtRX

    def dev(vp: np.ndarray) -> float:
        s2 = vp[-1] ** 2
        ldL2, pwrss, RXtRX = pieces(vp)
        d = ldL2 + pwrss / s2 + n * np.log(2 * np.pi * s2)
        if reml:
            d += np.linalg.slogdet(RXtRX)[1] - p * np.log(2 * np.pi * s2)
        return float(d)

    def vcov(vp: np.ndarray) -> np.ndarray:
        return vp[-1] ** 2 * np.linalg.inv(pieces(vp)[2])

    return fx, dev, vcov, np.append(theta, sigma)


# lmerTest's numbers come from numDeriv on lme4's deviance; ours from the same Richardson
# scheme (same steps) on an algebraically identical deviance.  Differences are rounding
# amplified by finite differencing: observed <= 2e-7 relative (pastes, sim_large); 1e-5
# leaves a margin for another BLAS while staying well inside the 1e-3 that is realistic
# for a real fitter's slightly different optimum.
SATT_RTOL = 1e-5
SATT_PARAMS = [
    pytest.param(c, f, marks=[pytest.mark.slow] if c == "sim_large_60x40" else [])
    for c in CASES
    for f in ("reml", "ml")
]  # sim_large (n = 4800, 7 variance parameters): ~4 s each for the reference deviance


@pytest.mark.parametrize(("case", "fit"), SATT_PARAMS)
def test_satterthwaite_matches_lmertest(case: str, fit: str) -> None:
    fx, dev, vcov, vp = reference_model(case, fit)
    # the reference deviance reproduces lme4's criterion at the estimates
    assert dev(vp) == pytest.approx(fx["objective"], abs=1e-6)
    info = satterthwaite_setup(dev, vcov, vp)
    assert info.messages == ()
    beta = np.array([fx["fixef"][nm] for nm in fx["fixef_names"]])
    ref = fx["satterthwaite"]
    p = len(beta)
    for i, nm in enumerate(fx["fixef_names"]):
        t = info.ttest(np.eye(p)[i], beta)
        assert t.df == pytest.approx(ref["coef"][nm]["df"], rel=SATT_RTOL)
        assert t.se == pytest.approx(ref["coef"][nm]["se"], rel=1e-7)
    np.testing.assert_allclose(
        info.coef_df(), [ref["coef"][n]["df"] for n in fx["fixef_names"]], rtol=SATT_RTOL
    )
    for term, L in type3_contrasts(fx).items():
        ra = ref["anova_type3"][term]
        ft = info.ftest(L, beta)
        assert ft.ndf == ra["num_df"]
        assert ft.ddf == pytest.approx(ra["den_df"], rel=SATT_RTOL)
        # cake: zapsmall()ed hypotheses in lmerTest, see the KR test
        assert ft.F == pytest.approx(ra["F"], rel=1e-6)


def test_satterthwaite_generic_function() -> None:
    fx, dev, vcov, vp = reference_model("sleepstudy_slope", "reml")
    var, df = satterthwaite(dev, vcov, vp, [0.0, 1.0])
    ref = fx["satterthwaite"]["coef"]["Days"]
    assert var == pytest.approx(ref["se"] ** 2, rel=1e-8)
    assert df == pytest.approx(ref["df"], rel=SATT_RTOL)
    ft = satterthwaite(dev, vcov, vp, np.eye(2))
    assert ft.ndf == 2 and 16 < ft.ddf < 18


def test_satterthwaite_hessian_not_positive_definite_warns_like_lmertest() -> None:
    # a deviance with a saddle in the first parameter and a flat second one: lmerTest
    # warns for the negative and the zero eigenvalue and inverts only the positive part
    def dev(vp: np.ndarray) -> float:
        return float(-(vp[0] ** 2) + 0 * vp[1] + 2 * vp[2] ** 2)

    def vcov(vp: np.ndarray) -> np.ndarray:
        return np.array([[1.0 + vp[0] + vp[1] + vp[2] ** 2 + vp[2]]])

    with pytest.warns(ConvergenceWarning) as rec:
        info = satterthwaite_setup(dev, vcov, [1.0, 1.0, 1.0])
    assert len(rec) == 2 and len(info.messages) == 2
    assert "1 negative eigenvalue: -2.0e+00" in info.messages[0]
    assert "1 eigenvalue close to zero" in info.messages[1]
    # H = diag(-2, 0, 4): only the third parameter enters A = 2 H^+ = diag(0, 0, 1/2)
    np.testing.assert_allclose(info.vcov_varpar, np.diag([0, 0, 0.5]), atol=1e-9)
    t = info.ttest([1.0])
    assert t.se**2 == pytest.approx(5.0)
    # g = d vcov / d vp = (1, 1, 3); g A g' = 9 / 2
    assert t.df == pytest.approx(2 * 5.0**2 / (9 * 0.5), rel=1e-9)


def test_numerical_derivatives() -> None:
    f = lambda v: math.exp(v[0]) * v[1] ** 3 + math.sin(v[0] * v[1])  # noqa: E731
    x = np.array([0.3, 1.7])
    a, b = x
    H_true = np.array(
        [
            [
                math.exp(a) * b**3 - b**2 * math.sin(a * b),
                3 * math.exp(a) * b**2 + math.cos(a * b) - a * b * math.sin(a * b),
            ],
            [0, 6 * math.exp(a) * b - a**2 * math.sin(a * b)],
        ]
    )
    H_true[1, 0] = H_true[0, 1]
    np.testing.assert_allclose(numerical_hessian(f, x), H_true, rtol=1e-8)
    g = lambda v: np.array([[v[0] * v[1], v[1] ** 2], [np.log(v[0]), 1.0]])  # noqa: E731
    J = numerical_jacobian(g, x)
    J_true = np.array([[b, a], [0, 2 * b], [1 / a, 0], [0, 0]])
    np.testing.assert_allclose(J, J_true, rtol=1e-9, atol=1e-12)


def test_satterthwaite_constant_vcov_gives_infinite_df() -> None:
    # vcov(beta) does not depend on the variance parameters: no uncertainty to propagate,
    # lmerTest (R arithmetic) gives df = Inf; so do we, without raising
    info = satterthwaite_setup(lambda vp: float(vp[0] ** 2), lambda vp: np.eye(1), [1.0])
    assert info.ttest([1.0]).df == math.inf
    assert info.ftest([[1.0]]).ddf == math.inf


def test_kr_zero_contrast_is_a_spec_error() -> None:
    g = np.repeat(np.arange(4), 3)
    kr = kenward_roger(np.ones((12, 1)), [(g, np.ones((12, 1)))], [np.eye(1)], 1.0)
    with pytest.raises(SpecError):
        kr.ttest([0.0])
