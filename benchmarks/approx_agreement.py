"""Agreement of `approx_power` with simulation (`power`) on the presets and random designs.

Every preset at its own size, and ``--random`` (default 20) random designs: crossed
subjects x items with a two-level factor varying within, within subjects or between
subjects, nested designs (pupils in classes in schools, treatment at the class level),
random slopes with correlations, and 10-30% missing rows in every other design. The
random designs' effects are set from the approximation's SE to have power between about
0.2 and 0.9. For each effect: the approximation (Satterthwaite at the truth) and the
simulated power at ``--nsim`` (default 4000) with its Clopper-Pearson 95% CI; ``inside``
is whether the approximation lies in that CI, else by how much it misses it; the same
against the conditional Monte-Carlo estimate (`power_cmc`) and its much narrower CI,
which measures the approximation's own error. The summary
counts the effects with approximate power between 0.1 and 0.95 (the issue's criterion).
Both use the same seed, so they analyse the same conditions (covariates, missing rows).

Run (75 s with --n-jobs 2 at nsim=4000 here, on 2026-12-01):
    python benchmarks/approx_agreement.py [--nsim 4000] [--random 20] [--n-jobs 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import machine_line, print_table

from lmmcore import PRESETS, Design, Factor, ModelSpec, approx_power, power


def random_design(i: int) -> tuple[str, ModelSpec, Design]:
    """Design ``i`` (numpy seed 1000 + i): kind, sizes, SDs and effect sizes drawn."""
    rng = np.random.default_rng(1000 + i)
    missing = float(rng.uniform(0.1, 0.3)) if i % 2 else 0.0
    kind = ["crossed", "nested", "slopes"][i % 3]
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    if kind == "nested":
        schools = int(rng.integers(4, 9))
        classes = 2 * int(rng.integers(1, 4))
        pupils = int(rng.integers(3, 9))
        design = Design(
            nested=[("school", schools), ("class", classes), ("pupil", pupils)],
            factors=[Factor("t", ["c", "d"], "between_subject", at="class")],
            trials=int(rng.integers(2, 5)),
            missing=missing,
        )
        formula = "y ~ t + (1 | school) + (1 | class) + (1 | pupil)"
        random = {
            "school": {"sd": {"(Intercept)": u(0.2, 1.0)}},
            "class": {"sd": {"(Intercept)": u(0.2, 1.0)}},
            "pupil": {"sd": {"(Intercept)": u(0.2, 1.0)}},
        }
        label = f"nested {schools}x{classes}x{pupils}x{design.trials}"
        effects = ["t"]
    else:
        varies = ["within", "within_subject", "between_subject"][int(rng.integers(0, 3))]
        groups = 2 if varies == "between_subject" else 1
        subjects = groups * int(rng.integers(6, 21))
        items = 2 * int(rng.integers(4, 16))
        design = Design(
            subjects,
            items,
            [Factor("x", ["a", "b"], varies), Factor("w", ["p", "q"], "within")],
            missing=missing,
        )
        subj_sd = {"(Intercept)": u(0.3, 1.2)}
        item_sd = {"(Intercept)": u(0.2, 0.8)}
        if kind == "slopes":
            if varies != "between_subject":
                subj_sd["x"] = u(0.1, 0.6)
            if varies != "within_subject":
                item_sd["x"] = u(0.1, 0.5)
        if kind == "slopes":
            subj_sd["w"] = u(0.1, 0.4)
        subj = {"sd": subj_sd}
        if len(subj_sd) > 1:
            k = len(subj_sd)
            c = np.eye(k)
            c[0, 1:] = c[1:, 0] = u(-0.4, 0.4)
            subj["corr"] = c.tolist()
        terms_s = " + ".join(t for t in subj_sd if t != "(Intercept)")
        terms_i = " + ".join(t for t in item_sd if t != "(Intercept)")
        formula = (
            f"y ~ x * w + (1{' + ' + terms_s if terms_s else ''} | subj) + "
            f"(1{' + ' + terms_i if terms_i else ''} | item)"
        )
        random = {"subj": subj, "item": {"sd": item_sd}}
        label = f"{kind} {subjects}x{items} x:{varies}"
        effects = ["x", "w", "x:w"]
    sigma = u(0.6, 1.4)
    zero = {"(Intercept)": 0.0, **dict.fromkeys(effects, 0.0)}
    probe = ModelSpec(formula, zero, random, sigma)
    se = approx_power(probe, design, seed=i).loc[effects, "se"]
    fixed = {"(Intercept)": 1.0, **{e: float(se[e] * u(1.2, 3.2)) for e in effects}}
    if missing:
        label += f", {missing:.0%} missing"
    return label, ModelSpec(formula, fixed, random, sigma), design


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=4000)
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--presets", default=",".join(PRESETS))
    a = ap.parse_args()
    print(machine_line(), f"nsim={a.nsim}")
    cases = [(f"{k}", PRESETS[k].spec, PRESETS[k].design, k) for k in a.presets.split(",") if k]
    for i in range(a.random):
        label, spec, design = random_design(i)
        cases.append((f"R{i:02d} {label}", spec, design, i))
    rows, judged, inside, misses = [], 0, 0, []
    inside_cmc, gaps = 0, []
    t_all = time.perf_counter()
    for label, spec, design, seed in cases:
        seed = 1 if isinstance(seed, str) else seed
        approx = approx_power(spec, design, seed=seed)
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sim = power(spec, design, nsim=a.nsim, seed=seed, n_jobs=a.n_jobs).table
        el = time.perf_counter() - t
        singular = int(sim["n_singular"].max())
        for effect in approx.index:
            if effect == "(Intercept)":
                continue
            ap_, s = approx.loc[effect], sim.loc[effect]
            lo, hi = s["ci_lower"], s["ci_upper"]
            ok = lo <= ap_["power"] <= hi
            miss = 0.0 if ok else (ap_["power"] - hi if ap_["power"] > hi else ap_["power"] - lo)
            in_range = 0.1 <= ap_["power"] <= 0.95
            # the conditional Monte-Carlo estimate of the same power: a far narrower CI,
            # so it shows the approximation's own error
            clo, chi = s["cmc_ci_lower"], s["cmc_ci_upper"]
            ok_cmc = clo <= ap_["power"] <= chi
            if in_range:
                judged += 1
                inside += ok
                inside_cmc += ok_cmc
                gaps.append(ap_["power"] - s["power_cmc"])
                if not ok:
                    misses.append((label, effect, miss))
            rows.append(
                [
                    label,
                    effect,
                    f"{ap_['power']:.3f}",
                    f"{s['power']:.3f}",
                    f"{lo:.3f}-{hi:.3f}",
                    "yes" if ok else f"no ({miss:+.3f})",
                    f"{s['power_cmc']:.3f} ({clo:.3f}-{chi:.3f})",
                    "yes" if ok_cmc else f"no ({ap_['power'] - s['power_cmc']:+.3f})",
                    f"{ap_['df']:.1f}",
                    f"{s['type1_error']:.3f}",
                    f"{singular / a.nsim:.0%}",
                    "" if in_range else "out of 0.1-0.95",
                ]
            )
        print(f"  {label}: {el:.0f} s", flush=True, end="")
        print(f" ({len(caught)} warnings)" if caught else "", flush=True)
    print()
    print_table(
        [
            "design",
            "effect",
            "approx",
            "simulated",
            "95% MC CI",
            "inside",
            "conditional MC (95% CI)",
            "inside",
            "approx df",
            "type I",
            "singular",
            "note",
        ],
        rows,
    )
    print(
        f"\n{inside} of {judged} effects with approximate power in [0.1, 0.95] lie inside the "
        f"simulation's 95% CI ({time.perf_counter() - t_all:.0f} s in all)."
    )
    for label, effect, miss in misses:
        print(f"  outside: {label} {effect}: approximation {miss:+.3f} beyond the CI")
    if gaps:
        g = np.abs(gaps)
        print(
            f"Against the conditional Monte-Carlo estimate (same replicates, narrower CI): "
            f"{inside_cmc} of {judged} inside its CI; approximation minus it: median "
            f"|gap| {np.median(g):.3f}, 90th percentile {np.quantile(g, 0.9):.3f}, "
            f"largest {g.max():.3f}"
        )


if __name__ == "__main__":
    main()
