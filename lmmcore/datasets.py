"""Small example data sets shipped with lmmcore (the classic lme4 examples).

Example:
    >>> from lmmcore.datasets import load_dataset, DATASETS
    >>> load_dataset("sleepstudy").shape
    (180, 3)
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from lmmcore.errors import DataError

#: name -> (csv file, {factor column: ordered?}, default formula)
DATASETS: dict[str, tuple[str, dict[str, bool], str]] = {
    "sleepstudy": ("sleepstudy.csv", {"Subject": False}, "Reaction ~ Days + (Days | Subject)"),
    "Dyestuff": ("Dyestuff.csv", {"Batch": False}, "Yield ~ 1 + (1 | Batch)"),
    "Dyestuff2": ("Dyestuff2.csv", {"Batch": False}, "Yield ~ 1 + (1 | Batch)"),
    "Penicillin": (
        "Penicillin.csv",
        {"plate": False, "sample": False},
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
    ),
    "Pastes": (
        "Pastes.csv",
        {"batch": False, "cask": False, "sample": False},
        "strength ~ 1 + (1 | batch/cask)",
    ),
    "cake": (
        "cake.csv",
        {"replicate": False, "recipe": False, "temperature": True},
        "angle ~ recipe * temperature + (1 | recipe:replicate)",
    ),
}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped data set with its factors as pandas categoricals (R's level order)."""
    if name not in DATASETS:
        raise DataError(f"Unknown data set {name!r}; available: {', '.join(DATASETS)}.")
    fname, factors, _ = DATASETS[name]
    with resources.files("lmmcore.data").joinpath(fname).open("r") as fh:
        df = pd.read_csv(fh, dtype={c: str for c in factors})
    for col, ordered in factors.items():
        vals = df[col].unique().tolist()
        try:
            levels = sorted(vals, key=float)
        except ValueError:
            levels = sorted(vals)
        df[col] = pd.Categorical(df[col], categories=levels, ordered=ordered)
    return df
