"""Parametric bootstrap (lme4's ``bootMer``) on the batched refit engine.

Example:
    >>> import lmmcore
    >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))
    >>> boot = lmmcore.bootMer(res, B=50, seed=1)
    >>> boot.estimates.shape, boot.names[:2]
    ((50, 6), ['(Intercept)', 'Days'])
    >>> boot.ci(level=0.9).shape
    (6, 2)
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from lmmcore.backends import get_backend
from lmmcore.engine import Responses, Solution
from lmmcore.errors import BootstrapError, LmmWarning
from lmmcore.limits import MAX_NSIM
from lmmcore.refit import (
    SHARED_H_REPLICATES,
    STATUS_DTYPE,
    BatchFit,
    refit_batch,
    shared_hessian,
)
from lmmcore.result import LMMResult
from lmmcore.simulate import SeedLike, child_seeds, draw_responses, seed_sequence

CI_METHODS = ("perc", "basic", "norm")
#: simulated values (rows x replicates) per chunk: bounds memory whatever B is
CHUNK_VALUES = 2_000_000
#: replicates in the first chunk of a sequential run, and the time later chunks aim at
FIRST_CHUNK = 50
CHUNK_SECONDS = 0.5


@dataclass(frozen=True, eq=False)
class BootResult:
    """Bootstrap replicates of a statistic, with per-replicate fit status.

    ``estimates`` is (B, p); failed replicates hold NaN and are excluded from every
    interval and summary (and counted in ``status_counts``). As interlace's
    ``BootResult(estimates)``, only the estimates are required: ``names`` default to
    ``t1 .. tp``, ``status`` to ``"ok"`` for every replicate, and without ``t0`` (the
    statistic on the original fit) only the percentile interval is available.

    Example:
        >>> import numpy as np
        >>> est = np.random.default_rng(1).normal(size=(200, 2))
        >>> b = BootResult(est)
        >>> b.names, b.ci(level=0.9).shape
        (['t1', 't2'], (2, 2))
    """

    estimates: np.ndarray
    names: list[str] | None = None
    t0: np.ndarray | None = None
    status: np.ndarray | None = None
    interrupted: bool = False

    def __post_init__(self) -> None:
        est = np.asarray(self.estimates, dtype=float)
        if est.ndim == 1:
            est = est[:, None]
        if est.ndim != 2:
            raise BootstrapError(
                f"estimates must be a (B, p) array of replicates, got shape {est.shape}."
            )
        B, p = est.shape
        names = [f"t{i + 1}" for i in range(p)] if self.names is None else list(self.names)
        if len(names) != p:
            raise BootstrapError(f"{len(names)} names for {p} statistics; give one per column.")
        t0 = self.t0
        if t0 is not None:
            t0 = np.asarray(t0, dtype=float).ravel()
            if t0.size != p:
                raise BootstrapError(
                    f"t0 has {t0.size} values for {p} statistics; give one per column."
                )
        status = self.status
        status = np.full(B, "ok", dtype=STATUS_DTYPE) if status is None else np.asarray(status)
        if status.shape != (B,):
            raise BootstrapError(
                f"status has shape {status.shape} for {B} replicates; give one per replicate "
                "or leave it out (all 'ok')."
            )
        for name, value in (("estimates", est), ("names", names), ("t0", t0), ("status", status)):
            object.__setattr__(self, name, value)

    def _need_t0(self, what: str) -> np.ndarray:
        if self.t0 is None:
            raise BootstrapError(
                f"{what} needs t0, the statistic on the original fit; pass "
                "BootResult(estimates, names, t0) or use method='perc'."
            )
        return self.t0

    @property
    def B(self) -> int:
        return self.estimates.shape[0]

    @property
    def valid(self) -> np.ndarray:
        return (self.status != "failed") & np.all(np.isfinite(self.estimates), axis=1)

    def status_counts(self) -> dict[str, int]:
        """Replicates by status: ok, singular, not converged, failed."""
        out = {k: 0 for k in ("ok", "singular", "not converged", "failed")}
        for s in self.status:
            out[str(s)] = out.get(str(s), 0) + 1
        return out

    def ci(self, method: str = "perc", level: float = 0.95) -> np.ndarray:
        """Bootstrap confidence intervals, (p, 2) with columns [lower, upper].

        Methods as R's ``boot.ci``: ``"perc"`` (percentile, with boot's interpolation of
        order statistics), ``"basic"`` (2 t0 - percentile), ``"norm"`` (normal with
        bootstrap bias correction and SD).
        """
        if method not in CI_METHODS:
            raise BootstrapError(
                f"Unknown CI method {method!r}; use one of {', '.join(CI_METHODS)}."
            )
        if not isinstance(level, float | int) or not 0 < level < 1:
            raise BootstrapError(f"level must be strictly between 0 and 1, got {level!r}.")
        est = self.estimates[self.valid]
        if est.shape[0] < 2:
            raise BootstrapError("Fewer than 2 valid bootstrap replicates: no interval.")
        a = (1 - level) / 2
        if method == "norm":
            t0 = self._need_t0("The 'norm' interval")
            bias = est.mean(axis=0) - t0
            sd = est.std(axis=0, ddof=1)
            z = stats.norm.ppf(1 - a)
            centre = t0 - bias
            return np.column_stack([centre - z * sd, centre + z * sd])
        q = np.column_stack(
            [_norm_inter(est[:, j], np.array([a, 1 - a])) for j in range(est.shape[1])]
        ).T
        if method == "perc":
            return q
        t0 = self._need_t0("The 'basic' interval")
        return np.column_stack([2 * t0 - q[:, 1], 2 * t0 - q[:, 0]])

    def ci_frame(self, method: str = "perc", level: float = 0.95) -> pd.DataFrame:
        ci = self.ci(method, level)
        a = (1 - level) / 2
        return pd.DataFrame(
            ci, index=self.names, columns=[f"{100 * a:.1f} %", f"{100 * (1 - a):.1f} %"]
        )

    def summary(self, method: str = "perc", level: float = 0.95) -> pd.DataFrame:
        """Per statistic: original, bias, std. error and CI (as R's boot print)."""
        t0 = self._need_t0("summary()")
        est = self.estimates[self.valid]
        ci = self.ci(method, level)
        return pd.DataFrame(
            {
                "original": t0,
                "bias": est.mean(axis=0) - t0,
                "std. error": est.std(axis=0, ddof=1),
                "lower": ci[:, 0],
                "upper": ci[:, 1],
            },
            index=self.names,
        )


def _norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """boot's ``norm.inter``: quantiles at (R+1) alpha, interpolated on the normal scale."""
    t = np.sort(t[np.isfinite(t)])
    R = t.size
    rk = (R + 1) * alpha
    out = np.empty(alpha.size)
    for i, r in enumerate(rk):
        k = int(np.floor(r))
        if abs(r - round(r)) < 1e-10 and 1 <= round(r) <= R:
            out[i] = t[int(round(r)) - 1]
        elif k == 0:
            out[i] = t[0]
        elif k >= R:
            out[i] = t[-1]
        else:
            lo, hi = stats.norm.ppf(k / (R + 1)), stats.norm.ppf((k + 1) / (R + 1))
            tk = stats.norm.ppf(alpha[i])
            out[i] = t[k - 1] + (tk - lo) / (hi - lo) * (t[k] - t[k - 1])
    return out


def default_statistic_names(result: LMMResult) -> list[str]:
    return [*result.fe_names, "sigma", *result.structure.theta_names]


def _default_values(fits: BatchFit) -> np.ndarray:
    return np.column_stack([fits.beta, fits.sigma, fits.theta])


def _call_statistic(statistic: Callable, fit: LMMResult, where: str) -> np.ndarray:
    """statistic(fit) as a float array; what it raises becomes a BootstrapError."""
    try:
        return np.asarray(statistic(fit), dtype=float)
    except Exception as exc:
        raise BootstrapError(
            f"The statistic raised {type(exc).__name__}: {exc} on {where}."
        ) from exc


def _result_for(result: LMMResult, resp: Responses, j: int, theta: np.ndarray) -> LMMResult:
    """The refit of column j of a chunk's responses, as a full result for a statistic."""
    eng = result.engine
    sol: Solution = eng.solve(theta, j, resp)
    return LMMResult(result.structure, eng, resp, j, sol, result.optimizer, result.REML)


def _shared_start(result: LMMResult, ss) -> np.ndarray | None:
    """The quasi-Newton start every chunk shares: from replicate streams 0..7, whatever the
    chunking, so a replicate's numbers do not depend on the chunk it is in."""
    Y0 = draw_responses(
        result.structure,
        result.solution.beta,
        result.solution.theta,
        result.sigma,
        child_seeds(ss, 0, SHARED_H_REPLICATES),
    )
    return shared_hessian(result.engine, Y0, result.theta, result.REML)


def _chunk(problem: tuple, start: int, stop: int, ss) -> tuple[np.ndarray, np.ndarray]:
    """A backend's chunk function: ``problem`` is (result, statistic, use_u, p_out)."""
    result, statistic, use_u, p_out = problem
    return _run_chunk(result, start, stop, ss, statistic, use_u, p_out)


def _run_chunk(
    result: LMMResult, start: int, stop: int, ss, statistic, use_u: bool, p_out: int
) -> tuple[np.ndarray, np.ndarray]:
    with threadpool_limits(1):
        Y = draw_responses(
            result.structure,
            result.solution.beta,
            result.solution.theta,
            result.sigma,
            child_seeds(ss, start, stop),
            u=result.solution.u if use_u else None,
        )
        resp = result.engine.responses(Y)  # the refits and a statistic's results share them
        fits = refit_batch(
            result.engine,
            Y,
            result.theta,
            REML=result.REML,
            H0=_shared_start(result, ss),
            stencil=False,  # no degrees of freedom from the refits' stencils
            responses=resp,
        )
    status = fits.status.copy()
    if statistic is None:
        vals = _default_values(fits)
    else:
        vals = np.full((stop - start, p_out), np.nan)
        for j in range(stop - start):
            if status[j] == "failed":
                continue
            refit = _result_for(result, resp, j, fits.theta[j])
            v = _call_statistic(statistic, refit, f"replicate {start + j}")
            if v.shape != (p_out,):
                raise BootstrapError(
                    f"The statistic returned shape {v.shape} on replicate {start + j}, but "
                    f"{(p_out,)} on the original fit; it must return a 1-D array of fixed "
                    "length."
                )
            vals[j] = v
    vals[status == "failed"] = np.nan
    return vals, status


def bootMer(
    result: LMMResult,
    statistic: Callable[[LMMResult], np.ndarray] | None = None,
    B: int = 500,
    seed: SeedLike = None,
    show_progress: bool = False,
    n_jobs: int = 1,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    use_u: bool = False,
    backend: Any = None,
) -> BootResult:
    """Parametric bootstrap: simulate from the fit, refit, collect ``statistic``.

    Args:
        result: a fitted model.
        statistic: ``f(refit) -> 1-D array``; default ``[fixed effects, sigma, theta]``.
        B: number of replicates.
        seed: int, Generator or None; replicate i uses the i-th child stream, so results
            do not depend on ``n_jobs`` or ``chunk_size``.
        show_progress: show a tqdm progress bar.
        n_jobs: worker processes (-1: all cores).
        backend: where chunks run, as for `lmmcore.power`: None (this process, or
            ``n_jobs`` processes), "processes", "dask" with a Client, or a
            `lmmcore.backends.Backend`; the numbers are the same on every backend.
        progress: callback ``progress(done, total)`` after each chunk (for the app).
        chunk_size: replicates per engine call (memory does not grow with B). Default: at
            most 2,000,000 simulated values; run in this process, a first chunk of 50, then
            chunks that take about half a second each (a moving progress bar).
        use_u: condition on the fitted random effects (lme4's ``use.u``).

    Ctrl-C returns the replicates finished so far, with a warning.
    """
    if not isinstance(B, int | np.integer) or isinstance(B, bool) or B < 1:
        raise BootstrapError(f"B must be a positive integer number of replicates, got {B!r}.")
    if B > MAX_NSIM:
        raise BootstrapError(
            f"B = {B:,} replicates is more than the limit of {MAX_NSIM:,}; 1,000 to 10,000 "
            "give stable intervals."
        )
    if statistic is not None and not callable(statistic):
        raise BootstrapError("statistic must be a function of a fitted model, or None.")
    if statistic is None:
        names = default_statistic_names(result)
        t0 = np.concatenate([result.solution.beta, [result.sigma], result.solution.theta])
    else:
        t0 = _call_statistic(statistic, result, "the original fit")
        if t0.ndim != 1 or t0.size == 0:
            raise BootstrapError(
                f"The statistic must return a non-empty 1-D array; it returned shape {t0.shape}."
            )
        names = [f"t{i + 1}" for i in range(t0.size)]
    ss = seed_sequence(seed)
    # big chunks amortise the per-iteration Python work; memory stays bounded
    chunk = int(chunk_size or min(2000, max(50, CHUNK_VALUES // result.nobs)))
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    workers = getattr(backend, "n_jobs", n_jobs) if backend is not None else n_jobs
    if workers > 1 and chunk_size is None:  # at least one chunk per worker
        chunk = min(chunk, -(-B // workers))
    bounds = [(a, min(B, a + chunk)) for a in range(0, B, chunk)]
    est = np.full((B, t0.size), np.nan)
    status = np.full(B, "failed", dtype=object)
    done = np.zeros(B, dtype=bool)
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=B, desc="bootMer", unit="rep")
    interrupted = False
    finished = 0

    def record(a: int, b: int, vals: np.ndarray, st: np.ndarray) -> None:
        nonlocal finished
        est[a:b] = vals
        status[a:b] = st
        done[a:b] = True
        finished += b - a
        if bar is not None:
            bar.update(b - a)
        if progress is not None:
            progress(finished, B)

    be = None if backend is None and n_jobs == 1 else get_backend(backend, n_jobs)
    if be is not None and be.name == "local":
        be = None
    try:
        if be is None or len(bounds) == 1:
            # without a chunk_size: a small first chunk, then chunks sized to take about
            # CHUNK_SECONDS each (up to the memory cap), so that the progress bar moves and
            # an interrupt loses little; the numbers do not depend on the chunking
            a, size = 0, chunk if chunk_size else min(chunk, FIRST_CHUNK)
            while a < B:
                b = min(B, a + size)
                tic = time.perf_counter()
                record(a, b, *_run_chunk(result, a, b, ss, statistic, use_u, t0.size))
                if not chunk_size:
                    per_rep = max((time.perf_counter() - tic) / (b - a), 1e-9)
                    size = int(min(chunk, max(FIRST_CHUNK, CHUNK_SECONDS / per_rep)))
                a = b
        else:
            chunks = be.map(_chunk, (result, statistic, use_u, t0.size), bounds, ss)
            try:
                for (a, b), (vals, st) in chunks:
                    record(a, b, vals, st)
            finally:
                chunks.close()  # cancels queued chunks on an interrupt or error
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"Interrupted: returning the {int(done.sum())} of {B} replicates that finished.",
            LmmWarning,
            stacklevel=2,
        )
    finally:
        if bar is not None:
            bar.close()
    keep = done
    st = status[keep].astype(STATUS_DTYPE)
    n_failed = int((st == "failed").sum())
    if n_failed:
        warnings.warn(
            f"{n_failed} of {keep.sum()} bootstrap refits failed; they are "
            "excluded from intervals and summaries.",
            LmmWarning,
            stacklevel=2,
        )
    return BootResult(est[keep], names, t0, st, interrupted)
