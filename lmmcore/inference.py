"""Denominator degrees of freedom for fixed-effect tests: Kenward-Roger and Satterthwaite.

Pure functions on plain numpy arrays, so that the fitter and a batched power engine can
both call them.

* :func:`kenward_roger` follows ``pbkrtest::vcovAdj`` / ``pbkrtest::Lb_ddf`` /
  ``pbkrtest::KRmodcomp`` (as used by lmerTest with ``ddf = "Kenward-Roger"``): the
  covariance of the data is parameterised linearly by the variance/covariance components
  (each unique element of each random-effect block's covariance matrix, then the residual
  variance); the expected REML information of those components gives the small-sample
  adjusted covariance of the fixed effects and the KR F scaling and denominator df.
  Everything is computed in the q-dimensional random-effects space (Woodbury identity),
  never with n x n matrices, so it scales to long data.
* :func:`satterthwaite` / :func:`satterthwaite_setup` follow lmerTest
  (``as_lmerModLmerTest``, ``contest1D``, ``contestMD``): numerical Hessian of the
  deviance in the variance parameters ``(theta..., sigma)`` and numerical Jacobian of
  ``vcov(beta)``, both by Richardson extrapolation as ``numDeriv`` does.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(6), 5)                   # 6 groups of 5
    >>> X = np.ones((30, 1))
    >>> kr = kenward_roger(X, [(g, np.ones((30, 1)))], [np.array([[4.0]])], 1.0)
    >>> round(kr.ttest([1.0]).df, 6)                     # balanced: df = groups - 1
    5.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

from lmmcore.errors import ConvergenceWarning, DataError, SpecError

__all__ = [
    "FTest",
    "KRDesign",
    "KRResult",
    "SatterthwaiteInfo",
    "TTest",
    "kenward_roger",
    "numerical_hessian",
    "numerical_jacobian",
    "satterthwaite",
    "satterthwaite_setup",
]

Block = tuple[np.ndarray, np.ndarray]
"""A random-effect term: ``(codes, T)``; ``Z[i, codes[i] * k + j] = T[i, j]``."""

_SQRT_EPS = math.sqrt(np.finfo(float).eps)


# --------------------------------------------------------------------------------------
# results of tests
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TTest:
    """A one-degree-of-freedom test of ``L beta = rhs``.

    ``estimate``, ``t`` and ``p_value`` are ``nan`` when no ``beta`` was given.
    """

    estimate: float
    se: float
    df: float
    t: float
    p_value: float


@dataclass(frozen=True)
class FTest:
    """An F test of ``L beta = rhs``.

    Attributes:
        ndf: numerator df (rank of ``L``).
        ddf: denominator df.
        F: the F statistic (Kenward-Roger: already multiplied by ``f_scaling``);
            ``nan`` when no ``beta`` was given.
        p_value: upper tail of F(ndf, ddf) at ``F``.
        f_scaling: Kenward-Roger scaling of the Wald F (1 for Satterthwaite).
        f_unscaled: Wald statistic / ndf before the scaling (lmerTest's "Mean Sq" is
            ``f_unscaled * sigma**2``).
    """

    ndf: int
    ddf: float
    F: float
    p_value: float
    f_scaling: float = 1.0
    f_unscaled: float = float("nan")


def _as_contrast(L: np.ndarray | Sequence[float] | Sequence[Sequence[float]], p: int) -> np.ndarray:
    L = np.asarray(L, dtype=float)
    if L.ndim == 1:
        L = L[None, :]
    if L.ndim != 2 or L.shape[1] != p:
        raise SpecError(
            f"The contrast matrix must have {p} columns (one per fixed effect); got shape "
            f"{L.shape}."
        )
    if L.shape[0] == 0:
        raise SpecError("The contrast matrix has no rows: give at least one contrast.")
    if not np.all(np.isfinite(L)):
        raise SpecError("The contrast matrix contains NaN or infinite values.")
    return L


def _as_rhs(rhs: float | Sequence[float] | np.ndarray | None, r: int) -> np.ndarray:
    if rhs is None:
        return np.zeros(r)
    out = np.broadcast_to(np.asarray(rhs, dtype=float), (r,)).copy()
    return out


def _reduce_rows(L: np.ndarray, V: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace a rank-deficient ``L`` by an orthonormal basis (in the ``V`` metric) of its
    row space, as lmerTest's ``contestMD`` does.  Only allowed when ``rhs`` is zero."""
    VL = L @ V @ L.T
    d, P = np.linalg.eigh(VL)
    d, P = d[::-1], P[:, ::-1]
    tol = max(_SQRT_EPS * d[0], 0.0)
    q = int(np.sum(d > tol))
    if q == L.shape[0]:
        return L, rhs
    if np.any(rhs != 0):
        raise SpecError(
            "The contrast matrix is rank deficient and the right-hand side is not zero: "
            "the hypothesis is ambiguous. Remove linearly dependent rows."
        )
    if q == 0:
        raise SpecError("The contrast matrix has rank 0: every row is zero in the V metric.")
    return P[:, :q].T @ L, np.zeros(q)


# --------------------------------------------------------------------------------------
# Kenward-Roger
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    """One variance/covariance component: element (j, l) of block b, or the residual."""

    block: int  # -1 for the residual variance
    j: int
    l: int
    rows: np.ndarray  # R_i: rows of Z-space where E_i A is non-zero
    src: np.ndarray  # (E_i A)[rows] = A[src]


@dataclass(frozen=True)
class KRDesign:
    """The parts of a Kenward-Roger computation that depend on the design only.

    Build once with :meth:`from_blocks`, then call :meth:`kenward_roger` for any number
    of covariance parameter values (e.g. in a power simulation with a fixed design).

    Example:
        >>> import numpy as np
        >>> g = np.repeat(np.arange(4), 3)
        >>> d = KRDesign.from_blocks(np.ones((12, 1)), [(g, np.ones((12, 1)))])
        >>> d.n, d.p, d.q, d.n_params
        (12, 1, 4, 2)
    """

    n: int
    p: int
    q: int
    ks: tuple[int, ...]
    nlevels: tuple[int, ...]
    offsets: tuple[int, ...]
    params: tuple[_Param, ...]
    ZtZ: np.ndarray
    ZtX: np.ndarray
    XtX: np.ndarray

    @property
    def n_params(self) -> int:
        """Number of variance/covariance components, the residual variance included."""
        return len(self.params)

    @classmethod
    def from_blocks(cls, X: np.ndarray, blocks: Sequence[Block]) -> KRDesign:
        """Check the inputs and precompute the cross-products ``Z'Z``, ``Z'X``, ``X'X``.

        Args:
            X: (n, p) fixed-effects model matrix of full column rank.
            blocks: random-effect terms ``(codes, T)``: ``codes`` (n,) integer group-level
                indices ``0..L-1`` and ``T`` (n, k) the term matrix, so that
                ``Z_b[i, codes[i] * k + j] = T[i, j]``.  Order as the ``covs``.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise SpecError(f"X must be a non-empty (n, p) matrix; got shape {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise DataError("X contains NaN or infinite values; drop incomplete rows first.")
        n, p = X.shape
        if len(blocks) == 0:
            raise SpecError(
                "Kenward-Roger needs at least one random-effect term; for a model without "
                "random effects use ordinary least squares."
            )
        ks: list[int] = []
        nlev: list[int] = []
        offsets: list[int] = []
        mats: list[tuple[np.ndarray, np.ndarray]] = []
        q = 0
        for b, blk in enumerate(blocks):
            try:
                codes, T = blk
            except (TypeError, ValueError):
                raise SpecError(f"Block {b} must be a pair (codes, T).") from None
            codes = np.asarray(codes)
            T = np.asarray(T, dtype=float)
            if T.ndim == 1:
                T = T[:, None]
            if codes.shape != (n,) or T.ndim != 2 or T.shape[0] != n or T.shape[1] == 0:
                raise SpecError(
                    f"Block {b}: codes must have shape ({n},) and T shape ({n}, k); got "
                    f"{codes.shape} and {T.shape}."
                )
            if not np.issubdtype(codes.dtype, np.integer):
                raise SpecError(f"Block {b}: codes must be integers, got dtype {codes.dtype}.")
            codes = codes.astype(np.int64)
            if codes.min() < 0:
                raise SpecError(f"Block {b}: codes must be non-negative group indices.")
            if not np.all(np.isfinite(T)):
                raise DataError(f"Block {b}: the term matrix contains NaN or infinite values.")
            L = int(codes.max()) + 1
            k = T.shape[1]
            ks.append(k)
            nlev.append(L)
            offsets.append(q)
            mats.append((codes, T))
            q += L * k

        # Z (sparse): Z[i, off_b + codes[i] * k_b + j] = T_b[i, j].
        rows = np.concatenate([np.repeat(np.arange(n), k) for k in ks])
        cols = np.concatenate(
            [
                (off + codes[:, None] * k + np.arange(k)[None, :]).ravel()
                for off, k, (codes, _) in zip(offsets, ks, mats, strict=True)
            ]
        )
        vals = np.concatenate([T.ravel() for _, T in mats])
        Z = sp.csr_matrix((vals, (rows, cols)), shape=(n, q))
        ZtZ = np.asarray((Z.T @ Z).toarray())
        ZtX = np.asarray(Z.T @ X)

        params: list[_Param] = []
        for b, (k, L, off) in enumerate(zip(ks, nlev, offsets, strict=True)):
            base = off + np.arange(L) * k
            # lower triangle, column by column: (0,0),(1,0),...,(k-1,0),(1,1),...
            for l in range(k):
                for j in range(l, k):
                    idx_j = base + j
                    idx_l = base + l
                    if j == l:
                        rows, src = idx_j, idx_j
                    else:
                        rows = np.concatenate([idx_j, idx_l])
                        src = np.concatenate([idx_l, idx_j])
                    params.append(_Param(b, j, l, rows, src))
        params.append(_Param(-1, 0, 0, np.empty(0, np.int64), np.empty(0, np.int64)))
        return cls(
            n=n,
            p=p,
            q=q,
            ks=tuple(ks),
            nlevels=tuple(nlev),
            offsets=tuple(offsets),
            params=tuple(params),
            ZtZ=ZtZ,
            ZtX=ZtX,
            XtX=X.T @ X,
        )

    # ----------------------------------------------------------------------------------

    def _check_covs(self, covs: Sequence[np.ndarray], sigma2: float) -> list[np.ndarray]:
        if len(covs) != len(self.ks):
            raise SpecError(
                f"Got {len(covs)} covariance matrices for {len(self.ks)} random-effect blocks."
            )
        out = []
        for b, (C, k) in enumerate(zip(covs, self.ks, strict=True)):
            C = np.atleast_2d(np.asarray(C, dtype=float))
            if C.shape != (k, k) or not np.all(np.isfinite(C)):
                raise SpecError(
                    f"Covariance matrix {b} must be a finite {k}x{k} matrix; got {C.shape}."
                )
            out.append((C + C.T) / 2)
        if not (np.isfinite(sigma2) and sigma2 > 0):
            raise SpecError(f"The residual variance must be positive and finite; got {sigma2}.")
        return out

    def _factor_right(self, M: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
        """``M @ F`` with ``F = blockdiag_b(I_L (x) F_b)``."""
        out = np.empty_like(M)
        m = M.shape[0]
        for off, k, L, Fb in zip(self.offsets, self.ks, self.nlevels, factors, strict=True):
            sl = slice(off, off + L * k)
            out[:, sl] = (M[:, sl].reshape(m, L, k) @ Fb).reshape(m, L * k)
        return out

    def kenward_roger(self, covs: Sequence[np.ndarray], sigma2: float) -> KRResult:
        """Kenward-Roger adjusted covariance at the given variance components.

        Args:
            covs: per block, the k x k covariance matrix of the random effects in
                response units (``sigma**2 * Lambda_b Lambda_b'``); may be singular.
            sigma2: residual variance.

        Returns:
            A :class:`KRResult`.
        """
        covs = self._check_covs(covs, float(sigma2))
        s2 = float(sigma2)
        q, p, n = self.q, self.p, self.n
        # Factor each covariance as F_b F_b' (eigen-decomposition: allows singular ones).
        factors = []
        for C in covs:
            lam, V = np.linalg.eigh(C)
            factors.append(V * np.sqrt(np.clip(lam, 0.0, None)))
        # C = [Z X];  A = C'C;  B = C' Z~  with Z~ = Z F.
        A = np.block([[self.ZtZ, self.ZtX], [self.ZtX.T, self.XtX]])
        B = self._factor_right(A[:, :q], factors)  # (q+p, q): C'Z F
        Wm = self._factor_right(B[:q].T, factors)  # F'Z'Z F  (q, q)
        Wm = (Wm + Wm.T) / 2
        K = Wm + s2 * np.eye(q)
        cK = sla.cho_factor(K, lower=True)
        G1 = sla.cho_solve(cK, B.T)  # K^{-1} B'
        N1 = B @ G1  # B K^-1 B'
        WG1 = Wm @ G1
        N2 = G1.T @ WG1  # B K^-1 W K^-1 B'
        S = (A - N1) / s2  # C' Sigma^-1 C
        T = (A - 2 * N1 + N2) / s2**2  # C' Sigma^-2 C
        S = (S + S.T) / 2
        T = (T + T.T) / 2
        WG1x = WG1[:, q:]
        N3x = WG1x.T @ sla.cho_solve(cK, WG1x)
        Ax, N1x, N2x = A[q:, q:], N1[q:, q:], N2[q:, q:]
        XS3X = (Ax - 3 * N1x + 3 * N2x - N3x) / s2**3
        KiW = sla.cho_solve(cK, Wm)
        trS2 = (n - 2 * np.trace(KiW) + np.sum(KiW * KiW.T)) / s2**2

        S_ZZ, S_ZX, S_XX = S[:q, :q], S[:q, q:], S[q:, q:]
        T_ZZ, T_ZX, T_XX = T[:q, :q], T[:q, q:], T[q:, q:]
        try:
            cX = sla.cho_factor(S_XX, lower=True)
        except np.linalg.LinAlgError:
            raise DataError(
                "X' Sigma^-1 X is not positive definite: the fixed-effects design is rank "
                "deficient. Remove aliased columns."
            ) from None
        Phi = sla.cho_solve(cX, np.eye(p))
        Phi = (Phi + Phi.T) / 2

        prm = self.params
        m = len(prm)
        res = m - 1
        Mi = [S_ZX[pi.src] for pi in prm[:res]]  # nonzero rows (at pi.rows) of E_i S_ZX
        P = [-(S_ZX[pi.rows].T @ Mi[i]) for i, pi in enumerate(prm[:res])]
        P.append(-T_XX)
        P = [(Pi + Pi.T) / 2 for Pi in P]
        Q: dict[tuple[int, int], np.ndarray] = {}
        Kt = np.empty((m, m))
        for i in range(res):
            ri, si = prm[i].rows, prm[i].src
            for j in range(i, res):
                rj, sj = prm[j].rows, prm[j].src
                Q[i, j] = Mi[i].T @ S_ZZ[np.ix_(ri, rj)] @ Mi[j]
                Kt[i, j] = Kt[j, i] = np.sum(S_ZZ[np.ix_(si, rj)] * S_ZZ[np.ix_(sj, ri)].T)
            Q[i, res] = Mi[i].T @ T_ZX[ri]
            Kt[i, res] = Kt[res, i] = np.sum(T_ZZ[si, ri])
        Q[res, res] = XS3X
        Kt[res, res] = trS2

        def getQ(i: int, j: int) -> np.ndarray:
            return Q[i, j] if i <= j else Q[j, i].T

        PhiP = [Phi @ Pi for Pi in P]
        IE2 = np.empty((m, m))
        for i in range(m):
            for j in range(i, m):
                IE2[i, j] = IE2[j, i] = (
                    Kt[i, j] - 2 * np.sum(Phi * getQ(i, j).T) + np.sum(PhiP[i] * PhiP[j].T)
                )
        eig = np.linalg.eigvalsh(IE2)
        condi = float(np.min(np.abs(eig)))
        if condi > 1e-10:
            Wmat = 2 * np.linalg.inv(IE2)
        else:
            Wmat = 2 * _ginv(IE2)
        Wmat = (Wmat + Wmat.T) / 2
        U = np.zeros((p, p))
        for i in range(m):
            for j in range(m):
                U += Wmat[i, j] * (getQ(i, j) - P[i] @ PhiP[j])
        U = (U + U.T) / 2
        PhiA = Phi + 2 * Phi @ U @ Phi
        PhiA = (PhiA + PhiA.T) / 2
        return KRResult(
            vcov=Phi,
            vcov_adjusted=PhiA,
            P=tuple(P),
            W=Wmat,
            information=IE2 / 2,
            condition=condi,
            param_index=tuple((pi.block, pi.j, pi.l) for pi in prm),
        )


def _ginv(A: np.ndarray, tol: float = _SQRT_EPS) -> np.ndarray:
    """Moore-Penrose inverse with MASS::ginv's cut-off (``tol * largest singular value``)."""
    U, d, Vt = np.linalg.svd(A)
    keep = d > max(tol * d[0], 0.0)
    return (Vt[keep].T / d[keep]) @ U[:, keep].T


@dataclass(frozen=True)
class KRResult:
    """Result of :func:`kenward_roger`.

    Attributes:
        vcov: unadjusted ``(X' Sigma^-1 X)^-1`` (equals lme4's ``vcov``).
        vcov_adjusted: Kenward-Roger adjusted covariance (``pbkrtest::vcovAdj``).
        P: per component, ``-X' Sigma^-1 G_i Sigma^-1 X`` (pbkrtest's ``P``).
        W: ``2 * inverse`` of ``2 * information`` (pbkrtest's ``W``; a generalised inverse
            when the information is near singular).
        information: expected REML information of the components.
        condition: smallest absolute eigenvalue of ``2 * information`` (pbkrtest's
            ``condi``).
        param_index: per component ``(block, j, l)``; ``(-1, 0, 0)`` is the residual.
    """

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: tuple[np.ndarray, ...]
    W: np.ndarray
    information: np.ndarray
    condition: float
    param_index: tuple[tuple[int, int, int], ...] = field(default=())

    @property
    def se_adjusted(self) -> np.ndarray:
        """Adjusted standard errors of the coefficients."""
        return np.sqrt(np.diag(self.vcov_adjusted))

    def _adjust(self, L: np.ndarray) -> tuple[float, float, float, float]:
        """(ddf, F scaling, A1, A2) for a full-row-rank ``L`` (pbkrtest's ``.KR_adjust``)."""
        Phi = self.vcov
        qn = L.shape[0]
        LPhi = L @ Phi
        try:
            Theta = L.T @ np.linalg.solve(LPhi @ L.T, L)
        except np.linalg.LinAlgError:
            raise SpecError("L vcov L' is singular: the contrast is zero or degenerate.") from None
        ThetaPhi = Theta @ Phi
        u = [ThetaPhi @ Pi @ Phi for Pi in self.P]
        tr = np.array([np.trace(ui) for ui in u])
        m = len(u)
        tuu = np.empty((m, m))
        for i in range(m):
            for j in range(i, m):
                tuu[i, j] = tuu[j, i] = np.sum(u[i] * u[j].T)
        A1 = np.float64(tr @ self.W @ tr)
        A2 = np.float64(np.sum(self.W * tuu))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._kr_formulas(A1, A2, qn)

    @staticmethod
    def _kr_formulas(A1: np.float64, A2: np.float64, qn: int) -> tuple[float, float, float, float]:
        B = (A1 + 6 * A2) / (2 * qn)
        g = ((qn + 1) * A1 - (qn + 4) * A2) / ((qn + 2) * A2)
        den = 3 * qn + 2 * (1 - g)
        c1, c2, c3 = g / den, (qn - g) / den, (qn + 2 - g) / den
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        if abs(V0) < 1e-10:
            V0 = 0.0
        x = 1 - A2 / qn
        ratio = 1.0 if (abs(x) < 1e-14 and abs(V1) < 1e-14) else x / V1
        rho = ratio**2 * V0 / V2 / qn
        ddf = 4 + (qn + 2) / (qn * rho - 1)
        scaling = 1.0 if abs(ddf - 2) < 0.01 else ddf * (1 - A2 / qn) / (ddf - 2)
        return float(ddf), float(scaling), float(A1), float(A2)

    def ftest(
        self,
        L: np.ndarray | Sequence[Sequence[float]],
        beta: np.ndarray | Sequence[float] | None = None,
        rhs: float | Sequence[float] | None = None,
    ) -> FTest:
        """Kenward-Roger F test of ``L beta = rhs`` (pbkrtest ``KRmodcomp``; lmerTest's
        ``anova(ddf = "Kenward-Roger")``).

        A rank-deficient ``L`` (with ``rhs = 0``) is reduced to a basis of its row space.

        Example:
            >>> import numpy as np
            >>> g = np.repeat(np.arange(6), 5)
            >>> X = np.column_stack([np.ones(30), np.tile(np.arange(5.0), 6)])
            >>> kr = kenward_roger(X, [(g, np.ones((30, 1)))], [np.eye(1)], 1.0)
            >>> round(kr.ftest([[0, 1]]).ddf, 6)             # within-group slope: 30-6-1
            23.0
        """
        p = self.vcov.shape[0]
        Lm = _as_contrast(L, p)
        r = _as_rhs(rhs, Lm.shape[0])
        Lm, r = _reduce_rows(Lm, self.vcov, r)
        qn = Lm.shape[0]
        ddf, scaling, _, _ = self._adjust(Lm)
        if beta is None:
            return FTest(qn, ddf, float("nan"), float("nan"), scaling)
        b = np.asarray(beta, dtype=float)
        if b.shape != (p,):
            raise SpecError(f"beta must have {p} elements; got shape {b.shape}.")
        diff = Lm @ b - r
        wald = float(diff @ np.linalg.solve(Lm @ self.vcov_adjusted @ Lm.T, diff))
        fu = wald / qn
        F = scaling * fu
        pval = float(stats.f.sf(F, qn, ddf))
        return FTest(qn, ddf, F, pval, scaling, fu)

    def ttest(
        self,
        L: np.ndarray | Sequence[float],
        beta: np.ndarray | Sequence[float] | None = None,
        rhs: float = 0.0,
    ) -> TTest:
        """Kenward-Roger t test of one contrast (lmerTest ``contest1D``: adjusted SE,
        ``pbkrtest::Lb_ddf`` df).

        Example:
            >>> import numpy as np
            >>> g = np.repeat(np.arange(6), 5)
            >>> kr = kenward_roger(np.ones((30, 1)), [(g, np.ones((30, 1)))], [np.eye(1)], 1.0)
            >>> t = kr.ttest([1.0], beta=[0.5])
            >>> round(t.df, 6), round(t.se**2, 6)            # (1 + 1/5) / 6
            (5.0, 0.2)
        """
        p = self.vcov.shape[0]
        Lm = _as_contrast(L, p)
        if Lm.shape[0] != 1:
            raise SpecError("ttest takes a single contrast (one row); use ftest for several.")
        ddf, _, _, _ = self._adjust(Lm)
        se = float(np.sqrt(Lm[0] @ self.vcov_adjusted @ Lm[0]))
        if beta is None:
            nan = float("nan")
            return TTest(nan, se, ddf, nan, nan)
        b = np.asarray(beta, dtype=float)
        est = float(Lm[0] @ b)
        t = (est - rhs) / se
        return TTest(est, se, ddf, t, float(2 * stats.t.sf(abs(t), ddf)))

    def coef_df(self) -> np.ndarray:
        """Kenward-Roger df of the t test of each coefficient."""
        p = self.vcov.shape[0]
        return np.array([self._adjust(np.eye(p)[i : i + 1])[0] for i in range(p)])


def kenward_roger(
    X: np.ndarray,
    blocks: Sequence[Block],
    covs: Sequence[np.ndarray],
    sigma2: float,
) -> KRResult:
    """Kenward-Roger adjusted covariance of the fixed effects (``pbkrtest::vcovAdj``).

    The data covariance is ``Sigma = sum_b Z_b (I (x) covs[b]) Z_b' + sigma2 I``,
    parameterised by the unique elements of each ``covs[b]`` (lower triangle, column by
    column) and ``sigma2``.  Use REML estimates, as pbkrtest does (it refits ML fits
    with REML).

    Args:
        X: (n, p) fixed-effects model matrix.
        blocks: random-effect terms ``(codes, T)`` with ``Z_b[i, codes[i]*k + j] = T[i, j]``.
        covs: per block, the k x k random-effect covariance in response units.
        sigma2: residual variance.

    Returns:
        :class:`KRResult` (``.vcov_adjusted``, ``.ttest(L, beta)``, ``.ftest(L, beta)``,
        ``.coef_df()``).

    Example:
        >>> import numpy as np
        >>> g = np.repeat(np.arange(6), 5)
        >>> kr = kenward_roger(np.ones((30, 1)), [(g, np.ones((30, 1)))], [np.eye(1)], 1.0)
        >>> kr.vcov_adjusted.round(6)                       # balanced: no adjustment
        array([[0.2]])
    """
    return KRDesign.from_blocks(X, blocks).kenward_roger(covs, sigma2)


# --------------------------------------------------------------------------------------
# numerical derivatives (numDeriv's Richardson method)
# --------------------------------------------------------------------------------------

_ZERO_TOL = math.sqrt(np.finfo(float).eps / 7e-7)


def _richardson(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation over the first axis (step halved each time, v = 2)."""
    a = np.array(a, dtype=float)
    r = a.shape[0]
    for m in range(1, r):
        f = 4.0**m
        a = (a[1 : r - m + 1] * f - a[: r - m]) / (f - 1)
    return a[0]


def _steps(x: np.ndarray, d: float, eps: float) -> np.ndarray:
    return np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)


def numerical_jacobian(
    f: Callable[[np.ndarray], np.ndarray | float],
    x: np.ndarray | Sequence[float],
    *,
    d: float = 1e-4,
    eps: float = 1e-4,
    r: int = 4,
) -> np.ndarray:
    """Jacobian by central differences with Richardson extrapolation (as
    ``numDeriv::jacobian(method = "Richardson")`` with its defaults).

    Returns an (m, n) array, ``m`` the size of the flattened ``f(x)``.

    Example:
        >>> import numpy as np
        >>> J = numerical_jacobian(lambda v: np.array([v[0] ** 2, v[0] * v[1]]), [3.0, 2.0])
        >>> np.allclose(J, [[6, 0], [2, 3]])
        True
    """
    x = np.asarray(x, dtype=float).ravel()
    n = x.size
    h = _steps(x, d, eps)
    m = np.asarray(f(x), dtype=float).size
    a = np.empty((r, m, n))
    for k in range(r):
        for i in range(n):
            e = np.zeros(n)
            e[i] = h[i]
            fp = np.asarray(f(x + e), dtype=float).ravel()
            fm = np.asarray(f(x - e), dtype=float).ravel()
            a[k, :, i] = (fp - fm) / (2 * h[i])
        h = h / 2
    return _richardson(a)


def numerical_hessian(
    f: Callable[[np.ndarray], float],
    x: np.ndarray | Sequence[float],
    *,
    d: float = 0.1,
    eps: float = 1e-4,
    r: int = 4,
) -> np.ndarray:
    """Hessian of a scalar function by Richardson extrapolation (as
    ``numDeriv::hessian`` with its defaults: relative step ``d = 0.1``, 4 halvings).

    Example:
        >>> import numpy as np
        >>> H = numerical_hessian(lambda v: v[0] ** 2 * v[1] + np.exp(v[1]), [1.0, 0.0])
        >>> np.allclose(H, [[0, 2], [2, 1]], atol=1e-8)
        True
    """
    x = np.asarray(x, dtype=float).ravel()
    n = x.size
    f0 = float(f(x))
    h0 = _steps(x, d, eps)
    hdiag = np.empty(n)
    for i in range(n):
        h = h0.copy()
        a = np.empty(r)
        for k in range(r):
            e = np.zeros(n)
            e[i] = h[i]
            a[k] = (float(f(x + e)) - 2 * f0 + float(f(x - e))) / h[i] ** 2
            h = h / 2
        hdiag[i] = _richardson(a)
    H = np.diag(hdiag)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            a = np.empty(r)
            for k in range(r):
                e = np.zeros(n)
                e[i] = h[i]
                e[j] = h[j]
                a[k] = (
                    float(f(x + e))
                    - 2 * f0
                    + float(f(x - e))
                    - hdiag[i] * h[i] ** 2
                    - hdiag[j] * h[j] ** 2
                ) / (2 * h[i] * h[j])
                h = h / 2
            H[i, j] = H[j, i] = _richardson(a)
    return H


# --------------------------------------------------------------------------------------
# Satterthwaite
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SatterthwaiteInfo:
    """What lmerTest stores on an ``lmerModLmerTest`` object.

    Attributes:
        varpar: the variance parameters ``(theta..., sigma)``.
        vcov_beta: ``vcov(beta)`` at ``varpar``.
        vcov_varpar: asymptotic covariance of ``varpar``: ``2 H^+`` (H the Hessian of the
            deviance; only its eigenvalues > 1e-8 are inverted).
        jacobian: (n_varpar, p, p): derivative of ``vcov(beta)`` w.r.t. each parameter.
        hessian: the numerical Hessian of the deviance.
        messages: lmerTest's warnings about negative / near-zero Hessian eigenvalues.
    """

    varpar: np.ndarray
    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray
    messages: tuple[str, ...] = ()

    def _df1(self, Lrow: np.ndarray) -> tuple[float, float]:
        var = float(Lrow @ self.vcov_beta @ Lrow)
        g = np.einsum("i,kij,j->k", Lrow, self.jacobian, Lrow)
        denom = np.float64(g @ self.vcov_varpar @ g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return var, float(2 * var**2 / denom)

    def ttest(
        self,
        L: np.ndarray | Sequence[float],
        beta: np.ndarray | Sequence[float] | None = None,
        rhs: float = 0.0,
    ) -> TTest:
        """Satterthwaite t test of one contrast (lmerTest ``contest1D``)."""
        p = self.vcov_beta.shape[0]
        Lm = _as_contrast(L, p)
        if Lm.shape[0] != 1:
            raise SpecError("ttest takes a single contrast (one row); use ftest for several.")
        var, df = self._df1(Lm[0])
        se = math.sqrt(var)
        if beta is None:
            nan = float("nan")
            return TTest(nan, se, df, nan, nan)
        est = float(Lm[0] @ np.asarray(beta, dtype=float))
        t = (est - rhs) / se
        return TTest(est, se, df, t, float(2 * stats.t.sf(abs(t), df)))

    def ftest(
        self,
        L: np.ndarray | Sequence[Sequence[float]],
        beta: np.ndarray | Sequence[float] | None = None,
        rhs: float | Sequence[float] | None = None,
    ) -> FTest:
        """Satterthwaite F test of ``L beta = rhs`` (lmerTest ``contestMD``).

        ``L V L'`` is diagonalised; each of its ``q`` positive eigen-directions gets a
        Satterthwaite df ``nu_m`` and the F denominator df combines them as lmerTest's
        ``get_Fstat_ddf``.
        """
        p = self.vcov_beta.shape[0]
        Lm = _as_contrast(L, p)
        r = _as_rhs(rhs, Lm.shape[0])
        VL = Lm @ self.vcov_beta @ Lm.T
        dvals, Pv = np.linalg.eigh((VL + VL.T) / 2)
        dvals, Pv = dvals[::-1], Pv[:, ::-1]
        tol = max(_SQRT_EPS * dvals[0], 0.0)
        q = int(np.sum(dvals > tol))
        if q == 0:
            raise SpecError("The contrast matrix has rank 0 in the metric of vcov(beta).")
        if q < Lm.shape[0] and np.any(r != 0):
            warnings.warn("Contrast is rank deficient and test may be affected", stacklevel=2)
        PtL = Pv[:, :q].T @ Lm
        nu = np.empty(q)
        for mm in range(q):
            g = np.einsum("i,kij,j->k", PtL[mm], self.jacobian, PtL[mm])
            with np.errstate(divide="ignore", invalid="ignore"):
                nu[mm] = 2 * dvals[mm] ** 2 / np.float64(g @ self.vcov_varpar @ g)
        ddf = _fstat_ddf(nu)
        if beta is None:
            return FTest(q, ddf, float("nan"), float("nan"))
        b = np.asarray(beta, dtype=float)
        if np.any(r != 0):
            b = b - np.linalg.pinv(Lm) @ r
        F = float(np.sum((PtL @ b) ** 2 / dvals[:q]) / q)
        return FTest(q, ddf, F, float(stats.f.sf(F, q, ddf)), 1.0, F)

    def coef_df(self) -> np.ndarray:
        """Satterthwaite df of the t test of each coefficient."""
        p = self.vcov_beta.shape[0]
        return np.array([self._df1(np.eye(p)[i])[1] for i in range(p)])


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Combine per-direction Satterthwaite df into an F denominator df (lmerTest)."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - nu.size)


def satterthwaite_setup(
    dev_varpar: Callable[[np.ndarray], float],
    vcov_varpar: Callable[[np.ndarray], np.ndarray],
    varpar: np.ndarray | Sequence[float],
    *,
    tol: float = 1e-8,
    warn: bool = True,
) -> SatterthwaiteInfo:
    """Numerical Hessian of the deviance and Jacobian of ``vcov(beta)`` (lmerTest).

    Args:
        dev_varpar: deviance (REML criterion or ML deviance, ``-2 log L``) as a function
            of ``(theta..., sigma)``, with beta profiled out but sigma NOT profiled.
        vcov_varpar: ``vcov(beta) = sigma**2 (RX' RX)^-1`` as a function of the same.
        varpar: the estimates ``(theta..., sigma)``.
        tol: eigenvalues of the Hessian within ``tol`` of 0 count as zero (lmerTest: 1e-8).
        warn: issue lmerTest's warnings (as :class:`ConvergenceWarning`) when the Hessian
            has negative or near-zero eigenvalues; they are also in ``.messages``.

    Example:
        >>> import numpy as np
        >>> # y_i ~ N(mu, sigma^2), n = 10, REML: df of the mean is n - 1
        >>> y = np.arange(10.0); n = 10
        >>> def dev(vp):
        ...     s2 = vp[-1] ** 2
        ...     return (n - 1) * np.log(2 * np.pi * s2) + np.sum((y - y.mean()) ** 2) / s2
        >>> def vc(vp):
        ...     return np.array([[vp[-1] ** 2 / n]])
        >>> info = satterthwaite_setup(dev, vc, [y.std(ddof=1)])
        >>> round(info.ttest([1.0]).df, 6)
        9.0
    """
    vp = np.asarray(varpar, dtype=float).ravel()
    if vp.size == 0 or not np.all(np.isfinite(vp)):
        raise SpecError("varpar must be a non-empty vector of finite values (theta..., sigma).")
    V = np.atleast_2d(np.asarray(vcov_varpar(vp), dtype=float))
    p = V.shape[0]
    H = numerical_hessian(dev_varpar, vp)
    H = (H + H.T) / 2
    if not np.all(np.isfinite(H)):
        raise SpecError("The deviance is not finite near varpar; cannot compute its Hessian.")
    evals, evecs = np.linalg.eigh(H)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    neg = evals < -tol
    pos = evals > tol
    zero = ~neg & ~pos
    msgs: list[str] = []
    if np.any(neg):
        word = "eigenvalues" if neg.sum() > 1 else "eigenvalue"
        vals = " ".join(f"{v:.1e}" for v in evals[neg])
        msgs.append(f"Model failed to converge with {int(neg.sum())} negative {word}: {vals}")
    if np.any(zero):
        word = "eigenvalues" if zero.sum() > 1 else "eigenvalue"
        vals = " ".join(f"{v:.1e}" for v in evals[zero])
        msgs.append(
            f"Model may not have converged with {int(zero.sum())} {word} close to zero: {vals}"
        )
    if warn:
        for msg in msgs:
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    Vp = evecs[:, pos]
    h_inv = (Vp / evals[pos]) @ Vp.T
    J = numerical_jacobian(lambda v: np.asarray(vcov_varpar(v), dtype=float).ravel(), vp)
    jac = J.T.reshape(vp.size, p, p)
    return SatterthwaiteInfo(
        varpar=vp,
        vcov_beta=V,
        vcov_varpar=2 * h_inv,
        jacobian=jac,
        hessian=H,
        messages=tuple(msgs),
    )


def satterthwaite(
    dev_varpar: Callable[[np.ndarray], float],
    vcov_varpar: Callable[[np.ndarray], np.ndarray],
    varpar: np.ndarray | Sequence[float],
    L: np.ndarray | Sequence[float] | Sequence[Sequence[float]],
) -> tuple[float, float] | FTest:
    """Satterthwaite df for a contrast, as lmerTest.

    For a single contrast (``L`` a vector or one row) returns
    ``(L V L', df)`` with ``df = 2 (L V L')**2 / (g A g')``, ``g_i = L dV/dvp_i L'`` and
    ``A = 2 H^-1``.  For several rows returns the :class:`FTest` of ``contestMD``
    (without a statistic, since no beta is given; use :func:`satterthwaite_setup` and
    ``.ftest(L, beta)`` for that, or to test many contrasts with one set of derivatives).

    Example:
        >>> import numpy as np
        >>> y = np.arange(10.0); n = 10
        >>> def dev(vp):
        ...     s2 = vp[-1] ** 2
        ...     return (n - 1) * np.log(2 * np.pi * s2) + np.sum((y - y.mean()) ** 2) / s2
        >>> var, df = satterthwaite(dev, lambda vp: np.array([[vp[-1] ** 2 / n]]),
        ...                         [y.std(ddof=1)], [1.0])
        >>> round(df, 6)
        9.0
    """
    info = satterthwaite_setup(dev_varpar, vcov_varpar, varpar)
    p = info.vcov_beta.shape[0]
    Lm = _as_contrast(L, p)
    if Lm.shape[0] == 1:
        return info._df1(Lm[0])
    return info.ftest(Lm)
