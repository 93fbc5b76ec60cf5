"""Where the chunks of a simulation run: in this process, in worker processes, or on Dask.

A backend maps a chunk function ``fn(problem, start, stop, root)`` over replicate ranges
and yields ``((start, stop), result)`` as chunks finish. Replicate ``i`` always uses the
``i``-th child stream of ``root``, so every backend gives the same numbers for a seed.

Example:
    >>> be = get_backend(None, n_jobs=1)
    >>> [r for _, r in be.map(lambda pr, a, b, root: b - a, None, [(0, 3), (3, 5)], None)]
    [3, 2]
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from lmmcore.errors import PowerError

__all__ = ["Backend", "DaskBackend", "LocalBackend", "ProcessBackend", "get_backend"]

Chunk = tuple[int, int]
ChunkFn = Callable[[Any, int, int, Any], Any]


class Backend:
    """Runs chunk functions; subclasses implement :meth:`map`."""

    name = "base"

    def map(
        self, fn: ChunkFn, problem: Any, bounds: Sequence[Chunk], root: Any
    ) -> Iterator[tuple[Chunk, Any]]:
        raise NotImplementedError


class LocalBackend(Backend):
    """Chunks one after another in this process."""

    name = "local"

    def map(
        self, fn: ChunkFn, problem: Any, bounds: Sequence[Chunk], root: Any
    ) -> Iterator[tuple[Chunk, Any]]:
        for a, b in bounds:
            yield (a, b), fn(problem, a, b, root)


class ProcessBackend(Backend):
    """Chunks on ``n_jobs`` worker processes (each limits its BLAS to one thread)."""

    name = "processes"

    def __init__(self, n_jobs: int, executor: ProcessPoolExecutor | None = None):
        """``executor``: a pool to reuse across calls (an app keeps one warm); it is then
        not shut down here, and ``n_jobs`` should be its number of workers."""
        self.n_jobs = n_jobs
        self.executor = executor

    def map(
        self, fn: ChunkFn, problem: Any, bounds: Sequence[Chunk], root: Any
    ) -> Iterator[tuple[Chunk, Any]]:
        own = self.executor is None
        pool = ProcessPoolExecutor(max_workers=self.n_jobs) if own else self.executor
        clean = False
        futs: dict = {}
        try:
            futs = {pool.submit(fn, problem, a, b, root): (a, b) for a, b in bounds}
            for fut in as_completed(futs):
                yield futs[fut], fut.result()
            clean = True
        finally:
            # on an interrupt or error: drop queued chunks, do not wait for running ones
            if own:
                pool.shutdown(wait=clean, cancel_futures=not clean)
            elif not clean:
                for f in futs:
                    f.cancel()


class DaskBackend(Backend):
    """Chunks as tasks on a Dask cluster.

    Args:
        client: a ``dask.distributed.Client``, or a scheduler address such as
            ``"tcp://10.0.0.5:8786"`` (a client is opened and closed around the run).
    """

    name = "dask"

    def __init__(self, client: Any = None):
        self.client = client

    def map(
        self, fn: ChunkFn, problem: Any, bounds: Sequence[Chunk], root: Any
    ) -> Iterator[tuple[Chunk, Any]]:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise PowerError(
                "backend='dask' needs dask[distributed]: pip install 'dask[distributed]'."
            ) from exc
        own = not isinstance(self.client, Client)
        if own:
            if self.client is None:
                raise PowerError(
                    "backend='dask' needs a dask.distributed.Client or a scheduler address "
                    "(client=... / --scheduler tcp://host:8786)."
                )
            try:
                client = Client(self.client, timeout="20s")
            except Exception as exc:
                raise PowerError(
                    f"Cannot connect to the Dask scheduler at {self.client!r}: {exc}"
                ) from exc
        else:
            client = self.client
        try:
            run = uuid.uuid4().hex[:12]
            [prob] = client.scatter([problem], broadcast=True, hash=False)
            futs = {
                client.submit(
                    fn, prob, a, b, root, pure=False, key=f"lmmcore-power-{run}-{a}-{b}"
                ): (a, b)
                for a, b in bounds
            }
            try:
                for fut in dask_completed(list(futs)):
                    yield futs[fut], fut.result()
            except BaseException:
                try:
                    client.cancel(list(futs))
                except Exception:  # noqa: S110 - the client or cluster is gone already
                    pass
                raise
        finally:
            if own:
                client.close()


def get_backend(
    backend: str | Backend | Any | None, n_jobs: int = 1, client: Any = None
) -> Backend:
    """The backend for ``backend`` (None, "local", "processes", "dask", a Backend, or a
    ``dask.distributed.Client``) and ``n_jobs`` (-1: all cores; > 1 with None: processes).

    Example:
        >>> get_backend(None, n_jobs=2).name, get_backend("local").name
        ('processes', 'local')
    """
    if isinstance(backend, Backend):
        return backend
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise PowerError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}.")
    jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    if backend is None:
        return ProcessBackend(jobs) if jobs > 1 else LocalBackend()
    if isinstance(backend, str):
        if backend == "local":
            return LocalBackend()
        if backend == "processes":
            return ProcessBackend(max(jobs, 1))
        if backend == "dask":
            return DaskBackend(client)
        if backend.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            return DaskBackend(backend)
        raise PowerError(
            f"Unknown backend {backend!r}; use 'local', 'processes', 'dask' (with a client or "
            "scheduler address) or a dask.distributed.Client."
        )
    if type(backend).__name__ == "Client":
        return DaskBackend(backend)
    raise PowerError(f"backend must be a name, a Backend or a Dask Client, got {backend!r}.")
