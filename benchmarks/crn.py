"""Benchmark: smooth power curves from common random numbers (`power_curve(common_draws=)`).

P1 (DeBruine & Barr 2021) over subjects 20, 40, 60, 80, 100 at ``--nsim`` (default 1000)
simulations per point, for ``--seeds`` seeds (default 20: seeds 1..20), with common
draws (the default) and with independent points (``common_draws=False``, the former
behaviour). Prints per mode: the mean curve, how many of the curves are monotone
(non-decreasing), the SD over seeds of power(100) - power(60), and the same SD predicted
from all the replicates (Var(power(100) - power(60)) = Var of one replicate's difference /
nsim), and the ratios of the SDs (target: at least 3), with the best ratio nested subsets
allow for the share of rejections. The common-draw runs give two estimators: the share of
rejections and the conditional Monte-Carlo power (`power_curve`'s default, smooth=True).

Run (about 5 minutes on one core):
    python benchmarks/crn.py [--nsim 1000] [--seeds 20] [--test satterthwaite]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import machine_line, print_table

from lmmcore import PRESETS, approx_power
from lmmcore.power import power

SIZES = [20, 40, 60, 80, 100]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--test", default="satterthwaite")
    a = ap.parse_args()
    print(machine_line(), f"nsim={a.nsim}, seeds 1..{a.seeds}, test={a.test}")
    p1 = PRESETS["P1"]
    big = p1.design.with_size(subjects=max(SIZES))
    rows = []
    sds, predicted = {}, {}
    for common in (True, False):
        runs = []
        t = time.perf_counter()
        for seed in range(1, a.seeds + 1):
            kw = {"nsim": a.nsim, "seed": seed, "test": a.test, "effects": "X_i"}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # the calls power_curve(..., common_draws=common) makes, keeping the results
                draws = big if common else None
                runs.append(
                    {
                        n: power(p1.spec, big.with_size(subjects=n), draws_from=draws, **kw)
                        for n in SIZES
                    }
                )
        el = time.perf_counter() - t
        # both estimators from the same replicates: the share of rejections and the
        # conditional Monte-Carlo mean (what power_curve draws, smooth=True)
        for cmc in (False, True) if common else (False,):
            mode = ("common draws" if common else "independent") + (
                ", conditional MC" if cmc else ", share of rejections"
            )
            col = "power_cmc" if cmc else "power"
            curves = np.array([[r[n].table.loc["X_i", col] for n in SIZES] for r in runs])

            def per_rep(r, n, cmc=cmc):
                return r[n].rej[:, 0] if cmc else (r[n].p[:, 0] < 0.05).astype(float)

            d = np.concatenate([per_rep(r, 100) - per_rep(r, 60) for r in runs])
            diff = curves[:, SIZES.index(100)] - curves[:, SIZES.index(60)]
            monotone = int(np.sum(np.all(np.diff(curves, axis=1) >= 0, axis=1)))
            sds[mode] = float(diff.std(ddof=1))
            # the same SD from all seeds' replicates: Var(mean of nsim differences)
            predicted[mode] = float(d.std(ddof=1) / np.sqrt(a.nsim))
            rows.append(
                [
                    mode,
                    " ".join(f"{v:.3f}" for v in curves.mean(axis=0)),
                    f"{monotone} of {a.seeds}",
                    f"{sds[mode]:.4f}",
                    f"{predicted[mode]:.4f}",
                    f"{el:.0f} s",
                ]
            )
    print_table(
        [
            "mode",
            "mean power at " + "/".join(map(str, SIZES)),
            "monotone",
            "SD of p(100)-p(60) over seeds",
            "the same from the replicates",
            "time (both estimators)",
        ],
        rows,
    )
    ref = "independent, share of rejections"
    for mode in sds:
        if mode != ref:
            print(
                f"SD ratio independent / {mode}: {sds[ref] / sds[mode]:.2f} over the seeds, "
                f"{predicted[ref] / predicted[mode]:.2f} from all {a.seeds * a.nsim:,} "
                "replicates (target >= 3)"
            )
    print(
        f"(a ratio of two SDs of {a.seeds} values is uncertain by about "
        f"{100 / np.sqrt(a.seeds - 1):.0f}%)"
    )
    print(
        f"best ratio nested subsets allow for the shares (z test, known variances): "
        f"{nested_bound():.2f}"
    )


def nested_bound() -> float:
    """The SD ratio if the t statistics were z statistics with known variances: with nested
    subjects b(60) and b(100) correlate sqrt(Var(100) / Var(60)) (nested means), and the
    two points' decisions then still differ in a share of replicates that bounds the
    variance reduction (bivariate normal, 2,000,000 draws, numpy seed 1)."""
    p1 = PRESETS["P1"]
    se = {
        n: approx_power(p1.spec, p1.design.with_size(subjects=n), test="wald").loc["X_i", "se"]
        for n in (60, 100)
    }
    rho = se[100] / se[60]
    z = np.random.default_rng(1).standard_normal((2, 2_000_000))
    t100 = z[0] + 50 / se[100]
    t60 = rho * z[0] + np.sqrt(1 - rho**2) * z[1] + 50 / se[60]
    r100, r60 = np.abs(t100) > 1.96, np.abs(t60) > 1.96
    p100, p60 = r100.mean(), r60.mean()
    crn = np.mean(r100 != r60) - (p100 - p60) ** 2
    return float(np.sqrt((p100 * (1 - p100) + p60 * (1 - p60)) / crn))


if __name__ == "__main__":
    main()
