"""Study designs: the conditions table a study produces, ready for a mixed-model formula.

A `Design` says who sees what: how many subjects (or a nesting such as pupils in classes
in schools) and items, which `Factor`s vary within or between them and how they are coded,
how many trials per cell, whether within factors are counterbalanced across items with a
Latin square, random missingness and random `Covariate`s. `Design.conditions` builds the
table; every other method works without building it.

Coding conventions (the first level is always the reference):

- a two-level factor gives one numeric column named after the factor: ``deviation``
  -0.5/+0.5, ``sum`` -1/+1, ``treatment`` 0/1, the first level taking the lower value,
  so its coefficient is "second level minus first" (for ``sum``, half of that). Note that
  R's ``contr.sum`` puts +1 on the first level; reorder the levels to get R's sign.
- a factor with k > 2 levels gives k - 1 columns ``{name}{level}`` (as R names
  treatment-coded columns) for levels 2..k: ``treatment`` 1 on that level, else 0;
  ``sum`` 1 on that level, -1 on the first, else 0; ``deviation`` (k-1)/k on that level, else -1/k.
- ``helmert`` and ``poly`` are R's ``contr.helmert`` (-1/+1 for two levels; columns
  ``{name}1``, ``{name}2``, ...) and ``contr.poly`` (orthonormal polynomials in the level
  order, for ordered levels; columns ``{name}.L``, ``.Q``, ``.C``, ``.p4``, ...).
- ``categorical`` gives no numeric columns: ``{name}`` holds the labels as a pandas
  Categorical, for the formula parser to code.
- every factor also gets ``{name}_label``, its labels as an ordered Categorical, for plots.

Example:
    >>> d = Design(subjects=4, items=2, factors=[Factor("X_i", ["in", "out"], "within_subject")])
    >>> d.n_rows
    8
    >>> d.conditions().head(3)
        subj   item  X_i X_i_label
    0  subj1  item1 -0.5        in
    1  subj1  item2  0.5       out
    2  subj2  item1 -0.5        in
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from lmmcore.errors import DesignError
from lmmcore.limits import MAX_CELLS, MAX_FACTOR_LEVELS

__all__ = ["CODINGS", "MAX_ROWS", "VARIES", "Covariate", "Design", "Factor"]

# The largest conditions table a design may have (rows before missingness): five million
# rows of a dozen columns is about half a gigabyte, and every simulation copies the response.
MAX_ROWS = 5_000_000
#: Characters in one level name.
MAX_LEVEL_NAME = 100

VARIES = ("within", "within_subject", "between_subject", "between")
CODINGS = ("deviation", "sum", "treatment", "helmert", "poly", "categorical")
DISTRIBUTIONS = ("normal", "uniform")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_DESCRIBE_VARIES = {
    "within": "within subjects and items",
    "within_subject": "within subjects, between items",
    "between_subject": "between subjects, within items",
    "between": "between subjects and items",
}


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise DesignError(
            f"{what} {name!r} is not a usable column name; use letters, digits, '_' and '.', "
            "starting with a letter (e.g. 'X_i')"
        )
    return name


def _check_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        shown = repr(value) if not isinstance(value, Integral) or value > -(10**18) else "<huge>"
        raise DesignError(f"{what} must be a positive whole number, got {shown}; use at least 1")
    if value > MAX_ROWS:  # checked before any arithmetic or formatting of the number
        raise DesignError(
            f"{what} is more than {MAX_ROWS:,}, the largest number of rows a design may have"
        )
    return int(value)


def _multiples_hint(n: int, m: int) -> str:
    lower, upper = (n // m) * m, (n // m + 1) * m
    return f"use {lower} or {upper}" if lower > 0 else f"use {upper}"


# --------------------------------------------------------------------------- factor


@dataclass(frozen=True)
class Factor:
    """An experimental factor: its levels, how it varies, and how it is coded.

    ``varies``: ``"within"`` (within subjects and items), ``"within_subject"`` (within
    subjects, between items), ``"between_subject"`` (between subjects, within items) or
    ``"between"`` (between subjects and items: subjects only meet items of their own
    level). ``coding``: ``"deviation"`` (default), ``"sum"``, ``"treatment"``,
    ``"helmert"`` (R's ``contr.helmert``: columns ``{name}1``, ``{name}2``, ...), ``"poly"``
    (R's ``contr.poly`` for ordered levels: ``{name}.L``, ``.Q``, ``.C``, ``.p4``, ...) or
    ``"categorical"`` (see the module docstring). ``at``: in a nested design, the level
    (e.g. ``"school"``) at which a between-subject factor is assigned; default the lowest.

    Example:
        >>> Factor("load", ["no", "yes"], coding="sum").contrasts().ravel().tolist()
        [-1.0, 1.0]
    """

    name: str
    levels: tuple[str, ...]
    varies: str = "within"
    coding: str = "deviation"
    at: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "factor name")
        if isinstance(self.levels, str) or not isinstance(self.levels, Sequence):
            raise DesignError(
                f"factor {self.name!r}: levels must be a list of labels such as "
                f"['a', 'b'], got {self.levels!r}"
            )
        if len(self.levels) > MAX_FACTOR_LEVELS:
            raise DesignError(
                f"factor {self.name!r} has {len(self.levels):,} levels, more than the limit of "
                f"{MAX_FACTOR_LEVELS}; an experimental factor with that many levels is better "
                "a random factor (items) or a numeric covariate"
            )
        for level in self.levels:
            if isinstance(level, bool) or not isinstance(level, str | Integral | Real):
                raise DesignError(
                    f"factor {self.name!r}: level {level!r} is not a name; levels must be a "
                    "flat list of names (strings or numbers) such as ['a', 'b']"
                )
        levels = tuple(str(level) for level in self.levels)
        for level in levels:
            if len(level) > MAX_LEVEL_NAME or any(unicodedata.category(c) == "Cc" for c in level):
                raise DesignError(
                    f"factor {self.name!r}: level name {level[:40]!r} is too long or holds a "
                    f"control character; use at most {MAX_LEVEL_NAME} printable characters"
                )
        if len(levels) < 2:
            raise DesignError(
                f"factor {self.name!r} has {len(levels)} level(s); a factor needs at least 2 "
                "levels: add a level or drop the factor"
            )
        if any(level == "" for level in levels):
            raise DesignError(f"factor {self.name!r} has an empty level name; name every level")
        dupes = sorted({level for level in levels if levels.count(level) > 1})
        if dupes:
            raise DesignError(
                f"factor {self.name!r} repeats level name(s) {dupes}; give each level a "
                "different name"
            )
        object.__setattr__(self, "levels", levels)
        if self.varies not in VARIES:
            raise DesignError(
                f"factor {self.name!r}: varies={self.varies!r} is not one of {list(VARIES)}"
            )
        if self.coding not in CODINGS:
            raise DesignError(
                f"factor {self.name!r}: coding={self.coding!r} is not one of {list(CODINGS)}"
            )
        if self.at is not None:
            _check_name(self.at, f"factor {self.name!r}: level 'at'")
            if self.varies not in ("between_subject", "between"):
                raise DesignError(
                    f"factor {self.name!r}: at={self.at!r} only applies to factors that vary "
                    "between subjects; drop 'at' or set varies='between_subject'"
                )
        # Column names for k > 2 levels must not collide after cleaning the labels.
        cols = self.columns
        if len(set(cols)) != len(cols):
            raise DesignError(
                f"factor {self.name!r}: levels {list(levels)} give clashing column names "
                f"{list(cols)}; rename levels so they differ in letters or digits"
            )

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the numeric columns this factor adds (none for ``categorical``).

        Example:
            >>> Factor("cond", ["a", "b", "c"], coding="treatment").columns
            ('condb', 'condc')
        """
        if self.coding == "categorical":
            return ()
        if self.n_levels == 2:
            return (self.name,)
        if self.coding == "helmert":
            return tuple(f"{self.name}{j}" for j in range(1, self.n_levels))
        if self.coding == "poly":
            names = [".L", ".Q", ".C"] + [f".p{d}" for d in range(4, self.n_levels)]
            return tuple(self.name + n for n in names[: self.n_levels - 1])
        return tuple(self.name + re.sub(r"\W", "_", level) for level in self.levels[1:])

    @property
    def label_column(self) -> str:
        """Name of the column holding the level labels: ``{name}_label``."""
        return f"{self.name}_label"

    def contrasts(self) -> np.ndarray:
        """The coding matrix: one row per level, one column per entry of `columns`.

        Example:
            >>> Factor("c", ["a", "b", "c"]).contrasts().round(3).tolist()
            [[-0.333, -0.333], [0.667, -0.333], [-0.333, 0.667]]
        """
        k = self.n_levels
        if self.coding == "categorical":
            return np.zeros((k, 0))
        if self.coding in ("helmert", "poly"):  # R's contr.helmert and contr.poly
            from lmmcore.model_frame import contrast_matrix

            return contrast_matrix(self.coding, self.levels)[0]
        matrix = np.vstack([np.zeros(k - 1), np.eye(k - 1)])
        if self.coding == "sum":
            matrix[0, :] = -1.0
        elif self.coding == "deviation":
            matrix -= 1.0 / k
        return matrix


# --------------------------------------------------------------------------- covariate


@dataclass(frozen=True)
class Covariate:
    """A numeric covariate drawn at random for each row, subject, item or nesting unit.

    ``distribution``: ``"normal"`` with ``params=(mean, sd)`` or ``"uniform"`` with
    ``params=(low, high)``. ``per``: ``"row"``, ``"subject"``, ``"item"`` or the name of a
    nesting level (or of the subject/item column). ``center=True`` subtracts the mean of
    the values drawn (over the units they are drawn for).

    Example:
        >>> Covariate("age", "uniform", (18, 30), per="subject").params
        (18, 30)
    """

    name: str
    distribution: str = "normal"
    params: tuple[float, float] = (0.0, 1.0)
    per: str = "row"
    center: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name, "covariate name")
        if self.distribution not in DISTRIBUTIONS:
            raise DesignError(
                f"covariate {self.name!r}: distribution={self.distribution!r} is not one of "
                f"{list(DISTRIBUTIONS)}"
            )
        params = tuple(self.params) if isinstance(self.params, Sequence) else ()
        if len(params) != 2 or not all(
            isinstance(p, Real) and not isinstance(p, bool) and math.isfinite(p) for p in params
        ):
            raise DesignError(
                f"covariate {self.name!r}: params must be two finite numbers "
                "((mean, sd) for normal, (low, high) for uniform), got "
                f"{self.params!r}"
            )
        object.__setattr__(self, "params", params)
        if self.distribution == "normal" and params[1] < 0:
            raise DesignError(
                f"covariate {self.name!r}: the SD {params[1]} is negative; give an SD >= 0"
            )
        if self.distribution == "uniform" and not params[0] < params[1]:
            raise DesignError(
                f"covariate {self.name!r}: uniform needs low < high, got {params}; swap or "
                "widen them"
            )
        if not isinstance(self.per, str):
            raise DesignError(f"covariate {self.name!r}: per must be a string, got {self.per!r}")
        if not isinstance(self.center, bool):
            raise DesignError(f"covariate {self.name!r}: center must be True or False")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` values from the distribution, centred if asked."""
        a, b = self.params
        values = rng.normal(a, b, n) if self.distribution == "normal" else rng.uniform(a, b, n)
        if self.center and n:
            values = values - values.mean()
        return values


# --------------------------------------------------------------------------- design


def _as_factor(value: Any) -> Factor:
    if isinstance(value, Factor):
        return value
    if isinstance(value, Mapping):
        return Factor(**_known_keys(value, Factor, "factor"))
    raise DesignError(f"factors must be Factor objects or dicts, got {value!r}")


def _as_covariate(value: Any) -> Covariate:
    if isinstance(value, Covariate):
        return value
    if isinstance(value, Mapping):
        return Covariate(**_known_keys(value, Covariate, "covariate"))
    raise DesignError(f"covariates must be Covariate objects or dicts, got {value!r}")


def _known_keys(data: Mapping[str, Any], cls: type, what: str) -> dict[str, Any]:
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise DesignError(
            f"unknown {what} key(s) {unknown}; the allowed keys are {sorted(allowed)}"
        )
    return dict(data)


@dataclass(frozen=True)
class Design:
    """A study design: subjects (or a nesting), items, factors, trials, extras.

    Parameters:
        subjects: number of subjects (leave out when ``nested`` is given).
        items: number of items, crossed with subjects; ``None`` for no items.
        factors: `Factor` objects (or dicts of their fields).
        trials: repetitions of every cell (a ``rep`` column 1..trials is added when > 1).
        counterbalance: ``False``: every subject sees every item in every cell of the
            ``"within"`` factors. ``True``: each subject sees each item once, in cell
            ``(s + i) mod K`` (a Latin square over the K cells of the ``"within"``
            factors; s and i count subjects and items within their groups), so items
            rotate through the cells across subject lists. Needs items in multiples of K
            per item group.
        missing: fraction of rows dropped at random (``round(missing * rows)`` rows).
        covariates: `Covariate` objects (or dicts).
        nested: units nested top-down, e.g. ``[("school", 10), ("class", 4), ("pupil",
            25)]`` (4 classes per school, 25 pupils per class); the last level plays the
            subject. IDs are unique overall, so ``(1|class)`` means classes within schools.
        subject_col, item_col: column names for subject and item IDs.

    Assignment to groups is deterministic and balanced: subjects (items) are split into
    equal consecutive blocks, one per cell of the factors that vary between them, in the
    order of `itertools.product` over those factors' levels. Only ``conditions(seed)``
    draws random numbers (covariates, then missingness).

    Example (DeBruine & Barr 2021, preset P1):
        >>> p1 = Design(
        ...     subjects=100, items=50, subject_col="subj_id", item_col="item_id",
        ...     factors=[Factor("X_i", ["ingroup", "outgroup"], varies="within_subject")],
        ... )
        >>> p1.n_rows, p1.with_size(subjects=20).n_rows
        (5000, 1000)
    """

    subjects: int | None = None
    items: int | None = None
    factors: tuple[Factor, ...] = ()
    trials: int = 1
    counterbalance: bool = False
    missing: float = 0.0
    covariates: tuple[Covariate, ...] = ()
    nested: tuple[tuple[str, int], ...] | None = None
    subject_col: str = "subj"
    item_col: str = "item"
    _n_full: int = field(init=False, repr=False, compare=False, default=0)

    # ----------------------------------------------------------------- validation

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.factors, (Factor, Mapping)) or not isinstance(self.factors, Sequence):
            raise DesignError("factors must be a list of Factor objects")
        set_(self, "factors", tuple(_as_factor(f) for f in self.factors))
        if isinstance(self.covariates, (Covariate, Mapping)) or not isinstance(
            self.covariates, Sequence
        ):
            raise DesignError("covariates must be a list of Covariate objects")
        set_(self, "covariates", tuple(_as_covariate(c) for c in self.covariates))

        self._check_units()
        if self.items is not None:
            _check_count(self.items, "items")
            _check_name(self.item_col, "item_col")
        set_(self, "trials", _check_count(self.trials, "trials"))
        if not isinstance(self.counterbalance, bool):
            raise DesignError(f"counterbalance must be True or False, got {self.counterbalance!r}")
        if (
            isinstance(self.missing, bool)
            or not isinstance(self.missing, Real)
            or not 0 <= self.missing < 1
        ):
            raise DesignError(
                f"missing must be a fraction in [0, 1) (e.g. 0.1 for 10% of rows dropped), "
                f"got {self.missing!r}"
            )
        self._check_factors()
        self._check_columns()
        self._check_covariates()
        self._check_balance()
        n_full = self._count_full_rows()
        if n_full > MAX_ROWS:
            raise DesignError(
                f"this design has {n_full:,} rows, more than the {MAX_ROWS:,}-row limit that "
                "keeps simulations in memory; use fewer subjects, items, trials or within "
                "cells (or counterbalance=True)"
            )
        n_cols = len(self._table_columns())
        if n_full * n_cols > MAX_CELLS:
            raise DesignError(
                f"this design's conditions table would have {n_full:,} rows x {n_cols} columns "
                f"({n_full * n_cols:,} cells), more than the limit of {MAX_CELLS:,}; use fewer "
                "rows, factors with fewer levels, or fewer covariates"
            )
        set_(self, "_n_full", n_full)
        if self.n_rows == 0:
            raise DesignError(
                f"missing={self.missing} drops all {n_full} rows; lower missing or enlarge "
                "the design"
            )

    def _check_units(self) -> None:
        set_ = object.__setattr__
        if self.nested is None:
            if self.subjects is None:
                raise DesignError(
                    "give the number of subjects (subjects=...) or a nesting "
                    "(nested=[('school', 10), ('class', 4), ('pupil', 25)])"
                )
            set_(self, "subjects", _check_count(self.subjects, "subjects"))
            _check_name(self.subject_col, "subject_col")
            return
        if isinstance(self.nested, (str, Mapping)) or not isinstance(self.nested, Sequence):
            raise DesignError(
                "nested must be a list of (name, count) pairs, top level first, e.g. "
                "[('school', 10), ('class', 4), ('pupil', 25)]"
            )
        levels: list[tuple[str, int]] = []
        for entry in self.nested:
            if isinstance(entry, str) or not isinstance(entry, Sequence) or len(entry) != 2:
                raise DesignError(
                    f"nested entry {entry!r} must be a (name, count) pair such as ('class', 4)"
                )
            name = _check_name(entry[0], "nesting level")
            levels.append((name, _check_count(entry[1], f"nested count of {name!r}")))
        if not levels:
            raise DesignError("nested is empty; give at least one (name, count) pair")
        names = [n for n, _ in levels]
        if len(set(names)) != len(names):
            raise DesignError(f"nesting level names repeat in {names}; give each level its own")
        total = math.prod(c for _, c in levels)
        if self.subjects is not None and self.subjects != total:
            raise DesignError(
                f"subjects={self.subjects!r} disagrees with nested, which gives {total} "
                f"{names[-1]} units; leave subjects out"
            )
        if self.subject_col not in ("subj", names[-1]):
            raise DesignError(
                f"subject_col={self.subject_col!r} but the lowest nesting level is "
                f"{names[-1]!r}; name the level {self.subject_col!r} or leave subject_col out"
            )
        set_(self, "nested", tuple(levels))
        set_(self, "subjects", total)
        set_(self, "subject_col", names[-1])

    @property
    def hierarchy(self) -> tuple[tuple[str, int], ...]:
        """The subject side as (name, count per parent) pairs, top level first.

        Example:
            >>> Design(10).hierarchy
            (('subj', 10),)
        """
        if self.nested is not None:
            return self.nested
        return ((self.subject_col, int(self.subjects or 0)),)

    def _check_factors(self) -> None:
        names = [f.name for f in self.factors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DesignError(f"factor name(s) {dupes} appear twice; give each factor its own")
        levels = [n for n, _ in self.hierarchy]
        for f in self.factors:
            if self.items is None and f.varies in ("within_subject", "between"):
                raise DesignError(
                    f"factor {f.name!r} varies between items but the design has no items; set "
                    "items=... or make it 'within' or 'between_subject'"
                )
            if f.at is not None and f.at not in levels:
                raise DesignError(
                    f"factor {f.name!r}: at={f.at!r} is not a subject level of this design "
                    f"({levels}); use one of those"
                )
        if self.counterbalance:
            if self.items is None:
                raise DesignError(
                    "counterbalance=True rotates items through conditions, but the design has "
                    "no items; set items=... or counterbalance=False"
                )
            if not self._factors("within"):
                raise DesignError(
                    "counterbalance=True needs at least one factor with varies='within' "
                    "(within subjects and items); add one or set counterbalance=False"
                )

    def _table_columns(self) -> list[str]:
        cols: list[str] = [n for n, _ in self.hierarchy]
        if self.items is not None:
            cols.append(self.item_col)
        for f in self.factors:
            cols.extend(f.columns if f.coding != "categorical" else (f.name,))
            cols.append(f.label_column)
        cols.extend(c.name for c in self.covariates)
        if self.trials > 1:
            cols.append("rep")
        return cols

    def _check_columns(self) -> None:
        cols = self._table_columns()
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise DesignError(
                f"column name(s) {dupes} would appear twice in the conditions table (names "
                "of subject/item columns, factors and their coded and _label columns, "
                "covariates, 'rep'); rename one"
            )

    def _check_covariates(self) -> None:
        for c in self.covariates:
            self._covariate_unit(c)

    def _covariate_unit(self, c: Covariate) -> str:
        levels = [n for n, _ in self.hierarchy]
        if c.per == "row":
            return "row"
        if c.per in ("subject", self.subject_col):
            return levels[-1]
        if c.per in levels:
            return c.per
        if c.per in ("item", self.item_col) and self.items is not None:
            return "item"
        options = ["row", "subject", *levels] + (["item"] if self.items is not None else [])
        raise DesignError(
            f"covariate {c.name!r}: per={c.per!r} is not one of {sorted(set(options))}"
        )

    # ----------------------------------------------------------------- structure

    def _factors(self, *varies: str) -> tuple[Factor, ...]:
        return tuple(f for f in self.factors if f.varies in varies)

    def _subject_factors_at(self, level: str) -> tuple[Factor, ...]:
        lowest = self.hierarchy[-1][0]
        return tuple(
            f for f in self._factors("between_subject", "between") if (f.at or lowest) == level
        )

    @staticmethod
    def _cells(factors: Sequence[Factor]) -> int:
        return math.prod(f.n_levels for f in factors)

    @staticmethod
    def _names(factors: Sequence[Factor]) -> str:
        return " x ".join(f"{f.name} ({f.n_levels})" for f in factors)

    def _check_balance(self) -> None:
        hierarchy = self.hierarchy
        for depth, (level, count) in enumerate(hierarchy):
            here = self._subject_factors_at(level)
            cells = self._cells(here)
            if count % cells:
                unit = (
                    f"subjects ({count})"
                    if self.nested is None
                    else f"{level!r} units per {hierarchy[depth - 1][0]!r} ({count})"
                    if depth
                    else f"{level!r} units ({count})"
                )
                raise DesignError(
                    f"{unit} must be a multiple of {cells}, the number of groups of "
                    f"{self._names(here)}, so every group has the same size; "
                    f"{_multiples_hint(count, cells)}"
                )
        if self.items is None:
            return
        item_side = self._factors("between", "within_subject")
        groups = self._cells(item_side)
        if self.counterbalance:
            within = self._factors("within")
            k = self._cells(within)
            need = groups * k
            if self.items % need:
                group_note = (
                    f" in each of the {groups} item groups ({self._names(item_side)})"
                    if groups > 1
                    else ""
                )
                raise DesignError(
                    f"items ({self.items}) must be a multiple of {need} for counterbalancing: "
                    f"the Latin square cycles through {k} cells of {self._names(within)}"
                    f"{group_note}; {_multiples_hint(self.items, need)} items"
                )
        elif self.items % groups:
            raise DesignError(
                f"items ({self.items}) must be a multiple of {groups}, the number of item "
                f"groups of {self._names(item_side)}, so every group has the same number of "
                f"items; {_multiples_hint(self.items, groups)} items"
            )

    def _count_full_rows(self) -> int:
        n = int(self.subjects or 0)
        if self.items is not None:
            n = n * self.items // self._cells(self._factors("between"))
        if not self.counterbalance:
            n *= self._cells(self._factors("within"))
        return n * self.trials

    # ----------------------------------------------------------------- public api

    @property
    def n_rows(self) -> int:
        """Rows of `conditions`, after missingness, computed without building it.

        Example:
            >>> Design(10, 20, trials=2, missing=0.25).n_rows
            300
        """
        return self._n_full - round(self.missing * self._n_full)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the numeric coded factor columns, for formulas.

        Example:
            >>> Design(4, 4, [Factor("a", ["x", "y"]), Factor("b", list("pqr"))]).columns
            ('a', 'bq', 'br')
        """
        return tuple(c for f in self.factors for c in f.columns)

    def with_size(
        self,
        subjects: int | None = None,
        items: int | None = None,
        trials: int | None = None,
        nested: Mapping[str, int] | None = None,
    ) -> Design:
        """A copy with other sizes (the arguments left as None keep their value).

        For a nested design pass ``nested={"pupil": 30}`` to change counts per parent.

        Example:
            >>> Design(10, 20).with_size(items=40).n_rows
            400
        """
        changes: dict[str, Any] = {}
        if trials is not None:
            changes["trials"] = trials
        if items is not None:
            if self.items is None:
                raise DesignError("this design has no items; build one with items=... instead")
            changes["items"] = items
        if self.nested is not None:
            if subjects is not None:
                raise DesignError(
                    "this design is nested: resize it with nested={level: count}, e.g. "
                    f"with_size(nested={{{self.nested[-1][0]!r}: {self.nested[-1][1]}}})"
                )
            if nested:
                names = [n for n, _ in self.nested]
                unknown = sorted(set(nested) - set(names))
                if unknown:
                    raise DesignError(
                        f"with_size: {unknown} are not nesting levels of this design ({names})"
                    )
                changes["nested"] = tuple((n, nested.get(n, c)) for n, c in self.nested)
                changes["subjects"] = None
        else:
            if nested:
                raise DesignError("this design is not nested; use with_size(subjects=...)")
            if subjects is not None:
                changes["subjects"] = subjects
        return dataclasses.replace(self, **changes)

    def propose_formula(self, response: str = "y", kind: str = "maximal") -> str:
        """An lme4 formula for this design: every factor's full factorial as fixed effects
        (covariates as main effects), and random effects of the given ``kind``.

        ``"maximal"``: for each grouping factor, random slopes for every fixed effect that
        varies within its units (Barr et al. 2013); ``"uncorrelated"``: the same with
        ``||`` (no correlations); ``"intercepts"``: random intercepts only. A unit with a
        single row (one observation per pupil, say) gets no random effect, and one with no
        more rows than its random effects would have keeps only its intercept.

        Example:
            >>> d = Design(21, 10, [Factor("A", ["a", "b"], "within"),
            ...                     Factor("B", ["x", "y", "z"], "between_subject")])
            >>> d.propose_formula("rt")
            'rt ~ A * (By + Bz) + (1 + A | subj) + (1 + A * (By + Bz) | item)'
            >>> d.propose_formula("rt", "intercepts")
            'rt ~ A * (By + Bz) + (1 | subj) + (1 | item)'
        """
        from lmmcore.formula import r_name

        if kind not in ("maximal", "uncorrelated", "intercepts"):
            raise DesignError(
                f"kind={kind!r} is not one of 'maximal', 'uncorrelated', 'intercepts'"
            )

        def product(factors: Sequence[Factor]) -> str:
            parts = []
            for f in factors:
                cols = [r_name(c) for c in (f.columns or (f.name,))]
                parts.append(cols[0] if len(cols) == 1 else "(" + " + ".join(cols) + ")")
            return " * ".join(parts)

        fixed = product(self.factors)
        covs = [r_name(c.name) for c in self.covariates]
        fixed = " + ".join([p for p in [fixed, *covs] if p]) or "1"
        levels = [n for n, _ in self.hierarchy]
        lowest = levels[-1]
        within_subject = [f for f in self.factors if f.varies in ("within", "within_subject")]
        groups: list[tuple[str, list[Factor], bool]] = []
        for depth, level in enumerate(levels):
            below = set(levels[depth + 1 :])
            slopes = within_subject + [
                f
                for f in self.factors
                if f.varies in ("between_subject", "between") and (f.at or lowest) in below
            ]
            rows = self.n_rows / max(1, self._units_at(depth))
            groups.append((level, [f for f in self.factors if f in slopes], rows))
        if self.items is not None:
            item_slopes = [f for f in self.factors if f.varies in ("within", "between_subject")]
            groups.append((self.item_col, item_slopes, self.n_rows / self.items))
        terms = []
        for name, slopes, rows in groups:
            if rows <= 1:
                continue  # one observation per unit: its intercept is the residual
            k = math.prod(len(f.columns or f.levels[1:]) + 1 for f in slopes)
            if k >= rows:  # more random effects per unit than observations: not identifiable
                slopes = []
            inner = product(slopes) if kind != "intercepts" else ""
            bar = "||" if kind == "uncorrelated" and inner else "|"
            lhs = f"1 + {inner}" if inner else "1"
            terms.append(f"({lhs} {bar} {r_name(name)})")
        return f"{r_name(response)} ~ {fixed}" + "".join(f" + {t}" for t in terms)

    def _units_at(self, depth: int) -> int:
        return math.prod(c for _, c in self.hierarchy[: depth + 1])

    def preview(self, max_rows: int) -> tuple[Design, str | None]:
        """A smaller design of at most ``max_rows`` rows for a quick look, and a note.

        Subjects (in a nested design: top-level units) are cut first, in whole groups of
        the between-subject cells, then items; every factor keeps all its levels. The note
        says what was cut (None when nothing was).

        Example:
            >>> d, note = Design(10_000, 50).preview(100_000)
            >>> d.subjects, note
            (2000, 'Showing 2,000 of 10,000 subj and 50 of 50 item (100,000 of 500,000 rows).')
        """
        if self.n_rows <= max_rows:
            return self, None
        ratio = max_rows / self.n_rows
        top, top_count = self.hierarchy[0]
        step = self._cells(self._subject_factors_at(top))
        # whole groups of between-subject cells, and at least two units (a random effect
        # needs two levels)
        n = min(top_count, max(step * math.ceil(2 / step), int(top_count * ratio) // step * step))
        if self.nested is None:
            small = self.with_size(subjects=n)
        else:
            small = self.with_size(nested={top: n})
        if small.n_rows > max_rows and self.items is not None:
            groups = self._cells(self._factors("between", "within_subject"))
            if self.counterbalance:
                groups *= self._cells(self._factors("within"))
            items = max(
                groups * math.ceil(2 / groups),
                int(self.items * max_rows / small.n_rows) // groups * groups,
            )
            small = small.with_size(items=items)
        units = f"{n:,} of {top_count:,} {top}"
        if self.items is not None:
            units += f" and {small.items:,} of {self.items:,} {self.item_col}"
        return small, f"Showing {units} ({small.n_rows:,} of {self.n_rows:,} rows)."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `Design.from_dict` rebuilds the same design.

        Example:
            >>> Design.from_dict(Design(8, 4).to_dict()) == Design(8, 4)
            True
        """
        return {
            "subjects": self.subjects,
            "items": self.items,
            "factors": [
                {
                    "name": f.name,
                    "levels": list(f.levels),
                    "varies": f.varies,
                    "coding": f.coding,
                    "at": f.at,
                }
                for f in self.factors
            ],
            "trials": self.trials,
            "counterbalance": self.counterbalance,
            "missing": float(self.missing),
            "covariates": [
                {
                    "name": c.name,
                    "distribution": c.distribution,
                    "params": list(c.params),
                    "per": c.per,
                    "center": c.center,
                }
                for c in self.covariates
            ],
            "nested": None if self.nested is None else [[n, c] for n, c in self.nested],
            "subject_col": self.subject_col,
            "item_col": self.item_col,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Design:
        """Rebuild a design from `to_dict` output (e.g. after a JSON round trip)."""
        if not isinstance(data, Mapping):
            raise DesignError(f"from_dict needs a dict, got {type(data).__name__}")
        return cls(**_known_keys(data, cls, "design"))

    def summary(self) -> str:
        """One line describing the design.

        Example:
            >>> Design(10, 20, [Factor("c", ["a", "b"])]).summary()
            '10 subj x 20 item; c: a/b (within subjects and items, deviation); 400 rows'
        """
        units = " in ".join(f"{c} {n}" for n, c in reversed(self.hierarchy))
        if self.items is not None:
            units += f" x {self.items} {self.item_col}"
        parts = [units]
        parts += [
            f"{f.name}: {'/'.join(f.levels)} ({_DESCRIBE_VARIES[f.varies]}, {f.coding})"
            for f in self.factors
        ]
        if self.counterbalance:
            parts.append("counterbalanced")
        if self.trials > 1:
            parts.append(f"{self.trials} trials per cell")
        parts += [f"{c.name}: {c.distribution}{c.params} per {c.per}" for c in self.covariates]
        if self.missing:
            parts.append(f"{self.missing:.0%} missing")
        parts.append(f"{self.n_rows:,} rows")
        return "; ".join(parts)

    # ----------------------------------------------------------------- building

    def conditions(self, seed: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Build the conditions table: one row per trial.

        Columns: subject-side IDs (nesting levels top-down, or ``subject_col``), the item
        ID, for each factor its coded columns and ``{name}_label``, covariates, ``rep``
        when trials > 1. IDs are Categoricals such as ``subj01``. Rows are ordered by
        subject, item, within cell, repetition. ``seed`` fixes covariates and missingness
        (covariates are drawn first, in order, then the dropped rows).

        Example:
            >>> d = Design(2, 2, [Factor("c", ["a", "b"])], counterbalance=True)
            >>> d.conditions()["c"].tolist()  # subj1: item1, item2; subj2: item1, item2
            [-0.5, 0.5, 0.5, -0.5]
        """
        return self.conditions_units(seed)[0]

    def conditions_units(
        self, seed: int | np.random.Generator | None = None
    ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """`conditions` and, for each of its rows, the design units it belongs to.

        The dict holds integer arrays, one entry per row: ``subject`` (0-based subject
        index, in the order of the subject IDs), ``item`` (0-based item index; absent
        without items), ``cell`` (index of the cell of the ``"within"`` factors, in the
        order of `itertools.product` over their levels) and ``rep`` (0-based repetition).
        They say which observation a row is, whatever its IDs are called, so that designs
        of different sizes can share the random draws of the units they have in common.

        Example:
            >>> frame, units = Design(2, 2, [Factor("c", ["a", "b"])]).conditions_units()
            >>> units["subject"].tolist(), units["item"].tolist(), units["cell"].tolist()
            ([0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1])
        """
        hierarchy = self.hierarchy
        n_subj = int(self.subjects or 0)
        subj = np.arange(n_subj)
        level_of: dict[str, np.ndarray] = {}  # factor name -> level index per subject/item
        subject_ids: dict[str, tuple[np.ndarray, list[str]]] = {}
        unit_index: dict[str, np.ndarray] = {}  # nesting level -> unit index per subject
        for depth, (level, count) in enumerate(hierarchy):
            below = math.prod(c for _, c in hierarchy[depth + 1 :])
            total = n_subj // below
            global_idx = subj // below
            unit_index[level] = global_idx
            width = len(str(total))
            subject_ids[level] = (global_idx, [f"{level}{k + 1:0{width}d}" for k in range(total)])
            here = self._subject_factors_at(level)
            if here:
                block = count // self._cells(here)
                cell = (global_idx % count) // block
                for f, idx in zip(
                    here, np.unravel_index(cell, [f.n_levels for f in here]), strict=True
                ):
                    level_of[f.name] = idx

        subject_side = self._factors("between_subject", "between")
        within = self._factors("within")
        k = self._cells(within)
        item_ids: list[str] = []
        if self.items is None:
            s_row = np.repeat(subj, k)
            i_row = None
            w_cell = np.tile(np.arange(k), n_subj)
        else:
            n_items = self.items
            items = np.arange(n_items)
            item_side = self._factors("between", "within_subject")
            block = n_items // self._cells(item_side)
            item_cell = items // block
            item_local = items - item_cell * block
            item_level: dict[str, np.ndarray] = {}
            if item_side:
                shape = [f.n_levels for f in item_side]
                for f, idx in zip(item_side, np.unravel_index(item_cell, shape), strict=True):
                    item_level[f.name] = idx
            width = len(str(n_items))
            item_ids = [f"{self.item_col}{k + 1:0{width}d}" for k in range(n_items)]

            between = self._factors("between")
            if between:
                shape = [f.n_levels for f in between]
                s_key = np.ravel_multi_index([level_of[f.name] for f in between], shape)
                i_key = np.ravel_multi_index([item_level[f.name] for f in between], shape)
                by_key = np.stack([np.flatnonzero(i_key == b) for b in range(math.prod(shape))])
                s_pair = np.repeat(subj, by_key.shape[1])
                i_pair = by_key[s_key].ravel()
            else:
                s_pair = np.repeat(subj, n_items)
                i_pair = np.tile(items, n_subj)

            if self.counterbalance:
                if subject_side:
                    shape = [f.n_levels for f in subject_side]
                    group = np.ravel_multi_index([level_of[f.name] for f in subject_side], shape)
                    s_list = pd.Series(group).groupby(group).cumcount().to_numpy()
                else:
                    s_list = subj
                s_row, i_row = s_pair, i_pair
                w_cell = (s_list[s_pair] + item_local[i_pair]) % k
            else:
                s_row = np.repeat(s_pair, k)
                i_row = np.repeat(i_pair, k)
                w_cell = np.tile(np.arange(k), len(s_pair))
            for name, idx in item_level.items():
                if name not in level_of:
                    level_of[name] = idx

        trials = self.trials
        if trials > 1:
            s_row, w_cell = np.repeat(s_row, trials), np.repeat(w_cell, trials)
            i_row = None if i_row is None else np.repeat(i_row, trials)
        n = len(s_row)

        columns: dict[str, Any] = {}
        for level, (codes, labels) in subject_ids.items():
            columns[level] = pd.Categorical.from_codes(codes[s_row], categories=labels)
        if i_row is not None:
            columns[self.item_col] = pd.Categorical.from_codes(i_row, categories=item_ids)
        within_idx = (
            dict(
                zip(
                    [f.name for f in within],
                    np.unravel_index(w_cell, [f.n_levels for f in within]),
                    strict=True,
                )
            )
            if within
            else {}
        )
        for f in self.factors:
            if f.varies == "within":
                idx = within_idx[f.name]
            elif f.varies == "within_subject":
                idx = level_of[f.name][i_row]
            else:
                idx = level_of[f.name][s_row]
            labels = pd.Categorical.from_codes(idx, categories=list(f.levels), ordered=True)
            if f.coding == "categorical":
                columns[f.name] = pd.Categorical.from_codes(idx, categories=list(f.levels))
            else:
                coded = f.contrasts()[idx]
                for j, col in enumerate(f.columns):
                    columns[col] = coded[:, j]
            columns[f.label_column] = labels

        rng = np.random.default_rng(seed)
        for c in self.covariates:
            unit = self._covariate_unit(c)
            if unit == "row":
                columns[c.name] = c.draw(rng, n)
            elif unit == "item":
                columns[c.name] = c.draw(rng, int(self.items or 0))[i_row]
            else:
                index = unit_index[unit]
                columns[c.name] = c.draw(rng, int(index[-1]) + 1)[index[s_row]]
        if trials > 1:
            columns["rep"] = np.tile(np.arange(1, trials + 1), n // trials)

        frame = pd.DataFrame(columns)
        units = {"subject": s_row, "cell": w_cell, "rep": np.tile(np.arange(trials), n // trials)}
        if i_row is not None:
            units["item"] = i_row
        dropped = n - self.n_rows
        if dropped:
            keep = np.ones(n, dtype=bool)
            keep[rng.choice(n, size=dropped, replace=False)] = False
            frame = frame.loc[keep].reset_index(drop=True)
            for level in [*subject_ids, *([self.item_col] if i_row is not None else [])]:
                frame[level] = frame[level].cat.remove_unused_categories()
            units = {k: v[keep] for k, v in units.items()}
        return frame, {k: np.asarray(v, dtype=np.int64) for k, v in units.items()}
