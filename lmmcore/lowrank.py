"""The profiled criterion when the first block's levels meet the second term in few ways.

In a balanced design every subject sees the items in one of a few arrangements (one
per counterbalancing list): the levels l of the first block fall in U groups with the
same Z_l'Z_l = D_u and the same Z_l'Z2 = C_u. Then

    Omega_11 = Lambda2' S Lambda2 + I = B - V'V,
    B = Lambda2' Z2'Z2 Lambda2 + I            (block diagonal: one term, one block a level)
    V = [sqrt(n_u) L_u^-1 Lambda1' C_u Lambda2]_u   (r = U k1 rows; L_u L_u' = A_u)

so that, with B = L_B L_B' and V~ = V L_B^-T,

    log|Omega_11| = log|B| + log|G|,   G = I - V~ V~'   (r x r),

and the [X y] rows reduce by the Woodbury identity: with P = L_B^-1 Lambda2' R and
Q = L_G^-1 V~ P, the reduced cross-product is MW - P'P - Q'Q. A pair costs
O(q2 (k2^2 + r^2 + r p)) instead of the dense factor's O(q2^3): for preset P3 (40
subjects x 40 items, two 3 x 3 blocks, r = 6) a few microseconds instead of ~60.

Same inputs and outputs as :func:`lmmcore.kernels.criterion_parts_grouped`; every pair is
computed on its own, so its numbers do not depend on the batch it is in.

Example:
    >>> import lmmcore
    >>> p = lmmcore.PRESETS["P1"]
    >>> eng = lmmcore.engine.Engine(p.spec.structure(p.design.conditions(1)))
    >>> eng.lowrank is not None
    True
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lmmcore.kernels import (
    _chol_inplace,
    _fill_lams,
    _level_factor,
    _nan,
    add_gamma,
    less_group_products,
    start_products,
)


@njit(cache=True)
def group_sums(Z1tY, inverse, ZX, zz, Xz, sz) -> None:
    """Per replicate b and group u, sums over the group's levels l (z_l = Z_l'y_b):
    zz[b, u] = sum z_l z_l', Xz[b, u, a, c] = sum (Z_l'X)[a] z_l[c], sz[b, u] = sum z_l;
    fixed loops (a replicate's numbers do not depend on the others)."""
    L1, k1, B = Z1tY.shape
    p = ZX.shape[2]
    zz[:] = 0.0
    Xz[:] = 0.0
    sz[:] = 0.0
    for b in range(B):
        for lv in range(L1):
            u = inverse[lv]
            for a in range(k1):
                sz[b, u, a] += Z1tY[lv, a, b]
                for c in range(k1):
                    z = Z1tY[lv, c, b]
                    zz[b, u, a, c] += Z1tY[lv, a, b] * z
                    for i in range(p):
                        Xz[b, u, a, c, i] += ZX[lv, a, i] * z


@njit(cache=True)
def criterion_parts_lowrank(
    thetas,
    reps,
    k1,
    tr1_r,
    tr1_c,
    Du,
    nu,
    Cu,
    SXu,
    XXu,
    XtX,
    XtY,
    yty,
    gamma,
    zzu,
    Xzu,
    szu,
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
    """log|L|^2, log|R_X|^2, r^2 and the reduced [X y] cross-product for each pair, for
    an engine whose first-block levels fall in U groups sharing D_u (``Du``) and C_u
    (``Cu``, (U, k1, q2)); ``nu`` counts the levels, ``SXu`` sums Z_l'X over them and
    ``XXu`` their products (U, k1, k1, p, p); ``zzu``, ``Xzu``, ``szu`` come from
    :func:`group_sums`. ``ZtZ22`` is block diagonal (one term: a block per level)."""
    M = thetas.shape[0]
    U = Du.shape[0]
    p = XtX.shape[0]
    p1 = p + 1
    q2 = ZtZ22.shape[0]
    n1 = tr1_r.shape[0]
    nb = t_off.shape[0] - 1
    nblk = lb_blk.shape[0]
    r = U * k1
    kmax = 1
    for b in range(nblk):
        kmax = max(kmax, lb_off[b + 1] - lb_off[b])
    lams2 = np.zeros((max(nb, 1), kmax, kmax))
    lam = np.zeros((k1, k1))
    Mg = np.empty((U, k1, k1))
    A = np.empty((k1, k1))
    Wl = np.empty((U, k1, k1))
    Rt = np.empty((p1, q2))  # R' and P' (rows contiguous along q2)
    MW = np.empty((p1, p1))
    E = np.empty((k1, q2))
    V = np.empty((r, q2))
    LB = np.empty((q2, kmax))  # per block, its Cholesky factor's rows
    Bk = np.empty((kmax, kmax))
    Pt = np.empty((p1, q2))
    G = np.empty((r, r))
    W = np.empty((r, p1))
    T = np.empty((U, k1, p1))
    for m in range(M):
        th = thetas[m]
        rep = reps[m]
        lam[:] = 0.0
        for t in range(n1):
            lam[tr1_r[t], tr1_c[t]] = th[t]
        _fill_lams(th[n1:], b_toff, tr_r, tr_c, t_off, lams2)
        ld = 0.0
        failed = False
        for u in range(U):
            if not _level_factor(lam, Du[u], A, Wl[u], Mg[u]):
                failed = True
                break
            s = 0.0
            for i in range(k1):
                s += np.log(A[i, i])
            ld += 2.0 * nu[u] * s
        if failed:
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        for row in range(q2):
            for c in range(p):
                Rt[c, row] = Z2tX[row, c]
            Rt[p, row] = Z2tY[rep, row]
        start_products(XtX, XtY, yty, rep, MW)
        J = U * k1 * k1
        less_group_products(
            MW, Mg.reshape(J), XXu.reshape(J, p * p), Xzu[rep].reshape(J, p), zzu[rep].reshape(J)
        )
        for u in range(U):
            # R -= C_u' M_u [sum Z_l'X | sum Z_l'y]
            for a in range(k1):
                for c in range(p1):
                    s = 0.0
                    for b in range(k1):
                        zb = SXu[u, b, c] if c < p else szu[rep, u, b]
                        s += Mg[u, a, b] * zb
                    T[u, a, c] = s
            for c in range(p1):
                for a in range(k1):
                    t = T[u, a, c]
                    for row in range(q2):
                        Rt[c, row] -= t * Cu[u, a, row]
            # E = L_u^-1 Lambda1' C_u, then V's rows = sqrt(n_u) E Lambda2
            for i in range(k1):
                for col in range(q2):
                    E[i, col] = 0.0
                for a in range(k1):
                    w = Wl[u, i, a]
                    for col in range(q2):
                        E[i, col] += w * Cu[u, a, col]
            sq = np.sqrt(nu[u])
            for bi in range(nblk):
                o = lb_off[bi]
                k = lb_off[bi + 1] - o
                l2 = lams2[lb_blk[bi]]
                for i in range(k1):
                    for bb in range(k):
                        s = 0.0
                        for a in range(bb, k):
                            s += E[i, o + a] * l2[a, bb]
                        V[u * k1 + i, o + bb] = sq * s
        # per block of Lambda2: B = l2' ZtZ22 l2 + I = L_B L_B', V~ = V L_B^-T, and
        # P = L_B^-1 l2' R
        for bi in range(nblk):
            o = lb_off[bi]
            k = lb_off[bi + 1] - o
            l2 = lams2[lb_blk[bi]]
            for i in range(k):
                for j in range(i + 1):
                    s = 0.0
                    for a in range(i, k):
                        for b in range(j, k):
                            s += l2[a, i] * ZtZ22[o + a, o + b] * l2[b, j]
                    Bk[i, j] = s + (1.0 if i == j else 0.0)
            if not _chol_inplace(Bk[:k, :k]):
                failed = True
                break
            for i in range(k):
                ld += 2.0 * np.log(Bk[i, i])
                for j in range(i + 1):
                    LB[o + i, j] = Bk[i, j]
            for row in range(r):  # solve V~ L_B' = V along the block
                for i in range(k):
                    s = V[row, o + i]
                    for j in range(i):
                        s -= V[row, o + j] * LB[o + i, j]
                    V[row, o + i] = s / LB[o + i, i]
            for c in range(p1):  # P = L_B^-1 (l2' R)
                for i in range(k):
                    s = 0.0
                    for a in range(i, k):
                        s += l2[a, i] * Rt[c, o + a]
                    for j in range(i):
                        s -= LB[o + i, j] * Pt[c, o + j]
                    Pt[c, o + i] = s / LB[o + i, i]
        if failed:
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        # G = I - V~ V~' (lower) and W = V~ P
        for i in range(r):
            for j in range(i + 1):
                s = 0.0
                for col in range(q2):
                    s += V[i, col] * V[j, col]
                G[i, j] = (1.0 if i == j else 0.0) - s
            for c in range(p1):
                s = 0.0
                for col in range(q2):
                    s += V[i, col] * Pt[c, col]
                W[i, c] = s
        if not _chol_inplace(G):
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        for i in range(r):
            ld += 2.0 * np.log(G[i, i])
        for c in range(p1):  # Q = L_G^-1 W, in place
            for i in range(r):
                s = W[i, c]
                for j in range(i):
                    s -= G[i, j] * W[j, c]
                W[i, c] = s / G[i, i]
        # the reduced [X y] cross-product MW - P'P - Q'Q, and its factor
        for i in range(p1):
            for j in range(i + 1):
                s = MW[i, j]
                for col in range(q2):
                    s -= Pt[i, col] * Pt[j, col]
                for t in range(r):
                    s -= W[t, i] * W[t, j]
                MW[i, j] = s
        out = out_MW[m]
        for i in range(p1):
            for j in range(i + 1):
                out[i, j] = MW[i, j]
                out[j, i] = MW[i, j]
        if not _chol_inplace(MW):
            _nan(m, out_ld, out_ldrx, out_r2, out_MW)
            continue
        ldrx = 0.0
        for i in range(p):
            ldrx += np.log(MW[i, i])
        add_gamma(out, gamma[rep])
        out_ld[m] = ld
        out_ldrx[m] = 2.0 * ldrx
        out_r2[m] = MW[p, p] * MW[p, p]
