"""Power without simulation: the expected information at the true parameters.

For a spec and a design, `approx_power` evaluates what the analysis would estimate on
average: Var(beta-hat) = C = (X' V^-1 X)^-1 with V = sigma^2 (I + Z Gamma Z') built from
the true SDs, correlations and sigma (Gamma = Lambda Lambda' is the relative covariance of
the random effects), the Satterthwaite df of each coefficient at the truth, and power from
the noncentral t distribution (two-sided; Wald: the normal). Kenward-Roger uses
`lmmcore.inference.KRDesign` at the truth (its adjusted covariance and df). No response is
drawn: one design point takes milliseconds, so a curve or a subjects x items map can be
redrawn while a model is edited. Simulation (`lmmcore.power`) stays the reference; the
approximation assumes the variance parameters are estimated near the truth, so it is
least accurate for few units or truths near a boundary (SDs near 0, correlations near 1).

The algebra, all in the q-dimensional random-effects space (q = levels x terms), with
G = Lambda (Lambda' Z'Z Lambda + I)^-1 Lambda' (so V^-1 = (I - Z G Z') / sigma^2)::

    Z'V^-1 Z = (Z'Z - Z'Z G Z'Z) / sigma^2,   N = Z'V^-1 X,   C = (X'V^-1 X)^-1
    M = Z'PZ = Z'V^-1 Z - N C N'              (P: the REML projection)

The variance parameters are phi = (the entries of each block's Gamma, lower triangle in
lme4's order, then sigma^2): V is linear in each, so the parameterisation stays regular
when a true SD is 0 (lme4's theta does not). With A_i the pattern of entry i (E_rs + E_sr
on each level of its block), the expected REML information is::

    I[Gi, Gj] = sigma^4 / 2 tr(M A_i M A_j),  I[s2, Gj] = tr(M A_j) / 2,
    I[s2, s2] = (n - p) / (2 sigma^4)

and dC/dsigma^2 = C / sigma^2, dC/dGamma_i = sigma^2 C N' A_i N C. The Satterthwaite df of
L beta is 2 (L C L')^2 / (g' I^-1 g) with g = d(L C L')/dphi; it does not depend on the
parameterisation, so it is lmerTest's df evaluated at the truth with the expected instead
of the observed information.

Example:
    >>> from lmmcore import PRESETS
    >>> p1 = PRESETS["P1"]
    >>> t = approx_power(p1.spec, p1.design)
    >>> round(float(t.loc["X_i", "se"]) ** 2, 6)        # 80^2 (2/25) + 40^2/100 + 200^2 (2/2500)
    560.0
    >>> round(float(t.loc["X_i", "power"]), 3)
    0.545
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats
from threadpoolctl import threadpool_limits

from lmmcore.design import Design
from lmmcore.errors import DataError, PowerError
from lmmcore.limits import MAX_DENSE_Q
from lmmcore.simulate import SeedLike
from lmmcore.spec import ModelSpec
from lmmcore.structure import ModelStructure

__all__ = [
    "APPROX_TESTS",
    "ExpectedInformation",
    "approx_power",
    "approx_power_curve",
    "expected_information",
    "two_sided_power",
]

APPROX_TESTS = ("satterthwaite", "wald", "kr")


@dataclass(frozen=True)
class ExpectedInformation:
    """The fixed effects' covariance and the variance parameters' expected information.

    Attributes:
        vcov: C = (X' V^-1 X)^-1 at the true parameters, (p, p).
        information: expected REML information of phi (the entries of each block's
            relative covariance Gamma, lower triangle column by column as lme4 orders
            theta, then sigma^2), (m, m).
        jacobian: d C_jj / d phi for every coefficient j, (m, p).
        param_names: names of phi, e.g. ``"subj: (Intercept)"``, ``"subj: X_i, (Intercept)"``
            (a covariance), ``"sigma^2"``.
        fe_names: names of the coefficients.
    """

    vcov: np.ndarray
    information: np.ndarray
    jacobian: np.ndarray
    param_names: tuple[str, ...]
    fe_names: tuple[str, ...]

    def satterthwaite_df(self) -> np.ndarray:
        """Satterthwaite df of every coefficient's t test: 2 C_jj^2 / (g' I^-1 g)."""
        g = self.jacobian
        try:
            sol = sla.cho_solve(sla.cho_factor(self.information), g)
        except np.linalg.LinAlgError:  # a variance parameter the design cannot identify
            sol = np.linalg.pinv(self.information, hermitian=True) @ g
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * np.diag(self.vcov) ** 2 / np.einsum("mj,mj->j", g, sol)


def _pattern(k: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(k*k, k(k+1)/2) map from the unique entries of a symmetric k x k matrix (lme4's
    lower-triangle order) to its ordered entries: column i is E_rs + E_sr (E_rr on the
    diagonal), flattened row-major."""
    pairs = [(r, c) for c in range(k) for r in range(c, k)]
    D = np.zeros((k * k, len(pairs)))
    for i, (r, c) in enumerate(pairs):
        D[r * k + c, i] = 1.0
        D[c * k + r, i] = 1.0
    return D, pairs


def _left_lambda_t(A: np.ndarray, s: ModelStructure, lams: list[np.ndarray]) -> np.ndarray:
    """Lambda' A for Lambda = blockdiag_b(I_L (x) Lambda_b)."""
    out = np.empty_like(A)
    off = 0
    for b, lam in zip(s.blocks, lams, strict=True):
        sl = slice(off, off + b.q)
        out[sl] = np.einsum("ji,ljm->lim", lam, A[sl].reshape(b.nlevels, b.k, -1)).reshape(b.q, -1)
        off += b.q
    return out


def check_dense_q(s: ModelStructure) -> None:
    """Refuse a design whose q x q matrices would be too large for the approximation."""
    if s.q > MAX_DENSE_Q:
        sizes = ", ".join(f"{b.name} {b.nlevels} x {b.k}" for b in s.blocks)
        raise PowerError(
            f"This design has q = {s.q:,} random effects ({sizes} levels x terms), more than "
            f"the {MAX_DENSE_Q:,} the approximation handles (it works with dense q x q "
            "matrices). Use the simulation (lmmcore.power), or a smaller design to explore."
        )


def expected_information(
    structure: ModelStructure, theta: np.ndarray, sigma: float
) -> ExpectedInformation:
    """C = (X'V^-1X)^-1, the expected REML information of the variance parameters and
    the derivatives of C's diagonal, at ``theta`` (lme4's) and ``sigma``.

    Raises:
        PowerError: q is above `lmmcore.limits.MAX_DENSE_Q`.
        DataError: X' V^-1 X is singular.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from lmmcore import build_structure
        >>> df = pd.DataFrame({"y": 0.0, "g": np.repeat(list("abcdef"), 5)})
        >>> info = expected_information(build_structure("y ~ 1 + (1 | g)", df), [2.0], 1.0)
        >>> round(float(info.vcov[0, 0]), 12), round(float(info.satterthwaite_df()[0]), 9)
        (0.7, 5.0)
    """
    s = structure
    check_dense_q(s)
    theta = np.asarray(theta, dtype=float)
    s2 = float(sigma) ** 2
    n, p, q = s.n, s.p, s.q
    Z, X = s.Z, s.X
    ZtZ = np.asarray((Z.T @ Z).toarray())
    ZtX = np.asarray(Z.T @ X)
    lams = s.lambdas(theta)
    R = _left_lambda_t(np.hstack([ZtZ, ZtX]), s, lams)  # Lambda' [Z'Z  Z'X]
    K = _left_lambda_t(np.ascontiguousarray(R[:, :q].T), s, lams)  # Lambda' Z'Z Lambda
    K[np.diag_indices(q)] += 1.0
    S = sla.cho_solve(sla.cho_factor(K, lower=True), R)
    RtS = R[:, :q].T @ S  # Z'Z G [Z'Z  Z'X]
    ZVZ = (ZtZ - RtS[:, :q]) / s2
    N = (ZtX - RtS[:, q:]) / s2
    XVX = (X.T @ X - R[:, q:].T @ S[:, q:]) / s2
    try:
        C = sla.cho_solve(sla.cho_factor(XVX, lower=True), np.eye(p))
    except np.linalg.LinAlgError:
        raise DataError(
            "X' V^-1 X is singular: the fixed effects are not estimable on this design. "
            "Remove aliased columns."
        ) from None
    C = (C + C.T) / 2
    NC = N @ C
    M = ZVZ - NC @ N.T
    M = (M + M.T) / 2

    pats = [_pattern(b.k) for b in s.blocks]
    offs = np.cumsum([0, *(b.q for b in s.blocks)])
    widths = [D.shape[1] for D, _ in pats]
    poffs = np.cumsum([0, *widths])
    m = int(poffs[-1]) + 1
    info = np.empty((m, m))
    jac = np.empty((m, p))
    names = []
    for bi, b in enumerate(s.blocks):
        Db, pairs = pats[bi]
        names += [
            f"{b.name}: {b.terms[r]}" if r == c else f"{b.name}: {b.terms[r]}, {b.terms[c]}"
            for r, c in pairs
        ]
        sb = slice(offs[bi], offs[bi + 1])
        pb = slice(poffs[bi], poffs[bi + 1])
        for ci in range(bi, len(s.blocks)):
            c = s.blocks[ci]
            Dc = pats[ci][0]
            sc = slice(offs[ci], offs[ci + 1])
            # T4[r, s, t, u] = sum_{l, m} M[(l, r), (m, u)] M[(l, s), (m, t)]
            #                = tr(M (I (x) E_rs) M (I (x) E_tu))
            A = M[sb, sc].reshape(b.nlevels, b.k, c.nlevels, c.k).transpose(1, 3, 0, 2)
            A = A.reshape(b.k * c.k, -1)
            T4 = (A @ A.T).reshape(b.k, c.k, b.k, c.k).transpose(0, 2, 3, 1)
            blk = s2**2 / 2 * Db.T @ T4.reshape(b.k * b.k, c.k * c.k) @ Dc
            pc = slice(poffs[ci], poffs[ci + 1])
            info[pb, pc] = blk
            info[pc, pb] = blk.T
        Mb = M[sb, sb].reshape(b.nlevels, b.k, b.nlevels, b.k)
        diag = np.einsum("lulr->ur", Mb)  # sum over levels of the k x k diagonal blocks
        info[pb, -1] = info[-1, pb] = Db.T @ diag.ravel() / 2
        a = NC[sb].reshape(b.nlevels, b.k, p)
        jac[pb] = s2 * Db.T @ np.einsum("ltj,luj->tuj", a, a).reshape(b.k * b.k, p)
    info[-1, -1] = (n - p) / (2 * s2**2)
    jac[-1] = np.diag(C) / s2
    names.append("sigma^2")
    return ExpectedInformation(C, info, jac, tuple(names), tuple(s.fe_names))


def two_sided_power(ncp: np.ndarray, df: np.ndarray, alpha: float) -> np.ndarray:
    """Power of a two-sided t test (noncentral t with ``df``; normal where df is infinite)
    whose statistic has noncentrality ``ncp``.

    Example:
        >>> round(float(two_sided_power(np.array([2.0]), np.array([np.inf]), 0.05)[0]), 4)
        0.516
    """
    ncp, df = np.broadcast_arrays(np.asarray(ncp, float), np.asarray(df, float))
    out = np.empty(ncp.shape)
    z = ~np.isfinite(df) | (df > 1e7)
    c = stats.norm.ppf(1 - alpha / 2)
    out[z] = stats.norm.sf(c - ncp[z]) + stats.norm.cdf(-c - ncp[z])
    t = ~z
    if t.any():
        d, a = df[t], np.abs(ncp[t])  # power is symmetric in the sign of ncp
        ct = stats.t.ppf(1 - alpha / 2, d)
        with np.errstate(all="ignore"):
            near = stats.nct.sf(ct, d, a)
            far = stats.nct.cdf(-ct, d, a)
        # scipy's noncentral t can give NaN far in its tails (ncp of 30 and more): there
        # the far tail is below 1e-100, and the near one follows from the normal
        # approximation of the noncentral t
        approx = stats.norm.sf((ct * (1 - 1 / (4 * d)) - a) / np.sqrt(1 + ct**2 / (2 * d)))
        near = np.where(np.isfinite(near), near, approx)
        out[t] = np.clip(near + np.where(np.isfinite(far), far, 0.0), 0.0, 1.0)
    return out


def _se_df(
    s: ModelStructure, theta: np.ndarray, sigma: float, cols: list[int], test: str
) -> tuple[np.ndarray, np.ndarray]:
    """SE and df of the tested coefficients at the truth."""
    if test == "kr":
        from lmmcore.inference import KRDesign

        check_dense_q(s)
        kr = KRDesign.from_blocks(s.X, [(b.codes, b.T) for b in s.blocks]).kenward_roger(
            [sigma**2 * lam @ lam.T for lam in s.lambdas(theta)], sigma**2
        )
        eye = np.eye(s.p)
        tt = [kr.ttest(eye[j]) for j in cols]
        return np.array([t.se for t in tt]), np.array([t.df for t in tt])
    info = expected_information(s, theta, sigma)
    se = np.sqrt(np.diag(info.vcov))[cols]
    if test == "wald":
        return se, np.full(len(cols), np.inf)
    return se, info.satterthwaite_df()[cols]


def _table(names, truth, se, df, alpha) -> pd.DataFrame:
    ncp = truth / se
    return pd.DataFrame(
        {
            "effect": names,
            "true_value": truth,
            "quantity": ["type I error" if t == 0 else "power" for t in truth],
            "power": two_sided_power(ncp, df, alpha),
            "se": se,
            "df": df,
            "ncp": ncp,
        }
    ).set_index("effect")


def _setup(spec, design, test, alpha, effects, seed):
    from lmmcore.power import _check_alpha, _make_problem, _seeds

    if test not in APPROX_TESTS:
        raise PowerError(
            f"Unknown test {test!r} for the approximation; use one of {', '.join(APPROX_TESTS)} "
            "(the likelihood-ratio test needs simulation: lmmcore.power(test='lrt'))."
        )
    alpha = _check_alpha(alpha)
    _, design_seed = _seeds(seed)
    problem, names, truth = _make_problem(spec, design, test, alpha, effects, None, design_seed)
    return problem, names, truth, alpha


def approx_power(
    spec: ModelSpec,
    design: Design | pd.DataFrame,
    *,
    test: str = "satterthwaite",
    alpha: float = 0.05,
    effects: list[str] | str | None = None,
    seed: SeedLike = None,
) -> pd.DataFrame:
    """Approximate power of every fixed effect, from the expected information (no simulation).

    Args:
        spec: the ground truth; the analysis model is the spec's own formula.
        design: a `Design` or a DataFrame of conditions.
        test: ``"satterthwaite"`` (t with the Satterthwaite df at the truth), ``"wald"``
            (z) or ``"kr"`` (Kenward-Roger adjusted SE and df at the truth).
        alpha: significance level.
        effects: coefficients to report (default all).
        seed: fixes the design's random parts (covariates, missing rows) exactly as
            ``power(..., seed=seed)`` draws them, so both analyse the same conditions.

    Returns:
        A table indexed by coefficient, like `PowerResult.table`: ``true_value``,
        ``quantity`` ("power", or "type I error" where the true value is 0), ``power``,
        ``se`` (the SE at the truth; KR: adjusted), ``df`` (inf for Wald) and ``ncp`` (the
        noncentrality true_value / se).

    Raises:
        PowerError: an unknown test or effect, or q above `lmmcore.limits.MAX_DENSE_Q`.

    Example:
        >>> from lmmcore import PRESETS
        >>> p5 = PRESETS["P5"]
        >>> t = approx_power(p5.spec, p5.design, effects="REPETITION")
        >>> t.loc["REPETITION", ["quantity", "df"]].tolist()[0], bool(t["power"].iloc[0] > 0.9)
        ('power', True)
    """
    with threadpool_limits(1):  # small dense algebra: threads only contend
        problem, names, truth, alpha = _setup(spec, design, test, alpha, effects, seed)
        se, df = _se_df(problem.sim, problem.theta, problem.sigma, list(problem.cols), test)
        return _table(names, truth, se, df, alpha)


def approx_power_curve(
    spec: ModelSpec,
    design: Design | pd.DataFrame,
    vary: dict[str, list[Any]],
    *,
    test: str = "satterthwaite",
    alpha: float = 0.05,
    effects: list[str] | str | None = None,
    seed: SeedLike = None,
) -> pd.DataFrame:
    """`approx_power` over a grid: a tidy frame shaped like `lmmcore.power_curve`'s.

    ``vary`` takes the same keys as `lmmcore.power_curve`: ``subjects``, ``items``,
    ``trials`` (design sizes) and ``"effect:NAME"`` (true values of the fixed effect
    NAME, a sensitivity curve). SE and df depend on the design only, so they are computed
    once per design size and every effect value costs only a noncentral t evaluation.

    Example:
        >>> from lmmcore import PRESETS
        >>> p1 = PRESETS["P1"]
        >>> df = approx_power_curve(p1.spec, p1.design, {"effect:X_i": [0, 25, 50]},
        ...                         effects="X_i")
        >>> df["power"].round(3).tolist()
        [0.05, 0.179, 0.545]
    """
    from lmmcore.power import _grid

    dims, points = _grid(spec, design, vary)
    frames = []
    cache: dict[Any, tuple] = {}
    for values, spec_i, design_i in points:
        # a design size computes SE and df once (pilot data: keyed by their sizes)
        key = (
            design_i
            if isinstance(design_i, Design)
            else tuple(v for d, v in zip(dims, values, strict=True) if not d.startswith("effect:"))
        )
        if key not in cache:
            with threadpool_limits(1):
                problem, names, _, a = _setup(spec_i, design_i, test, alpha, effects, seed)
                cols = list(problem.cols)
                se, df = _se_df(problem.sim, problem.theta, problem.sigma, cols, test)
            cache[key] = (names, se, df, a)
        names, se, df, a = cache[key]
        truth = np.array([float(spec_i.fixed.get(n, 0.0)) for n in names])
        t = _table(names, truth, se, df, a).reset_index()
        for dim, v in reversed(list(zip(dims, values, strict=True))):
            t.insert(0, dim, v)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)
