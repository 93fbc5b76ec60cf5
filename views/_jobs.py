"""Where the app's computations run: worker processes that a user can stop.

Fits, bootstraps and power simulations never run in the server's process. They run on a
pool of worker processes (`pebble`, started once per server, ``spawn``ed so that no server
thread state is copied), each with a memory limit. The page's script thread waits for a
job in short steps and updates the page in between, so Streamlit can stop the script when
the user presses Stop, reruns or leaves: the job is then cancelled and its worker process
killed (pebble replaces it). A job that runs past its time limit is killed the same way.
The server's event loop only ever waits on futures, so one user's computation cannot
freeze another user's page or the health check.

`LMMCORE_INLINE_JOBS=1` runs jobs in the calling thread instead (AppTest unit tests use it
to avoid starting processes; the browser tests and dedicated AppTests use the pool).

Example:
    >>> import operator
    >>> run_job(operator.add, 2, 3, inline=True)
    5
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lmmcore.backends import Backend
from lmmcore.errors import LmmError

#: Wall-clock limit of one job (a fit, one chunk of simulations), in seconds.
JOB_SECONDS = float(os.environ.get("LMMCORE_JOB_SECONDS", 300))
#: Address-space limit of a worker process (bytes); a runaway allocation fails there with a
#: MemoryError instead of exhausting the server.
WORKER_MEMORY = int(float(os.environ.get("LMMCORE_WORKER_MEMORY", 6e9)))
#: How often a waiting script thread gives Streamlit a chance to stop it, in seconds.
TICK = 0.2

_LOCK = threading.Lock()
_POOL: Any = None


class JobError(LmmError):
    """A job was killed (time limit, memory limit, crash) or could not run."""


def _limit_memory(limit: int) -> None:  # runs in each worker when it starts
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def inline() -> bool:
    return os.environ.get("LMMCORE_INLINE_JOBS", "") not in ("", "0")


def pool() -> Any:
    """The server's worker pool (one per process, created on first use)."""
    global _POOL
    with _LOCK:
        if _POOL is None or not _POOL.active:
            from pebble import ProcessPool

            _POOL = ProcessPool(
                max_workers=os.cpu_count() or 1,
                context=multiprocessing.get_context("spawn"),
                initializer=_limit_memory,
                initargs=(WORKER_MEMORY,),
            )
            atexit.register(_POOL.stop)
        return _POOL


def _explain(exc: BaseException, what: str) -> BaseException:
    """Turn a killed worker into a message a user can act on; pass other errors through."""
    from pebble import ProcessExpired

    if isinstance(exc, TimeoutError):
        return JobError(
            f"{what} took longer than the limit of {JOB_SECONDS:.0f} s and was stopped. Use a "
            "smaller design, fewer simulations or a simpler model."
        )
    if isinstance(exc, ProcessExpired):
        return JobError(
            f"{what} stopped: its worker process ended ({exc}), most likely because it needed "
            f"more than the memory limit of {WORKER_MEMORY / 1e9:.0f} GB. Use a smaller design "
            "or a simpler model."
        )
    if isinstance(exc, MemoryError):
        return JobError(
            f"{what} needed more than the memory limit of {WORKER_MEMORY / 1e9:.0f} GB. Use a "
            "smaller design or a simpler model."
        )
    return exc


def wait(futures: Sequence[cf.Future], tick: Callable[[], None] | None) -> Iterator[cf.Future]:
    """Yield futures as they finish, calling ``tick`` while none does (a point at which
    Streamlit may stop the script); cancel (kill) every unfinished one on the way out."""
    pending = set(futures)
    try:
        while pending:
            done, pending = cf.wait(pending, timeout=TICK, return_when=cf.FIRST_COMPLETED)
            for f in done:
                yield f
            if not done and tick is not None:
                tick()
    finally:
        for f in futures:
            if not f.done():
                f.cancel()  # pebble terminates the worker running it


def run_job(
    fn: Callable[..., Any],
    *args: Any,
    what: str = "The computation",
    tick: Callable[[], None] | None = None,
    inline: bool | None = None,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` on a worker process; stoppable, with a time limit."""
    if inline is None:
        inline = globals()["inline"]()
    if inline:
        return fn(*args, **kwargs)
    fut = pool().schedule(fn, args=args, kwargs=kwargs, timeout=JOB_SECONDS)
    for f in wait([fut], tick):
        try:
            return f.result()
        except BaseException as exc:
            raise _explain(exc, what) from None
    raise JobError(f"{what} did not finish.")  # pragma: no cover - wait yields every future


def fit_with_warnings(formula: str, data: Any, reml: bool = True) -> tuple[Any, list[str]]:
    """``lmmcore.fit`` and the warnings it raised (a job: it runs on a worker)."""
    import warnings

    import lmmcore

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = lmmcore.fit(formula, data, REML=reml)
    return result, list(dict.fromkeys(str(w.message) for w in caught))


def fit_on_worker(formula: str, data: Any, reml: bool = True) -> tuple[Any, list[str]]:
    """`fit_with_warnings` as a stoppable job, with a spinner and a clock on the page."""
    import streamlit as st

    clock = st.empty()
    try:
        with st.spinner("Fitting…"):
            return run_job(
                fit_with_warnings,
                formula,
                data,
                reml,
                what="The fit",
                tick=heartbeat(clock, "Fitting; press Stop to cancel"),
            )
    finally:
        clock.empty()


class PoolBackend(Backend):
    """An `lmmcore.backends.Backend` that runs chunks on the app's worker pool.

    Every chunk is a job (with the time limit); leaving the map early (an error, or a Stop
    raised by ``tick``) kills the workers still running chunks.
    """

    name = "processes"

    def __init__(self, tick: Callable[[], None] | None = None):
        self.tick = tick
        self.n_jobs = os.cpu_count() or 1

    def map(self, fn, problem, bounds, root):  # noqa: D102 - see Backend
        if inline():
            for a, b in bounds:
                yield (a, b), fn(problem, a, b, root)
            return
        p = pool()
        futs = {
            p.schedule(fn, args=(problem, a, b, root), timeout=JOB_SECONDS): (a, b)
            for a, b in bounds
        }
        for f in wait(list(futs), self.tick):
            try:
                res = f.result()
            except BaseException as exc:
                raise _explain(exc, "A chunk of simulations") from None
            yield futs[f], res


class Interrupts:
    """Turns Streamlit's stop and rerun requests, raised inside a progress callback, into
    the KeyboardInterrupt the library answers by returning what finished; `reraise` then
    lets the stop or rerun go on once the partial result is stored."""

    def __init__(self) -> None:
        self.pending: BaseException | None = None

    def wrap(self, fn: Callable[..., None]) -> Callable[..., None]:
        def inner(*args: Any) -> None:
            try:
                fn(*args)
            except (Exception, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # Streamlit's StopException / RerunException
                self.pending = exc
                raise KeyboardInterrupt from None

        return inner

    def reraise(self) -> None:
        if self.pending is not None:
            raise self.pending


def heartbeat(placeholder: Any, text: str) -> Callable[[], None]:
    """A ``tick`` that shows the elapsed time in ``placeholder`` (and lets Stop work)."""
    start = time.monotonic()

    def tick() -> None:
        placeholder.caption(f"{text} ({time.monotonic() - start:.0f} s)")

    return tick
