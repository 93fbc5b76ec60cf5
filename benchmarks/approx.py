"""Benchmark: one approximate power point (`approx_power`) next to one simulated point.

For presets P1 (5,000 rows, q = 250) and P3 (3,200 rows, q = 240): the median time of
``approx_power(spec, design)`` (Satterthwaite, and KR) over ``--repeats`` calls, and of one
``power(spec, design, nsim=N)`` point (Satterthwaite), plus the time of a subjects x items
map from the approximation (`approx_power_curve` on a 6 x 6 grid). Targets (issue 12):
approximate point <= 20 ms for P1 and <= 200 ms for P3; the map < 1 s.

Run:
    python benchmarks/approx.py [--nsim 1000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

from _common import machine_line, median, print_table, time_ms

from lmmcore import PRESETS, approx_power, approx_power_curve, power


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    print(machine_line())
    rows = []
    targets = {"P1": 20.0, "P3": 200.0}
    for name, target in targets.items():
        p = PRESETS[name]
        satt = median(time_ms(lambda p=p: approx_power(p.spec, p.design), a.repeats))
        kr = median(time_ms(lambda p=p: approx_power(p.spec, p.design, test="kr"), a.repeats))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            power(p.spec, p.design, nsim=20, seed=1)  # warm-up (compilation)
            t = time.perf_counter()
            power(p.spec, p.design, nsim=a.nsim, seed=1)
            sim = 1000 * (time.perf_counter() - t)
        rows.append(
            [
                name,
                f"{p.design.n_rows:,}",
                f"{satt:.1f}",
                "PASS" if satt <= target else "FAIL",
                f"{kr:.1f}",
                f"{sim:,.0f}",
                f"{sim / satt:,.0f}x",
            ]
        )
    print_table(
        [
            "preset",
            "rows",
            "approx ms (satt)",
            "target",
            "approx ms (kr)",
            f"simulated ms (nsim={a.nsim})",
            "ratio",
        ],
        rows,
    )
    p1 = PRESETS["P1"]
    grid = {"subjects": [20, 40, 60, 80, 100, 120], "items": [10, 20, 30, 40, 50, 60]}
    ms = median(
        time_ms(lambda: approx_power_curve(p1.spec, p1.design, grid, effects="X_i"), 3, warmup=1)
    )
    print(f"P1 subjects x items map (6 x 6 points) from the approximation: {ms:.0f} ms")


if __name__ == "__main__":
    main()
