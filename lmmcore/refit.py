"""Batched refits: many responses on one design, optimised in lockstep.

All replicates of a bootstrap or power simulation share X and Z; only y changes. Rather
than one Python-level optimisation per replicate, every iteration here evaluates the
profiled criterion for all (theta, replicate) pairs of all active replicates in one batched
engine call: a finite-difference stencil gives each replicate's gradient and Hessian, a
projected Newton step (variances held at their zero bound when the gradient pushes
outwards, capped to a trust radius) with a backtracking line search moves it. Replicates
the Newton iteration cannot settle are refitted one at a time with the robust BOBYQA
fitter, so every replicate ends at the optimum a single :func:`lmmcore.fit` would find.

Example:
    >>> import lmmcore
    >>> from lmmcore.refit import refit_batch
    >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))
    >>> Y = lmmcore.simulate(res, nsim=4, seed=1)
    >>> fits = refit_batch(res.engine, Y, res.theta, REML=True)
    >>> fits.beta.shape, [str(s) for s in fits.status]
    ((4, 2), ['ok', 'ok', 'ok', 'ok'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmmcore.engine import Engine
from lmmcore.optimize import OptSummary, flip_edge_columns, has_mirror_image, minimize_theta

SINGULAR_TOL = 1e-4
STATUSES = ("ok", "singular", "not converged", "failed")
#: a string dtype wide enough for every status (so that one can be overwritten in place)
STATUS_DTYPE = f"<U{max(map(len, STATUSES))}"


@dataclass(frozen=True, eq=False)
class Stencil:
    """Criterion parts on each replicate's last forward stencil (theta + h * offsets).

    ``center`` (B, d) is where it was taken (NaN where a replicate has none, e.g. one the
    fallback optimiser settled); ``a`` is log|L|^2 (+ log|R_X|^2 for REML), ``r2`` the
    penalised RSS and ``Wd`` the diagonal of (X'V^-1X)^-1 sigma^-2 at each point.
    """

    h: float
    center: np.ndarray  # (B, d)
    a: np.ndarray  # (B, npts)
    r2: np.ndarray  # (B, npts)
    Wd: np.ndarray  # (B, npts, p)


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Fits of B responses: per-replicate estimates and a status string."""

    theta: np.ndarray  # (B, nth)
    beta: np.ndarray  # (B, p)
    sigma: np.ndarray  # (B,)
    objective: np.ndarray  # (B,)
    se: np.ndarray  # (B, p) Wald standard errors
    status: np.ndarray  # (B,) of str
    newton_iterations: np.ndarray  # (B,)
    fallback: np.ndarray  # (B,) bool: refitted by the one-at-a-time optimiser
    #: the last Newton stencil per replicate (see :class:`Stencil`), reused for inference
    stencil: Stencil | None = None

    @property
    def B(self) -> int:
        return self.beta.shape[0]


def _stencil(d: int) -> np.ndarray:
    """Forward-difference offsets (in units of h): 0, e_i, 2 e_i, e_i + e_j (i < j)."""
    pts = [np.zeros(d)]
    for i in range(d):
        e = np.zeros(d)
        e[i] = 1.0
        pts.append(e)
        pts.append(2 * e)
    for i in range(d):
        for j in range(i + 1, d):
            e = np.zeros(d)
            e[i] = e[j] = 1.0
            pts.append(e)
    return np.array(pts)


def _gradient(f: np.ndarray, d: int, h: float) -> np.ndarray:
    """Second-order forward-difference gradient from the first 2d + 1 stencil values."""
    f1 = f[:, 1 : 2 * d + 1 : 2]
    f2 = f[:, 2 : 2 * d + 2 : 2]
    return (-3 * f[:, :1] + 4 * f1 - f2) / (2 * h)


def _grad_hess(f: np.ndarray, d: int, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian from stencil values f (R, npts) laid out as in _stencil."""
    f0 = f[:, 0]
    f1 = f[:, 1 : 2 * d + 1 : 2]
    f2 = f[:, 2 : 2 * d + 2 : 2]
    g = _gradient(f, d, h)
    H = np.empty((f.shape[0], d, d))
    diag = (f0[:, None] - 2 * f1 + f2) / h**2
    H[:, np.arange(d), np.arange(d)] = diag
    k = 2 * d + 1
    for i in range(d):
        for j in range(i + 1, d):
            v = (f[:, k] - f1[:, i] - f1[:, j] + f0) / h**2
            H[:, i, j] = H[:, j, i] = v
            k += 1
    return g, H


def _bfgs(H: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """BFGS updates of Hessian approximations H (R, d, d) by steps s and gradient changes
    y (R, d); left as they are where the curvature s'y is not positive."""
    Hs = np.einsum("rij,rj->ri", H, s)
    sHs = np.einsum("ri,ri->r", s, Hs)
    sy = np.einsum("ri,ri->r", s, y)
    ok = (sy > 1e-12 * np.maximum(sHs, 1e-300)) & (sHs > 0)
    sHs, sy = np.where(ok, sHs, 1.0), np.where(ok, sy, 1.0)
    upd = -np.einsum("ri,rj->rij", Hs, Hs) / sHs[:, None, None]
    upd += np.einsum("ri,rj->rij", y, y) / sy[:, None, None]
    return H + np.where(ok[:, None, None], upd, 0.0)


def _newton_steps(g: np.ndarray, H: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps on the free coordinates, with a Levenberg shift where H is not PD
    (the second value says where)."""
    R, d = g.shape
    steps = np.zeros((R, d))
    eye = np.eye(d)
    Hf = np.where(free[:, :, None] & free[:, None, :], H, eye)
    gf = np.where(free, g, 0.0)
    w = np.linalg.eigvalsh(Hf)
    scale = np.maximum(np.abs(w).max(axis=1), 1e-8)
    shift = np.where(w[:, 0] < 1e-8 * scale, -w[:, 0] + 1e-4 * scale, 0.0)
    steps = -np.linalg.solve(Hf + shift[:, None, None] * eye, gf[:, :, None])[..., 0]
    return np.where(free, steps, 0.0), shift > 0


#: how far a variance sitting at a saddle on its zero bound is first moved inwards
KICK = 0.05
#: a Newton step moves no theta element by more than this, or by half the largest |theta|
TRUST = 1.0
#: step fractions tried when the full step does not decrease the criterion: first the
#: usual ones, then (rarely needed) the rest of the ladder, each group in one batched call
ALPHAS = (0.5 ** np.arange(1, 4), 0.5 ** np.arange(4, 21))
#: a step is accepted if it raises the criterion by at most this (rounding), relative to
#: the criterion's size (1e-12 at 10, 1e-6 for a million observations: ~450 eps |f|)
NOISE = 1e-13
#: a replicate whose full Newton step predicts less decrease than this (and gets about
#: that) is at its optimum after the step
DONE = 1e-5
#: a quasi-Newton replicate (see :func:`_newton`) predicting less decrease than this
#: takes full stencils from then on
QUASI_DONE = 1e-5
#: two full steps running that predict less than this and gain nothing: converged
FLAT = 1e-7
#: a quasi-Newton replicate at a bound (or whose step was cut by one) takes full stencils
#: once its predicted decrease is below this: far from the optimum (a restart from lme4's
#: start touching a zero variance on the way) BFGS steps on are cheaper
QUASI_EDGE = 1e-2
#: quasi-Newton gradients are forward differences with steps this fraction of h, less
#: the first-order truncation error (h/2) H_ii estimated from the BFGS Hessian: about as
#: accurate as the second-order stencil's, at d + 1 points instead of 2d + 1
QUASI_H = 0.1
#: batches of at least this many replicates with one start and at least QUASI_MIN_D
#: variance parameters start quasi-Newton, from the mean Hessian of the first
#: SHARED_H_REPLICATES replicates at the start
QUASI_MIN_R = 16
#: scales of lme4's start that a single fit tries before its first Newton step
START_SCALES = np.array([0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
QUASI_MIN_D = 4
SHARED_H_REPLICATES = 8
#: without a stencil to keep (``stencil=False``), a quasi-Newton replicate inside the
#: bounds ends when its full step predicts less decrease than this and gains about that
QUASI_STOP = 1e-7
#: ... for at most this many steps once they predict less than QUASI_DONE
QUASI_TAIL = 3
#: a diagonal element of Lambda below SNAP[0] that SNAP[1] steps running shrank by a
#: fifth or more is tried at zero (see :func:`_snap`)
SNAP = (0.1, 2)
#: below this predicted decrease a replicate whose full Newton step fails is at its
#: optimum already (the failure is rounding noise): no shorter steps are tried
TINY = 1e-9


def _noise(f: np.ndarray) -> np.ndarray:
    """Rounding level of criterion values f (see ``NOISE``)."""
    return NOISE * np.maximum(10.0, np.abs(f))


def _line_search(engine, resp, reps, REML, th, step, f0, lower, todo, pred, evals):
    """Projected backtracking: the largest of 1, 1/2, 1/4, ... that does not increase f.

    Batched engine calls: the full step for every replicate, then groups of shorter steps
    (see ``ALPHAS``) for those it failed. A replicate no step improves stays where it is.
    ``evals`` (indexed like ``th``) counts each replicate's criterion evaluations.
    """
    new_theta, new_f = th.copy(), f0.copy()
    alpha = np.where(todo, 1.0, 0.0)
    pi = np.flatnonzero(todo)
    if pi.size == 0:
        return new_theta, new_f, alpha
    trial = np.maximum(th[pi] + step[pi], lower)
    ft = engine.criterion(trial, reps[pi], resp, REML)
    evals[pi] += 1
    noise = _noise(f0)
    ok = ft <= f0[pi] + noise[pi]
    new_theta[pi[ok]], new_f[pi[ok]] = trial[ok], ft[ok]
    stay = ~ok & (np.abs(pred[pi]) < np.maximum(TINY, noise[pi]))
    alpha[pi[stay]] = 0.0
    ok |= stay
    for ladder in ALPHAS:
        pi = pi[~ok]
        if pi.size == 0:
            break
        na = ladder.size
        trial = th[pi, None, :] + ladder[None, :, None] * step[pi, None, :]
        trial = np.maximum(trial, lower).reshape(-1, th.shape[1])
        ft = engine.criterion(trial, np.repeat(reps[pi], na), resp, REML).reshape(pi.size, na)
        evals[pi] += na
        good = ft <= (f0 + noise)[pi, None]
        first = np.argmax(good, axis=1)
        ok = good[np.arange(pi.size), first]
        alpha[pi] = np.where(ok, ladder[first], 0.0)
        j = pi[ok]
        new_theta[j] = trial.reshape(pi.size, na, -1)[ok, first[ok]]
        new_f[j] = ft[ok, first[ok]]
    return new_theta, new_f, alpha


def _snap(engine, resp, reps, REML, th, new_theta, new_f, creep, idx, diag, evals) -> None:
    """Try variances creeping towards zero at zero (in place; see ``SNAP``).

    Where the optimum is on the boundary the criterion flattens towards it (it sees a
    diagonal element of Lambda through its square), and Newton steps shrink that element
    by a constant factor each time: linear convergence over many steps. After ``SNAP[1]``
    steps running that shrank a diagonal element below ``SNAP[0]`` by a fifth or more,
    the point with those elements at zero is evaluated and kept if it is lower.
    """
    shrunk = diag[None, :] & (new_theta > 0) & (new_theta < SNAP[0]) & (new_theta < 0.8 * th)
    creep[idx] = np.where(shrunk, creep[idx] + 1, 0)
    at = creep[idx] >= SNAP[1]
    rows = np.flatnonzero(at.any(axis=1) & np.isfinite(new_f))
    if rows.size == 0:
        return
    trial = np.where(at[rows], 0.0, new_theta[rows])
    ft = engine.criterion(trial, reps[rows], resp, REML)
    evals[idx[rows]] += 1
    better = ft < new_f[rows]
    new_theta[rows[better]] = trial[better]
    new_f[rows[better]] = ft[better]
    creep[idx[rows]] = 0


def _newton(
    engine: Engine,
    resp,
    theta: np.ndarray,
    reps: np.ndarray,
    REML: bool,
    max_iter: int,
    h: float,
    ftol: float,
    keep: dict | None = None,
    evals: np.ndarray | None = None,
    H0: np.ndarray | None = None,
    stencil: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lockstep projected Newton from ``theta`` (R, d) for replicates ``reps`` (R,).

    ``keep`` (arrays indexed like ``theta``) receives each replicate's last full stencil;
    ``evals`` (R,) counts criterion evaluations.

    With ``H0`` (d, d), an approximation of the Hessian shared by all replicates, they
    start quasi-Newton: gradients by forward differences (d points besides theta, see
    ``QUASI_H``),
    the Hessian from H0 and BFGS updates. Once a replicate is close (its predicted
    decrease below QUASI_DONE), meets a bound near the optimum (QUASI_EDGE) or stalls, it
    takes the full stencil ((d + 1)(d + 2) / 2 points); only a full-stencil Newton step
    ends the iteration, and only full stencils are kept for the degrees of freedom.
    Without ``stencil`` (no degrees of freedom wanted), a quasi-Newton replicate inside
    the bounds also ends on its own step, once that predicts less than QUASI_STOP and
    gains no more than predicted; replicates at a bound still go full.
    """
    s = engine.structure
    lower = s.theta_lower
    d = s.n_theta
    diag = lower == 0.0
    offsets = _stencil(d) * h
    R = theta.shape[0]
    theta = np.maximum(theta, lower)
    evals = np.zeros(R, dtype=np.int64) if evals is None else evals
    fval = engine.criterion(theta, reps, resp, REML)
    evals += 1
    active = np.isfinite(fval)
    converged = np.zeros(R, dtype=bool)
    iters = np.zeros(R, dtype=np.int64)
    quasi = np.zeros(R, dtype=bool) if H0 is None else np.ones(R, dtype=bool)
    Hq = None if H0 is None else np.repeat(H0[None], R, axis=0)
    g_last = np.full((R, d), np.nan)
    th_last = np.full((R, d), np.nan)
    stalls = np.zeros(R, dtype=np.int64)
    tail = np.zeros(R, dtype=np.int64)  # quasi-Newton steps predicting < QUASI_DONE
    creep = np.zeros((R, d), dtype=np.int64)  # steps running that shrank a variance
    hq = QUASI_H * h
    # the quasi-Newton gradient's points besides theta itself, where f is known already
    # (from the start or the last line search)
    first = np.eye(d) * hq
    for _ in range(max_iter):
        live = active & ~converged
        kinds = [  # (replicates, stencil): full Newton; quasi-Newton gradient
            (np.flatnonzero(live & ~quasi), offsets),
            (np.flatnonzero(live & quasi), first),
        ]
        kinds = [(i, o) for i, o in kinds if i.size]
        if not kinds:
            break
        idx = np.concatenate([i for i, _ in kinds])
        iters[idx] += 1
        pts = np.concatenate([(theta[i, None, :] + o[None]).reshape(-1, d) for i, o in kinds])
        rp = np.concatenate([np.repeat(reps[i], o.shape[0]) for i, o in kinds])
        ld, ldrx, r2, MW = engine.kernel_parts(pts, rp, resp)  # one call for all
        f = engine.criterion_from_parts(ld, ldrx, r2, REML)
        f = np.where(np.isfinite(f), f, np.inf)
        gs, Hs, bads, at = [], [], [], 0
        for i, o in kinds:
            n_i, npt = i.size, o.shape[0]
            fk = f[at : at + n_i * npt].reshape(n_i, npt)
            sl = slice(at, at + n_i * npt)
            at += n_i * npt
            ok = np.all(np.isfinite(fk), axis=1)
            fk[~ok] = 0.0
            bads.append(~ok)
            evals[i] += npt
            if o is offsets:
                g_k, H_k = _grad_hess(fk, d, h)
                if keep is not None:
                    keep["center"][i] = theta[i]
                    keep["a"][i] = (ld[sl] + ldrx[sl] if REML else ld[sl]).reshape(n_i, npt)
                    keep["r2"][i] = r2[sl].reshape(n_i, npt)
                    keep["MW"][i] = MW[sl].reshape(n_i, npt, *MW.shape[1:])
            else:
                g_k = (fk - fval[i][:, None]) / hq
                g_k -= 0.5 * hq * np.diagonal(Hq[i], axis1=1, axis2=2)
                seen = np.isfinite(g_last[i, 0])
                upd = _bfgs(Hq[i], theta[i] - th_last[i], g_k - g_last[i])
                Hq[i] = np.where(seen[:, None, None], upd, Hq[i])
                g_last[i], th_last[i] = g_k, theta[i]
                H_k = Hq[i]
            gs.append(g_k)
            Hs.append(H_k)
        g, H, bad = (np.concatenate(v) if len(v) > 1 else v[0] for v in (gs, Hs, bads))
        q = quasi[idx]
        th = theta[idx]
        at_bound = diag[None, :] & (th <= 0.0)
        hdiag = np.diagonal(H, axis1=1, axis2=2)
        # A variance at zero stays there while the criterion rises inwards. With zero
        # slope and negative curvature (the criterion depends on it through its square)
        # it is a saddle: step inwards along it, the other coordinates by Newton.
        kick = at_bound & (np.abs(g) < 1e-3) & (hdiag < 0)
        free = ~(at_bound & (g >= 0)) & ~kick
        newton, shifted = _newton_steps(g, H, free)
        step = np.where(kick, KICK, newton)
        # a step longer than the trust radius is shortened (same direction): in a flat
        # direction (e.g. a random intercept absorbing a dropped fixed intercept) Newton's
        # quadratic model sends theta far past the optimum
        radius = np.maximum(TRUST, 0.5 * np.abs(th).max(axis=1))
        longest = np.abs(step).max(axis=1)
        capped = longest > radius
        step *= np.minimum(1.0, radius / np.maximum(longest, 1e-300))[:, None]
        # where Newton's own step was taken (not shifted, capped or cut by a bound), its
        # predicted decrease measures the distance to the optimum
        cut = np.any(th + step < lower, axis=1)
        pure = ~shifted & ~capped & ~cut & ~kick.any(axis=1) & ~q
        # Newton's predicted decrease; once tiny, the full step lands on the optimum
        pred = -(np.einsum("ri,ri->r", g, step) + 0.5 * np.einsum("ri,rij,rj->r", step, H, step))
        ev = np.zeros(idx.size, dtype=np.int64)
        new_theta, new_f, alpha = _line_search(
            engine, resp, reps[idx], REML, th, step, fval[idx], lower, ~bad, pred, ev
        )
        evals[idx] += ev
        _snap(engine, resp, reps[idx], REML, th, new_theta, new_f, creep, idx, diag, evals)
        moved = np.abs(new_theta - theta[idx]).max(axis=1)
        decrease = fval[idx] - new_f
        pg = np.where(free, g, 0.0)
        noise = _noise(fval[idx])
        small = (decrease < np.maximum(ftol, noise)) & (moved < 1e-6)
        small &= np.abs(pg).max(axis=1) < 1e-3
        # a pure Newton step whose predicted decrease is below DONE, and which decreased f
        # by no more than predicted (+5%), lands within ~DONE^2 of the optimum (quadratic
        # convergence): no further stencil is needed to confirm it. A decrease above the
        # prediction means the model's curvature is too high, so the optimum may be
        # further than predicted (slow, linear convergence towards a boundary optimum):
        # go on. A smaller one (a flat valley: at a zero variance the criterion sees only
        # |Lambda's column|) means it is nearer.
        agree = decrease <= 1.05 * np.abs(pred) + noise
        small |= (alpha == 1.0) & (np.abs(pred) < DONE) & agree & pure
        small |= (alpha == 1.0) & (np.abs(pred) < np.maximum(1e-10, noise)) & ~kick.any(axis=1)
        # a flat valley (a variance at zero: the criterion sees only the length of the
        # rest of its Lambda column, so one direction has no curvature and the shifted
        # Newton step slides along it): nothing left to gain in two steps running
        flat = (alpha == 1.0) & (np.abs(pred) < FLAT) & (decrease <= noise) & ~kick.any(axis=1)
        stalls[idx] = np.where(flat & ~q, stalls[idx] + 1, 0)
        small |= stalls[idx] >= 2
        # only a full stencil ends the iteration, unless none is wanted: then a BFGS step
        # inside the bounds that predicts a tiny decrease, and gets no more, does
        inside = ~shifted & ~capped & ~cut & ~at_bound.any(axis=1) & ~kick.any(axis=1)
        done_q = (alpha == 1.0) & (np.abs(pred) < QUASI_STOP) & agree & inside
        small = np.where(q, (small | done_q) & (not stencil), small)
        # quasi-Newton replicates close to the optimum, at a bound or stalled go full
        edge = (at_bound.any(axis=1) | cut) & (np.abs(pred) < QUASI_EDGE)
        close = np.abs(pred) < QUASI_DONE
        tail[idx] = np.where(q & close, tail[idx] + 1, tail[idx])
        # without a stencil to keep, BFGS goes on close to the optimum for a few steps,
        # once it has had at least d updates (in fewer its Hessian is still rough)
        lean = (not stencil) & (iters[idx] > d) & (tail[idx] <= QUASI_TAIL)
        near = (close & ~lean) | edge | (alpha == 0.0)
        quasi[idx[q & near]] = False
        theta[idx] = new_theta
        fval[idx] = new_f
        converged[idx[small & ~bad]] = True
        active[idx[bad]] = False
    return theta, fval, converged, iters


def shared_hessian(
    engine: Engine, Y: np.ndarray, start: np.ndarray, REML: bool, h: float = 1e-4
) -> np.ndarray | None:
    """The quasi-Newton start for refits of responses like the columns of ``Y`` (the mean
    Hessian at ``start`` over its first replicates, made positive definite), or None.

    Example:
        >>> import lmmcore, numpy as np
        >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)",
        ...                   lmmcore.load_dataset("sleepstudy"))
        >>> shared_hessian(res.engine, res.simulate(8, seed=1), res.theta, True).shape
        (3, 3)
    """
    Y = np.asarray(Y, dtype=float).reshape(Y.shape[0], -1)[:, :SHARED_H_REPLICATES]
    start = np.asarray(start, dtype=float)
    return _shared_hessian(engine, engine.responses(Y), start, np.arange(Y.shape[1]), REML, h)


def _shared_hessian(engine, resp, start, reps, REML, h) -> np.ndarray | None:
    """Mean Hessian of the criterion at ``start`` over a few replicates, made positive
    definite: the quasi-Newton start of :func:`_newton` for a batch that shares it."""
    d = start.size
    offsets = _stencil(d) * h
    m = min(reps.size, SHARED_H_REPLICATES)
    pts = np.tile(start + offsets, (m, 1))
    f = engine.criterion(pts, np.repeat(reps[:m], offsets.shape[0]), resp, REML)
    f = f.reshape(m, -1)
    f = f[np.all(np.isfinite(f), axis=1)]
    if f.shape[0] == 0:
        return None
    H = _grad_hess(f, d, h)[1].mean(axis=0)
    w, V = np.linalg.eigh((H + H.T) / 2)
    if not np.all(np.isfinite(w)) or w[-1] <= 0:
        return None
    return (V * np.maximum(w, 1e-3 * w[-1])) @ V.T


@dataclass
class _Optimised:
    """Per replicate: optimum, criterion, flags and counts (see :func:`_optimise`)."""

    theta: np.ndarray
    fval: np.ndarray
    converged: np.ndarray
    iters: np.ndarray
    evals: np.ndarray
    fallback: np.ndarray
    keep: dict


def _optimise(
    engine, resp, reps, starts, REML, max_iter, h, ftol, H0: Any = "batch", stencil: bool = True
) -> _Optimised:
    """Newton from ``starts`` (R, d) for replicates ``reps``, then the boundary restarts,
    then BOBYQA for whatever Newton did not settle: every replicate ends at the optimum a
    careful one-at-a-time fit finds."""
    s = engine.structure
    lower = s.theta_lower
    diag = lower == 0.0
    R = reps.size
    keep = _stencil_store(s, R)
    evals = np.zeros(R, dtype=np.int64)
    if isinstance(H0, np.ndarray):  # given by the caller: the same for every chunk
        H0 = H0 if s.n_theta >= QUASI_MIN_D and np.all(starts == starts[0]) else None
    elif (
        H0 == "batch"
        and R >= QUASI_MIN_R
        and s.n_theta >= QUASI_MIN_D
        and np.all(starts == starts[0])
    ):
        H0 = _shared_hessian(engine, resp, starts[0], reps, REML, h)
        evals[: min(R, SHARED_H_REPLICATES)] += _stencil(s.n_theta).shape[0]
    else:
        H0 = None
    theta, fval, converged, iters = _newton(
        engine, resp, starts.copy(), reps, REML, max_iter, h, ftol, keep, evals, H0, stencil
    )
    # Replicates that ended on the boundary may sit in the wrong one of several boundary
    # optima: Newton again from the other side of the column-sign symmetry of each column
    # whose diagonal ended at zero (the criterion only sees Lambda Lambda'), then, for those
    # still on it, from lme4's start (where a single fit begins)
    for restart in ("flip", "theta0"):
        edge = np.flatnonzero(converged & np.any(theta[:, diag] <= SINGULAR_TOL, axis=1))
        if restart == "flip":  # only where the flip is another point
            edge = edge[has_mirror_image(theta[edge], s.theta_columns, SINGULAR_TOL)]
        if restart == "theta0":
            edge = edge[np.any(starts[edge] != s.theta0, axis=1)]
        if edge.size == 0:
            continue
        if restart == "flip":
            st = flip_edge_columns(theta[edge], s.theta_columns, edge=SINGULAR_TOL)
        else:
            st = np.tile(s.theta0, (edge.size, 1))
        keep2 = _stencil_store(s, edge.size)
        ev2 = np.zeros(edge.size, dtype=np.int64)
        # quasi-Newton again where the batch began so (H0 still approximates the Hessian)
        t2, f2, c2, it2 = _newton(
            engine, resp, st, reps[edge], REML, max_iter, h, ftol, keep2, ev2, H0, stencil
        )
        iters[edge] += it2
        evals[edge] += ev2
        better = c2 & (f2 < fval[edge] - 1e-10)
        theta[edge[better]] = t2[better]
        fval[edge[better]] = f2[better]
        for k in keep:
            keep[k][edge[better]] = keep2[k][better]
    # the robust one-at-a-time optimiser for whatever Newton did not settle
    fallback = ~converged
    for i in np.flatnonzero(fallback):
        rep = reps[i : i + 1]

        def obj(t: np.ndarray, rep: np.ndarray = rep) -> float:
            return float(engine.criterion(t[None, :], rep, resp, REML)[0])

        x0s = [s.theta0]
        if np.all(np.isfinite(theta[i])):
            x0s.append(theta[i])
        best = np.inf
        for x0 in x0s:
            opt = minimize_theta(obj, x0, lower, columns=s.theta_columns)
            evals[i] += opt.feval
            if opt.fun < best:
                best = opt.fun
                theta[i], fval[i] = opt.theta, opt.fun
                converged[i] = opt.converged
    keep["center"][fallback] = np.nan
    return _Optimised(theta, fval, converged, iters, evals, fallback, keep)


def newton_fit(
    engine: Engine,
    resp,
    rep: int,
    start: np.ndarray,
    REML: bool,
    *,
    max_iter: int = 40,
    h: float = 1e-4,
    ftol: float = 1e-10,
    scan: bool = False,
) -> OptSummary:
    """Fit one response (column ``rep`` of ``resp``) by the refit engine's Newton
    iteration: what :func:`lmmcore.fit` does by default.

    From ``start`` (lme4's: identity Lambda), with the same boundary restarts and BOBYQA
    fallback as the batch refits. With ``scan``, Newton starts from the best of
    ``start * c`` for c in START_SCALES (one batched evaluation): where the optimum is
    far from the identity (nlme's Machines: theta up to 5.3) the iteration then starts
    at its scale rather than walking there.
    """
    start = np.asarray(start, dtype=float)
    reps = np.array([rep])
    first = start
    extra = 0
    if scan:
        cands = start[None, :] * START_SCALES[:, None]
        f = engine.criterion(cands, np.repeat(reps, cands.shape[0]), resp, REML)
        first, extra = cands[int(np.argmin(f))], cands.shape[0]
    o = _optimise(engine, resp, reps, first[None, :], REML, max_iter, h, ftol)
    o.evals[0] += extra
    converged = bool(o.converged[0]) and bool(np.isfinite(o.fval[0]))
    if o.fallback[0]:
        name = "Newton, then nlopt LN_BOBYQA"
        message = "Newton did not settle; refitted by BOBYQA"
    else:
        name = "Newton (finite-difference Hessian)"
        message = f"converged after {int(o.iters[0])} Newton iterations"
    return OptSummary(
        optimizer=name,
        theta0=start,
        theta=o.theta[0].copy(),
        fun=float(o.fval[0]),
        feval=int(o.evals[0]),
        restarts=0,
        message=message if converged else "not converged",
        converged=converged,
        warnings=() if converged else (f"optimizer: {message}, not converged",),
    )


def refit_batch(
    engine: Engine,
    Y: np.ndarray,
    start: np.ndarray,
    *,
    REML: bool = True,
    max_iter: int = 40,
    h: float = 1e-4,
    ftol: float = 1e-10,
    H0: Any = "batch",
    stencil: bool = True,
    responses: Any = None,
) -> BatchFit:
    """Fit the model to every column of Y (n, B), starting each from ``start``.

    ``H0``: the quasi-Newton start shared by the replicates: ``"batch"`` (estimated from
    this batch's first replicates), None (full Newton), or a (d, d) matrix from
    `shared_hessian`. Simulations pass one matrix made from fixed replicate streams, so a
    replicate's numbers do not depend on the chunk it is refitted in. ``stencil=False``
    (no Satterthwaite df from the result's stencil wanted) lets quasi-Newton replicates
    end without a last full stencil: fewer evaluations, the same optimum. ``responses``:
    ``engine.responses(Y)`` when the caller has it already.
    """
    s = engine.structure
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    B = Y.shape[1]
    resp = engine.responses(Y) if responses is None else responses
    starts = np.tile(np.asarray(start, dtype=float), (B, 1))
    o = _optimise(engine, resp, np.arange(B), starts, REML, max_iter, h, ftol, H0, stencil)
    p = s.p
    MW = o.keep["MW"]
    Wd = np.full(MW.shape[:2] + (p,), np.nan)
    have = np.all(np.isfinite(MW), axis=(1, 2, 3))
    if have.any():
        Wd[have] = np.diagonal(np.linalg.inv(MW[have][..., :p, :p]), axis1=-2, axis2=-1)
    k = o.keep
    stencil = Stencil(h, k["center"], k["a"], k["r2"], Wd)
    return _finish(engine, resp, o.theta, o.fval, o.converged, o.iters, o.fallback, REML, stencil)


def _stencil_store(s, R: int) -> dict:
    npts = _stencil(s.n_theta).shape[0]
    return {
        "center": np.full((R, s.n_theta), np.nan),
        "a": np.full((R, npts), np.nan),
        "r2": np.full((R, npts), np.nan),
        "MW": np.full((R, npts, s.p + 1, s.p + 1), np.nan),
    }


def _finish(engine, resp, theta, fval, converged, iters, fallback, REML, stencil=None):
    s = engine.structure
    B = theta.shape[0]
    p = s.p
    beta = np.full((B, p), np.nan)
    se = np.full((B, p), np.nan)
    sigma = np.full(B, np.nan)
    status = np.empty(B, dtype=object)
    dof = s.n - p if REML else s.n
    ok = np.isfinite(fval)
    for start in range(0, B, engine.chunk):
        sl = np.arange(start, min(B, start + engine.chunk))
        sl = sl[ok[sl]]
        if sl.size == 0:
            continue
        _, _, r2, MW = engine.kernel_parts(theta[sl], sl, resp)
        XtVX = MW[:, :p, :p]
        beta[sl] = np.linalg.solve(XtVX, MW[:, :p, p][:, :, None])[..., 0]
        sig2 = r2 / dof
        sigma[sl] = np.sqrt(sig2)
        inv = np.linalg.inv(XtVX)
        se[sl] = np.sqrt(sig2[:, None] * np.diagonal(inv, axis1=1, axis2=2))
    singular = np.any(theta[:, s.theta_lower == 0.0] < SINGULAR_TOL, axis=1)
    status[:] = "ok"
    status[singular] = "singular"
    status[~converged] = "not converged"
    status[~ok] = "failed"
    status = status.astype(STATUS_DTYPE)
    return BatchFit(theta, beta, sigma, fval, se, status, iters, fallback, stencil)
