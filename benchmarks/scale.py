"""Speed at the scale of real data (issue 13): every row of its table, lmmcore next to lme4.

    python benchmarks/scale.py [--repeats 3] [--small-repeats 20] [--nsim 1000]
                               [--r-power-nsim 5] [--r-heatmap-nsim 3] [--boot-B 1000]
                               [--r-million] [--skip-power] [--skip-memory]

One run prints one table. Each row is timed on both sides in this run, on this machine:
lmmcore with one BLAS thread and ``n_jobs=1``; R (lme4 1.1-31, lmerTest) in one process
with one BLAS thread. Medians of ``--repeats`` (big fits) or ``--small-repeats`` (small
ones) after one untimed warm-up; the load average is printed before and after.

1. Single fits (``lmmcore.fit`` vs ``lme4::lmer``): lme4's InstEval (73,421 rows,
   ``y ~ service * dept + (1 | s) + (1 | d)``), REML and ML, with the optimum checked
   against lme4's tight refit (nloptwrap and minqa BOBYQA from lme4's optimum, as the
   fixtures' ``tight_refit``) and the Satterthwaite df of all 28 coefficients against
   lmerTest (both df computations timed); nlme's Machines, Orthodont, Rail and
   ergoStool; every case of the lme4 fixtures (REML).
2. Memory (fresh process each): peak RSS of an InstEval fit; a crossed design of 5,000
   subjects x 1,000 items, each subject seeing 200 items (1,000,000 rows), fitted
   (``--r-million`` also times lme4 on it); a 20,000 x 20,000 crossing, refused up
   front with the size of the dense block it would need.
3. Power (``power(spec, design, nsim=1000, test="satterthwaite", n_jobs=1)``): presets
   P3, P1b and P4, and the P1 subjects x items heatmap (5 x 4 points, ``power_curve``).
   R: the same loop (``simulate`` with the true parameters, ``lmerTest::lmer`` refit,
   Satterthwaite p-values from ``summary``) on ``--r-power-nsim`` simulations per preset
   and ``--r-heatmap-nsim`` per heatmap point; its total is extrapolated to 1,000 per
   point (marked ``~``).
4. Bootstrap of unbalanced data: the crossed 30 x 20 fixture with 10% of its rows
   dropped (numpy seed 1), lmmcore ``bootMer(B=1000)`` vs lme4
   ``bootMer(fixef, nsim=200)``, ms per replicate.

lme4's InstEval and nlme's data sets are exported from R into ``benchmarks/out/data``
(not tracked); without R those rows are skipped. See benchmarks/README.md.
"""

# ruff: noqa: E402  (imports after the sys.path line)
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from _common import FIXTURES, fmt_ratio, load_fixture, machine_line, median, print_table, time_ms
from _r import r_status, run_r
from bootstrap import R_BOOT, boot_ms_per_rep
from threadpoolctl import threadpool_limits

import lmmcore
from lmmcore.power import power, power_curve

OUT = Path(__file__).resolve().parent / "out" / "data"
INSTEVAL = "y ~ service * dept + (1 | s) + (1 | d)"
NLME = [  # (label, data set, formula)
    ("Machines", "Machines", "score ~ Machine + (Machine | Worker)"),
    ("Orthodont", "Orthodont", "distance ~ age + (age | Subject)"),
    ("Rail", "Rail", "travel ~ 1 + (1 | Rail)"),
    ("ergoStool", "ergoStool", "effort ~ Type + (1 | Subject)"),
]
POWER = ["P3", "P1b", "P4"]
HEATMAP = {"subjects": [20, 40, 60, 80, 100], "items": [10, 20, 40, 80]}
MILLION = (5000, 1000, 200)  # subjects, items, items per subject
NO_FACS = ["", "", ""]  # R_FIT's factor arguments for an .rds (factors already set)

R_EXPORT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(nlme))
sets <- list(InstEval = lme4::InstEval[, c("s", "d", "service", "dept", "y")],
             Machines = nlme::Machines, Orthodont = nlme::Orthodont, Rail = nlme::Rail,
             ergoStool = nlme::ergoStool)
res <- list()
for (nm in names(sets)) {
  d <- as.data.frame(sets[[nm]])
  facs <- list()
  for (v in names(d)) if (is.factor(d[[v]])) {  # plain factors, R's level order kept
    d[[v]] <- factor(as.character(d[[v]]), levels = levels(d[[v]]))
    facs[[v]] <- as.list(levels(d[[v]]))
  }
  csv <- file.path(args[1], paste0(nm, ".csv"))
  write.csv(d, csv, row.names = FALSE)
  saveRDS(d, file.path(args[1], paste0(nm, ".rds")))
  res[[nm]] <- list(csv = csv, factors = facs)
}
emit(res)
"""

R_FIT = r"""
args <- commandArgs(trailingOnly = TRUE)
# per case: label, data (.rds or .csv), factors, sum-coded factors, ordered factors,
# formula, REML, repeats, tight (0/1), df (0/1)
cases <- matrix(args, nrow = 10)
crit <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
split <- function(s) if (nzchar(s)) strsplit(s, ",")[[1]] else character(0)
res <- list()
for (j in seq_len(ncol(cases))) {
  a <- cases[, j]
  d <- if (grepl("[.]rds$", a[2])) readRDS(a[2]) else read_data(a[2], a[3])
  for (v in split(a[4])) contrasts(d[[v]]) <- contr.sum(nlevels(d[[v]]))
  for (v in split(a[5])) d[[v]] <- factor(d[[v]], levels = levels(d[[v]]), ordered = TRUE)
  a <- a[-(3:5)]
  f <- as.formula(a[3]); reml <- as.logical(a[4]); n <- as.integer(a[5])
  m <- lmer(f, d, REML = reml)  # warm-up
  ms <- numeric(n)
  for (i in seq_len(n)) {
    t0 <- now(); m <- lmer(f, d, REML = reml); ms[i] <- 1000 * (now() - t0)
  }
  out <- list(ms = as.list(ms), objective = crit(m))
  if (a[6] == "1") {  # tight refits from lme4's optimum, as the fixtures' tight_refit
    th <- getME(m, "theta")
    tight <- crit(m)
    ctl <- list(lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14,
                  ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5)),
                lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
    for (cc in ctl) {
      mt <- tryCatch(lmer(f, d, REML = reml, start = th, control = cc), error = function(e) NULL)
      if (!is.null(mt)) tight <- min(tight, crit(mt))
    }
    out$tight <- tight
  }
  if (a[7] == "1") {  # lmerTest's Satterthwaite df at lme4's optimum, timed
    t0 <- now()
    cf <- summary(lmerTest::as_lmerModLmerTest(m))$coefficients
    out$df_seconds <- now() - t0
    out$df <- setNames(as.list(cf[, "df"]), rownames(cf))
  }
  res[[a[1]]] <- out
}
emit(res)
"""

R_POWER = r"""
suppressPackageStartupMessages(library(lmerTest))
args <- commandArgs(trailingOnly = TRUE)
nsim <- as.integer(args[1])
cases <- matrix(args[-1], nrow = 8)  # label, csv, factors, formula, beta names, beta, theta, sigma
num <- function(s) as.numeric(strsplit(s, ",")[[1]])
res <- list()
for (j in seq_len(ncol(cases))) {
  a <- cases[, j]
  d <- read_data(a[2], a[3])
  f <- as.formula(a[4])
  resp <- all.vars(f)[1]
  d[[resp]] <- 0
  X <- lme4::lFormula(f, d)$X
  beta <- setNames(num(a[6]), strsplit(a[5], ",")[[1]])[colnames(X)]
  set.seed(1)
  t0 <- now()
  ys <- simulate(f[-2], newdata = d, nsim = nsim,
                 newparams = list(beta = beta, theta = num(a[7]), sigma = num(a[8])))
  sig <- 0
  for (i in seq_len(nsim)) {
    d[[resp]] <- ys[[i]]
    m <- lmerTest::lmer(f, data = d)
    sig <- sig + sum(coef(summary(m))[, "Pr(>|t|)"] < 0.05)
  }
  res[[a[1]]] <- list(seconds = now() - t0, nsim = nsim, significant = sig)
}
emit(res)
"""


def export_r_data() -> dict:
    """lme4's InstEval and nlme's data sets as CSV (+ R's factor levels)."""
    OUT.mkdir(parents=True, exist_ok=True)
    return run_r(R_EXPORT, OUT)


def read_exported(info: dict) -> pd.DataFrame:
    facs = info["factors"]
    df = pd.read_csv(info["csv"], dtype={c: str for c in facs})
    for c, levels in facs.items():
        df[c] = pd.Categorical(df[c], categories=[str(v) for v in levels])
    return df


def fixture_cases() -> list[tuple[str, pd.DataFrame, str, dict, str, list[str]]]:
    """(label, data, formula, contrasts, csv, R_FIT's factor arguments) per fixture case."""
    out = []
    for c in json.loads((FIXTURES / "manifest.json").read_text())["cases"]:
        df, csv, facs, fx = load_fixture(c["case"])
        spec = fx["data"]["factors"]
        con = {k: "sum" for k, v in spec.items() if v["contrast"] == "contr.sum"}
        ordered = [k for k, v in spec.items() if v["ordered"]]
        r_facs = [",".join(facs), ",".join(con), ",".join(ordered)]
        out.append((c["case"], df, fx["formula"], con, str(csv), r_facs))
    return out


def fit_seconds(formula, df, reml, repeats, contrasts=None):
    """(median seconds of lmmcore.fit, the last result)."""
    res = lmmcore.fit(formula, df, REML=reml, contrasts=contrasts)
    ms = time_ms(lambda: lmmcore.fit(formula, df, REML=reml, contrasts=contrasts), repeats, 0)
    return median(ms) / 1000, res


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def probe_insteval(info: dict, reml: bool) -> dict:
    """Fresh process: peak RSS of one InstEval fit (data read, structure, fit, solution)."""
    with threadpool_limits(1):
        before = rss_mb()
        df = read_exported(info)
        t0 = time.perf_counter()
        res = lmmcore.fit(INSTEVAL, df, REML=reml)
        return {"seconds": time.perf_counter() - t0, "rss": rss_mb(), "before": before,
                "objective": res.objective}  # fmt: skip


def million_data(seed: int = 7) -> pd.DataFrame:
    ns, ni, per = MILLION
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(ns), per)
    item = np.concatenate([rng.choice(ni, per, replace=False) for _ in range(ns)])
    x = rng.choice([-0.5, 0.5], ns * per)
    u, w = rng.normal(0, 50, ns)[subj], rng.normal(0, 30, ni)[item]
    y = 500 + 30 * x + u + w + rng.normal(0, 80, ns * per)
    return pd.DataFrame(
        {"subj": pd.Categorical(subj), "item": pd.Categorical(item), "x": x, "y": y}
    )


MILLION_FORMULA = "y ~ x + (1 | subj) + (1 | item)"


def probe_million(csv: str | None) -> dict:
    """Fresh process: fit the 1,000,000-row crossed design; time and peak RSS."""
    with threadpool_limits(1):
        df = million_data()
        if csv:
            df.to_csv(csv, index=False)
        before = rss_mb()
        t0 = time.perf_counter()
        res = lmmcore.fit(MILLION_FORMULA, df)
        secs = time.perf_counter() - t0
        return {"seconds": secs, "rss": rss_mb(), "before": before, "q2": res.engine.q2,
                "optimizer": res.optimizer.optimizer}  # fmt: skip


def probe_refusal() -> str:
    rng = np.random.default_rng(0)
    n = 60_000
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 20_000, n).astype(str),
            "b": rng.integers(0, 20_000, n).astype(str),
            "y": rng.normal(size=n),
        }
    )
    t0 = time.perf_counter()
    try:
        lmmcore.fit("y ~ 1 + (1 | a) + (1 | b)", df)
    except lmmcore.DataError as exc:
        return f"DataError after {time.perf_counter() - t0:.1f} s: {exc}"
    return "not refused"


def in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def power_case_args(label: str, spec, data: pd.DataFrame, tmp: Path) -> list[str]:
    """R_POWER's arguments for one design: the data and the truth in lme4's order."""
    s = spec.structure(data)
    csv = tmp / f"{label}.csv"
    facs = [b.group for b in s.blocks]
    data.to_csv(csv, index=False)
    num = ",".join
    return [
        label,
        str(csv),
        ",".join(dict.fromkeys(facs)),
        spec.formula,
        ",".join(s.fe_names),
        num(map(repr, map(float, spec.beta_for(s)))),
        num(map(repr, map(float, spec.theta_for(s)))),
        repr(float(spec.sigma)),
    ]


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed InstEval fits (3)")
    ap.add_argument("--small-repeats", type=int, default=20, help="timed small fits (20)")
    ap.add_argument("--nsim", type=int, default=1000, help="power simulations per point")
    ap.add_argument("--r-power-nsim", type=int, default=5, help="R simulations per preset")
    ap.add_argument("--r-heatmap-nsim", type=int, default=3, help="R simulations per point")
    ap.add_argument("--boot-B", type=int, default=1000, help="lmmcore bootstrap replicates")
    ap.add_argument("--r-boot-nsim", type=int, default=200, help="lme4 bootMer nsim")
    ap.add_argument("--r-million", action="store_true", help="also fit the 1M rows in lme4")
    ap.add_argument("--skip-power", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(machine_line())
    r_ok, r_note = r_status()
    print(r_note)
    print("start:", load_line())
    rows: list[list[str]] = []

    def row(case, ours_s, r_s, target="", check="", approx=False):
        r_txt = "n/a" if r_s is None else ("~" if approx else "") + fmt_s(r_s)
        rows.append([case, fmt_s(ours_s), r_txt, fmt_ratio(r_s, ours_s), target, check])

    exported = export_r_data() if r_ok else {}
    tmp = Path(tempfile.mkdtemp())

    # ---- 1. single fits ------------------------------------------------------------
    fits = []  # (label, data, formula, contrasts, REML, repeats, tight, df, r data, r facs)
    if "InstEval" in exported:
        ie = read_exported(exported["InstEval"])
        rds = str(OUT / "InstEval.rds")
        for reml in (True, False):
            label = f"InstEval {'REML' if reml else 'ML'}"
            fits.append((label, ie, INSTEVAL, None, reml, a.repeats, True, reml, rds, NO_FACS))
    for label, name, formula in NLME:
        if name in exported:
            d = read_exported(exported[name])
            rds = str(OUT / f"{name}.rds")
            fits.append(
                (label, d, formula, None, True, a.small_repeats, False, False, rds, NO_FACS)
            )
    for label, d, formula, con, csv, facs in fixture_cases():
        fits.append((f"fixture {label}", d, formula, con, True, a.small_repeats, False, False,
                     csv, facs))  # fmt: skip
    r_fit = {}
    if r_ok:
        args = []
        for label, _, formula, _, reml, n, tight, df, path, facs in fits:
            args += [label, path, *facs, formula, str(reml).upper(), str(n), str(int(tight))]
            args.append(str(int(df)))
        r_fit = run_r(R_FIT, *args, timeout=7200)
    print("fits in R done:", load_line())
    with threadpool_limits(1):
        for label, d, formula, con, reml, n, tight, df, _, _ in fits:
            secs, res = fit_seconds(formula, d, reml, n, con)
            r = r_fit.get(label)
            r_s = median(r["ms"]) / 1000 if r else None
            check = ""
            if r:
                check = f"obj - lme4 {res.objective - r['objective']:+.1e}"
                if tight:
                    check = f"obj - lme4 tight {res.objective - r['tight']:+.1e}"
            # the goals: InstEval >= 3x, small models >= 2x, every fixture >= 1x
            target = ">=3x" if label.startswith("InstEval") else ">=2x"
            if label == "fixture sim_large_60x40":
                target = ">=1x"
            row(label, secs, r_s, target, check)
            if df:
                t0 = time.perf_counter()
                ours = res.df
                df_s = time.perf_counter() - t0
                check = ""
                if r:
                    theirs = pd.Series(r["df"])[ours.index]
                    check = f"max rel diff {np.max(np.abs(ours / theirs - 1)):.1e} (28 coefs)"
                row(f"{label} Satterthwaite df", df_s, r["df_seconds"] if r else None, "", check)
    print("fits done:", load_line())

    # ---- 2. memory -------------------------------------------------------------------
    if not a.skip_memory:
        if "InstEval" in exported:
            m = in_fresh_process(probe_insteval, exported["InstEval"], True)
            row("InstEval REML, fresh process", m["seconds"], None, "<1 GB",
                f"peak RSS {m['rss']:.0f} MB (at start {m['before']:.0f} MB)")  # fmt: skip
        csv = str(tmp / "million.csv") if (r_ok and a.r_million) else None
        m = in_fresh_process(probe_million, csv)
        r_s = None
        if csv:
            out = run_r(R_FIT, "million", csv, "subj,item", "", "", MILLION_FORMULA, "TRUE", "1",
                        "0", "0", timeout=7200)  # fmt: skip
            r_s = median(out["million"]["ms"]) / 1000
        row("1,000,000 rows: 5,000 subj x 1,000 items (200 each)", m["seconds"], r_s,
            "no dense q x q", f"peak RSS {m['rss']:.0f} MB; dense block {m['q2']}^2; "
            f"{m['optimizer']}")  # fmt: skip
        print("refusal:", in_fresh_process(probe_refusal))
        print("memory done:", load_line())

    # ---- 3. power --------------------------------------------------------------------
    if not a.skip_power:
        r_pow = {}
        if r_ok:
            args = [str(a.r_power_nsim)]
            for name in POWER:
                p = lmmcore.PRESETS[name]
                args += power_case_args(name, p.spec, p.design.conditions(1), tmp)
            r_pow = run_r(R_POWER, *args, timeout=7200)
        with threadpool_limits(1):
            for name in POWER:
                p = lmmcore.PRESETS[name]
                power(p.spec, p.design, nsim=5, seed=0)  # warm-up (compiles nothing new)
                t0 = time.perf_counter()
                res = power(p.spec, p.design, nsim=a.nsim, seed=1, n_jobs=1)
                secs = time.perf_counter() - t0
                r = r_pow.get(name)
                r_s = r["seconds"] / r["nsim"] * a.nsim if r else None
                counts = res.status_counts()
                row(f"power {name} ({p.design.n_rows} rows), {a.nsim} sims", secs, r_s,
                    "<=10 s", f"fits {counts['ok']} ok, {counts['singular']} singular, "
                    f"{counts['not converged']} not converged", approx=True)  # fmt: skip
        print("power done:", load_line())
        p1 = lmmcore.PRESETS["P1"]
        points = [(s_, i_) for s_ in HEATMAP["subjects"] for i_ in HEATMAP["items"]]
        r_heat = {}
        if r_ok:
            args = [str(a.r_heatmap_nsim)]
            for s_, i_ in points:
                data = p1.design.with_size(subjects=s_, items=i_).conditions(1)
                args += power_case_args(f"{s_}x{i_}", p1.spec, data, tmp)
            r_heat = run_r(R_POWER, *args, timeout=7200)
        with threadpool_limits(1):
            t0 = time.perf_counter()
            power_curve(p1.spec, p1.design, vary=HEATMAP, nsim=a.nsim, seed=1, n_jobs=1)
            secs = time.perf_counter() - t0
        r_s = sum(v["seconds"] / v["nsim"] * a.nsim for v in r_heat.values()) if r_heat else None
        row(f"power P1 heatmap, 5 x 4 points x {a.nsim} sims", secs, r_s, "<=20 s", "",
            approx=True)  # fmt: skip
        print("heatmap done:", load_line())

    # ---- 4. bootstrap, unbalanced ----------------------------------------------------
    df_b, csv_b, facs_b, fx_b = load_fixture("sim_crossed_30x20")
    drop = np.random.default_rng(1).choice(len(df_b), len(df_b) // 10, replace=False)
    unbalanced = df_b.drop(index=drop)
    csv_u = tmp / "crossed_30x20_unbalanced.csv"
    unbalanced.to_csv(csv_u, index=False)
    r_boot = {}
    if r_ok:
        r_boot = run_r(R_BOOT, str(a.r_boot_nsim), "3", "u", csv_u, ",".join(facs_b),
                       fx_b["formula"])  # fmt: skip
    with threadpool_limits(1):
        res = lmmcore.fit(fx_b["formula"], unbalanced)
        ms, _ = boot_ms_per_rep(res, a.boot_B, 3)
    r_ms = median(r_boot["u"]["ms_per_sim"]) if r_boot else None
    rows.append(["bootMer per replicate, crossed 30x20, 10% of rows dropped", f"{ms:.3f} ms",
                 "n/a" if r_ms is None else f"{r_ms:.2f} ms", fmt_ratio(r_ms, ms), ">=40x",
                 f"B={a.boot_B} vs nsim={a.r_boot_nsim}"])  # fmt: skip
    print("end:", load_line())
    print(f"\nlmmcore vs lme4, side by side ({os.cpu_count()} cores, 1 BLAS thread each)")
    print_table(["case", "lmmcore", "lme4", "ratio", "target", "check"], rows)


def fmt_s(sec: float | None) -> str:
    if sec is None:
        return "n/a"
    return f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"


if __name__ == "__main__":
    main()
