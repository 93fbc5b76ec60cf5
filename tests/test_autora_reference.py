"""lmm_experiment against autora 2.2.0's own outputs, stored in tests/data.

``tests/data/autora_lmm_cases.json`` holds 40 random cases and what autora-synthetic
2.2.0 computed for them (made by ``tests/data/make_autora_cases.py`` in a throwaway
environment; the suite does not need autora). Exact mode must give every value to 1e-12.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmcore.autora import lmm_experiment
from lmmcore.errors import LmmWarning

CASES = json.loads((Path(__file__).parent / "data" / "autora_lmm_cases.json").read_text())
XS = ("x1", "x2", "x3")  # the predictors of every case


def build(case: dict, mode: str) -> tuple[object, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = lmm_experiment(
            formula=case["formula"],
            fixed_effects=case["fixed_effects"],
            random_effects=case["random_effects"],
            random_state=case["random_state"],
            mode=mode,
        )
    return exp, [w for w in caught if issubclass(w.category, LmmWarning)]


def replay(case: dict, mode: str) -> list[np.ndarray]:
    exp, _ = build(case, mode)
    cond = pd.DataFrame(case["conditions"])
    dv = exp.variables.dependent_variables[0].name
    first = exp.run(cond, added_noise=case["added_noise"])[dv]
    second = exp.run(cond, added_noise=case["added_noise"])[dv]
    truth = exp.ground_truth(cond, random_state=case["ground_truth_state"])[dv]
    return [col.to_numpy() for col in (first, second, truth)]


# cases where autora's "1 + " removal takes the fixed effect of a predictor away: exact
# mode warns on these, and only these
QUIRK = {i for i, c in enumerate(CASES["cases"]) if build(c, "exact")[1]}


def test_fixture_covers_the_quirk():
    assert CASES["made_by"].endswith("autora-synthetic 2.2.0")
    assert len(CASES["cases"]) == 40 and len(QUIRK) >= 5
    assert not any(build(c, "corrected")[1] for c in CASES["cases"])


@pytest.mark.parametrize("i", range(40))
def test_exact_mode_reproduces_autora(i):
    case = CASES["cases"][i]
    for got, want in zip(replay(case, "exact"), case["autora_outputs"], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_corrected_mode_differs_only_where_exact_mode_warns():
    differ = set()
    for i, case in enumerate(CASES["cases"]):
        exact, corrected = replay(case, "exact"), replay(case, "corrected")
        if not all(np.array_equal(a, b) for a, b in zip(exact, corrected, strict=True)):
            differ.add(i)
    assert differ <= QUIRK
    # a warned case with a fixed effect for every predictor must change in corrected mode
    full = {i for i in QUIRK if all(CASES["cases"][i]["fixed_effects"].get(x) for x in XS)}
    assert full and full <= differ
