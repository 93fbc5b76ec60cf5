"""Shared bits of the benchmarks: the lme4 fixtures, timing, table printing."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("LMMCORE_FIXTURES", ROOT.parent / "shared" / "fixtures" / "lme4"))


def load_fixture(case: str) -> tuple[pd.DataFrame, Path, list[str], dict]:
    """(data with factors in R's level order, csv path, factor columns, REML fixture JSON)."""
    fx = json.loads((FIXTURES / f"{case}_reml.json").read_text())
    facs = fx["data"]["factors"]
    csv = FIXTURES / fx["data"]["csv"]
    df = pd.read_csv(csv, dtype={c: str for c in facs})
    for c, spec in facs.items():
        df[c] = pd.Categorical(df[c], categories=spec["levels"], ordered=spec["ordered"])
    return df, csv, list(facs), fx


def timing_json() -> dict:
    return json.loads((FIXTURES / "timing.json").read_text())["cases"]


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


median = statistics.median


def machine_line() -> str:
    return f"{platform.node()}: nproc={os.cpu_count()}, Python {platform.python_version()}"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [str(x).rjust(w) for x, w in zip(row, widths, strict=True)]
        cells[0] = str(row[0]).ljust(widths[0])
        print("  ".join(cells))


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def fmt_ratio(num: float | None, den: float | None) -> str:
    """``num / den`` as e.g. ``12.3x``; ``n/a`` when either is missing."""
    return "n/a" if not num or not den else f"{num / den:.1f}x"
