"""Pilot data as a design: more (or fewer) units drawn like the pilot's own units.

`extend` is simr's ``extend(along=, n=)``: to plan a study with 60 subjects from a pilot
with 18, the new subjects are copies of the pilot's (subject 19 has subject 1's rows, and
so on, cycling in the pilot's level order), so every unit keeps its pattern of conditions,
its missing rows and the pilot's imbalance. Copies are made unit by unit, so the row order
of the pilot does not matter (simr's ``extend`` assumed sorted rows: its issues #263, #315).
A power simulation then draws new random effects for every unit, copies included.

Example:
    >>> import lmmcore
    >>> sleep = lmmcore.load_dataset("sleepstudy")
    >>> big = extend(sleep, along="Subject", n=30)
    >>> big["Subject"].nunique(), len(big)
    (30, 300)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lmmcore.design import MAX_ROWS
from lmmcore.errors import DataError

__all__ = ["extend", "units"]


def units(data: pd.DataFrame, along: str) -> list[Any]:
    """The units of column ``along`` in their order (categories, else sorted values)."""
    if along not in data.columns:
        raise DataError(
            f"The data has no column {along!r} to extend along; use one of its grouping "
            f"columns: {', '.join(map(str, data.columns))}."
        )
    s = data[along]
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        return [c for c in s.cat.categories if c in present]
    vals = list(s.dropna().unique())
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def extend(data: pd.DataFrame, along: str, n: int) -> pd.DataFrame:
    """``data`` with ``n`` units of ``along``: the first ``n`` of the pilot's units, then
    copies of them in turn (labelled ``{unit}_{copy}``), each with all its rows.

    Raises:
        DataError: ``along`` is not a column, ``n`` is not a positive whole number, or the
            result would exceed `lmmcore.MAX_ROWS` rows.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise DataError(f"n must be a positive whole number of units, got {n!r}.")
    levels = units(data, along)
    if not levels:
        raise DataError(f"Column {along!r} has no values to copy.")
    col = data[along]
    rows_of = {lvl: np.flatnonzero((col == lvl).to_numpy()) for lvl in levels}
    total = sum(len(rows_of[levels[k % len(levels)]]) for k in range(min(int(n), 10**7)))
    if total > MAX_ROWS:
        raise DataError(
            f"Extending {along!r} to {int(n):,} units would give {total:,} rows, more than "
            f"the limit of {MAX_ROWS:,}."
        )
    taken: set[str] = {str(v) for v in levels}
    pieces, labels = [], []
    for k in range(int(n)):
        src = levels[k % len(levels)]
        copy = k // len(levels)
        if copy == 0:
            label = src
        else:
            label = f"{src}_{copy}"
            while str(label) in taken:
                label = f"{label}_"
            taken.add(str(label))
        idx = rows_of[src]
        pieces.append(idx)
        labels.append(np.full(len(idx), label, dtype=object))
    out = data.iloc[np.concatenate(pieces)].reset_index(drop=True)
    if int(n) > len(levels):  # copies need new labels: the column becomes text labels
        new = [str(v) for v in np.concatenate(labels)]
        out[along] = pd.Categorical(new, categories=list(dict.fromkeys(new)))
    elif isinstance(col.dtype, pd.CategoricalDtype):
        out[along] = out[along].cat.remove_unused_categories()
    return out
