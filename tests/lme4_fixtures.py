"""Load the R lme4 reference fixtures in ../shared/fixtures/lme4 (see its README)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "lme4"


def require_fixtures() -> Path:
    if not (FIXTURES / "manifest.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"lme4 fixtures not found at {FIXTURES}")
        pytest.skip(f"lme4 fixtures not found at {FIXTURES}")
    return FIXTURES


@cache
def manifest() -> list[dict]:
    path = FIXTURES / "manifest.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["cases"]


def case_names() -> list[str]:
    return [c["case"] for c in manifest()]


@cache
def load_json(case: str, reml: bool) -> dict:
    require_fixtures()
    entry = next(c for c in manifest() if c["case"] == case)
    return json.loads((FIXTURES / entry["files"]["reml" if reml else "ml"]).read_text())


def load_case(case: str, reml: bool = True) -> tuple[dict, pd.DataFrame, dict]:
    """The fixture JSON, its data (factors as categoricals in R's order) and contrasts."""
    fx = load_json(case, reml)
    facs = fx["data"]["factors"]
    df = pd.read_csv(FIXTURES / fx["data"]["csv"], dtype={c: str for c in facs})
    contrasts = {}
    for c, spec in facs.items():
        df[c] = pd.Categorical(df[c], categories=spec["levels"], ordered=spec["ordered"])
        if spec["contrast"] == "contr.sum":
            contrasts[c] = "sum"
    return fx, df, contrasts
