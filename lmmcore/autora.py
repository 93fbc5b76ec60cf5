"""An autora-compatible synthetic linear-mixed-model experiment.

`lmm_experiment` builds a `SyntheticExperiment` that turns a table of conditions into
simulated observations of a linear mixed model. It follows the semantics of autora's
``lmm_experiment`` (``autora.experiment_runner.synthetic.abstract.lmm``) closely enough to
reproduce its documented outputs digit for digit under the same seeds, including its
quirks (listed in `lmm_experiment`'s docstring), so that studies written against autora
can be checked here: in the default ``mode="exact"`` it gives autora-synthetic 2.2.0's
values on 40 random formulas to the last bit (``tests/test_autora_reference.py``), and
``mode="corrected"`` reads the predictors the formula names. It has no autora dependency
and never evaluates user code: the formula is read with regular expressions, autora's
way, not with lmmcore's lme4 parser.

Example:
    >>> import numpy as np, pandas as pd
    >>> exp = lmm_experiment("rt ~ 1 + x1", fixed_effects={"Intercept": 1.0, "x1": 2.0})
    >>> exp.ground_truth(pd.DataFrame({"x1": [0.0, 0.5, 1.0]}))
        x1   rt
    0  0.0  1.0
    1  0.5  2.0
    2  1.0  3.0
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from lmmcore.errors import DataError, FormulaError, LmmWarning, SpecError

__all__ = [
    "DV",
    "IV",
    "SyntheticExperiment",
    "ValueType",
    "Variable",
    "VariableCollection",
    "lmm_experiment",
]

# SD used for a part of a random term that `random_effects` does not list (autora's default).
DEFAULT_RANDOM_SD = 0.5
# Largest grid `domain_grid()` will build.
MAX_DOMAIN_ROWS = 1_000_000

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# autora's ``_extract_variable_names``: a name starting with a lower-case letter and not
# followed by a ")" before the next "(", and the "(parts|group)" of its random terms.
_AUTORA_FIXED = re.compile(r"[a-z]\w*(?![^\(]*\))")
_AUTORA_RANDOM = re.compile(r"\(([^\|]+)\|([^\)]+)\)")
#: how `lmm_experiment` reads the predictors of a formula
MODES = ("exact", "corrected")
# autora finds random terms with a lazy "(parts|group)" match over the whole formula.
_RANDOM_TERM = re.compile(r"\((.+?)\|(.+?)\)")
# autora drops every intercept when a stand-alone 0 appears anywhere on the right-hand side.
_ZERO = re.compile(r"\b0\b")


# --------------------------------------------------------------------------- variables


class ValueType(StrEnum):
    """The kinds of value a variable holds (autora's ``ValueType``; a str, so
    ``ValueType.REAL == "real"``)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    REAL = "real"
    SIGMOID = "sigmoid"
    PROBABILITY = "probability"
    PROBABILITY_SAMPLE = "probability_sample"
    PROBABILITY_DISTRIBUTION = "probability_distribution"
    CLASS = "class"


@dataclass(frozen=True)
class Variable:
    """An experimental variable, with autora's fields in autora's positional order.

    ``allowed_values`` is stored as a tuple (the variable is frozen and hashable).
    """

    name: str = ""
    value_range: tuple[Any, Any] | None = None
    allowed_values: tuple[Any, ...] | None = None
    units: str = ""
    type: ValueType = ValueType.REAL
    variable_label: str = ""
    rescale: float = 1
    is_covariate: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError(f"a variable needs a non-empty string name, got {self.name!r}")
        if self.allowed_values is not None:
            raw = self.allowed_values
            values = tuple(raw.ravel().tolist() if isinstance(raw, np.ndarray) else raw)
            if not values:
                raise SpecError(
                    f"variable {self.name!r} has an empty allowed_values; give at least one "
                    "value or leave it None"
                )
            object.__setattr__(self, "allowed_values", values)
        if self.value_range is not None:
            object.__setattr__(self, "value_range", tuple(self.value_range))

    @classmethod
    def like(cls, other: Any) -> Variable:
        """A copy of any object with a variable's attributes (e.g. autora's own ``IV``)."""
        if isinstance(other, cls):
            return other
        if not isinstance(getattr(other, "name", None), str):
            raise SpecError(
                f"X must be a list of IV objects (lmmcore's or autora's), got {other!r}"
            )
        names = [f.name for f in fields(cls)]
        return cls(**{n: getattr(other, n) for n in names if hasattr(other, n)})


@dataclass(frozen=True)
class IV(Variable):
    """An independent variable: a column of the conditions table (autora's ``IV``).

    Example:
        >>> IV("x1", allowed_values=[0, 0.5, 1]).allowed_values
        (0, 0.5, 1)
        >>> IV("x1", (0, 1)).value_range, IV().name, IV().variable_label
        ((0, 1), 'IV', 'Independent Variable')
    """

    name: str = "IV"
    variable_label: str = "Independent Variable"


@dataclass(frozen=True)
class DV(Variable):
    """The dependent variable: the column the experiment writes (autora's ``DV``).

    Example:
        >>> DV("rt").name, DV("rt").variable_label
        ('rt', 'Dependent Variable')
    """

    name: str = "DV"
    variable_label: str = "Dependent Variable"


@dataclass(frozen=True)
class VariableCollection:
    """The independent and dependent variables and covariates of an experiment.

    Example:
        >>> VariableCollection((IV("x1"),), (DV("rt"),)).dependent_variables[0].name
        'rt'
    """

    independent_variables: tuple[Variable, ...] = ()
    dependent_variables: tuple[Variable, ...] = ()
    covariates: tuple[Variable, ...] = ()


# --------------------------------------------------------------------------- formula


@dataclass(frozen=True)
class _RandomTerm:
    parts: tuple[str, ...]  # as split on "+", whitespace kept (autora tests "1" unstripped)
    group: str


@dataclass(frozen=True)
class _Formula:
    text: str
    dv: str
    rhs: str
    fixed_vars: tuple[str, ...]  # sorted, as autora adds them; includes random-term slopes
    autora_vars: tuple[str, ...]  # what autora's _extract_variable_names makes of it
    groups: tuple[str, ...]  # sorted grouping factors
    terms: tuple[_RandomTerm, ...]


def _is_ident(token: str) -> bool:
    return _IDENT.fullmatch(token) is not None


def _parse(formula: str) -> _Formula:
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string like 'y ~ x + (1|g)', got {formula!r}")
    if formula.count("~") != 1:
        raise FormulaError(
            f"formula {formula!r} needs exactly one '~' between the response and the "
            "predictors, as in 'y ~ x + (1|g)'"
        )
    lhs, rhs = formula.split("~")
    dv = lhs.strip()
    if not _is_ident(dv):
        raise FormulaError(
            f"the response {dv!r} must be a plain column name (letters, digits, '_'); "
            "transformations are not supported in autora mode"
        )
    if not rhs.strip():
        raise FormulaError(f"formula {formula!r} has nothing right of '~'; write 'y ~ 1' at least")
    if "-" in rhs:
        raise FormulaError(
            f"formula {formula!r}: '-' is not supported in autora mode; write '0 + ...' to "
            "remove the intercept"
        )

    terms: list[_RandomTerm] = []
    for raw_parts, raw_group in _RANDOM_TERM.findall(rhs):
        group = raw_group.strip()
        if raw_group.startswith("|"):
            raise FormulaError(
                f"formula {formula!r}: '||' is not supported in autora mode (its intercepts "
                "and slopes are always independent); write '(x|g)'"
            )
        if not _is_ident(group):
            hint = (
                "; nested factors are not supported in autora mode: make one column that "
                "labels each combination and group by it"
                if "/" in group or ":" in group
                else ""
            )
            raise FormulaError(
                f"formula {formula!r}: grouping factor {group!r} must be a plain column name{hint}"
            )
        parts = tuple(raw_parts.split("+"))
        for part in parts:
            token = part.strip()
            if token not in ("0", "1") and not _is_ident(token):
                raise FormulaError(
                    f"formula {formula!r}: random-term part {token!r} must be 1, 0 or a column "
                    "name; autora mode has no interactions or transformations, so add a "
                    "precomputed column to the conditions instead"
                )
        terms.append(_RandomTerm(parts=parts, group=group))

    fixed_part = _RANDOM_TERM.sub(" + ", rhs)
    fixed_names: list[str] = []
    for piece in fixed_part.split("+"):
        token = piece.strip()
        if token in ("", "0", "1"):
            continue
        if not _is_ident(token):
            raise FormulaError(
                f"formula {formula!r}: fixed term {token!r} must be a column name, 1 or 0; "
                "autora mode has no interactions or transformations, so add a precomputed "
                "column to the conditions instead"
            )
        fixed_names.append(token)

    slope_names = [p.strip() for t in terms for p in t.parts if p.strip() not in ("0", "1")]
    fixed_vars = tuple(sorted(set(fixed_names) | set(slope_names)))
    groups = tuple(sorted({t.group for t in terms}))
    if dv in fixed_vars or dv in groups:
        raise FormulaError(f"formula {formula!r}: the response {dv!r} also appears on the right")
    return _Formula(formula, dv, rhs, fixed_vars, _autora_fixed_vars(rhs), groups, tuple(terms))


def _autora_fixed_vars(rhs: str) -> tuple[str, ...]:
    """autora's fixed variables: its regex matches outside parentheses, plus the parts of
    each random term after removing every ``"1 + "`` substring (so ``(x1 + x2|g)`` gives
    ``xx2``), stripped, deduplicated and sorted. Tokens like ``1`` or ``xx2`` are kept, as
    autora keeps them; they match no column and are skipped when the data are built."""
    names = _AUTORA_FIXED.findall(rhs)
    for parts, _group in _AUTORA_RANDOM.findall(rhs):
        names.extend(parts.replace("1 + ", "").split("+"))
    return tuple(sorted({n.strip() for n in names}))


# --------------------------------------------------------------------------- checks


def _check_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise SpecError(f"{what} must be a finite number, got {value!r}")
    return value  # type: ignore[return-value]  # keep ints as ints, as autora does


def _check_fixed(fixed_effects: Mapping[str, Any] | None) -> dict[str, Any]:
    if fixed_effects is None:
        return {}
    if not isinstance(fixed_effects, Mapping):
        raise SpecError(
            "fixed_effects must be a dict such as {'Intercept': 1.0, 'x1': 2.0}, "
            f"got {type(fixed_effects).__name__}"
        )
    return {str(k): _check_number(v, f"fixed effect {k!r}") for k, v in fixed_effects.items()}


def _check_random(
    random_effects: Mapping[str, Any] | None, parsed: _Formula
) -> dict[str, dict[str, Any]]:
    if random_effects is None:
        random_effects = {}
    if not isinstance(random_effects, Mapping):
        raise SpecError(
            "random_effects must be a dict of dicts such as {'subject': {'Intercept': 0.5}}, "
            f"got {type(random_effects).__name__}"
        )
    checked: dict[str, dict[str, Any]] = {}
    for group, sds in random_effects.items():
        if not isinstance(sds, Mapping):
            raise SpecError(
                f"random_effects[{group!r}] must be a dict of SDs such as "
                f"{{'Intercept': 0.5, 'x1': 0.1}}, got {sds!r}"
            )
        inner: dict[str, Any] = {}
        for part, sd in sds.items():
            sd = _check_number(sd, f"random-effect SD {group!r}/{part!r}")
            if sd < 0:
                raise SpecError(
                    f"random-effect SD {group!r}/{part!r} is {sd}; an SD cannot be negative"
                )
            inner[str(part)] = sd
        checked[str(group)] = inner
    for group in parsed.groups:
        if group not in checked:
            raise SpecError(
                f"the formula groups by {group!r} but random_effects has no entry for it; add "
                f"random_effects={{{group!r}: {{'Intercept': 0.5}}}} (SDs of its intercept and "
                "slopes; a part left out of that dict gets SD 0.5)"
            )
    return checked


def _iv_names(fixed_vars: tuple[str, ...], groups: tuple[str, ...]) -> tuple[str, ...]:
    """The independent variables, autora's way: predictors, then grouping factors."""
    return fixed_vars + tuple(g for g in groups if g not in fixed_vars)


def _check_x(X: Sequence[Any] | None, parsed: _Formula, mode: str) -> tuple[Variable, ...]:
    expected = _iv_names(parsed.fixed_vars, parsed.groups)
    autora = _iv_names(parsed.autora_vars, parsed.groups)
    if not X:
        return tuple(IV(name=n) for n in (autora if mode == "exact" else expected))
    if isinstance(X, str | Variable) or not isinstance(X, Sequence | np.ndarray):
        raise SpecError(f"X must be a list of IV objects, got {X!r}")
    ivs = tuple(IV.like(iv) for iv in X)
    names = [iv.name for iv in ivs]
    if len(set(names)) != len(names):
        raise SpecError(f"X names a variable twice: {names}; give each variable once")
    accepted = [set(expected)] + ([set(autora)] if mode == "exact" else [])
    if set(names) not in accepted:
        also = (
            f" (or, as autora reads it, {sorted(autora)})"
            if mode == "exact" and set(autora) != set(expected)
            else ""
        )
        raise SpecError(
            f"X describes {sorted(names)} but the formula uses {sorted(expected)}{also}; give "
            "one IV per predictor and grouping factor of the formula"
        )
    return ivs


# --------------------------------------------------------------------------- experiment


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: it owns a generator
class SyntheticExperiment:
    """A synthetic experiment: conditions in, simulated observations out.

    Build one with `lmm_experiment`. `run` adds Gaussian noise of SD ``added_noise``;
    `ground_truth` is `run` without noise (random effects are still drawn). Both draw
    from the experiment's own generator, which advances, unless given ``random_state``.

    Example:
        >>> exp = lmm_experiment("rt ~ x1", fixed_effects={"x1": 2.0}, random_state=1)
        >>> round(float(exp.ground_truth(pd.DataFrame({"x1": [1.0]}))["rt"].iloc[0]), 6)
        2.0
    """

    name: str
    description: str
    variables: VariableCollection
    params: dict[str, Any]
    factory_function: Callable[..., SyntheticExperiment]
    _formula: _Formula = field(repr=False)
    _fixed_vars: tuple[str, ...] = field(repr=False)  # the mode's reading of the predictors
    _fixed: dict[str, Any] = field(repr=False)
    _random: dict[str, dict[str, Any]] = field(repr=False)
    _rng: np.random.Generator = field(repr=False, compare=False)

    # ----------------------------------------------------------------- simulation

    def _as_frame(self, conditions: Any) -> pd.DataFrame:
        if isinstance(conditions, pd.DataFrame):
            return conditions.copy()
        names = [iv.name for iv in self.variables.independent_variables]
        array = np.asarray(conditions)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise DataError(
                f"conditions has shape {array.shape} but the experiment has {len(names)} "
                f"independent variables {names}; pass a DataFrame with those columns or an "
                f"array with {len(names)} columns in that order"
            )
        return pd.DataFrame(array, columns=names)

    @staticmethod
    def _numeric(data: pd.DataFrame, column: str, role: str) -> np.ndarray:
        values = data[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            raise DataError(
                f"column {column!r} is used as a {role} but holds {values.dtype} values; "
                "give it numbers (code categories as 0/1 or -0.5/+0.5 first)"
            )
        return values.to_numpy(dtype=float)

    def run(
        self,
        conditions: pd.DataFrame | np.ndarray,
        added_noise: float = 0.01,
        random_state: int | np.random.Generator | None = None,
    ) -> pd.DataFrame:
        """Simulate noisy observations for each row of ``conditions``.

        Returns a copy of ``conditions`` with the dependent variable as the last column.
        Draw order, which fixes the numbers for a seed: for each random term left to
        right, for each of its '+'-separated parts in order, one normal draw per level of
        the grouping factor in order of first appearance in the rows (drawn even when
        unused); then ``len(conditions)`` noise draws (also when ``added_noise`` is 0).

        Example:
            >>> exp = lmm_experiment("y ~ 1", fixed_effects={"Intercept": 2.0})
            >>> exp.run(pd.DataFrame({"x": [0]}), added_noise=0.0)["y"].tolist()
            [2.0]
        """
        noise_sd = _check_number(added_noise, "added_noise")
        if noise_sd < 0:
            raise SpecError(f"added_noise is {noise_sd}; the noise SD cannot be negative")
        rng = self._rng if random_state is None else np.random.default_rng(random_state)
        f = self._formula
        data = self._as_frame(conditions)
        for group in f.groups:
            if group not in data.columns:
                raise DataError(
                    f"grouping factor {group!r} of the formula is not a column of the "
                    f"conditions (columns: {list(map(str, data.columns))}); add it"
                )
            if data[group].isna().any():
                raise DataError(
                    f"grouping factor {group!r} has missing values; fill or drop those rows"
                )

        n = len(data)
        # autora keeps the intercept unless a 0 appears in the rhs (a '1' key in
        # fixed_effects forces it back); the intercept value itself is 'Intercept'.
        has_intercept = "1" in self._fixed or _ZERO.search(f.rhs) is None
        y = np.full(n, self._fixed.get("Intercept", 0) if has_intercept else 0, dtype=float)

        for var in self._fixed_vars:
            if var in data.columns:
                y += self._fixed.get(var, 0) * self._numeric(data, var, "fixed effect")

        for term in f.terms:
            codes, levels = pd.factorize(data[term.group], sort=False)
            sds = self._random[term.group]
            for raw in term.parts:
                # autora recognises the intercept only in an exact, unpadded "1" part.
                key = "Intercept" if raw == "1" else raw.strip()
                sd = sds.get(key, DEFAULT_RANDOM_SD)
                effects = np.array([rng.normal(0, sd) for _ in range(len(levels))])
                if key == "Intercept":
                    if has_intercept:
                        y += effects[codes]
                elif key in data.columns:
                    y += effects[codes] * self._numeric(data, key, "random slope")

        y += rng.normal(0, noise_sd, n)
        data[f.dv] = y
        return data

    def ground_truth(
        self,
        conditions: pd.DataFrame | np.ndarray,
        *,
        added_noise: float = 0.0,
        random_state: int | np.random.Generator | None = None,
    ) -> pd.DataFrame:
        """`run` with ``added_noise=0`` by default (autora's ``partial(run, added_noise=0.0)``,
        so ``added_noise`` can be overridden): random effects are drawn, no residual noise.

        Example:
            >>> exp = lmm_experiment("y ~ x", fixed_effects={"x": 3.0})
            >>> exp.ground_truth(pd.DataFrame({"x": [1.0, 2.0]}))["y"].tolist()
            [3.0, 6.0]
        """
        return self.run(conditions, added_noise=added_noise, random_state=random_state)

    # ----------------------------------------------------------------- domain, plot

    def _allowed(self, ivs: Sequence[Variable]) -> None:
        missing = [iv.name for iv in ivs if iv.allowed_values is None]
        if not ivs or missing:
            raise SpecError(
                f"the domain needs allowed values for every independent variable; "
                f"{missing or 'none'} have none: pass X=[IV(name, allowed_values=[...]), ...] "
                "to lmm_experiment"
            )

    def domain(self) -> np.ndarray:
        """The first independent variable's allowed values as an (n, 1) array (autora's).

        Example:
            >>> exp = lmm_experiment("y ~ x", X=[IV("x", allowed_values=[0, 1, 2])])
            >>> exp.domain().tolist()
            [[0], [1], [2]]
        """
        first = self.variables.independent_variables[:1]
        self._allowed(first)
        return np.asarray(first[0].allowed_values).reshape(-1, 1)

    def domain_grid(self) -> pd.DataFrame:
        """Every combination of the independent variables' allowed values, as a DataFrame
        with one column per independent variable, the first varying slowest.

        Needs ``X`` with ``allowed_values`` for every independent variable (`plotter`
        draws over this grid).

        Example:
            >>> exp = lmm_experiment("y ~ x", X=[IV("x", allowed_values=[0, 1, 2])])
            >>> exp.domain_grid()["x"].tolist()
            [0, 1, 2]
        """
        ivs = self.variables.independent_variables
        self._allowed(ivs)
        size = math.prod(len(iv.allowed_values or ()) for iv in ivs)
        if size > MAX_DOMAIN_ROWS:
            raise SpecError(
                f"the domain has {size:,} combinations, more than {MAX_DOMAIN_ROWS:,}; give "
                "fewer allowed values"
            )
        rows = list(itertools.product(*(iv.allowed_values or () for iv in ivs)))
        return pd.DataFrame(rows, columns=[iv.name for iv in ivs])

    def plotter(
        self, model: Any = None, random_state: int | np.random.Generator | None = None
    ) -> Any:
        """A Plotly figure of the ground truth over `domain_grid`, with an optional fitted model.

        One independent variable: a line. Two: one line per level when one of them is a
        grouping factor or non-numeric, else a 3D scatter. ``model`` needs a
        ``predict(DataFrame)`` that returns one value per row of the domain.

        Example:
            >>> exp = lmm_experiment("y ~ x", {"x": 1.0}, X=[IV("x", allowed_values=[0, 1])])
            >>> [t.name for t in exp.plotter().data]
            ['Ground truth']
        """
        import plotly.graph_objects as go

        dom = self.domain_grid()
        dv = self._formula.dv
        truth = self.ground_truth(dom, random_state=random_state)[dv].to_numpy()
        fitted = None
        if model is not None:
            if not callable(getattr(model, "predict", None)):
                raise SpecError("model must have a predict(DataFrame) method")
            fitted = np.asarray(model.predict(dom.copy()), dtype=float).ravel()
            if fitted.shape[0] != len(dom):
                raise DataError(
                    f"model.predict returned {fitted.shape[0]} values for {len(dom)} rows of "
                    "the domain; it must return one prediction per row"
                )
        names = list(dom.columns)
        fig = go.Figure()
        if len(names) == 1:
            x = dom[names[0]]
            order = np.argsort(x.to_numpy(), kind="stable")
            fig.add_trace(
                go.Scatter(x=x.iloc[order], y=truth[order], mode="lines", name="Ground truth")
            )
            if fitted is not None:
                fig.add_trace(
                    go.Scatter(
                        x=x.iloc[order],
                        y=fitted[order],
                        mode="lines",
                        name="Fitted model",
                        line={"dash": "dash"},
                    )
                )
            fig.update_layout(xaxis_title=names[0], yaxis_title=dv)
        elif len(names) == 2:
            categorical = [
                n
                for n in names
                if n in self._formula.groups or not pd.api.types.is_numeric_dtype(dom[n])
            ]
            if categorical:
                by = categorical[-1]
                x_name = names[0] if by == names[1] else names[1]
                for level in pd.unique(dom[by]):
                    rows = np.flatnonzero((dom[by] == level).to_numpy())
                    rows = rows[np.argsort(dom[x_name].to_numpy()[rows], kind="stable")]
                    fig.add_trace(
                        go.Scatter(
                            x=dom[x_name].iloc[rows],
                            y=truth[rows],
                            mode="lines",
                            name=f"Ground truth, {by}={level}",
                        )
                    )
                    if fitted is not None:
                        fig.add_trace(
                            go.Scatter(
                                x=dom[x_name].iloc[rows],
                                y=fitted[rows],
                                mode="lines",
                                line={"dash": "dash"},
                                name=f"Fitted model, {by}={level}",
                            )
                        )
                fig.update_layout(xaxis_title=x_name, yaxis_title=dv, legend_title=by)
            else:
                fig.add_trace(
                    go.Scatter3d(
                        x=dom[names[0]],
                        y=dom[names[1]],
                        z=truth,
                        mode="markers",
                        marker={"size": 3, "opacity": 0.5},
                        name="Ground truth",
                    )
                )
                if fitted is not None:
                    fig.add_trace(
                        go.Scatter3d(
                            x=dom[names[0]],
                            y=dom[names[1]],
                            z=fitted,
                            mode="markers",
                            marker={"size": 3, "opacity": 0.7},
                            name="Fitted model",
                        )
                    )
                fig.update_layout(
                    scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": dv}
                )
        else:
            raise SpecError(
                f"plotter shows one or two independent variables, this experiment has "
                f"{len(names)} ({names}); plot slices of run() yourself"
            )
        fig.update_layout(title=self.name)
        return fig


def lmm_experiment(
    formula: str,
    fixed_effects: Mapping[str, float] | None = None,
    random_effects: Mapping[str, Mapping[str, float]] | None = None,
    X: Sequence[IV] | None = None,
    random_state: int | np.random.Generator | None = None,
    name: str = "Template Experiment",
    mode: str = "exact",
) -> SyntheticExperiment:
    """A synthetic experiment that simulates a linear mixed model, autora-style.

    Parameters:
        formula: ``'y ~ x1 + x2 + (1 + x1|subject) + (x2|group)'``: the response, fixed
            predictors (column names, ``1`` or ``0``) and random terms ``(parts|group)``.
            No interactions, transformations, ``-``, ``||`` or nesting; add precomputed
            columns instead.
        fixed_effects: ``{'Intercept': b0, 'x1': b1, ...}``; missing names get 0.
        random_effects: ``{'subject': {'Intercept': sd0, 'x1': sd1}, ...}``: standard
            deviations of independent normal effects, one dict per grouping factor (a
            missing grouping factor is a `SpecError`; a missing part gets SD 0.5).
        X: optional `IV` descriptions (lmmcore's or autora's own objects) with
            ``allowed_values`` (for `domain`/`domain_grid`/`plotter`); their names must be
            the formula's predictors and grouping factors.
        random_state: seed of the experiment's own generator, used (and advanced) by every
            call to ``run``/``ground_truth`` that does not pass its own ``random_state``.
        name: shown in plots.
        mode: how the fixed predictors are read from the formula. ``"exact"`` (the
            default) is autora 2.2's ``_extract_variable_names``, whose outputs it
            reproduces to the last digit; ``"corrected"`` reads the names the formula
            actually has. They differ in two ways, both autora's behaviour in exact mode:

            - autora removes every ``"1 + "`` substring from a random term before splitting
              it, so in ``y ~ (x1 + x2|g)`` the fixed predictors are the non-column
              ``xx2``: x1 and x2 get no fixed effect (exact: ``0``; corrected:
              ``x1 * b1 + x2 * b2``);
            - autora's regex for fixed predictors needs a lower-case first letter, so a
              predictor like ``Xi`` outside a random term gets no fixed effect (only the
              ``i`` it matches inside the name, a non-column).

            Exact mode warns (`LmmWarning`) when a predictor loses its fixed effect, so no study
            takes the quirk for a model; the independent variables (and the columns of
            array conditions) are autora's list too, e.g. ``['1', 'x1', 'subject']`` for
            ``rt ~ (1|subject) + x1``. The default is exact because this function exists
            to reproduce autora's numbers; both modes give the seed's documented outputs.

    The semantics of `run` are autora's in both modes, quirks included, so that its
    documented outputs reproduce exactly:

    - Random intercepts and slopes are independent normals (no correlations), drawn per
      level of the grouping factor in the order levels first appear in the rows. The
      effects therefore belong to row order, not to group identity: shuffle the rows and,
      under the same seed, a level gets a different effect.
    - ``(x|g)`` gives a random slope and no random intercept (lme4 would add one).
    - The random intercept is recognised only in a part written exactly ``1`` with no
      surrounding space: ``(1|g)`` and ``(1+x|g)`` have one (SD from the key
      ``'Intercept'``), but in ``(1 + x|g)`` the part ``'1 '`` is read as a slope on a
      column named ``'1'``: it is drawn (SD from key ``'1'``) and never added.
    - A stand-alone ``0`` anywhere right of ``~``, random terms included, removes the
      fixed intercept and every random intercept, unless ``fixed_effects`` has a key
      ``'1'``.
    - A slope named in a random term also gets the fixed effect of that name, if any.
    - Names in ``fixed_effects``/``random_effects`` that match no term are ignored, and a
      predictor missing from the conditions is skipped silently (a missing grouping
      factor is a `DataError`).

    Differences from autora: unsupported syntax, negative SDs, non-numeric predictors,
    ``X`` naming other variables and missing grouping factors raise `FormulaError`,
    `SpecError` or `DataError` instead of silently misbehaving or raising ``KeyError`` or
    ``Exception``; in exact mode ``X`` may also name the corrected list of variables
    (autora raises there); `domain_grid` gives the full grid; `plotter` returns a Plotly
    figure; the variables are frozen dataclasses with ``allowed_values`` stored as a tuple.

    Example:
        >>> exp = lmm_experiment(
        ...     "rt ~ 1 + (1|subject) + x1",
        ...     fixed_effects={"Intercept": 1, "x1": 2},
        ...     random_effects={"subject": {"Intercept": 0.1}},
        ... )
        >>> cond = pd.DataFrame({"x1": [0.0, 1.0], "subject": [1, 2]})
        >>> exp.ground_truth(cond, random_state=42)["rt"].round(6).tolist()
        [1.030472, 2.896002]
    """
    if mode not in MODES:
        raise SpecError(f"mode must be 'exact' (autora's reading) or 'corrected', got {mode!r}")
    parsed = _parse(formula)
    fixed = _check_fixed(fixed_effects)
    random = _check_random(random_effects, parsed)
    ivs = _check_x(X, parsed, mode)
    if not isinstance(name, str):
        raise SpecError(f"name must be a string, got {name!r}")
    fixed_vars = parsed.autora_vars if mode == "exact" else parsed.fixed_vars
    if mode == "exact":
        _warn_if_autora_reads_otherwise(parsed)
    variables = VariableCollection(
        independent_variables=ivs, dependent_variables=(DV(name=parsed.dv),)
    )
    params: dict[str, Any] = {
        "formula": formula,
        "fixed_effects": dict(fixed),
        "random_effects": {g: dict(sds) for g, sds in random.items()},
        "X": list(X) if X else None,
        "random_state": random_state,
        "name": name,
        "mode": mode,
    }
    description = (
        f"{name}: synthetic linear mixed model {formula} (autora semantics, {mode} mode); "
        f"fixed effects {fixed or '{}'}, random-effect SDs {random or '{}'}."
    )
    return SyntheticExperiment(
        name=name,
        description=description,
        variables=variables,
        params=params,
        factory_function=lmm_experiment,
        _formula=parsed,
        _fixed_vars=fixed_vars,
        _fixed=fixed,
        _random=random,
        _rng=np.random.default_rng(random_state),
    )


def _warn_if_autora_reads_otherwise(parsed: _Formula) -> None:
    lost = sorted(set(parsed.fixed_vars) - set(parsed.autora_vars))
    if lost:
        warnings.warn(
            f"formula {parsed.text!r}: autora reads the fixed predictors as "
            f"{list(parsed.autora_vars)} where the formula names {list(parsed.fixed_vars)}, "
            f"so, as in autora, {lost} get no fixed effect. Pass mode='corrected' to use the "
            "formula's names.",
            LmmWarning,
            stacklevel=3,
        )
