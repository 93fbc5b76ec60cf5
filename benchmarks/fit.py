"""Single-fit time: lmmcore.fit vs lme4::lmer (REML), measured side by side in one run.

    python benchmarks/fit.py [--repeats 20] [--no-large] [--blas-threads 1]

Both sides: one untimed warm-up fit, then ``--repeats`` timed fits of the same model on the
same data; the median is reported. lme4 is timed inside one R process (R startup and data
loading excluded). speedup = lme4 ms / lmmcore ms. The objective columns are sanity checks:
lmmcore's REML criterion minus lme4's (default optimizer) and minus the fixture's tightly
converged optimum (negative = lmmcore found a lower criterion).
"""

# ruff: noqa: E402  (imports after the sys.path line)
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

from _common import fmt, fmt_ratio, load_fixture, machine_line, median, print_table, time_ms
from _r import r_status, run_r
from threadpoolctl import threadpool_limits

import lmmcore

CASES = [  # (label, fixture case)
    ("sleepstudy", "sleepstudy_slope"),
    ("crossed_30x20", "sim_crossed_30x20"),
    ("large_60x40", "sim_large_60x40"),
]

R_FIT = r"""
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[1])
cases <- matrix(args[-1], nrow = 4)  # rows: label, csv, factor columns, formula
res <- list()
for (j in seq_len(ncol(cases))) {
  d <- read_data(cases[2, j], cases[3, j])
  f <- as.formula(cases[4, j])
  m <- lmer(f, d, REML = TRUE)  # warm-up
  ms <- numeric(n)
  for (i in seq_len(n)) {
    t0 <- now()
    m <- lmer(f, d, REML = TRUE)
    ms[i] <- 1000 * (now() - t0)
  }
  res[[cases[1, j]]] <- list(ms = as.list(ms), objective = REMLcrit(m), fixef = fixef(m))
}
emit(res)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed fits per case (default 20)")
    ap.add_argument("--no-large", action="store_true", help="skip the 4800-row sim_large_60x40")
    ap.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads (default 1)")
    args = ap.parse_args()
    cases = CASES[:2] if args.no_large else CASES

    print(machine_line())
    r_ok, r_note = r_status()
    print(r_note)

    loaded = {label: load_fixture(case) for label, case in cases}
    r_res = {}
    if r_ok:
        r_args = [str(args.repeats)]
        for label, (_, csv, factors, fx) in loaded.items():
            r_args += [label, str(csv), ",".join(factors), fx["formula"]]
        r_res = run_r(R_FIT, *r_args)

    rows = []
    with threadpool_limits(args.blas_threads):
        for label, (df, _, _, fx) in loaded.items():
            formula = fx["formula"]
            res = lmmcore.fit(formula, df, REML=True)
            py_ms = median(time_ms(lambda f=formula, d=df: lmmcore.fit(f, d), args.repeats))
            r = r_res.get(label)
            r_ms = median(r["ms"]) if r else None
            rows.append(
                [
                    label,
                    str(len(df)),
                    fmt(py_ms),
                    fmt(r_ms),
                    fmt_ratio(r_ms, py_ms),
                    fmt(res.objective - r["objective"], "+.2e") if r else "n/a",
                    fmt(res.objective - fx["tight_refit"]["objective"], "+.2e"),
                ]
            )
    print(
        f"\nREML fit, median of {args.repeats} fits after 1 warm-up "
        f"(lmmcore with {args.blas_threads} BLAS thread(s))"
    )
    print_table(
        ["case", "nobs", "lmmcore ms", "lme4 ms", "speedup", "obj - lme4", "obj - tight"], rows
    )


if __name__ == "__main__":
    main()
