"""Parametric bootstrap: lmmcore.bootMer vs lme4::bootMer, measured side by side in one run.

    python benchmarks/bootstrap.py [--B 1000] [--repeats 3] [--r-nsim 200] [--r-repeats 3]
                                   [--scale-B 200] [--r-scaling] [--skip-scaling] [--skip-memory]
                                   [--memory-large]

1. Speed: lmmcore ``bootMer(res, B=1000, seed=1, n_jobs=1)`` (default statistic: fixef,
   sigma, theta; plus one row with a ``fixef`` callable as statistic) vs lme4
   ``bootMer(m, fixef, nsim=200, seed=1, parallel="no")`` on (a) sleepstudy and (b) the crossed
   30x20 fixture; ms per replicate (median over repeats), speedup = lme4 / lmmcore, targets.
   Both fixtures are balanced (lmmcore sums over one group of identical levels); one more
   row drops 10% of (b)'s rows at random, which leaves 10 groups of subjects with the same
   Z_l'Z_l (the engine's cost model still sums by group there).
2. Agreement: bootstrap mean / SD of the fixed effects vs lme4 (this run and timing.json).
3. Scaling: (b)-shaped designs simulated here (100 subjects x 20 items, 100 x 100).
4. Memory: peak traced memory and max-RSS growth at B = 1000, 5000 and 20000 (fresh process
   each) on simulated 30x20 and 100x20 designs (and 100x100 with --memory-large). Replicates
   run in chunks (at most 2000, fewer for big designs): memory grows with B up to one chunk,
   then stays flat.
"""

# ruff: noqa: E402  (imports after the sys.path line)
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import math
import multiprocessing
import resource
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from _common import fmt, fmt_ratio, load_fixture, machine_line, median, print_table, timing_json
from _r import r_status, run_r
from threadpoolctl import threadpool_limits

import lmmcore
from lmmcore.bootstrap import CHUNK_VALUES

CROSSED = "rt ~ cond + (1 + cond | subj) + (1 | item)"
CASES = [  # (label, fixture case, target ms/rep, target speedup)
    ("a sleepstudy", "sleepstudy_slope", 0.15, 50.0),
    ("b crossed_30x20", "sim_crossed_30x20", 1.0, 12.0),
]
SCALING = [(100, 20, None), (100, 100, 15.0)]  # (subjects, items, target ms/rep)
UNBALANCED = "b' crossed_30x20, 10% rows dropped"
MEMORY_B = (1000, 5000, 20000)

R_BOOT = r"""
args <- commandArgs(trailingOnly = TRUE)
nsim <- as.integer(args[1])
reps <- as.integer(args[2])
cases <- matrix(args[-(1:2)], nrow = 4)  # rows: label, csv, factor columns, formula
res <- list()
for (j in seq_len(ncol(cases))) {
  d <- read_data(cases[2, j], cases[3, j])
  m <- lmer(as.formula(cases[4, j]), d, REML = TRUE)
  secs <- numeric(reps)
  for (r in seq_len(reps)) {
    t0 <- now()
    b <- bootMer(m, fixef, nsim = nsim, seed = 1, parallel = "no")
    secs[r] <- now() - t0
  }
  res[[cases[1, j]]] <- list(ms_per_sim = as.list(1000 * secs / nsim), mean = colMeans(b$t),
                             sd = apply(b$t, 2, sd), n_failed = sum(is.na(b$t[, 1])))
}
emit(res)
"""


def simulate_crossed(n_subj: int, n_item: int, seed: int = 2024) -> pd.DataFrame:
    """Fully crossed subj x item data shaped like sim_crossed_30x20 (cond = +-0.5, alternating).

    Truth: beta = (500, 30); subject SDs (50, 20), corr 0.2; item SD 30; residual SD 80.
    """
    rng = np.random.default_rng(seed)
    s, i = (a.ravel() for a in np.meshgrid(np.arange(n_subj), np.arange(n_item), indexing="ij"))
    cond = np.where((s + i) % 2 == 0, -0.5, 0.5)
    cov = [[50.0**2, 0.2 * 50 * 20], [0.2 * 50 * 20, 20.0**2]]
    u = rng.multivariate_normal([0.0, 0.0], cov, size=n_subj)
    w = rng.normal(0.0, 30.0, n_item)
    rt = 500 + u[s, 0] + (30 + u[s, 1]) * cond + w[i] + rng.normal(0.0, 80.0, s.size)
    subj = [f"s{k + 1:03d}" for k in range(n_subj)]
    item = [f"i{k + 1:03d}" for k in range(n_item)]
    return pd.DataFrame(
        {
            "subj": pd.Categorical.from_codes(s, subj),
            "item": pd.Categorical.from_codes(i, item),
            "cond": cond,
            "rt": np.round(rt, 3),
        }
    )


def boot_ms_per_rep(res, B: int, repeats: int, statistic=None):
    """(median ms per replicate, last BootResult) of ``bootMer(res, B=B, seed=1)``.

    One small untimed warm-up first; n_jobs=1 (one core).
    """
    lmmcore.bootMer(res, statistic, B=10, seed=0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        boot = lmmcore.bootMer(res, statistic, B=B, seed=1, n_jobs=1)
        times.append(1000 * (time.perf_counter() - t0) / B)
    return median(times), boot


def fixef_statistic(res) -> np.ndarray:
    """The statistic lme4's benchmark uses (``fixef``), as a Python callable."""
    return res.fe_params.to_numpy()


def memory_probe(n_subj: int, n_item: int, B: int) -> dict:
    """Run in a fresh process: peak traced memory and max-RSS growth of one bootMer(B)."""
    with threadpool_limits(1):
        res = lmmcore.fit(CROSSED, simulate_crossed(n_subj, n_item))
        lmmcore.bootMer(res, B=5, seed=0)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        lmmcore.bootMer(res, B=B, seed=1, n_jobs=1)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    chunk = min(2000, max(50, CHUNK_VALUES // res.nobs))
    return {
        "peak_mb": peak / 2**20,
        "rss_growth_mb": (rss1 - rss0) / 1024,
        "rss_mb": rss1 / 1024,
        "chunk": chunk,
    }


def check(value: float | None, target: float, smaller_is_better: bool) -> str:
    if value is None:
        return "n/a"
    ok = value <= target if smaller_is_better else value >= target
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=1000, help="lmmcore replicates (default 1000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed lmmcore bootMer runs (3)")
    ap.add_argument("--r-nsim", type=int, default=200, help="lme4 bootMer nsim (default 200)")
    ap.add_argument("--r-repeats", type=int, default=3, help="timed lme4 bootMer runs (3)")
    ap.add_argument("--scale-B", type=int, default=200, help="replicates for scaling (200)")
    ap.add_argument("--r-scaling", action="store_true", help="also time lme4 (nsim=20) there")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-large", action="store_true", help="memory also at 100x100 (+5 min)")
    args = ap.parse_args()

    print(machine_line())
    r_ok, r_note = r_status()
    print(r_note)
    have_boot = hasattr(lmmcore, "bootMer")
    if not have_boot:
        print("lmmcore column skipped: lmmcore.bootMer is not in this checkout")

    loaded = {label: load_fixture(case) for label, case, *_ in CASES}
    # (b) with 10% of its rows dropped: its subjects fall into 10 groups of identical
    # Z_l'Z_l (the balanced fixtures into one), still summed by group
    df_b, _, factors_b, fx_b = loaded["b crossed_30x20"]
    drop = np.random.default_rng(1).choice(len(df_b), len(df_b) // 10, replace=False)
    unbalanced = df_b.drop(index=drop)
    tmp = tempfile.TemporaryDirectory()
    csv_u = Path(tmp.name) / "crossed_30x20_unbalanced.csv"
    unbalanced.to_csv(csv_u, index=False)
    loaded[UNBALANCED] = (unbalanced, csv_u, factors_b, fx_b)
    r_res = {}
    if r_ok:
        r_args = [str(args.r_nsim), str(args.r_repeats)]
        for label, (_, csv, factors, fx) in loaded.items():
            r_args += [label, str(csv), ",".join(factors), fx["formula"]]
        r_res = run_r(R_BOOT, *r_args)

    # 1. speed
    rows, boots = [], {}
    with threadpool_limits(1):
        for label, _, target_ms, target_x in CASES:
            df, _, _, fx = loaded[label]
            py_ms = None
            if have_boot:
                res = lmmcore.fit(fx["formula"], df)
                py_ms, boots[label] = boot_ms_per_rep(res, args.B, args.repeats)
            r_ms = median(r_res[label]["ms_per_sim"]) if label in r_res else None
            speedup = r_ms / py_ms if r_ms and py_ms else None
            rows.append(
                [
                    label,
                    fmt(py_ms, ".3f"),
                    fmt(r_ms, ".2f"),
                    fmt_ratio(r_ms, py_ms),
                    f"<={target_ms} ms/rep: {check(py_ms, target_ms, True)}",
                    f">={target_x:.0f}x: {check(speedup, target_x, False)}",
                ]
            )
        if have_boot:  # the unbalanced design: no target here, for the record (see scale.py)
            df, _, _, fx = loaded[UNBALANCED]
            res = lmmcore.fit(fx["formula"], df)
            py_ms, _ = boot_ms_per_rep(res, args.B, args.repeats)
            r_ms = median(r_res[UNBALANCED]["ms_per_sim"]) if UNBALANCED in r_res else None
            row = [UNBALANCED, fmt(py_ms, ".3f"), fmt(r_ms, ".2f"), fmt_ratio(r_ms, py_ms)]
            rows.append([*row, "-", "-"])
        if have_boot:  # same call with lme4's statistic as a Python callable (slow path)
            df, _, _, fx = loaded["a sleepstudy"]
            res = lmmcore.fit(fx["formula"], df)
            py_ms, _ = boot_ms_per_rep(res, args.B, args.repeats, fixef_statistic)
            r_ms = median(r_res["a sleepstudy"]["ms_per_sim"]) if r_res else None
            row = ["a sleepstudy, statistic=fixef", fmt(py_ms, ".3f"), fmt(r_ms, ".2f")]
            rows.append([*row, fmt_ratio(r_ms, py_ms), "-", "-"])
    print(
        f"\n1. bootstrap speed: lmmcore B={args.B} (median of {args.repeats}, n_jobs=1, "
        f"1 BLAS thread) vs lme4 nsim={args.r_nsim} (median of {args.r_repeats}, one core)"
    )
    print_table(
        ["case", "lmmcore ms/rep", "lme4 ms/rep", "speedup", "target ms/rep", "target speedup"],
        rows,
    )

    # 2. agreement of the bootstrap distributions (different RNGs: compare statistically)
    print(
        "\n2. bootstrap fixef mean / SD: lmmcore vs lme4 timing.json (nsim=200, seed=1); "
        "z = mean difference / its Monte Carlo SE"
    )
    ref = timing_json()
    rows = []
    for label, case, *_ in CASES:
        t = ref[case]
        n_ref = t["bootmer_nsim"]
        r_here = r_res.get(label)
        for name in t["bootmer_fixef_mean"]:
            m_ref, s_ref = t["bootmer_fixef_mean"][name], t["bootmer_fixef_sd"][name]
            row = [f"{label.split()[1]} {name}", fmt(m_ref, ".3f"), fmt(s_ref, ".3f")]
            if r_here is not None:
                same = math.isclose(r_here["mean"][name], m_ref, rel_tol=1e-9, abs_tol=1e-9)
                row.append("yes" if same else f"no ({r_here['mean'][name]:.3f})")
            else:
                row.append("n/a")
            if label in boots:
                boot = boots[label]
                col = boot.estimates[boot.valid, boot.names.index(name)]
                m, s = col.mean(), col.std(ddof=1)
                z = (m - m_ref) / math.sqrt(s**2 / col.size + s_ref**2 / n_ref)
                z_est = (m - t["fixef"][name]) / (s / math.sqrt(col.size))
                row += [fmt(m, ".3f"), fmt(s, ".3f"), fmt(z, "+.2f"), fmt(z_est, "+.2f")]
                row += [fmt(s / s_ref, ".3f"), str(boot.B - col.size)]
            else:
                row += ["n/a"] * 6
            rows.append(row)
    print_table(
        [
            "coef",
            "lme4 mean",
            "lme4 SD",
            "R run = json",
            "lmmcore mean",
            "lmmcore SD",
            "z vs lme4",
            "z vs fixef",
            "SD ratio",
            "failed",
        ],
        rows,
    )

    if not have_boot:
        return

    # 3. scaling on simulated (b)-shaped designs
    if not args.skip_scaling:
        rows = []
        for n_subj, n_item, target in SCALING:
            df = simulate_crossed(n_subj, n_item)
            with threadpool_limits(1):
                t0 = time.perf_counter()
                res = lmmcore.fit(CROSSED, df)
                fit_ms = 1000 * (time.perf_counter() - t0)
                py_ms, _ = boot_ms_per_rep(res, args.scale_B, args.repeats)
            r_ms = None
            if r_ok and args.r_scaling:
                with tempfile.TemporaryDirectory() as tmp:
                    csv = Path(tmp) / "data.csv"
                    df.to_csv(csv, index=False)
                    out = run_r(R_BOOT, "20", "1", "x", csv, "subj,item", CROSSED)
                r_ms = out["x"]["ms_per_sim"][0]
            rows.append(
                [
                    f"{n_subj}x{n_item}",
                    str(len(df)),
                    fmt(fit_ms, ".1f"),
                    fmt(py_ms, ".3f"),
                    fmt(r_ms, ".1f"),
                    fmt_ratio(r_ms, py_ms),
                    "" if target is None else f"<={target}: {check(py_ms, target, True)}",
                ]
            )
        print(
            f"\n3. scaling, {CROSSED}, simulated (seed 2024), "
            f"B={args.scale_B}, median of {args.repeats}"
            + (", lme4 nsim=20 once" if args.r_scaling else "")
        )
        print_table(
            ["design", "nobs", "fit ms", "lmmcore ms/rep", "lme4 ms/rep", "speedup", "target"],
            rows,
        )

    # 4. memory: does it grow with B? (fresh process per probe, so max-RSS is clean)
    if not args.skip_memory:
        rows = []
        ctx = multiprocessing.get_context("spawn")
        designs = [(30, 20), (100, 20)] + ([(100, 100)] if args.memory_large else [])
        for n_subj, n_item in designs:
            for B in MEMORY_B:
                with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                    m = pool.submit(memory_probe, n_subj, n_item, B).result()
                rows.append(
                    [
                        f"{n_subj}x{n_item}",
                        str(B),
                        str(m["chunk"]),
                        fmt(m["peak_mb"]),
                        fmt(m["rss_growth_mb"]),
                        fmt(m["rss_mb"], ".1f"),
                    ]
                )
        print("\n4. memory of one bootMer call (fresh process each; after fit + B=5 warm-up)")
        print_table(
            ["design", "B", "max chunk", "tracemalloc peak MB", "max-RSS growth MB", "max-RSS MB"],
            rows,
        )


if __name__ == "__main__":
    main()
