"""Compiled (numba) kernels for the profiled criterion of many (theta, response) pairs.

``criterion_parts`` sums over the levels of the first block; ``criterion_parts_grouped``
over groups of levels with identical Z_l'Z_l (balanced designs); ``response_products`` and
``group_products`` compute what each response adds.

The same algebra as :meth:`lmmcore.engine.Engine._factor` (which stays as the readable
numpy reference and is used for single solutions), fused into one loop per pair so that
the small per-level blocks never touch Python. Every pair is computed on its own, so a
pair's numbers do not depend on the batch it is in.

One rearrangement makes the kernel fast: the Schur complement of the first block,

    G = Lambda2' Z2'Z2 Lambda2 + I - sum_l C_l' C_l,   C_l = A_l^-1 Lambda1' Z1_l'Z2 Lambda2,

is formed as Lambda2' (Z2'Z2 - E'E) Lambda2 + I with E stacking A_l^-1 Lambda1' Z1_l'Z2 over
the levels l, so that Lambda2 is applied once per pair instead of once per level, and
E'E (together with the [X y] products, one matrix product) goes to BLAS when it is large.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _chol_inplace(A: np.ndarray) -> bool:
    """Lower Cholesky factor in place (upper part left as is); False if not PD."""
    n = A.shape[0]
    for j in range(n):
        d = A[j, j]
        for k in range(j):
            d -= A[j, k] * A[j, k]
        if not d > 0.0:
            return False
        d = np.sqrt(d)
        A[j, j] = d
        for i in range(j + 1, n):
            s = A[i, j]
            for k in range(j):
                s -= A[i, k] * A[j, k]
            A[i, j] = s / d
    return True


@njit(cache=True)
def _forward(L: np.ndarray, B: np.ndarray) -> None:
    """Solve L X = B in place of B (L lower triangular)."""
    n, c = B.shape
    for i in range(n):
        for j in range(c):
            s = B[i, j]
            for k in range(i):
                s -= L[i, k] * B[k, j]
            B[i, j] = s / L[i, i]


@njit(cache=True)
def _fill_lams(th: np.ndarray, b_toff, tr_r, tr_c, t_off, lams: np.ndarray) -> None:
    """Per block of Lambda2, its k x k lower-triangular factor from theta."""
    lams[:] = 0.0
    for b in range(t_off.shape[0] - 1):
        for t in range(t_off[b], t_off[b + 1]):
            lams[b, tr_r[t], tr_c[t]] = th[b_toff[b] + t - t_off[b]]


#: above this many columns of [E | c], products and the Cholesky factor of G go to BLAS
#: and LAPACK; below it, plain loops are faster than the library calls' overhead
BLAS_MIN = 48


@njit(cache=True)
def _gram(W: np.ndarray, P: np.ndarray) -> None:
    """P = W'W: BLAS when large, else rank-one updates of the lower triangle, mirrored."""
    m, q = W.shape
    if q >= BLAS_MIN:
        P[:, :] = np.dot(W.T, W)
        return
    P[:, :] = 0.0
    for a in range(m):
        for r in range(q):
            war = W[a, r]
            for t in range(r + 1):
                P[r, t] += war * W[a, t]
    for r in range(q):
        for t in range(r):
            P[t, r] = P[r, t]


@njit(cache=True)
def _chol_big(G: np.ndarray) -> bool:
    """Lower Cholesky factor of G in place; LAPACK for large G. False if not PD."""
    if G.shape[0] < BLAS_MIN:
        return _chol_inplace(G)
    try:
        L = np.linalg.cholesky(G)
    except Exception:  # noqa: BLE001 (numba raises LinAlgError for a non-PD matrix)
        return False
    G[:, :] = L
    return True


@njit(cache=True)
def _sandwich_lam2(S: np.ndarray, lams: np.ndarray, b_off, b_L, b_k, T, out) -> None:
    """out = Lambda2' S Lambda2 for symmetric S (Lambda2 block diagonal: kron(I_L, lam_b)).

    Row operations only: T = Lambda2' S, then out = Lambda2' T' (= (T Lambda2)' = T
    Lambda2 by symmetry). When every block is a scalar (k = 1), one scaling pass.
    """
    q2 = S.shape[0]
    scalar = True
    for b in range(b_k.shape[0]):
        scalar = scalar and b_k[b] == 1
    if scalar:
        d = np.empty(q2)
        for b in range(b_off.shape[0]):
            for lv in range(b_L[b]):
                d[b_off[b] + lv] = lams[b, 0, 0]
        for r in range(q2):
            dr = d[r]
            for t in range(q2):
                out[r, t] = dr * S[r, t] * d[t]
        return
    _lam2t_rows(S, lams, b_off, b_L, b_k, T)
    for r in range(q2):
        for t in range(r):
            T[r, t], T[t, r] = T[t, r], T[r, t]
    _lam2t_rows(T, lams, b_off, b_L, b_k, out)


@njit(cache=True)
def _lam2t_rows(M: np.ndarray, lams: np.ndarray, b_off, b_L, b_k, out: np.ndarray) -> None:
    """out = Lambda2' M."""
    cols = M.shape[1]
    for b in range(b_off.shape[0]):
        k = b_k[b]
        lam = lams[b]
        for lv in range(b_L[b]):
            base = b_off[b] + lv * k
            for j in range(k):
                for c in range(cols):
                    out[base + j, c] = lam[j, j] * M[base + j, c]
                for i in range(j + 1, k):
                    lij = lam[i, j]
                    for c in range(cols):
                        out[base + j, c] += lij * M[base + i, c]


@njit(cache=True)
def criterion_parts(
    thetas,
    reps,
    k1,
    tr1_r,
    tr1_c,
    D1,
    Z1tX,
    Z1tY,
    XtX,
    XtY,
    yty,
    ZtZ12,
    ZtZ22,
    Z2tX,
    Z2tY,
    b_off,
    b_L,
    b_k,
    b_toff,
    tr_r,
    tr_c,
    t_off,
    out_ld,
    out_ldrx,
    out_r2,
    out_MW,
):
    """log|L|^2, log|R_X|^2, r^2 and the reduced [X y] cross-product for each pair.

    The response cross-products come replicate-major (Z1tY (B, L1, k1), XtY (B, p),
    Z2tY (B, q2)) so that one pair reads contiguous memory.

    A pair whose factorisation fails gets NaN.
    """
    M = thetas.shape[0]
    L1 = D1.shape[0]
    p = XtX.shape[0]
    q2 = ZtZ22.shape[0]
    n1 = tr1_r.shape[0]
    w = q2 + p + 1
    kmax = 1
    for b in range(b_k.shape[0]):
        kmax = max(kmax, b_k[b])
    lams2 = np.zeros((b_k.shape[0], kmax, kmax))
    lam = np.zeros((k1, k1))
    MW = np.empty((p + 1, p + 1))
    W = np.empty((L1 * k1, w))  # [E | c1] over all levels of the first block
    P = np.empty((w, w))
    S = np.empty((q2, q2))
    T = np.empty((q2, q2))
    G = np.empty((q2, q2))
    Rr = np.empty((q2, p + 1))
    R2 = np.empty((q2, p + 1))
    A = np.empty((k1, k1))
    for m in range(M):
        th = thetas[m]
        rep = reps[m]
        lam[:] = 0.0
        for t in range(n1):
            lam[tr1_r[t], tr1_c[t]] = th[t]
        ld = 0.0
        dprod = 1.0
        failed = False
        for lv in range(L1):
            # A = lam' D lam + I and its Cholesky factor
            for i in range(k1):
                for h in range(k1):
                    s = 0.0
                    for a in range(k1):
                        for b in range(k1):
                            s += lam[a, i] * D1[lv, a, b] * lam[b, h]
                    A[i, h] = s + (1.0 if i == h else 0.0)
            if not _chol_inplace(A):
                failed = True
                break
            for i in range(k1):  # log|L|^2 from a running product (diagonals >= 1)
                dprod *= A[i, i]
            if dprod > 1e150:
                ld += 2.0 * np.log(dprod)
                dprod = 1.0
            # this level's rows of [E | c1] = A^-1 lam' [Z1'Z2 | Z1'X | Z1'y]
            blk = W[lv * k1 : (lv + 1) * k1]
            for i in range(k1):
                for r in range(q2):
                    s = 0.0
                    for a in range(i, k1):
                        s += lam[a, i] * ZtZ12[lv, a, r]
                    blk[i, r] = s
                for c in range(p):
                    s = 0.0
                    for a in range(i, k1):
                        s += lam[a, i] * Z1tX[lv, a, c]
                    blk[i, q2 + c] = s
                s = 0.0
                for a in range(i, k1):
                    s += lam[a, i] * Z1tY[rep, lv, a]
                blk[i, q2 + p] = s
            _forward(A, blk)
        ld += 2.0 * np.log(dprod)
        if failed:
            out_ld[m] = np.nan
            out_ldrx[m] = np.nan
            out_r2[m] = np.nan
            continue
        _gram(W, P)  # E'E, E'c1 and c1'c1 in one product
        for i in range(p):
            for j in range(p):
                MW[i, j] = XtX[i, j] - P[q2 + i, q2 + j]
            MW[i, p] = XtY[rep, i] - P[q2 + i, q2 + p]
            MW[p, i] = MW[i, p]
        MW[p, p] = yty[rep] - P[q2 + p, q2 + p]
        if q2 > 0:
            _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
            for r in range(q2):
                for t in range(q2):
                    S[r, t] = ZtZ22[r, t] - P[r, t]
                for c in range(p):
                    Rr[r, c] = Z2tX[r, c] - P[r, q2 + c]
                Rr[r, p] = Z2tY[rep, r] - P[r, q2 + p]
            _sandwich_lam2(S, lams2, b_off, b_L, b_k, T, G)
            for i in range(q2):
                G[i, i] += 1.0
            _lam2t_rows(Rr, lams2, b_off, b_L, b_k, R2)
            if not _chol_big(G):
                out_ld[m] = np.nan
                out_ldrx[m] = np.nan
                out_r2[m] = np.nan
                continue
            for i in range(q2):
                ld += 2.0 * np.log(G[i, i])
            _forward(G, R2)
            for i in range(p + 1):
                for j in range(i, p + 1):
                    s = 0.0
                    for r in range(q2):
                        s += R2[r, i] * R2[r, j]
                    MW[i, j] -= s
                    if j != i:
                        MW[j, i] -= s
        for i in range(p + 1):
            for j in range(p + 1):
                out_MW[m, i, j] = MW[i, j]
        if not _chol_inplace(MW):
            out_ld[m] = np.nan
            out_ldrx[m] = np.nan
            out_r2[m] = np.nan
            continue
        ldrx = 0.0
        for i in range(p):
            ldrx += 2.0 * np.log(MW[i, i])
        out_ld[m] = ld
        out_ldrx[m] = ldrx
        out_r2[m] = MW[p, p] * MW[p, p]


@njit(cache=True)
def _level_factor(lam: np.ndarray, D: np.ndarray, A: np.ndarray, Wl: np.ndarray, Mg) -> bool:
    """For one level's D = Z_l'Z_l: A = lam' D lam + I = L L' (in A), and
    Mg = lam A^-1 lam' = (L^-1 lam')' (L^-1 lam'). False if A is not PD."""
    k = lam.shape[0]
    for i in range(k):
        for h in range(k):
            s = 0.0
            for a in range(k):
                for b in range(k):
                    s += lam[a, i] * D[a, b] * lam[b, h]
            A[i, h] = s + (1.0 if i == h else 0.0)
    if not _chol_inplace(A):
        return False
    for i in range(k):
        for j in range(k):
            Wl[i, j] = lam[j, i]
    _forward(A, Wl)
    for a in range(k):
        for b in range(k):
            s = 0.0
            for i in range(k):
                s += Wl[i, a] * Wl[i, b]
            Mg[a, b] = s
    return True


@njit(cache=True)
def criterion_parts_grouped(
    thetas,
    reps,
    k1,
    tr1_r,
    tr1_c,
    Dg,
    ng,
    XXg,
    KXg,
    Kg,
    XtX,
    XtY,
    yty,
    zzg,
    Xzg,
    Fzg,
    ZtZ22,
    Z2tX,
    Z2tY,
    b_off,
    b_L,
    b_k,
    b_toff,
    tr_r,
    tr_c,
    t_off,
    out_ld,
    out_ldrx,
    out_r2,
    out_MW,
):
    """:func:`criterion_parts` for designs whose first-block levels fall in few groups
    with identical Z_l'Z_l (balanced designs: often one group).

    Levels with the same D = Z_l'Z_l share A_l = Lambda1' D Lambda1 + I, so every sum over
    levels is a sum over groups of M_g = Lambda1 A_g^-1 Lambda1' times sums precomputed
    once per design (``XXg``, ``KXg``, ``Kg``: over the levels of a group, products of
    Z_l'X and Z_l'Z2) or once per replicate (``zzg``, ``Xzg``, ``Fzg``: products with
    Z_l'y). A pair then costs O(groups k1^2 q2^2), whatever the number of levels.

    The steps after S and Rr repeat :func:`criterion_parts`'s on purpose: the same lines
    as a shared njit helper called once per pair doubled the cost of a small model
    (0.19 -> 0.39 us per pair on sleepstudy; array arguments are reference-counted per call).
    """
    M = thetas.shape[0]
    ngrp = Dg.shape[0]
    p = XtX.shape[0]
    q2 = ZtZ22.shape[0]
    n1 = tr1_r.shape[0]
    kmax = 1
    for b in range(b_k.shape[0]):
        kmax = max(kmax, b_k[b])
    lams2 = np.zeros((b_k.shape[0], kmax, kmax))
    lam = np.zeros((k1, k1))
    Mg = np.empty((ngrp, k1, k1))
    A = np.empty((k1, k1))
    Wl = np.empty((k1, k1))
    MW = np.empty((p + 1, p + 1))
    S = np.empty((q2, q2))
    T = np.empty((q2, q2))
    G = np.empty((q2, q2))
    Rr = np.empty((q2, p + 1))
    R2 = np.empty((q2, p + 1))
    for m in range(M):
        th = thetas[m]
        rep = reps[m]
        lam[:] = 0.0
        for t in range(n1):
            lam[tr1_r[t], tr1_c[t]] = th[t]
        ld = 0.0
        failed = False
        for g in range(ngrp):
            if not _level_factor(lam, Dg[g], A, Wl, Mg[g]):
                failed = True
                break
            s = 0.0
            for i in range(k1):
                s += np.log(A[i, i])
            ld += 2.0 * ng[g] * s
        if failed:
            out_ld[m] = np.nan
            out_ldrx[m] = np.nan
            out_r2[m] = np.nan
            continue
        # MW = [X y]'[X y] - c1'c1, with c1'c1 summed by group
        for i in range(p):
            for j in range(p):
                MW[i, j] = XtX[i, j]
            MW[i, p] = XtY[rep, i]
        MW[p, p] = yty[rep]
        for g in range(ngrp):
            for a in range(k1):
                for b in range(k1):
                    mab = Mg[g, a, b]
                    for i in range(p):
                        for j in range(p):
                            MW[i, j] -= mab * XXg[g, a, b, i, j]
                        MW[i, p] -= mab * Xzg[rep, g, a, b, i]
                    MW[p, p] -= mab * zzg[rep, g, a, b]
        for i in range(p):
            MW[p, i] = MW[i, p]
        if q2 > 0:
            # S = Z2'Z2 - E'E and Rr = Z2'[X y] - E'c1
            for r in range(q2):
                for t in range(q2):
                    S[r, t] = ZtZ22[r, t]
                for c in range(p):
                    Rr[r, c] = Z2tX[r, c]
                Rr[r, p] = Z2tY[rep, r]
            for g in range(ngrp):
                for a in range(k1):
                    for b in range(k1):
                        mab = Mg[g, a, b]
                        for r in range(q2):
                            for c in range(p):
                                Rr[r, c] -= mab * KXg[g, a, b, r, c]
                            Rr[r, p] -= mab * Fzg[rep, g, a, b, r]
                    # M is symmetric: Kg[g, a, b] (a <= b) holds K_ab + K_ba, lower triangle
                    for b in range(a, k1):
                        mab = Mg[g, a, b]
                        K = Kg[g, a, b]
                        for r in range(q2):
                            for t in range(r + 1):
                                S[r, t] -= mab * K[r, t]
            for r in range(q2):
                for t in range(r):
                    S[t, r] = S[r, t]
            _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
            _sandwich_lam2(S, lams2, b_off, b_L, b_k, T, G)
            for i in range(q2):
                G[i, i] += 1.0
            _lam2t_rows(Rr, lams2, b_off, b_L, b_k, R2)
            if not _chol_big(G):
                out_ld[m] = np.nan
                out_ldrx[m] = np.nan
                out_r2[m] = np.nan
                continue
            for i in range(q2):
                ld += 2.0 * np.log(G[i, i])
            _forward(G, R2)
            for i in range(p + 1):
                for j in range(i, p + 1):
                    s = 0.0
                    for r in range(q2):
                        s += R2[r, i] * R2[r, j]
                    MW[i, j] -= s
                    if j != i:
                        MW[j, i] -= s
        for i in range(p + 1):
            for j in range(p + 1):
                out_MW[m, i, j] = MW[i, j]
        if not _chol_inplace(MW):
            out_ld[m] = np.nan
            out_ldrx[m] = np.nan
            out_r2[m] = np.nan
            continue
        ldrx = 0.0
        for i in range(p):
            ldrx += 2.0 * np.log(MW[i, i])
        out_ld[m] = ld
        out_ldrx[m] = ldrx
        out_r2[m] = MW[p, p] * MW[p, p]


@njit(cache=True)
def response_products(X: np.ndarray, Y: np.ndarray, XtY: np.ndarray, yty: np.ndarray) -> None:
    """XtY = X'Y (p, B) and yty = column sums of Y * Y, one column at a time.

    Fixed loops, so that a replicate's numbers never depend on how many columns come with
    it (numpy's einsum picks other inner loops for one contiguous column).
    """
    n, p = X.shape
    for b in range(Y.shape[1]):
        s = 0.0
        for i in range(n):
            s += Y[i, b] * Y[i, b]
        yty[b] = s
        for j in range(p):
            s = 0.0
            for i in range(n):
                s += X[i, j] * Y[i, b]
            XtY[j, b] = s


@njit(cache=True)
def group_products(Z1tY, inverse, F, ZX, zz, Xz, Fz) -> None:
    """Per replicate b and group g, sums over the group's levels l (z_l = Z_l'y_b):
    zz[b, g] = sum z_l z_l', Xz[b, g, a, c] = sum (Z_l'X)[a] z_l[c] and
    Fz[b, g, a, c] = sum (Z_l'Z2)[a] z_l[c]; fixed loops, as :func:`response_products`."""
    L1, k1, B = Z1tY.shape
    p = ZX.shape[2]
    q2 = F.shape[2]
    zz[:] = 0.0
    Xz[:] = 0.0
    Fz[:] = 0.0
    for b in range(B):
        for lv in range(L1):
            g = inverse[lv]
            for a in range(k1):
                for c in range(k1):
                    z = Z1tY[lv, c, b]
                    zz[b, g, a, c] += Z1tY[lv, a, b] * z
                    for i in range(p):
                        Xz[b, g, a, c, i] += ZX[lv, a, i] * z
                    for r in range(q2):
                        Fz[b, g, a, c, r] += F[lv, a, r] * z
