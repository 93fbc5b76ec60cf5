"""Benchmark: power simulation of preset P1 (DeBruine & Barr 2021), lmmcore vs R.

lmmcore: ``power(P1.spec, P1.design, nsim=N, test=...)`` (simulate, batched refit, test
every fixed effect) for the Satterthwaite and Wald tests. R: the same loop with lme4 +
lmerTest (``simulate`` with the true parameters, ``lmerTest::lmer`` refit, Satterthwaite
p-values from ``summary``) on a subset of simulations, if ``Rscript`` with lme4 and
lmerTest is installed. Prints seconds, seconds per simulation and the per-simulation ratio.

Run:
    python benchmarks/power.py [--nsim 1000] [--r-nsim 20] [--n-jobs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from lmmcore.power import power
from lmmcore.presets import PRESETS

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); nsim <- as.integer(args[2]); par <- args[3]
d$subj_id <- factor(d$subj_id); d$item_id <- factor(d$item_id)
p <- as.numeric(strsplit(par, ",")[[1]])
beta <- p[1:2]; sigma <- p[3]; theta <- p[4:length(p)]
set.seed(1)
t0 <- as.numeric(Sys.time())
ys <- simulate(~ 1 + X_i + (1 | item_id) + (1 + X_i | subj_id), newdata = d, nsim = nsim,
               newparams = list(beta = beta, theta = theta, sigma = sigma))
pv <- numeric(nsim)
for (i in seq_len(nsim)) {
  d$RT <- ys[[i]]
  m <- lmerTest::lmer(RT ~ 1 + X_i + (1 | item_id) + (1 + X_i | subj_id), data = d)
  pv[i] <- coef(summary(m))["X_i", "Pr(>|t|)"]
}
el <- as.numeric(Sys.time()) - t0
cat("@@JSON@@", sprintf('{"seconds": %.6f, "power": %.6f}', el, mean(pv < 0.05)), "\n")
"""


def run_r(nsim: int) -> dict | None:
    """Seconds for ``nsim`` simulate + refit + test iterations of P1 in R, or None."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("R: skipped (Rscript not found)")
        return None
    p1 = PRESETS["P1"]
    data = p1.design.conditions(1)
    s = p1.spec.structure(data)
    # lme4 orders random-effect terms by number of levels: subj_id (100) before item_id (50)
    th = dict(zip(s.theta_names, p1.spec.theta_for(s), strict=True))
    theta_r = [
        th["subj_id.(Intercept)"],
        th["subj_id.X_i.(Intercept)"],
        th["subj_id.X_i"],
        th["item_id.(Intercept)"],
    ]
    par = [*p1.spec.beta_for(s), p1.spec.sigma, *theta_r]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        data[["subj_id", "item_id", "X_i"]].to_csv(csv, index=False)
        script = Path(tmp) / "p1.R"
        script.write_text(R_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        out = subprocess.run(
            [rscript, "--vanilla", str(script), str(csv), str(nsim), ",".join(map(str, par))],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("@@JSON@@")]
    if out.returncode != 0 or not lines:
        print(f"R: failed (exit {out.returncode}): {out.stderr[-500:]}")
        return None
    return json.loads(lines[-1][len("@@JSON@@") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--r-nsim", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--tests", default="satterthwaite,wald")
    a = ap.parse_args()
    p1 = PRESETS["P1"]
    print(
        f"P1: {p1.design.n_rows} rows, {a.nsim} simulations, n_jobs={a.n_jobs}, "
        f"{os.cpu_count()} cores"
    )
    per_sim = {}
    for test in a.tests.split(","):
        t = time.perf_counter()
        res = power(p1.spec, p1.design, nsim=a.nsim, test=test, seed=1, n_jobs=a.n_jobs)
        el = time.perf_counter() - t
        per_sim[test] = el / a.nsim
        row = res.table.loc["X_i"]
        print(
            f"lmmcore {test:>13}: {el:8.2f} s  {1e3 * el / a.nsim:8.2f} ms/sim  "
            f"power(X_i) = {row['power']:.3f} [{row['ci_lower']:.3f}, {row['ci_upper']:.3f}]"
            f"  fits {res.status_counts()}"
        )
    if a.r_nsim > 0:
        r = run_r(a.r_nsim)
        if r is not None:
            rs = r["seconds"] / a.r_nsim
            print(
                f"R lme4+lmerTest    : {r['seconds']:8.2f} s  {1e3 * rs:8.2f} ms/sim  "
                f"({a.r_nsim} simulations; power(X_i) = {r['power']:.2f})"
            )
            for test, s in per_sim.items():
                print(f"ratio R / lmmcore ({test}): {rs / s:.1f}x per simulation")


if __name__ == "__main__":
    main()
