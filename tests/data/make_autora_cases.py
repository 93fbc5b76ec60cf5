"""Make autora_lmm_cases.json: autora's own lmm_experiment outputs on 40 random cases.

Not part of the suite (it needs autora). Run it in a throwaway environment:

    python3 -m venv /tmp/autora-venv
    /tmp/autora-venv/bin/pip install autora-synthetic==2.2.0
    /tmp/autora-venv/bin/python tests/data/make_autora_cases.py

Each case is a formula of the shapes autora's regexes accept (lower-case names, fixed
terms 1 / 0 / x1..x3, random terms of 1 / 0 / x1..x3 parts joined by "+" or " + "),
fixed effects, random-effect SDs (some parts left to autora's default), conditions, and
three calls on one experiment: run twice from the experiment's own generator, then
ground_truth with its own random_state. tests/test_autora_reference.py replays them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

N_CASES = 40
PREDICTORS = ["x1", "x2", "x3"]
GROUPS = ["g", "subject", "item"]


def random_case(rng: np.random.Generator) -> dict:
    dv = str(rng.choice(["y", "rt"]))
    fixed_terms = [p for p in PREDICTORS if rng.random() < 0.5]
    if rng.random() < 0.5:
        fixed_terms.insert(0, "1")
    elif rng.random() < 0.15:
        fixed_terms.insert(0, "0")
    terms = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]))):
        parts = [p for p in PREDICTORS if rng.random() < 0.6]
        if rng.random() < 0.6 or not parts:
            parts.insert(0, "1")
        joiner = " + " if rng.random() < 0.7 else "+"
        terms.append(f"({joiner.join(parts)}|{rng.choice(GROUPS)})")
    rhs = " + ".join(fixed_terms + terms) or "1"
    formula = f"{dv} ~ {rhs}"
    fixed = {"Intercept": round(float(rng.normal(0, 2)), 3)}
    for p in PREDICTORS:
        if rng.random() < 0.8:
            fixed[p] = round(float(rng.normal(0, 2)), 3)
    random = {}
    for g in sorted({t.rsplit("|", 1)[1][:-1] for t in terms}):
        keys = ["Intercept", "1", *PREDICTORS]
        random[g] = {k: round(float(rng.uniform(0, 1)), 3) for k in keys if rng.random() < 0.6}
    n = int(rng.integers(6, 16))
    conditions: dict[str, list] = {p: rng.normal(0, 1, n).round(3).tolist() for p in PREDICTORS}
    for g in GROUPS:
        levels = rng.choice(["a", "b", "c", "d", "e"] if rng.random() < 0.5 else [1, 2, 3, 4], n)
        conditions[g] = levels.tolist()
    return {
        "formula": formula,
        "fixed_effects": fixed,
        "random_effects": random,
        "random_state": int(rng.integers(0, 2**31)),
        "added_noise": float(rng.choice([0.0, 0.01, 0.1, 1.0])),
        "ground_truth_state": int(rng.integers(0, 2**31)),
        "conditions": conditions,
    }


def outputs(case: dict) -> list[list[float]]:
    # imported here: the suite imports this file for its doctests and has no autora
    from autora.experiment_runner.synthetic.abstract.lmm import lmm_experiment

    exp = lmm_experiment(
        formula=case["formula"],
        fixed_effects=case["fixed_effects"],
        random_effects=case["random_effects"],
        random_state=case["random_state"],
    )
    cond = pd.DataFrame(case["conditions"])
    dv = case["formula"].split("~")[0].strip()
    first = exp.run(cond, added_noise=case["added_noise"])[dv]
    second = exp.run(cond, added_noise=case["added_noise"])[dv]
    truth = exp.ground_truth(cond, random_state=case["ground_truth_state"])[dv]
    return [[float(v) for v in col] for col in (first, second, truth)]


def main() -> None:
    from importlib.metadata import version

    rng = np.random.default_rng(20240614)
    cases = [random_case(rng) for _ in range(N_CASES)]
    for case in cases:
        case["autora_outputs"] = outputs(case)
    out = {
        "made_by": "tests/data/make_autora_cases.py with autora-synthetic "
        + version("autora-synthetic"),
        "cases": cases,
    }
    path = Path(__file__).with_name("autora_lmm_cases.json")
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
