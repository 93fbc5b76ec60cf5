"""Satterthwaite degrees of freedom for a whole batch of refits at once.

lmerTest's recipe (see :mod:`lmmcore.inference`), vectorised over replicates: the Hessian of
the deviance in (theta, sigma) and the Jacobian of vcov(beta) come from one central
finite-difference stencil in theta, evaluated for every replicate in batched engine calls;
the sigma derivatives are analytic because

    dev(theta, sigma) = a(theta) + m log(2 pi sigma^2) + r2(theta) / sigma^2,
    vcov(beta)        = sigma^2 W(theta),

with a = log|L|^2 (+ log|R_X|^2 for REML), m = n - p (REML) or n (ML), W = (X'V^-1 X)^-1
up to sigma^2.

Example:
    >>> import lmmcore
    >>> from lmmcore.refit import refit_batch
    >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))
    >>> fits = refit_batch(res.engine, res.y[:, None], res.theta, REML=True)
    >>> df = batch_satterthwaite(res.engine, res.engine.responses(res.y), fits, REML=True)
    >>> [round(float(v), 2) for v in df[0]]
    [17.0, 17.0]
"""

from __future__ import annotations

import numpy as np

from lmmcore.engine import Engine, Responses
from lmmcore.refit import BatchFit, _grad_hess


def _stencil(d: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    pts = [np.zeros(d)]
    for i in range(d):
        for s in (1.0, -1.0):
            e = np.zeros(d)
            e[i] = s
            pts.append(e)
    pairs = []
    for i in range(d):
        for j in range(i + 1, d):
            pairs.append((i, j))
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                e = np.zeros(d)
                e[i], e[j] = si, sj
                pts.append(e)
    return np.array(pts), pairs


def _derivs(f: np.ndarray, d: int, pairs, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Central first and second derivatives from stencil values f (B, npts, ...)."""
    f0 = f[:, 0]
    fp = f[:, 1 : 2 * d + 1 : 2]
    fm = f[:, 2 : 2 * d + 2 : 2]
    g = (fp - fm) / (2 * h)
    H = np.empty((f.shape[0], d, d) + f.shape[2:])
    for i in range(d):
        H[:, i, i] = (fp[:, i] - 2 * f0 + fm[:, i]) / h**2
    k = 2 * d + 1
    for i, j in pairs:
        v = (f[:, k] - f[:, k + 1] - f[:, k + 2] + f[:, k + 3]) / (4 * h**2)
        H[:, i, j] = H[:, j, i] = v
        k += 4
    return g, H


def batch_satterthwaite(
    engine: Engine,
    resp: Responses,
    fits: BatchFit,
    REML: bool,
    *,
    h: float = 1e-4,
    tol: float = 1e-8,
    reuse: bool = False,
) -> np.ndarray:
    """Satterthwaite df (B, p) for every coefficient of every replicate in ``fits``.

    By default the derivatives come from a central stencil evaluated here (lmerTest's df
    to about 1e-4). With ``reuse`` they come from the refit's last Newton stencil where
    there is one: forward differences, no extra criterion evaluations, df within about
    0.5% (their O(h) truncation error), which moves a t critical value by far less than
    the Monte-Carlo error of a power estimate; the power simulations use this.
    """
    s = engine.structure
    B, d = fits.theta.shape
    p = s.p
    n = s.n
    m = n - p if REML else n
    offs, pairs = _stencil(d)
    npts = offs.shape[0]
    ok = np.isfinite(fits.objective) & np.isfinite(fits.sigma)
    out = np.full((B, p), np.nan)
    # replicates whose refit left its last Newton stencil (forward differences at the
    # optimum, up to 1e-6): no further criterion evaluations are needed
    st = fits.stencil if reuse else None
    have = np.zeros(B, dtype=bool)
    if st is not None:
        have = ok & np.all(np.isfinite(st.center), axis=1) & np.all(np.isfinite(st.Wd), axis=(1, 2))
        idx = np.flatnonzero(have)
        if idx.size:
            ga, Ha = _grad_hess(st.a[idx], d, st.h)
            gr, Hr = _grad_hess(st.r2[idx], d, st.h)
            Wd = st.Wd[idx]
            gW = (-3 * Wd[:, :1] + 4 * Wd[:, 1 : 2 * d + 1 : 2] - Wd[:, 2 : 2 * d + 2 : 2]) / (
                2 * st.h
            )
            out[idx] = _df(Ha, Hr, gr, gW, Wd[:, 0], st.r2[idx, 0], fits.sigma[idx], m, tol)
    rest = np.flatnonzero(ok & ~have)
    step = max(1, engine.chunk // npts)
    for start in range(0, rest.size, step):
        idx = rest[start : start + step]
        pts = (fits.theta[idx, None, :] + h * offs[None]).reshape(-1, d)
        reps = np.repeat(idx, npts)
        ld, ldrx, r2, MW = engine.kernel_parts(pts, reps, resp)
        W = np.linalg.inv(MW[:, :p, :p])
        Wd = np.diagonal(W, axis1=1, axis2=2).reshape(idx.size, npts, p)
        a = (ld + ldrx if REML else ld).reshape(idx.size, npts)
        r2 = r2.reshape(idx.size, npts)
        ga, Ha = _derivs(a, d, pairs, h)
        gr, Hr = _derivs(r2, d, pairs, h)
        gW = (Wd[:, 1 : 2 * d + 1 : 2] - Wd[:, 2 : 2 * d + 2 : 2]) / (2 * h)  # (R, d, p)
        out[idx] = _df(Ha, Hr, gr, gW, Wd[:, 0], r2[:, 0], fits.sigma[idx], m, tol)
    return out


def _df(Ha, Hr, gr, gW, W0, r20, sig, m, tol) -> np.ndarray:
    """Satterthwaite df (R, p) from the theta-derivatives of a, r2 and diag(W).

    Ha, Hr (R, d, d): Hessians of a and r2; gr (R, d); gW (R, d, p); W0 (R, p) and r20 (R,)
    at the optimum; sig (R,) the residual SD; m = n - p (REML) or n (ML).
    """
    R, d = gr.shape
    s2 = sig**2
    H = np.empty((R, d + 1, d + 1))
    H[:, :d, :d] = Ha + Hr / s2[:, None, None]
    H[:, :d, d] = H[:, d, :d] = -2.0 * gr / sig[:, None] ** 3
    H[:, d, d] = -2.0 * m / s2 + 6.0 * r20 / s2**2
    # lmerTest inverts the positive part of the Hessian only
    w, U = np.linalg.eigh((H + np.swapaxes(H, 1, 2)) / 2)
    pos = w > tol
    winv = np.where(pos, 1.0 / np.where(pos, w, 1.0), 0.0)
    A = 2.0 * np.einsum("rij,rj,rkj->rik", U, winv, U)
    V = s2[:, None] * W0
    G = np.empty((R, d + 1, W0.shape[1]))
    G[:, :d] = s2[:, None, None] * gW
    G[:, d] = 2.0 * sig[:, None] * W0
    denom = np.einsum("rip,rij,rjp->rp", G, A, G)
    return 2.0 * V**2 / denom
