"""The profiled REML/ML criterion, evaluated for a batch of (theta, response) pairs.

This is lme4's ``mkLmerDevfun`` written for many responses at once. The cross-products
[Z X]'[Z X] are computed once per design; each response only adds Z'y, X'y and y'y. For a
batch of M pairs (theta_m, y_m) the penalised system

    L L' = Lambda' Z' Z Lambda + I

is factored block by block: the first (largest) grouping factor gives a block-diagonal
part (one k x k Cholesky per level), the other factors a dense Schur complement. One
(p+1) x (p+1) Cholesky of the reduced [X y] cross-product then gives log|R_X|^2 and the
penalised residual sum of squares r^2, hence the profiled criterion

    ML:   log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p)))

Levels of the first block with identical Z_l'Z_l (in a balanced design, all of them) share
one k x k factor; the engine then sums over these groups of levels with products precomputed
per design and per response, so that a pair costs the same for 30 or 3,000 subjects
(``Engine.groups``; ``group_levels=False`` forces the level-by-level kernel).

A single fit is this engine with one response column: there is one fitter, not two.

Example:
    >>> import numpy as np, pandas as pd
    >>> from lmmcore.structure import build_structure
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"g": np.repeat(np.arange(6), 5), "y": rng.normal(size=30)})
    >>> eng = Engine(build_structure("y ~ 1 + (1 | g)", df))
    >>> resp = eng.responses(df[["y"]].to_numpy())
    >>> eng.criterion(np.array([[0.5], [1.0]]), np.array([0, 0]), resp, reml=True).shape
    (2,)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from lmmcore.errors import DataError
from lmmcore.limits import MAX_ENGINE_ENTRIES, fmt_bytes
from lmmcore.structure import ModelStructure

LOG2PI = np.log(2.0 * np.pi)
#: float64 entries per pair allowed in one chunk of work (about 64 MB).
CHUNK_BUDGET = 8_000_000
#: float64 entries allowed for the per-group products of a grouped engine (32 MB)
GROUPED_BUDGET = 4_000_000


@dataclass(frozen=True, eq=False)
class Responses:
    """Cross-products of a block of B responses with the design."""

    Z1tY: np.ndarray  # (L1, k1, B)
    Z2tY: np.ndarray  # (q2, B)
    XtY: np.ndarray  # (p, B)
    yty: np.ndarray  # (B,)
    Y: np.ndarray  # (n, B)
    #: for an engine with level groups (see ``Engine.groups``): per replicate and group,
    #: sums over the group's levels l of z_l z_l', (Z_l'X)' z_l and (Z_l'Z2)' z_l, where
    #: z_l = Z_l'y; shapes (B, g, k1, k1), (B, g, k1, k1, p), (B, g, k1, k1, q2)
    grouped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def B(self) -> int:
        return self.yty.shape[0]

    @cached_property
    def by_replicate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Z1'Y (B, L1, k1), X'Y (B, p), Z2'Y (B, q2): contiguous per replicate."""
        return (
            np.ascontiguousarray(np.moveaxis(self.Z1tY, 2, 0)),
            np.ascontiguousarray(self.XtY.T),
            np.ascontiguousarray(self.Z2tY.T),
        )


@dataclass(frozen=True, eq=False)
class Solution:
    """Everything recovered at one (theta, response) pair."""

    theta: np.ndarray
    beta: np.ndarray
    r2: float
    ldL2: float
    ldRX2: float
    RXtRX: np.ndarray  # X'V^{-1}X up to sigma^2: vcov(beta) = sigma^2 inv(RXtRX)
    b: np.ndarray  # spherical random effects (q,)
    u: np.ndarray  # random effects on the response scale (BLUPs): u = Lambda b (q,)


SMALL_K = 4


def small_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of small SPD matrices (..., k, k).

    Unrolled over the k x k entries and vectorised over the stack: for tiny k this is far
    faster than one LAPACK call per matrix. Raises LinAlgError if a matrix is not PD.
    """
    k = A.shape[-1]
    if k > SMALL_K:
        return np.linalg.cholesky(A)
    L = np.zeros_like(A)
    for j in range(k):
        d = A[..., j, j] - (L[..., j, :j] ** 2).sum(axis=-1)
        if np.any(~(d > 0)):
            raise np.linalg.LinAlgError("matrix is not positive definite")
        ljj = np.sqrt(d)
        L[..., j, j] = ljj
        for i in range(j + 1, k):
            L[..., i, j] = (A[..., i, j] - (L[..., i, :j] * L[..., j, :j]).sum(axis=-1)) / ljj
    return L


def small_lower_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L X = B for lower-triangular L (..., k, k) and B (..., k, c), stacked."""
    k = L.shape[-1]
    if k > SMALL_K:
        return np.linalg.solve(L, B)
    X = np.empty(np.broadcast_shapes(L.shape[:-1], B.shape[:-2] + (k,)) + (B.shape[-1],))
    for i in range(k):
        acc = B[..., i, :]
        if i:
            acc = acc - np.einsum("...j,...jc->...c", L[..., i, :i], X[..., :i, :])
        X[..., i, :] = acc / L[..., i, i][..., None]
    return X


def check_dense_size(s: ModelStructure, first: int) -> None:
    """Refuse a design whose dense cross-products (Z2'Z2 and Z1'Z2 when block ``first`` is
    eliminated) would exceed `lmmcore.limits.MAX_ENGINE_ENTRIES`, before allocating them."""
    b1 = s.blocks[first]
    q2 = s.q - b1.q
    entries = q2 * q2 + b1.nlevels * b1.k * q2
    if entries > MAX_ENGINE_ENTRIES:
        sizes = ", ".join(f"{b.name}: {b.nlevels:,} levels x {b.k}" for b in s.blocks)
        raise DataError(
            f"This model's random effects ({sizes}) need dense cross-products of "
            f"{entries:,} numbers ({fmt_bytes(8 * entries)}), more than the limit of "
            f"{MAX_ENGINE_ENTRIES:,} ({fmt_bytes(8 * MAX_ENGINE_ENTRIES)}). Use fewer levels "
            "of the smaller grouping factors, or fewer random slopes on them."
        )


def _elimination_order(s: ModelStructure) -> list[int]:
    """Block order for the factorisation: first the block whose elimination leaves the
    cheapest dense remainder (L k q2^2 for the Schur update plus q2^3 / 3 for its Cholesky)."""
    q = s.q

    def cost(i: int) -> float:
        b = s.blocks[i]
        q2 = q - b.q
        return b.nlevels * b.k * q2 * q2 + q2**3 / 3

    first = min(range(len(s.blocks)), key=lambda i: (cost(i), i))
    return [first] + [i for i in range(len(s.blocks)) if i != first]


class Engine:
    """Profiled criterion for a fixed design (X, Z); see the module docstring."""

    def __init__(self, structure: ModelStructure, group_levels: bool = True):
        s = structure
        self.structure = s
        self.n, self.p = s.n, s.p
        X = s.X
        # Eliminate first the block that makes the dense remainder cheapest (often, but
        # not always, lme4's first: the factor with most levels). Theta stays in lme4's
        # order outside the engine; inside, it is permuted to this block order.
        self.order = _elimination_order(s)
        check_dense_size(s, self.order[0])
        self.blocks = [s.blocks[i] for i in self.order]
        self.theta_perm = np.concatenate(
            [np.arange(s.theta_slices[i].start, s.theta_slices[i].stop) for i in self.order]
        )
        self._slices, start = [], 0
        for b in self.blocks:
            self._slices.append(slice(start, start + b.n_theta))
            start += b.n_theta
        b1 = self.blocks[0]
        self.L1, self.k1 = b1.nlevels, b1.k
        codes, T = b1.codes, b1.T
        D1 = np.zeros((self.L1, self.k1, self.k1))
        np.add.at(D1, codes, T[:, :, None] * T[:, None, :])
        self.D1 = D1
        Z1tX = np.zeros((self.L1, self.k1, self.p))
        np.add.at(Z1tX, codes, T[:, :, None] * X[:, None, :])
        self.Z1tX = Z1tX
        self.Z1 = b1.Z().tocsc().T.tocsr()  # Z1' (L1 k1, n)
        self.XtX = X.T @ X
        self.rest = self.blocks[1:]
        self.offsets = []
        off = 0
        for b in self.rest:
            self.offsets.append(off)
            off += b.q
        self.q2 = off
        if self.rest:
            Z2 = sp.hstack([b.Z() for b in self.rest], format="csc")
            self.Z2t = Z2.T.tocsr()
            self.ZtZ22 = (self.Z2t @ Z2).toarray()
            self.ZtZ12 = (self.Z1 @ Z2).toarray().reshape(self.L1, self.k1, self.q2)
            self.Z2tX = np.asarray(self.Z2t @ X)
        else:
            self.Z2t = None
            self.ZtZ22 = np.zeros((0, 0))
            self.ZtZ12 = np.zeros((self.L1, self.k1, 0))
            self.Z2tX = np.zeros((0, self.p))
        self._kernel_args = self._build_kernel_args()
        self.groups = self._level_groups() if group_levels else None
        per_pair = self.L1 * self.k1 * (self.q2 + self.p + 2) * 3 + 3 * self.q2 * self.q2
        self.chunk = max(1, CHUNK_BUDGET // max(per_pair, 1))

    def _level_groups(self) -> np.ndarray | None:
        """Group index of each level of the first block, when levels with identical
        Z_l'Z_l are few enough that summing by group beats summing by level.

        Balanced designs (every subject sees the same conditions equally often) have one
        group: the criterion's cost then no longer grows with the number of levels.
        """
        flat = self.D1.reshape(self.L1, -1)
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        g, k1, q2 = uniq.shape[0], self.k1, self.q2
        if 2 * g * k1 > self.L1 or g * k1 * k1 * q2 * q2 > GROUPED_BUDGET:
            return None
        inverse = inverse.ravel()
        F, ZX = self.ZtZ12, self.Z1tX  # (L1, k1, q2), (L1, k1, p)
        Dg = uniq.reshape(g, k1, k1)
        ng = np.bincount(inverse, minlength=g).astype(float)

        def by_group(spec: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.stack([np.einsum(spec, a[inverse == j], b[inverse == j]) for j in range(g)])

        XXg = by_group("lai,lbj->abij", ZX, ZX)
        KXg = by_group("lar,lbc->abrc", F, ZX)
        K = by_group("lar,lbt->abrt", F, F)
        # the kernel weights these by the symmetric M_g: keep K_ab + K_ba for a <= b only
        Kg = np.zeros_like(K)
        for a in range(k1):
            Kg[:, a, a] = K[:, a, a]
            for b in range(a + 1, k1):
                Kg[:, a, b] = K[:, a, b] + K[:, b, a]
        self._grouped_args = tuple(np.ascontiguousarray(a) for a in (Dg, ng, XXg, KXg, Kg))
        return inverse

    def _build_kernel_args(self) -> dict:
        r1, c1 = self.blocks[0].tril
        b_off, b_L, b_k, b_toff, tr_r, tr_c, t_off = [], [], [], [], [], [], [0]
        toff = 0
        for b, off in zip(self.rest, self.offsets, strict=True):
            r, c = b.tril
            b_off.append(off)
            b_L.append(b.nlevels)
            b_k.append(b.k)
            b_toff.append(toff)
            toff += b.n_theta
            tr_r.extend(r)
            tr_c.extend(c)
            t_off.append(len(tr_r))
        i64 = np.int64
        c = np.ascontiguousarray
        return {
            # layout of the first block's Lambda
            "first": (self.k1, np.asarray(r1, i64), np.asarray(c1, i64)),
            # layout of the remaining blocks' Lambda
            "rest": tuple(np.array(a, i64) for a in (b_off, b_L, b_k, b_toff, tr_r, tr_c, t_off)),
            "XtX": c(self.XtX),
            "per_level": (c(self.D1), c(self.Z1tX)),
            "ZtZ12": c(self.ZtZ12),
            "remainder": (c(self.ZtZ22), c(self.Z2tX)),
        }

    def kernel_parts(
        self, thetas: np.ndarray, reps: np.ndarray, resp: Responses
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Compiled version of :meth:`parts`, also returning the reduced [X y] products.

        NaN marks a pair whose factorisation failed.
        """
        from lmmcore.kernels import criterion_parts

        thetas = np.ascontiguousarray(np.atleast_2d(thetas)[:, self.theta_perm], dtype=float)
        reps = np.ascontiguousarray(reps, dtype=np.int64)
        M = thetas.shape[0]
        ld, ldrx, r2 = np.empty(M), np.empty(M), np.empty(M)
        MW = np.empty((M, self.p + 1, self.p + 1))
        a = self._kernel_args
        ZtZ22, Z2tX = a["remainder"]
        outs = (ld, ldrx, r2, MW)
        if resp.grouped is not None:
            from lmmcore.kernels import criterion_parts_grouped

            XtY, Z2tY = resp.by_replicate[1:]
            criterion_parts_grouped(
                thetas, reps, *a["first"], *self._grouped_args, a["XtX"], XtY, resp.yty,
                *resp.grouped, ZtZ22, Z2tX, Z2tY, *a["rest"], *outs,
            )  # fmt: skip
            return ld, ldrx, r2, MW
        Z1tY, XtY, Z2tY = resp.by_replicate
        D1, Z1tX = a["per_level"]
        criterion_parts(
            thetas, reps, *a["first"], D1, Z1tX, Z1tY, a["XtX"], XtY, resp.yty, a["ZtZ12"],
            ZtZ22, Z2tX, Z2tY, *a["rest"], *outs,
        )  # fmt: skip
        return ld, ldrx, r2, MW

    # ----------------------------------------------------------------------------------
    def responses(self, Y: np.ndarray) -> Responses:
        """Cross-products of responses Y (n, B) with Z and X."""
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        Z1tY = np.asarray(self.Z1 @ Y).reshape(self.L1, self.k1, Y.shape[1])
        Z2tY = np.asarray(self.Z2t @ Y) if self.rest else np.zeros((0, Y.shape[1]))
        # compiled fixed loops: a replicate's numbers do not depend on the batch it is in
        from lmmcore.kernels import group_products, response_products

        B = Y.shape[1]
        XtY, yty = np.empty((self.p, B)), np.empty(B)
        response_products(np.ascontiguousarray(self.structure.X), np.ascontiguousarray(Y), XtY, yty)
        grouped = None
        if self.groups is not None:
            g, k1 = self._grouped_args[0].shape[0], self.k1
            zz = np.empty((B, g, k1, k1))
            Xz = np.empty((B, g, k1, k1, self.p))
            Fz = np.empty((B, g, k1, k1, self.q2))
            Z1tY = np.ascontiguousarray(Z1tY)
            group_products(Z1tY, self.groups, self.ZtZ12, self.Z1tX, zz, Xz, Fz)
            grouped = (zz, Xz, Fz)
        return Responses(Z1tY, Z2tY, XtY, yty, Y, grouped)

    def _lam(self, thetas: np.ndarray, block_index: int) -> np.ndarray:
        b = self.blocks[block_index]
        sl = self._slices[block_index]
        lam = np.zeros((thetas.shape[0], b.k, b.k))
        r, c = b.tril
        lam[:, r, c] = thetas[:, sl]
        return lam

    def _right_lam2(self, A: np.ndarray, lams: list[np.ndarray]) -> np.ndarray:
        """A (M, R, q2) -> A Lambda2."""
        out = np.empty_like(A)
        M, R = A.shape[0], A.shape[1]
        for b, off, lam in zip(self.rest, self.offsets, lams, strict=True):
            blk = A[:, :, off : off + b.q].reshape(M, R, b.nlevels, b.k)
            out[:, :, off : off + b.q] = np.einsum("mrlk,mkj->mrlj", blk, lam).reshape(M, R, b.q)
        return out

    def _left_lam2t(self, A: np.ndarray, lams: list[np.ndarray]) -> np.ndarray:
        """A (M, q2, C) -> Lambda2' A."""
        out = np.empty_like(A)
        M, C = A.shape[0], A.shape[2]
        for b, off, lam in zip(self.rest, self.offsets, lams, strict=True):
            blk = A[:, off : off + b.q, :].reshape(M, b.nlevels, b.k, C)
            out[:, off : off + b.q, :] = np.einsum("mki,mlkc->mlic", lam, blk).reshape(M, b.q, C)
        return out

    def _factor(self, thetas: np.ndarray, reps: np.ndarray, resp: Responses, full: bool):
        thetas = np.atleast_2d(thetas)[:, self.theta_perm]
        M = thetas.shape[0]
        p = self.p
        lam1 = self._lam(thetas, 0)
        # plain einsum loops (no BLAS): each pair's numbers do not depend on the batch size
        A11 = np.einsum("mlij,mjh->mlih", np.einsum("mki,lkj->mlij", lam1, self.D1), lam1)
        A11 += np.eye(self.k1)
        L11 = small_cholesky(A11)
        ld = 2.0 * np.log(np.diagonal(L11, axis1=-2, axis2=-1)).sum(axis=(1, 2))
        zy1 = np.moveaxis(resp.Z1tY[:, :, reps], 2, 0)[..., None]  # (M, L1, k1, 1)
        ZW1 = np.concatenate([np.broadcast_to(self.Z1tX, (M, *self.Z1tX.shape)), zy1], axis=3)
        R1 = np.einsum("mki,mlkc->mlic", lam1, ZW1)
        c1 = small_lower_solve(L11, R1)
        MW = np.empty((M, p + 1, p + 1))
        MW[:, :p, :p] = self.XtX
        MW[:, :p, p] = resp.XtY[:, reps].T
        MW[:, p, :p] = resp.XtY[:, reps].T
        MW[:, p, p] = resp.yty[reps]
        MW -= np.einsum("mlkc,mlkd->mcd", c1, c1)
        extra = {}
        if self.rest:
            lams = [self._lam(thetas, i + 1) for i in range(len(self.rest))]
            C = np.einsum("mki,lkr->mlir", lam1, self.ZtZ12)
            C = self._right_lam2(C.reshape(M, self.L1 * self.k1, self.q2), lams)
            L21 = small_lower_solve(L11, C.reshape(M, self.L1, self.k1, self.q2))
            G = self._left_lam2t(np.broadcast_to(self.ZtZ22, (M, self.q2, self.q2)), lams)
            G = self._right_lam2(G, lams)
            G += np.eye(self.q2)
            G -= np.einsum("mlkr,mlks->mrs", L21, L21)
            L22 = small_cholesky(G) if self.q2 <= SMALL_K else np.linalg.cholesky(G)
            ld += 2.0 * np.log(np.diagonal(L22, axis1=-2, axis2=-1)).sum(axis=1)
            ZW2 = np.concatenate(
                [np.broadcast_to(self.Z2tX, (M, self.q2, p)), resp.Z2tY[:, reps].T[:, :, None]],
                axis=2,
            )
            R2 = self._left_lam2t(ZW2, lams)
            R2 -= np.einsum("mlkr,mlkc->mrc", L21, c1)
            c2 = np.linalg.solve(L22, R2)
            MW -= np.einsum("mrc,mrd->mcd", c2, c2)
            if full:
                extra = dict(L21=L21, L22=L22, c2=c2, lams=lams)
        RM = small_cholesky(MW)
        r2 = RM[:, p, p] ** 2
        ldRX2 = 2.0 * np.log(np.diagonal(RM[:, :p, :p], axis1=-2, axis2=-1)).sum(axis=1)
        if full:
            extra.update(L11=L11, c1=c1, lam1=lam1, MW=MW)
        return ld, ldRX2, r2, extra

    def parts(
        self, thetas: np.ndarray, reps: np.ndarray, resp: Responses
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """log|L|^2, log|R_X|^2 and r^2 for each (theta, replicate) pair, in chunks."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        reps = np.asarray(reps, dtype=np.int64)
        M = thetas.shape[0]
        ld = np.empty(M)
        ldrx = np.empty(M)
        r2 = np.empty(M)
        for start in range(0, M, self.chunk):
            sl = slice(start, min(M, start + self.chunk))
            ld[sl], ldrx[sl], r2[sl], _ = self._factor(thetas[sl], reps[sl], resp, full=False)
        return ld, ldrx, r2

    def criterion_from_parts(
        self, ld: np.ndarray, ldrx: np.ndarray, r2: np.ndarray, reml: bool
    ) -> np.ndarray:
        if reml:
            nmp = self.n - self.p
            return ld + ldrx + nmp * (1.0 + LOG2PI + np.log(r2 / nmp))
        return ld + self.n * (1.0 + LOG2PI + np.log(r2 / self.n))

    def criterion(
        self, thetas: np.ndarray, reps: np.ndarray, resp: Responses, reml: bool
    ) -> np.ndarray:
        """Profiled REML criterion or ML deviance for each (theta, replicate) pair.

        Returns +inf where the factorisation fails (a theta outside the valid region).
        """
        ld, ldrx, r2, _ = self.kernel_parts(thetas, np.atleast_1d(reps), resp)
        f = self.criterion_from_parts(ld, ldrx, r2, reml)
        return np.where(np.isfinite(f), f, np.inf)

    def deviance_varpar(
        self, theta: np.ndarray, sigma: float, rep: int, resp: Responses, reml: bool
    ) -> float:
        """-2 log-likelihood (REML or ML) at (theta, sigma), beta profiled, sigma not.

        This is lmerTest's ``devfun_vp``, used for the Satterthwaite degrees of freedom.
        """
        ld, ldrx, r2 = (a[0] for a in self.parts(theta[None], np.array([rep]), resp))
        s2 = sigma * sigma
        if reml:
            return float(ld + ldrx + (self.n - self.p) * (LOG2PI + np.log(s2)) + r2 / s2)
        return float(ld + self.n * (LOG2PI + np.log(s2)) + r2 / s2)

    def solve(self, theta: np.ndarray, rep: int, resp: Responses) -> Solution:
        """Fixed effects, random effects and factors at one (theta, replicate) pair."""
        theta = np.asarray(theta, dtype=float)
        ld, ldrx, r2, ex = self._factor(theta[None], np.array([rep]), resp, full=True)
        p = self.p
        MW = ex["MW"][0]
        RXtRX = MW[:p, :p]
        beta = np.linalg.solve(RXtRX, MW[:p, p])
        c1 = ex["c1"][0]
        d1 = c1[..., p] - c1[..., :p] @ beta  # (L1, k1)
        L11 = ex["L11"][0]
        if self.rest:
            c2 = ex["c2"][0]
            d2 = c2[:, p] - c2[:, :p] @ beta
            b2 = np.linalg.solve(ex["L22"][0].T, d2)
            d1 = d1 - np.einsum("lkr,r->lk", ex["L21"][0], b2)
        else:
            b2 = np.zeros(0)
        b1 = np.linalg.solve(np.swapaxes(L11, -1, -2), d1[..., None])[..., 0]
        u1 = np.einsum("kj,lj->lk", ex["lam1"][0], b1)
        us, bs = [u1.ravel()], [b1.ravel()]
        for blk, off, lam in zip(self.rest, self.offsets, ex.get("lams", []), strict=False):
            bb = b2[off : off + blk.q].reshape(blk.nlevels, blk.k)
            bs.append(bb.ravel())
            us.append(np.einsum("kj,lj->lk", lam[0], bb).ravel())
        # back to the structure's (lme4's) block order
        back = np.argsort(self.order)
        b = np.concatenate([bs[i] for i in back])
        u = np.concatenate([us[i] for i in back])
        return Solution(theta, beta, float(r2[0]), float(ld[0]), float(ldrx[0]), RXtRX, b, u)


def warm_up() -> None:
    """Compile the numba kernels now (they are cached on disk after the first time).

    The first criterion evaluation in a fresh installation compiles the kernel, which takes
    a few seconds; an app calls this once at start-up so that no user waits mid-click.

    Example:
        >>> warm_up()
    """
    import pandas as pd

    from lmmcore.structure import build_structure

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "y": rng.normal(size=24),
            "x": np.tile([-0.5, 0.5], 12),
            "g": np.repeat(np.arange(6), 4),
            "h": np.tile(np.arange(4), 6),
        }
    )
    structure = build_structure("y ~ x + (1 + x | g) + (1 | h)", df)
    for grouped in (True, False):  # both kernels: balanced and unbalanced designs
        eng = Engine(structure, group_levels=grouped)
        resp = eng.responses(df[["y"]].to_numpy())
        eng.criterion(eng.structure.theta0[None], np.array([0]), resp, reml=True)
