"""Minimise the profiled criterion over theta (lme4's ``optimizeLmer``).

NLopt's BOBYQA (the optimiser lme4 uses by default), run to tight tolerances, restarted
from its own optimum until it stops improving, and checked at the boundary: when a
variance ends at zero, the fit is restarted a little inside the feasible region (lme4's
``restart_edge``) so that a false singular fit is not reported.

Example:
    >>> import numpy as np
    >>> s = minimize_theta(lambda t: float((t[0] - 0.3) ** 2), np.array([1.0]), np.array([0.0]))
    >>> round(float(s.theta[0]), 6), s.converged
    (0.3, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nlopt
import numpy as np

_NLOPT_MESSAGES = {
    nlopt.SUCCESS: "NLOPT_SUCCESS",
    nlopt.STOPVAL_REACHED: "NLOPT_STOPVAL_REACHED",
    nlopt.FTOL_REACHED: "NLOPT_FTOL_REACHED",
    nlopt.XTOL_REACHED: "NLOPT_XTOL_REACHED",
    nlopt.MAXEVAL_REACHED: "NLOPT_MAXEVAL_REACHED",
    nlopt.MAXTIME_REACHED: "NLOPT_MAXTIME_REACHED",
}


@dataclass(frozen=True)
class OptSummary:
    """What the optimiser did (after MixedModels.jl's OptSummary)."""

    optimizer: str
    theta0: np.ndarray
    theta: np.ndarray
    fun: float
    feval: int
    restarts: int
    message: str
    converged: bool
    warnings: tuple[str, ...] = field(default=())


def _bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    step: float,
    maxeval: int,
    upper: np.ndarray | None = None,
) -> tuple[np.ndarray, float, int, int]:
    d = x0.size
    count = [0]

    def f(x, grad):
        count[0] += 1
        v = fun(x)
        return v if np.isfinite(v) else 1e300

    opt = nlopt.opt(nlopt.LN_BOBYQA, d)
    opt.set_min_objective(f)
    upper = np.full(d, np.inf) if upper is None else upper
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_ftol_abs(1e-13)
    opt.set_ftol_rel(1e-15)
    opt.set_xtol_abs(np.full(d, 1e-11))
    opt.set_maxeval(maxeval)
    opt.set_initial_step(np.full(d, step))
    x0 = np.minimum(np.maximum(x0, lower), upper)
    try:
        x = opt.optimize(x0)
        status = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        x, status = x0, nlopt.SUCCESS
    val = f(x, None)
    return np.asarray(x, dtype=float), float(val), count[0], int(status)


#: a diagonal element of Lambda at or below this is where the edge check looks (exact stops)
OPT_EDGE = 1e-6


def flip_edge_columns(
    theta: np.ndarray,
    columns: Sequence[tuple[int, np.ndarray]],
    edge: float,
    inwards: float = 0.05,
) -> np.ndarray:
    """Starting points off the boundary for theta (..., d) stopped with diagonals at zero.

    The criterion depends on Lambda only through Lambda Lambda', so the sign of a column of
    Lambda is arbitrary; once a column's diagonal is zero, an optimiser can stop on the
    wrong side of that symmetry. Flip each column whose diagonal is at most ``edge`` and
    move that diagonal ``inwards``.
    """
    out = np.array(theta, dtype=float, copy=True)
    for diag, below in columns:
        zero = out[..., diag] <= edge
        if below.size:
            out[..., below] = np.where(zero[..., None], -out[..., below], out[..., below])
        out[..., diag] = np.where(zero, inwards, out[..., diag])
    return out


def has_mirror_image(
    theta: np.ndarray, columns: Sequence[tuple[int, np.ndarray]], edge: float
) -> np.ndarray:
    """Where :func:`flip_edge_columns` gives another point (..., bool): some column with
    its diagonal at most ``edge`` has a nonzero element below it. (A zero-diagonal column
    with nothing below, such as a block's last, is all zero: its sign flip is itself.)

    Example:
        >>> cols = [(0, np.array([1])), (2, np.array([], dtype=int))]
        >>> has_mirror_image(np.array([[0.0, 0.3, 1.0], [1.0, 0.3, 0.0]]), cols, 1e-4)
        array([ True, False])
    """
    theta = np.asarray(theta, dtype=float)
    out = np.zeros(theta.shape[:-1], dtype=bool)
    for diag, below in columns:
        if below.size:
            out |= (theta[..., diag] <= edge) & np.any(theta[..., below] != 0.0, axis=-1)
    return out


def minimize_theta(
    fun: Callable[[np.ndarray], float],
    theta0: np.ndarray,
    lower: np.ndarray,
    *,
    maxeval: int = 20000,
    max_restarts: int = 4,
    columns: Sequence[tuple[int, np.ndarray]] = (),
    upper: np.ndarray | None = None,
) -> OptSummary:
    """Minimise ``fun`` over theta >= lower with BOBYQA, restarts and an edge check.

    ``columns`` (``ModelStructure.theta_columns``) lets the edge check also restart from
    the other side of a column-sign symmetry (see :func:`flip_edge_columns`). ``upper``
    (default none) bounds the parameters from above, e.g. correlations at 1 when a
    profile works on lme4's sd/cor scale.
    """
    theta0 = np.asarray(theta0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    x, fx, nfev, status = _bobyqa(fun, theta0, lower, 0.2, maxeval, upper)
    restarts = 0
    notes: list[str] = []
    for _ in range(max_restarts):
        # edge check: a diagonal element at its bound may be a false stop
        at_edge = np.flatnonzero((lower == 0.0) & (x <= OPT_EDGE))
        candidates = [x]
        for i in at_edge:
            for h in (1e-3, 0.05):
                xx = x.copy()
                xx[i] = h
                candidates.append(xx)
        best_start, best_val = x, fx
        for c in candidates[1:]:
            v = fun(c)
            nfev += 1
            if v < best_val - 1e-10:
                best_start, best_val = c, v
        starts = [best_start]
        if columns and at_edge.size:
            starts.append(flip_edge_columns(x, columns, edge=OPT_EDGE))
        x2, f2, status2 = x, np.inf, status
        for start in starts:
            xs, fs, ns, st = _bobyqa(fun, start, lower, 0.05, maxeval, upper)
            nfev += ns
            if fs < f2:
                x2, f2, status2 = xs, fs, st
        restarts += 1
        if f2 < fx - 1e-12:
            improved = fx - f2
            x, fx, status = x2, f2, status2
            if improved < 1e-10:
                break
        else:
            break
    converged = status in (nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.XTOL_REACHED) and np.isfinite(
        fx
    )
    if not converged:
        notes.append(f"optimizer stopped with {_NLOPT_MESSAGES.get(status, status)}")
    return OptSummary(
        optimizer="nlopt LN_BOBYQA",
        theta0=theta0,
        theta=x,
        fun=fx,
        feval=nfev,
        restarts=restarts,
        message=_NLOPT_MESSAGES.get(status, str(status)),
        converged=bool(converged),
        warnings=tuple(notes),
    )
