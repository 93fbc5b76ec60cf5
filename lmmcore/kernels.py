"""Compiled (numba) kernel for the profiled criterion of many (theta, response) pairs.

The same algebra as :meth:`lmmcore.engine.Engine._factor` (which stays as the readable
numpy reference and is used for single solutions), fused into one loop per pair so that
the small per-level blocks never touch Python. Every pair is computed on its own, so a
pair's numbers do not depend on the batch it is in.
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


@njit(cache=True)
def _apply_lam2_cols(M: np.ndarray, lams: np.ndarray, b_off, b_L, b_k, out: np.ndarray) -> None:
    """out = M Lambda2 (Lambda2 block diagonal: kron(I_L, lam_b) per block)."""
    rows = M.shape[0]
    for b in range(b_off.shape[0]):
        k = b_k[b]
        lam = lams[b]
        for lv in range(b_L[b]):
            base = b_off[b] + lv * k
            for r in range(rows):
                for j in range(k):
                    s = 0.0
                    for i in range(j, k):
                        s += M[r, base + i] * lam[i, j]
                    out[r, base + j] = s


@njit(cache=True)
def _apply_lam2t_rows(M: np.ndarray, lams: np.ndarray, b_off, b_L, b_k, out: np.ndarray) -> None:
    """out = Lambda2' M."""
    cols = M.shape[1]
    for b in range(b_off.shape[0]):
        k = b_k[b]
        lam = lams[b]
        for lv in range(b_L[b]):
            base = b_off[b] + lv * k
            for j in range(k):
                for c in range(cols):
                    s = 0.0
                    for i in range(j, k):
                        s += lam[i, j] * M[base + i, c]
                    out[base + j, c] = s


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
    kmax = 1
    for b in range(b_k.shape[0]):
        kmax = max(kmax, b_k[b])
    lams2 = np.zeros((b_k.shape[0], kmax, kmax))
    lam = np.zeros((k1, k1))
    MW = np.empty((p + 1, p + 1))
    T = np.empty((q2, q2))
    G = np.empty((q2, q2))
    W2 = np.empty((q2, p + 1))
    R2 = np.empty((q2, p + 1))
    C0 = np.empty((k1, q2))
    C = np.empty((k1, q2))
    A = np.empty((k1, k1))
    c1 = np.empty((k1, p + 1))
    for m in range(M):
        th = thetas[m]
        rep = reps[m]
        lam[:] = 0.0
        for t in range(n1):
            lam[tr1_r[t], tr1_c[t]] = th[t]
        for i in range(p):
            for j in range(p):
                MW[i, j] = XtX[i, j]
            MW[i, p] = XtY[rep, i]
            MW[p, i] = XtY[rep, i]
        MW[p, p] = yty[rep]
        ld = 0.0
        failed = False
        if q2 > 0:
            _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
            _apply_lam2_cols(ZtZ22, lams2, b_off, b_L, b_k, T)
            _apply_lam2t_rows(T, lams2, b_off, b_L, b_k, G)
            for i in range(q2):
                G[i, i] += 1.0
            for i in range(q2):
                for j in range(p):
                    W2[i, j] = Z2tX[i, j]
                W2[i, p] = Z2tY[rep, i]
            _apply_lam2t_rows(W2, lams2, b_off, b_L, b_k, R2)
        for lv in range(L1):
            # A = lam' D lam + I
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
            for i in range(k1):
                ld += 2.0 * np.log(A[i, i])
            for i in range(k1):
                for c in range(p + 1):
                    s = 0.0
                    for a in range(k1):
                        s += lam[a, i] * (Z1tX[lv, a, c] if c < p else Z1tY[rep, lv, a])
                    c1[i, c] = s
            _forward(A, c1)
            for i in range(p + 1):
                for j in range(p + 1):
                    s = 0.0
                    for a in range(k1):
                        s += c1[a, i] * c1[a, j]
                    MW[i, j] -= s
            if q2 > 0:
                for i in range(k1):
                    for r in range(q2):
                        s = 0.0
                        for a in range(k1):
                            s += lam[a, i] * ZtZ12[lv, a, r]
                        C0[i, r] = s
                _apply_lam2_cols(C0, lams2, b_off, b_L, b_k, C)
                _forward(A, C)
                # Schur complement, lower triangle only (all the Cholesky reads)
                for a in range(k1):
                    for r in range(q2):
                        car = C[a, r]
                        for t in range(r + 1):  # contiguous inner loop: vectorises
                            G[r, t] -= car * C[a, t]
                for r in range(q2):
                    for c in range(p + 1):
                        s = 0.0
                        for a in range(k1):
                            s += C[a, r] * c1[a, c]
                        R2[r, c] -= s
        if failed:
            out_ld[m] = np.nan
            out_ldrx[m] = np.nan
            out_r2[m] = np.nan
            continue
        if q2 > 0:
            if not _chol_inplace(G):
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
