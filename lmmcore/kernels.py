"""Compiled (numba) kernels for the profiled criterion of many (theta, response) pairs.

``criterion_parts`` eliminates the first block level by level; ``criterion_parts_grouped``
by groups of levels with identical Z_l'Z_l (balanced designs); both end in
:func:`_finish`. ``response_products`` and ``group_products`` compute what each response
adds.

The same algebra as :meth:`lmmcore.engine.Engine._factor` (which stays as the readable
numpy reference), fused into one loop per pair so that the small per-level blocks never
touch Python. Every pair is computed on its own, so a pair's numbers do not depend on the
batch it is in.

The factorisation is blocked as MixedModels.jl blocks its Cholesky factor. The first block
is block diagonal (one k1 x k1 factor per level). Its off-diagonal part is sparse: a level
l meets only the columns of Z2 its rows touch (``cols[ptr[l]:ptr[l+1]]``: in lme4's
InstEval each student rates ~25 of 1,128 lecturers), so the Schur complement

    S = Z2'Z2 - E'E,   E_l = L_l^-1 Lambda1' Z1_l'Z2   (L_l L_l' = Lambda1' Z_l'Z_l Lambda1 + I)

is accumulated level by level over those columns only (sum_l k1 m_l^2 / 2 multiply-adds
instead of L1 k1 q2^2). Lambda2 is applied once per pair, to S and to the [X y] rows,
and one Cholesky factor of the dense remainder

    Omega = [ Lambda2' S Lambda2 + I    .  ]
            [ (Lambda2' R)'             MW ]     R = Z2'[X y] - E'c1, MW = [X y]'[X y] - c1'c1

(LAPACK when it is large) gives log|L|^2 (its first q2 diagonals), log|R_X|^2 (the next p)
and the penalised residual sum of squares r^2 (the last one, squared) in one call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: at or above this size the dense remainder is factored by LAPACK, below it by plain
#: loops (faster than a library call for tiny matrices)
BLAS_MIN = 48


@njit(cache=True)
def _chol_inplace(A: np.ndarray) -> bool:
    """Lower Cholesky factor in place (reads and writes the lower triangle only); False if
    not PD."""
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


@njit(cache=True)
def _lam2t_rows(M: np.ndarray, lams: np.ndarray, lb_off, lb_blk, out: np.ndarray) -> None:
    """out = Lambda2' M: row operations (contiguous), one diagonal block at a time."""
    cols = M.shape[1]
    for bi in range(lb_blk.shape[0]):
        o = lb_off[bi]
        k = lb_off[bi + 1] - o
        lam = lams[lb_blk[bi]]
        for a in range(k):
            la = lam[a, a]
            for c in range(cols):
                out[o + a, c] = la * M[o + a, c]
            for i in range(a + 1, k):
                lia = lam[i, a]
                for c in range(cols):
                    out[o + a, c] += lia * M[o + i, c]


@njit(cache=True)
def _finish(S, R, MW, lams, lb_off, lb_blk, gam, T, Om, out_MW):
    """Factor Omega (see the module docstring) from the lower triangles of S (q2 x q2) and
    MW ((p+1) x (p+1)) and from R (q2 x (p+1)).

    ``lb_off`` (n_lb + 1) are the offsets of Lambda2's diagonal blocks (one per level of
    each remaining term), ``lb_blk`` the term of each; T is a q2 x q2 work array. Om
    ((q2+p+1) square) is built in place; out_MW receives the reduced
    cross-product MW - R'Lambda2 G^-1 Lambda2'R (X'V^-1X up to sigma^2 in its first p
    rows) of [X y] with y = y_c + X gam, where the inputs are those of the least-squares
    residuals y_c (see ``Responses``). Returns (ok, log|L2|^2, log|R_X|^2, r^2, the lower
    Cholesky factor of Omega: Om itself for a small one, a new array from LAPACK).
    """
    q2 = S.shape[0]
    p1 = MW.shape[0]
    w = q2 + p1
    if lb_blk.shape[0] == q2:  # every diagonal block is 1 x 1: Lambda2 is diagonal
        for r in range(q2):
            dr = lams[lb_blk[r], 0, 0]
            for t in range(r + 1):
                Om[r, t] = dr * S[r, t] * lams[lb_blk[t], 0, 0]
            for c in range(p1):
                Om[q2 + c, r] = dr * R[r, c]
    else:
        # Lambda2' S Lambda2 by row operations: S symmetric, T = Lambda2' S, T' = S Lambda2,
        # then the lower triangle of Lambda2' T'
        for r in range(q2):
            for t in range(r):
                S[t, r] = S[r, t]
        _lam2t_rows(S, lams, lb_off, lb_blk, T)
        for r in range(q2):
            for t in range(r):
                T[r, t], T[t, r] = T[t, r], T[r, t]
        for bi in range(lb_blk.shape[0]):
            o = lb_off[bi]
            k = lb_off[bi + 1] - o
            lam = lams[lb_blk[bi]]
            for a in range(k):
                row = o + a
                la = lam[a, a]
                for c in range(row + 1):
                    Om[row, c] = la * T[row, c]
                for i in range(a + 1, k):
                    lia = lam[i, a]
                    for c in range(row + 1):
                        Om[row, c] += lia * T[o + i, c]
                for c in range(p1):
                    s = la * R[row, c]
                    for i in range(a + 1, k):
                        s += lam[i, a] * R[o + i, c]
                    Om[q2 + c, row] = s
    for r in range(q2):
        Om[r, r] += 1.0
    for i in range(p1):
        for j in range(i + 1):
            Om[q2 + i, q2 + j] = MW[i, j]
    if w >= BLAS_MIN:
        try:
            L = np.linalg.cholesky(Om)
        except Exception:  # noqa: BLE001 (numba raises LinAlgError for a non-PD matrix)
            return False, 0.0, 0.0, 0.0, Om
    elif _chol_inplace(Om):
        L = Om
    else:
        return False, 0.0, 0.0, 0.0, Om
    # log|L2|^2 from a running product (the diagonals of G's factor are >= 1, G >= I)
    ld, prod = 0.0, 1.0
    for r in range(q2):
        prod *= L[r, r]
        if prod > 1e150:
            ld += np.log(prod)
            prod = 1.0
    ld += np.log(prod)
    ldrx = 0.0
    for i in range(p1 - 1):
        ldrx += np.log(L[q2 + i, q2 + i])
    for i in range(p1):
        for j in range(i + 1):
            s = 0.0
            for t in range(j + 1):
                s += L[q2 + i, q2 + t] * L[q2 + j, q2 + t]
            out_MW[i, j] = s
            out_MW[j, i] = s
    add_gamma(out_MW, gam)
    last = L[w - 1, w - 1]
    return True, 2.0 * ld, 2.0 * ldrx, last * last, L


@njit(cache=True)
def add_gamma(out_MW, gam) -> None:
    """The reduced products of [X y_c] -> those of [X y]: [X y] = [X y_c] [[I, gam], [0, 1]]
    with y = y_c + X gam (see ``lmmcore.engine.Responses``)."""
    p = out_MW.shape[0] - 1
    yy = out_MW[p, p]
    for i in range(p):
        s = 0.0
        for j in range(p):
            s += out_MW[i, j] * gam[j]
        yy += gam[i] * (2.0 * out_MW[i, p] + s)
        out_MW[i, p] += s
        out_MW[p, i] = out_MW[i, p]
    out_MW[p, p] = yy


@njit(cache=True)
def start_products(XtX, XtY, yty, rep, MW) -> None:
    """MW = [X y]'[X y] of replicate ``rep`` (lower triangle)."""
    p = XtX.shape[0]
    for i in range(p):
        for j in range(i + 1):
            MW[i, j] = XtX[i, j]
        MW[p, i] = XtY[rep, i]
    MW[p, p] = yty[rep]


@njit(cache=True)
def less_group_products(MW, m, XX, Xz, zz) -> None:
    """MW -= sum_j m_j c_j (lower triangle): m holds the entries of every group's M_g
    (groups x k1 x k1, flattened), and row j of ``XX`` (J, p * p), ``Xz`` (J, p) and
    ``zz`` (J,) the matching sums over the group's levels of Z_l'X products and of those
    with z_l = Z_l'y. One pass along contiguous rows."""
    p = MW.shape[0] - 1
    for j in range(m.shape[0]):
        mj = m[j]
        for i in range(p):
            for c in range(i + 1):
                MW[i, c] -= mj * XX[j, i * p + c]
            MW[p, i] -= mj * Xz[j, i]
        MW[p, p] -= mj * zz[j]


@njit(cache=True)
def _start_pair(XtX, XtY, yty, ZtZ22, Z2tX, Z2tY, rep, S, R, MW) -> None:
    """S, R, MW before the first block is eliminated (lower triangles of S and MW)."""
    q2 = ZtZ22.shape[0]
    p = XtX.shape[0]
    for r in range(q2):
        for t in range(r + 1):
            S[r, t] = ZtZ22[r, t]
        for c in range(p):
            R[r, c] = Z2tX[r, c]
        R[r, p] = Z2tY[rep, r]
    start_products(XtX, XtY, yty, rep, MW)


@njit(cache=True)
def _nan(m, out_ld, out_ldrx, out_r2, out_MW) -> None:
    """Mark pair m as failed."""
    out_ld[m] = np.nan
    out_ldrx[m] = np.nan
    out_r2[m] = np.nan
    out_MW[m] = np.nan


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
    ptr,
    cols,
    F,
    dense_rows,
    XtX,
    XtY,
    yty,
    gamma,
    ZtZ22,
    Z2tX,
    Z2tY,
    b_toff,
    tr_r,
    tr_c,
    t_off,
    lb_off,
    lb_blk,
    out_ld,
    out_ldrx,
    out_r2,
    out_MW,
    store,
    L11_out,
    E_out,
    C_out,
    Om_out,
):
    """log|L|^2, log|R_X|^2, r^2 and the reduced [X y] cross-product for each pair,
    eliminating the first block level by level over each level's columns of Z2.

    The response cross-products come replicate-major (Z1tY (B, L1, k1), XtY (B, p),
    Z2tY (B, q2)) so that one pair reads contiguous memory. Level l of the first block
    meets the columns ``cols[ptr[l]:ptr[l+1]]`` (ascending) of Z2, with Z_l'Z2 there in
    ``F`` (nnz, k1); ``dense_rows`` (for a pattern that is mostly full) updates S along
    whole rows. A pair whose factorisation fails gets NaN.

    With ``store`` (one pair), the factor is kept for the random effects: per level L_l
    (L11_out), E_l (E_out, laid out as F) and c1_l = L_l^-1 Lambda1' Z_l'[X y] (C_out),
    and Omega's factor (Om_out).
    """
    M = thetas.shape[0]
    L1 = D1.shape[0]
    p = XtX.shape[0]
    q2 = ZtZ22.shape[0]
    n1 = tr1_r.shape[0]
    nb = t_off.shape[0] - 1
    kmax = 1
    for b in range(lb_blk.shape[0]):
        kmax = max(kmax, lb_off[b + 1] - lb_off[b])
    mmax = 0
    for lv in range(L1):
        mmax = max(mmax, ptr[lv + 1] - ptr[lv])
    lams2 = np.zeros((max(nb, 1), kmax, kmax))
    lam = np.zeros((k1, k1))
    S = np.empty((q2, q2))
    R = np.empty((q2, p + 1))
    MW = np.empty((p + 1, p + 1))
    Om = np.empty((q2 + p + 1, q2 + p + 1))
    T = np.empty((q2, q2))
    A = np.empty((k1, k1))
    W = np.empty((k1, mmax + p + 1))  # one level's [E_l | c1_l]
    Wd = np.empty((k1, q2 if dense_rows else 0))
    for m in range(M):
        th = thetas[m]
        rep = reps[m]
        lam[:] = 0.0
        for t in range(n1):
            lam[tr1_r[t], tr1_c[t]] = th[t]
        _start_pair(XtX, XtY, yty, ZtZ22, Z2tX, Z2tY, rep, S, R, MW)
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
            # this level's [E_l | c1_l] = A^-1 lam' [Z_l'Z2 (its columns) | Z_l'X | Z_l'y]
            p0 = ptr[lv]
            ml = ptr[lv + 1] - p0
            for i in range(k1):
                for r in range(ml):
                    s = 0.0
                    for a in range(i, k1):
                        s += lam[a, i] * F[p0 + r, a]
                    W[i, r] = s
                for c in range(p):
                    s = 0.0
                    for a in range(i, k1):
                        s += lam[a, i] * Z1tX[lv, a, c]
                    W[i, ml + c] = s
                s = 0.0
                for a in range(i, k1):
                    s += lam[a, i] * Z1tY[rep, lv, a]
                W[i, ml + p] = s
            for j in range(ml + p + 1):  # forward solve with A's factor, column by column
                for i in range(k1):
                    s = W[i, j]
                    for h in range(i):
                        s -= A[i, h] * W[h, j]
                    W[i, j] = s / A[i, i]
            # S -= E_l'E_l, R -= E_l'c1_l, MW -= c1_l'c1_l (lower triangles); in a dense
            # pattern along E_l's rows scattered to full length (contiguous inner loops)
            if dense_rows:
                for i in range(k1):
                    Wd[i, :] = 0.0
                    for r in range(ml):
                        Wd[i, cols[p0 + r]] = W[i, r]
            for i in range(k1):
                for r in range(ml):
                    er = W[i, r]
                    row = cols[p0 + r]
                    if dense_rows:
                        for t in range(row + 1):
                            S[row, t] -= er * Wd[i, t]
                    else:
                        for t in range(r + 1):
                            S[row, cols[p0 + t]] -= er * W[i, t]
                    for c in range(p + 1):
                        R[row, c] -= er * W[i, ml + c]
                for c in range(p + 1):
                    wc = W[i, ml + c]
                    for d in range(c + 1):
                        MW[c, d] -= wc * W[i, ml + d]
            if store:
                for i in range(k1):
                    for h in range(k1):
                        L11_out[lv, i, h] = A[i, h] if h <= i else 0.0
                    for r in range(ml):
                        E_out[p0 + r, i] = W[i, r]
                    for c in range(p + 1):
                        C_out[lv, i, c] = W[i, ml + c]
        ld += 2.0 * np.log(dprod)
        if failed:
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
        ok, ld2, ldrx, r2, fac = _finish(
            S, R, MW, lams2, lb_off, lb_blk, gamma[rep], T, Om, out_MW[m]
        )
        if not ok:
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        out_ld[m] = ld + ld2
        out_ldrx[m] = ldrx
        out_r2[m] = r2
        if store:
            Om_out[:, :] = fac


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
    gamma,
    zzg,
    Xzg,
    Fzg,
    ZtZ22,
    Z2tX,
    Z2tY,
    b_toff,
    tr_r,
    tr_c,
    t_off,
    lb_off,
    lb_blk,
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
    """
    M = thetas.shape[0]
    ngrp = Dg.shape[0]
    p = XtX.shape[0]
    q2 = ZtZ22.shape[0]
    n1 = tr1_r.shape[0]
    nb = t_off.shape[0] - 1
    kmax = 1
    for b in range(lb_blk.shape[0]):
        kmax = max(kmax, lb_off[b + 1] - lb_off[b])
    lams2 = np.zeros((max(nb, 1), kmax, kmax))
    lam = np.zeros((k1, k1))
    Mg = np.empty((ngrp, k1, k1))
    A = np.empty((k1, k1))
    Wl = np.empty((k1, k1))
    S = np.empty((q2, q2))
    R = np.empty((q2, p + 1))
    MW = np.empty((p + 1, p + 1))
    Om = np.empty((q2 + p + 1, q2 + p + 1))
    T = np.empty((q2, q2))
    # every sum over groups and (a, b) is one matrix-vector product over contiguous rows
    J = ngrp * k1 * k1
    nab = Kg.shape[1]
    ntri = Kg.shape[2]
    XX2 = XXg.reshape(J, p * p)
    KX2 = KXg.reshape(J, q2 * p)
    K2 = Kg.reshape(ngrp * nab, ntri)
    msym = np.empty(ngrp * nab)
    Sp = np.empty(ntri)
    RX = np.empty(q2 * p)
    Ry = np.empty(q2)
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
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        _start_pair(XtX, XtY, yty, ZtZ22, Z2tX, Z2tY, rep, S, R, MW)
        # MW -= c1'c1, R -= E'c1, S -= E'E, each summed by group: with m the entries of
        # all M_g, each is (rows of precomputed sums)' m, along contiguous rows
        mflat = Mg.reshape(J)
        less_group_products(MW, mflat, XX2, Xzg[rep].reshape(J, p), zzg[rep].reshape(J))
        Fz2 = Fzg[rep].reshape(J, q2)
        RX[:] = 0.0
        Ry[:] = 0.0
        for j in range(J):
            mj = mflat[j]
            for t in range(q2 * p):
                RX[t] += mj * KX2[j, t]
            for r in range(q2):
                Ry[r] += mj * Fz2[j, r]
        for r in range(q2):
            for c in range(p):
                R[r, c] -= RX[r * p + c]
            R[r, p] -= Ry[r]
        # M is symmetric: Kg[g, ab] holds K_ab + K_ba for a <= b (ab counting those
        # pairs), its lower triangle packed row by row
        for g in range(ngrp):
            ab = 0
            for a in range(k1):
                for b in range(a, k1):
                    msym[g * nab + ab] = Mg[g, a, b]
                    ab += 1
        Sp[:] = 0.0
        for j in range(ngrp * nab):
            mj = msym[j]
            for t in range(ntri):
                Sp[t] += mj * K2[j, t]
        t = 0
        for r in range(q2):
            for c in range(r + 1):
                S[r, c] -= Sp[t + c]
            t += r + 1
        _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
        ok, ld2, ldrx, r2, _ = _finish(
            S, R, MW, lams2, lb_off, lb_blk, gamma[rep], T, Om, out_MW[m]
        )
        if not ok:
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        out_ld[m] = ld + ld2
        out_ldrx[m] = ldrx
        out_r2[m] = r2


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
def block_products(cols, T, Y, out) -> None:
    """out[b, cols[i, a]] += T[i, a] Y[i, b]: one term's Z'Y (replicate-major), column by
    column in fixed order, as :func:`response_products`."""
    n, k = T.shape
    for b in range(Y.shape[1]):
        for i in range(n):
            y = Y[i, b]
            for a in range(k):
                out[b, cols[i, a]] += T[i, a] * y


@njit(cache=True)
def least_squares_residuals(X, XtX_inv, Y, XtY, gamma, Yc) -> None:
    """gamma[b] = (X'X)^-1 X'y_b and Yc[:, b] = y_b - X gamma[b] (see ``Responses``), from
    XtY = X'Y (:func:`response_products`), one column at a time."""
    n, p = X.shape
    for b in range(Y.shape[1]):
        for j in range(p):
            s = 0.0
            for i in range(p):
                s += XtX_inv[j, i] * XtY[i, b]
            gamma[b, j] = s
        for i in range(n):
            s = Y[i, b]
            for j in range(p):
                s -= X[i, j] * gamma[b, j]
            Yc[i, b] = s


@njit(cache=True)
def group_products(Z1tY, inverse, ptr, cols, F, ZX, zz, Xz, Fz) -> None:
    """Per replicate b and group g, sums over the group's levels l (z_l = Z_l'y_b):
    zz[b, g] = sum z_l z_l', Xz[b, g, a, c] = sum (Z_l'X)[a] z_l[c] and
    Fz[b, g, a, c] = sum (Z_l'Z2)[a] z_l[c] (Z_l'Z2 sparse: ``ptr``, ``cols``, ``F`` as in
    :func:`criterion_parts`); fixed loops, as :func:`response_products`."""
    L1, k1, B = Z1tY.shape
    p = ZX.shape[2]
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
                    for t in range(ptr[lv], ptr[lv + 1]):
                        Fz[b, g, a, c, cols[t]] += F[t, a] * z
