"""Benchmark: the cost of the type-I error column (`power(..., type1=)`).

P1 at 40 subjects (2,000 rows), ``--nsim`` (default 500) simulations, each test with the
type-I error off and on: the median seconds of ``--repeats`` runs (default 3) and the
extra refits the table reports. For the Wald, Satterthwaite and KR tests the null fit is
the fit itself shifted (no refit, so the cost should be noise); the LRT refits its
reduced model once per effect and replicate.

Run:
    python benchmarks/type1.py [--nsim 500] [--repeats 3] [--tests wald,satterthwaite,lrt]
"""

from __future__ import annotations

import argparse
import time
import warnings

from _common import machine_line, median, print_table

from lmmcore import PRESETS, power


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tests", default="wald,satterthwaite,lrt")
    a = ap.parse_args()
    print(machine_line(), f"nsim={a.nsim}")
    p1 = PRESETS["P1"]
    d = p1.design.with_size(subjects=40)
    rows = []
    for test in a.tests.split(","):
        secs, refits = {}, {}
        for on in (False, True):
            times = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                power(p1.spec, d, nsim=10, seed=1, test=test, type1=on)  # warm-up
                for _ in range(a.repeats):
                    t = time.perf_counter()
                    res = power(p1.spec, d, nsim=a.nsim, seed=1, test=test, type1=on)
                    times.append(time.perf_counter() - t)
            secs[on] = median(times)
            refits[on] = res.table["type1_refits"].sum()
        rows.append(
            [
                test,
                f"{secs[False]:.2f}",
                f"{secs[True]:.2f}",
                f"{100 * (secs[True] / secs[False] - 1):+.0f}%",
                f"{refits[True]:.0f}",
            ]
        )
    print_table(["test", "s without", "s with type I", "extra time", "extra refits"], rows)


if __name__ == "__main__":
    main()
