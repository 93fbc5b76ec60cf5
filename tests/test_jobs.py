"""The app's worker pool: jobs run in other processes, can be stopped, have limits."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import lmmcore
from views import _jobs

pytestmark = pytest.mark.pool


class Stop(BaseException):
    """Stands in for Streamlit's StopException (a BaseException raised at an st call)."""


def sleeper(seconds: float, pid_file: str | None = None) -> int:
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_job_runs_on_a_worker_process():
    assert _jobs.run_job(os.getpid) != os.getpid()
    res, warns = _jobs.run_job(
        _jobs.fit_with_warnings,
        "Reaction ~ Days + (Days | Subject)",
        lmmcore.load_dataset("sleepstudy"),
    )
    assert abs(res.objective - 1743.6282719585) < 1e-6 and warns == []


def test_stopping_the_waiting_script_kills_the_worker(tmp_path):
    pid_file = tmp_path / "pid"

    def tick():
        if pid_file.exists() and pid_file.read_text():
            raise Stop  # the job has started: the user presses Stop

    start = time.monotonic()
    with pytest.raises(Stop):
        _jobs.run_job(sleeper, 60, str(pid_file), tick=tick)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the worker running the job was not killed"
    assert time.monotonic() - start < 15
    assert _jobs.run_job(os.getpid) != pid  # the pool goes on with a new worker


def test_time_and_memory_limits_are_job_errors(monkeypatch):
    monkeypatch.setattr(_jobs, "JOB_SECONDS", 1.0)
    with pytest.raises(_jobs.JobError, match="longer than the limit of 1 s"):
        _jobs.run_job(sleeper, 30)
    with pytest.raises(_jobs.JobError, match="memory limit"):
        _jobs.run_job(np.ones, (10**6, 10**4))  # 80 GB


def test_pool_backend_gives_the_same_power_as_this_process():
    p1 = lmmcore.PRESETS["P1"]
    design = p1.design.with_size(subjects=10, items=10)
    here = lmmcore.power(p1.spec, design, nsim=30, test="wald", seed=3)
    there = lmmcore.power(
        p1.spec, design, nsim=30, test="wald", seed=3, chunk_size=10, backend=_jobs.PoolBackend()
    )
    np.testing.assert_array_equal(here.est, there.est)
    np.testing.assert_array_equal(here.p, there.p)


def test_interrupts_turn_a_stop_into_a_partial_result_then_stop():
    fit = lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))
    stops = _jobs.Interrupts()

    def progress(done, total):
        if done >= 40:
            raise Stop

    with pytest.warns(lmmcore.errors.LmmWarning, match="Interrupted"):
        boot = lmmcore.bootMer(
            fit,
            B=200,
            seed=1,
            chunk_size=20,
            progress=stops.wrap(progress),
            backend=_jobs.PoolBackend(),
        )
    assert boot.interrupted and boot.B >= 40
    with pytest.raises(Stop):
        stops.reraise()
