"""The profiled REML/ML criterion, evaluated for a batch of (theta, response) pairs.

This is lme4's ``mkLmerDevfun`` written for many responses at once. The cross-products
[Z X]'[Z X] are computed once per design; each response only adds Z'y, X'y and y'y. For a
batch of M pairs (theta_m, y_m) the penalised system

    L L' = Lambda' Z' Z Lambda + I

is factored block by block, as MixedModels.jl blocks it: the term eliminated first (the
one that leaves the smallest remainder) gives a block-diagonal part (one k x k Cholesky
per level), its coupling with the other terms is sparse (each level meets only the
columns of Z2 its rows touch), and the other terms form one dense Schur complement. One
Cholesky factor of that remainder bordered by the reduced [X y] cross-product gives the
rest of log|L|^2, log|R_X|^2 and the penalised residual sum of squares r^2 (see
:mod:`lmmcore.kernels`), hence the profiled criterion

    ML:   log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p)))

Levels of the first block with identical Z_l'Z_l (in a balanced design, all of them) share
one k x k factor; the engine then sums over these groups of levels with products precomputed
per design and per response, so that a pair costs the same for 30 or 3,000 subjects
(``Engine.groups``; ``group_levels=False`` forces the level-by-level kernel). When,
besides, the levels meet the one other term in only a few ways (each subject sees the
items in one of a few counterbalanced arrangements), the dense remainder is a block
diagonal matrix less a low-rank one and is never formed (``Engine.lowrank``, see
:mod:`lmmcore.lowrank`; ``low_rank=False`` keeps the dense remainder).

A single fit is this engine with one response column: there is one fitter, not two.
Designs whose dense remainder would exceed ``MAX_DENSE_BYTES`` are refused up front.

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
import scipy.linalg as sla

from lmmcore.errors import DataError
from lmmcore.limits import MAX_DENSE_BYTES
from lmmcore.structure import ModelStructure

LOG2PI = np.log(2.0 * np.pi)
#: float64 entries per pair allowed in one chunk of work (about 64 MB).
CHUNK_BUDGET = 8_000_000
#: float64 entries allowed for the per-group products of a grouped engine (32 MB)
GROUPED_BUDGET = 4_000_000
#: the by-group kernel streams precomputed products through long vectorised loops, the
#: per-level one runs short scalar loops: per multiply-add the first is 2-3x faster
#: (crossed 30 x 20 with 10% of the rows dropped, 10 groups of 30 subjects: 5.7 vs 14.5 us
#: per criterion evaluation at 0.56 times the multiply-adds)
GROUPED_SPEEDUP = 2.0
#: the per-level kernel's fixed cost per level, in its multiply-adds (sleepstudy: ~60 ns a
#: level); the by-group kernel's per group is about twice that, and it takes at most half
#: as many groups as levels (with more, the fixed costs alone make it slower)
LEVEL_OVERHEAD = 50.0
#: a first block whose levels meet at least this fraction of the columns of Z2 is
#: eliminated along whole rows (vectorised inner loops) rather than over each level's own
DENSE_ROWS = 0.25


@dataclass(frozen=True, eq=False)
class Responses:
    """Cross-products of a block of B responses with the design.

    They are those of the least-squares residuals Y - X gamma (gamma = (X'X)^-1 X'Y): the
    profiled criterion does not change when a multiple of X is subtracted from y (beta
    absorbs it), and r^2 then no longer comes out of the difference of two large numbers
    (y'y and what the model explains), which the finite differences of the Newton steps
    and of the degrees of freedom would amplify. The kernels add gamma back, so that the
    reduced [X y] products they return are those of Y itself.
    """

    Z1tY: np.ndarray  # (L1, k1, B)
    Z2tY: np.ndarray  # (q2, B)
    XtY: np.ndarray  # (p, B)
    yty: np.ndarray  # (B,)
    Y: np.ndarray  # (n, B), the responses themselves
    gamma: np.ndarray  # (B, p)
    #: for an engine with level groups (see ``Engine.groups``): per replicate and group,
    #: sums over the group's levels l of z_l z_l', (Z_l'X)' z_l and (Z_l'Z2)' z_l, where
    #: z_l = Z_l'y; shapes (B, g, k1, k1), (B, g, k1, k1, p), (B, g, k1, k1, q2)
    grouped: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: for an engine with low-rank groups (see ``Engine.lowrank``): per replicate and
    #: group, sums of z_l z_l', (Z_l'X)' z_l and z_l (:func:`lmmcore.lowrank.group_sums`)
    lowrank: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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


def _columns(b, off: int) -> np.ndarray:
    """(n, k): the column of Z (its term starting at ``off``) of each entry T[i, j]."""
    return np.ascontiguousarray(off + b.codes[:, None] * b.k + np.arange(b.k)[None, :])


def _level_pattern(codes1, T1, L1, cols2, T2, q2):
    """Z1'Z2 by level of the first block: ``ptr`` (L1 + 1), the columns of Z2 each level
    meets (``cols``, ascending within a level) and their values ``F`` (nnz, k1),
    ``F[t, a] = (Z1'Z2)[l k1 + a, cols[t]]``; from the rows' entries, no sparse product."""
    k1 = T1.shape[1]
    keys, a, vals = [], [], []
    for cb, Tb in zip(cols2, T2, strict=True):
        kb = cb.shape[1]
        keys.append(
            np.broadcast_to(
                (codes1[:, None] * q2)[:, None, :] + cb[:, None, :], (codes1.size, k1, kb)
            ).ravel()
        )
        a.append(np.broadcast_to(np.arange(k1)[None, :, None], (codes1.size, k1, kb)).ravel())
        vals.append((T1[:, :, None] * Tb[:, None, :]).ravel())
    if not keys:
        return np.zeros(L1 + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, k1))
    uniq, inv = np.unique(np.concatenate(keys), return_inverse=True)
    F = np.zeros((uniq.size, k1))
    np.add.at(F, (inv.ravel(), np.concatenate(a)), np.concatenate(vals))
    ptr = np.zeros(L1 + 1, dtype=np.int64)
    np.cumsum(np.bincount(uniq // q2, minlength=L1), out=ptr[1:])
    return ptr, (uniq % q2).astype(np.int64), F


def dense_bytes(q2: int, p: int) -> int:
    """Bytes of the dense matrices one criterion evaluation holds for a remainder of q2
    random effects and p fixed effects: Z2'Z2, the Schur complement S, Omega and the copy
    LAPACK factors (four (q2 + p + 1)^2 float64 arrays)."""
    return 4 * 8 * (q2 + p + 1) ** 2


def _check_dense(eng: Engine) -> None:
    """DataError, before anything dense is allocated, when the remainder is too big."""
    need = dense_bytes(eng.q2, eng.p)
    if need <= MAX_DENSE_BYTES:
        return
    first = eng.blocks[0]
    rest = ", ".join(f"{b.name!r} ({b.nlevels} levels x {b.k})" for b in eng.rest)
    raise DataError(
        f"This design is too big for lmmcore's dense remainder: after eliminating "
        f"{first.name!r} ({first.nlevels} levels), the random effects of {rest} form a dense "
        f"{eng.q2:,} x {eng.q2:,} block, and one evaluation would hold {need / 2**30:.1f} GiB "
        f"(cap: lmmcore.limits.MAX_DENSE_BYTES = {MAX_DENSE_BYTES / 2**30:.1f} GiB). Use fewer "
        "levels in the crossed grouping factors (or fewer random slopes on them)."
    )


#: the kernel's outputs for the factor, when it is not kept
_NO_STORE = (False, np.empty((0, 0, 0)), np.empty((0, 0)), np.empty((0, 0, 0)), np.empty((0, 0)))


class Engine:
    """Profiled criterion for a fixed design (X, Z); see the module docstring.

    Raises DataError up front when the dense remainder of the factorisation would take
    more than ``MAX_DENSE_BYTES`` (see :func:`dense_bytes`).
    """

    def __init__(self, structure: ModelStructure, group_levels: bool = True, low_rank: bool = True):
        s = structure
        self.structure = s
        self.n, self.p = s.n, s.p
        X = s.X
        # Eliminate first the block that makes the dense remainder cheapest (often, but
        # not always, lme4's first: the factor with most levels). Theta stays in lme4's
        # order outside the engine; inside, it is permuted to this block order.
        self.order = _elimination_order(s)
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
        self.rest = self.blocks[1:]
        self.offsets = []
        off = 0
        for b in self.rest:
            self.offsets.append(off)
            off += b.q
        self.q2 = off
        _check_dense(self)
        codes, T = b1.codes, b1.T
        D1 = np.zeros((self.L1, self.k1, self.k1))
        np.add.at(D1, codes, T[:, :, None] * T[:, None, :])
        self.D1 = D1
        Z1tX = np.zeros((self.L1, self.k1, self.p))
        np.add.at(Z1tX, codes, T[:, :, None] * X[:, None, :])
        self.Z1tX = Z1tX
        self.XtX = X.T @ X
        self._XtX_inv = np.ascontiguousarray(np.linalg.inv(self.XtX))
        # Z's entries: row i of term b holds T_b[i, a] in column cols_b[i, a]
        self._cols1 = _columns(b1, 0)
        self._cols2 = [_columns(b, off) for b, off in zip(self.rest, self.offsets, strict=True)]
        self.ZtZ22 = np.zeros((self.q2, self.q2))
        self.Z2tX = np.zeros((self.q2, self.p))
        for cb, b in zip(self._cols2, self.rest, strict=True):
            np.add.at(self.Z2tX, cb, b.T[:, :, None] * X[:, None, :])
            for cc, c in zip(self._cols2, self.rest, strict=True):
                np.add.at(
                    self.ZtZ22, (cb[:, :, None], cc[:, None, :]), b.T[:, :, None] * c.T[:, None, :]
                )
        self.ptr, self.cols, self.F = _level_pattern(
            codes, T, self.L1, self._cols2, [b.T for b in self.rest], self.q2
        )
        self._kernel_args = self._build_kernel_args()
        self.groups = self._level_groups() if group_levels else None
        self.lowrank = self._lowrank_groups() if group_levels and low_rank else None
        per_pair = self.L1 * self.k1 * (self.q2 + self.p + 2) * 3 + 3 * self.q2 * self.q2
        self.chunk = max(1, CHUNK_BUDGET // max(per_pair, 1))

    @cached_property
    def ZtZ12(self) -> np.ndarray:
        """Z1'Z2 as a dense (L1, k1, q2) array, for the numpy reference path only."""
        if self.L1 * self.k1 * self.q2 > CHUNK_BUDGET:
            raise DataError(
                f"The numpy reference path holds Z1'Z2 densely ({self.L1 * self.k1} x "
                f"{self.q2}); it is for small designs. Use the compiled kernel "
                "(Engine.kernel_parts) for this one."
            )
        return self._dense_levels(np.arange(self.L1))

    def _per_level_cost(self) -> float:
        """Cost of a criterion evaluation in the per-level kernel, in its multiply-adds:
        the updates of S and R, and a fixed cost per level."""
        k1, p1 = self.k1, self.p + 1
        counts = np.diff(self.ptr).astype(float)
        if self._kernel_args["dense_rows"]:  # whole rows, up to each column of the level
            s_update = float(np.sum(self.cols + 1.0))
        else:
            s_update = float(np.sum(counts * (counts + 1) / 2))
        return k1 * (s_update + p1 * counts.sum()) + LEVEL_OVERHEAD * self.L1

    def _level_groups(self) -> np.ndarray | None:
        """Group index of each level of the first block, when levels with identical
        Z_l'Z_l are few enough that summing by group beats summing by level (see
        ``GROUPED_SPEEDUP``).

        Balanced designs (every subject sees the same conditions equally often) have one
        group: the criterion's cost then no longer grows with the number of levels. With
        rows missing, levels with the same counts per condition still share a group.
        """
        flat = self.D1.reshape(self.L1, -1)
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        g, k1, q2 = uniq.shape[0], self.k1, self.q2
        nab, ntri = k1 * (k1 + 1) // 2, q2 * (q2 + 1) // 2
        streamed = g * (nab * ntri + k1 * k1 * q2 * (self.p + 1))
        grouped_cost = streamed / GROUPED_SPEEDUP + 2 * LEVEL_OVERHEAD * g
        if (
            2 * g > self.L1
            or g * nab * ntri > GROUPED_BUDGET
            or grouped_cost > self._per_level_cost()
        ):
            return None
        inverse = inverse.ravel()
        ZX, p = self.Z1tX, self.p  # (L1, k1, p)
        Dg = uniq.reshape(g, k1, k1)
        ng = np.bincount(inverse, minlength=g).astype(float)
        XXg = np.zeros((g, k1, k1, p, p))
        KXg = np.zeros((g, k1, k1, q2, p))
        Kg = np.zeros((g, nab, ntri))  # packed lower triangles
        lower = np.tril_indices(q2)
        per_chunk = max(1, CHUNK_BUDGET // max(k1 * q2, 1))
        for j in range(g):
            levels = np.flatnonzero(inverse == j)
            for c0 in range(0, levels.size, per_chunk):
                rows = levels[c0 : c0 + per_chunk]
                Fd, ZXc = self._dense_levels(rows), ZX[rows]  # (c, k1, q2), (c, k1, p)
                XXg[j] += np.einsum("lai,lbj->abij", ZXc, ZXc)
                KXg[j] += np.einsum("lar,lbc->abrc", Fd, ZXc, optimize=True)
                ab = 0
                for a in range(k1):
                    for b in range(a, k1):  # weighted by the symmetric M_g: K_ab + K_ba
                        K = Fd[:, a].T @ Fd[:, b]
                        Kg[j, ab] += (K if a == b else K + K.T)[lower]
                        ab += 1
        self._grouped_args = tuple(np.ascontiguousarray(a) for a in (Dg, ng, XXg, KXg, Kg))
        return inverse

    def _lowrank_groups(self) -> np.ndarray | None:
        """Group index of each level of the first block when the levels fall in groups
        with the same Z_l'Z_l and the same Z_l'Z2, the other random effects are one term
        and the groups' rows r = groups x k1 are at most half its columns q2 (a pair then
        costs O(q2 r^2) instead of O(q2^3)); None otherwise.
        """
        if len(self.rest) != 1:
            return None
        L1, k1, p, ptr = self.L1, self.k1, self.p, self.ptr
        # a level's key: its Z_l'Z_l and its sparse Z_l'Z2 (columns ascending)
        seen: dict[bytes, int] = {}
        inverse = np.empty(L1, dtype=np.int64)
        for lv in range(L1):
            nz = slice(ptr[lv], ptr[lv + 1])
            key = self.D1[lv].tobytes() + self.cols[nz].tobytes() + self.F[nz].tobytes()
            inverse[lv] = seen.setdefault(key, len(seen))
            if 2 * len(seen) > L1 or 2 * len(seen) * k1 > self.q2:
                return None
        U = len(seen)
        first = np.array([np.flatnonzero(inverse == u)[0] for u in range(U)])
        C = self._dense_levels(first)  # (U, k1, q2)
        ZX = self.Z1tX
        nu = np.bincount(inverse, minlength=U).astype(float)
        SX = np.zeros((U, k1, p))
        np.add.at(SX, inverse, ZX)
        XX = np.zeros((U, k1, k1, p, p))
        np.add.at(XX, inverse, np.einsum("lai,lbj->labij", ZX, ZX))
        args = (self.D1[first], nu, C, SX, XX)
        self._lowrank_args = tuple(np.ascontiguousarray(a) for a in args)
        return inverse

    def _dense_levels(self, rows: np.ndarray) -> np.ndarray:
        """Z_l'Z2 (len(rows), k1, q2) for the levels ``rows``, densely."""
        counts = self.ptr[rows + 1] - self.ptr[rows]
        first = np.repeat(self.ptr[rows] - np.cumsum(counts) + counts, counts)
        nz = first + np.arange(counts.sum())
        out = np.zeros((rows.size, self.k1, self.q2))
        out[np.repeat(np.arange(rows.size), counts), :, self.cols[nz]] = self.F[nz]
        return out

    def _build_kernel_args(self) -> dict:
        r1, c1 = self.blocks[0].tril
        b_toff, tr_r, tr_c, t_off, lb_off, lb_blk = [], [], [], [0], [], []
        toff = 0
        for i, (b, off) in enumerate(zip(self.rest, self.offsets, strict=True)):
            r, c = b.tril
            b_toff.append(toff)
            toff += b.n_theta
            tr_r.extend(r)
            tr_c.extend(c)
            t_off.append(len(tr_r))
            lb_off.extend(off + b.k * np.arange(b.nlevels))
            lb_blk.extend([i] * b.nlevels)
        lb_off.append(self.q2)
        i64 = np.int64
        c = np.ascontiguousarray
        return {
            # layout of the first block's Lambda
            "first": (self.k1, np.asarray(r1, i64), np.asarray(c1, i64)),
            # layout of the remaining blocks' Lambda: theta -> per-term factors, and the
            # offsets and terms of its diagonal blocks
            "rest": tuple(np.array(a, i64) for a in (b_toff, tr_r, tr_c, t_off, lb_off, lb_blk)),
            "XtX": c(self.XtX),
            "per_level": (c(self.D1), c(self.Z1tX)),
            "pattern": (c(self.ptr), c(self.cols), c(self.F)),
            # eliminate along whole rows where the pattern is mostly full
            "dense_rows": bool(self.cols.size >= DENSE_ROWS * self.L1 * self.q2),
            "remainder": (c(self.ZtZ22), c(self.Z2tX)),
        }

    def _per_level(self, thetas, reps, resp, outs, store) -> None:
        from lmmcore.kernels import criterion_parts

        a = self._kernel_args
        Z1tY, XtY, Z2tY = resp.by_replicate
        ZtZ22, Z2tX = a["remainder"]
        criterion_parts(
            thetas, reps, *a["first"], *a["per_level"], Z1tY, *a["pattern"], a["dense_rows"],
            a["XtX"], XtY, resp.yty, resp.gamma, ZtZ22, Z2tX, Z2tY, *a["rest"], *outs, *store,
        )  # fmt: skip

    def kernel_parts(
        self, thetas: np.ndarray, reps: np.ndarray, resp: Responses
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Compiled version of :meth:`parts`, also returning the reduced [X y] products.

        NaN marks a pair whose factorisation failed.
        """
        thetas = np.ascontiguousarray(np.atleast_2d(thetas)[:, self.theta_perm], dtype=float)
        reps = np.ascontiguousarray(reps, dtype=np.int64)
        M = thetas.shape[0]
        ld, ldrx, r2 = np.empty(M), np.empty(M), np.empty(M)
        MW = np.empty((M, self.p + 1, self.p + 1))
        outs = (ld, ldrx, r2, MW)
        a = self._kernel_args
        ZtZ22, Z2tX = a["remainder"]
        if resp.lowrank is not None:
            from lmmcore.lowrank import criterion_parts_lowrank

            XtY, Z2tY = resp.by_replicate[1:]
            criterion_parts_lowrank(
                thetas, reps, *a["first"], *self._lowrank_args, a["XtX"], XtY, resp.yty,
                resp.gamma, *resp.lowrank, ZtZ22, Z2tX, Z2tY, *a["rest"], *outs,
            )  # fmt: skip
            return ld, ldrx, r2, MW
        if resp.grouped is None:
            self._per_level(thetas, reps, resp, outs, _NO_STORE)
            return ld, ldrx, r2, MW
        from lmmcore.kernels import criterion_parts_grouped

        XtY, Z2tY = resp.by_replicate[1:]
        criterion_parts_grouped(
            thetas, reps, *a["first"], *self._grouped_args, a["XtX"], XtY, resp.yty,
            resp.gamma, *resp.grouped, ZtZ22, Z2tX, Z2tY, *a["rest"], *outs,
        )  # fmt: skip
        return ld, ldrx, r2, MW

    # ----------------------------------------------------------------------------------
    def responses(self, Y: np.ndarray) -> Responses:
        """Cross-products of responses Y (n, B) with Z and X."""
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        # compiled fixed loops: a replicate's numbers do not depend on the batch it is in
        from lmmcore.kernels import (
            block_products,
            group_products,
            least_squares_residuals,
            response_products,
        )

        B = Y.shape[1]
        X = np.ascontiguousarray(self.structure.X)
        XtY, yty = np.empty((self.p, B)), np.empty(B)
        gamma, Yc = np.empty((B, self.p)), np.empty((self.n, B))
        Y = np.ascontiguousarray(Y)
        response_products(X, Y, XtY, yty)
        least_squares_residuals(X, self._XtX_inv, Y, XtY, gamma, Yc)
        response_products(X, Yc, XtY, yty)
        Z1tY = np.zeros((B, self.L1 * self.k1))
        block_products(self._cols1, self.blocks[0].T, Yc, Z1tY)
        Z2tY = np.zeros((B, self.q2))
        for cb, b in zip(self._cols2, self.rest, strict=True):
            block_products(cb, b.T, Yc, Z2tY)
        # (L1, k1, B) and (q2, B) views of replicate-major arrays
        Z1tY = np.moveaxis(Z1tY.reshape(B, self.L1, self.k1), 0, 2)
        Z2tY = Z2tY.T
        grouped = lowrank = None
        if self.lowrank is not None:
            from lmmcore.lowrank import group_sums

            U, k1 = self._lowrank_args[0].shape[0], self.k1
            zz, Xz = np.empty((B, U, k1, k1)), np.empty((B, U, k1, k1, self.p))
            sz = np.empty((B, U, k1))
            group_sums(Z1tY, self.lowrank, self.Z1tX, zz, Xz, sz)
            lowrank = (zz, Xz, sz)
        elif self.groups is not None:
            g, k1 = self._grouped_args[0].shape[0], self.k1
            zz = np.empty((B, g, k1, k1))
            Xz = np.empty((B, g, k1, k1, self.p))
            Fz = np.empty((B, g, k1, k1, self.q2))
            a = self._kernel_args["pattern"]
            group_products(Z1tY, self.groups, *a, self.Z1tX, zz, Xz, Fz)
            grouped = (zz, Xz, Fz)
        return Responses(Z1tY, Z2tY, XtY, yty, Y, gamma, grouped, lowrank)

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
        ld, ldrx, r2, _ = self.kernel_parts(theta[None], np.array([rep]), resp)
        return self.deviance_from_parts(float(ld[0]), float(ldrx[0]), float(r2[0]), sigma, reml)

    def deviance_from_parts(
        self, ld: float, ldrx: float, r2: float, sigma: float, reml: bool
    ) -> float:
        """:meth:`deviance_varpar` from the parts at theta."""
        s2 = sigma * sigma
        if reml:
            return float(ld + ldrx + (self.n - self.p) * (LOG2PI + np.log(s2)) + r2 / s2)
        return float(ld + self.n * (LOG2PI + np.log(s2)) + r2 / s2)

    def solve(self, theta: np.ndarray, rep: int, resp: Responses) -> Solution:
        """Fixed effects, random effects and factors at one (theta, replicate) pair.

        The compiled per-level kernel keeps its factor (per level L_l, E_l and c1_l, and
        Omega's Cholesky factor); back-substitution through it gives beta, then the
        spherical random effects of the remaining blocks, then of the first.
        """
        theta = np.asarray(theta, dtype=float)
        th = np.ascontiguousarray(theta[self.theta_perm][None])
        p, q2, L1, k1 = self.p, self.q2, self.L1, self.k1
        ld, ldrx, r2 = np.empty(1), np.empty(1), np.empty(1)
        MW = np.empty((1, p + 1, p + 1))
        L11, C = np.empty((L1, k1, k1)), np.empty((L1, k1, p + 1))
        E, Om = np.empty_like(self.F), np.empty((q2 + p + 1, q2 + p + 1))
        store = (True, L11, E, C, Om)
        self._per_level(th, np.array([rep], dtype=np.int64), resp, (ld, ldrx, r2, MW), store)
        if not np.isfinite(ld[0]):
            raise np.linalg.LinAlgError(f"the penalised system is not positive definite at {theta}")
        Om = np.tril(Om)  # the kernel leaves the upper triangle as it was
        RXtRX = MW[0, :p, :p].copy()
        beta = np.linalg.solve(RXtRX, MW[0, :p, p])
        beta_c = beta - resp.gamma[rep]  # C and Omega hold the least-squares residuals'
        d1 = C[..., p] - C[..., :p] @ beta_c  # (L1, k1)
        bs, us = [], []
        if self.rest:
            c2 = Om[q2:, :q2].T  # L22^-1 Lambda2' R
            b2 = sla.solve_triangular(
                Om[:q2, :q2], c2[:, p] - c2[:, :p] @ beta_c, lower=True, trans="T"
            )
            for i, (blk, off) in enumerate(zip(self.rest, self.offsets, strict=True)):
                bb = b2[off : off + blk.q].reshape(blk.nlevels, blk.k)
                bs.append(bb.ravel())
                us.append((bb @ self._lam(th, i + 1)[0].T).ravel())
            # L21 b2 = E_l Lambda2 b2 = E_l u2 on each level's columns
            u2 = np.concatenate(us)
            level = np.repeat(np.arange(L1), np.diff(self.ptr))
            np.subtract.at(d1, level, E * u2[self.cols][:, None])
        b1 = np.linalg.solve(np.swapaxes(L11, -1, -2), d1[..., None])[..., 0]
        bs.insert(0, b1.ravel())
        us.insert(0, (b1 @ self._lam(th, 0)[0].T).ravel())
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
