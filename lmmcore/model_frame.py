"""Model frames and model matrices, as R's ``model.frame`` and ``model.matrix``.

Every variable of a formula (a column, ``C(column, contrast)`` or a numeric transform) is
evaluated here, by lmmcore, with numpy, from the formula's syntax tree: no formula text
reaches another parser or evaluator. As in R, variables are evaluated on every row of the
data first (so ``scale(x)`` uses every row that has ``x``), rows with a missing value in any
variable are dropped afterwards (``na.omit``), and unused factor levels are dropped.
Factors are coded by R's rule: a factor in a term is coded by contrasts when the term
without it is in the model (an earlier term, or the intercept), by indicators otherwise;
column names are R's (``condB``, ``f1``, ``temperature.L``, ``a:b``). The width of every
matrix is known from the terms before it is allocated, and checked against `lmmcore.limits`.

Example:
    >>> import pandas as pd
    >>> from lmmcore.formula import parse_formula
    >>> from lmmcore.terms import expand
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4], "f": list("abab"), "x": [1.0, 2, 3, 4]})
    >>> p = parse_formula("y ~ f * x")
    >>> frame = model_frame(df, [p.response_node], expand(p.fixed_node, ""))
    >>> model_matrix(expand(p.fixed_node, ""), frame)[1]
    ['(Intercept)', 'fb', 'x', 'fb:x']
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmmcore.errors import DataError, DataWarning, FormulaError
from lmmcore.formula import (
    CONTRASTS,
    BinOp,
    Call,
    Name,
    Node,
    Num,
    Paren,
    Unary,
    deparse,
    walk,
)
from lmmcore.limits import MAX_FIXED_COLUMNS, MAX_RANDOM_COLUMNS, check_entries
from lmmcore.terms import Terms

__all__ = [
    "FactorVar",
    "ModelFrame",
    "NumericVar",
    "column_kind",
    "contrast_matrix",
    "model_frame",
    "model_matrix",
]

_NUMPY = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}


@dataclass(frozen=True, eq=False)
class NumericVar:
    """A numeric variable: one value per row (NaN where missing)."""

    values: np.ndarray


@dataclass(frozen=True, eq=False)
class FactorVar:
    """A factor: per row a level code (-1 where missing), the level labels, the original
    level values (their own dtype) and the contrast that codes it."""

    codes: np.ndarray
    levels: tuple[str, ...]
    values: tuple[Any, ...]
    contrast: str = "treatment"

    @property
    def k(self) -> int:
        return len(self.levels)


Var = NumericVar | FactorVar


# ----------------------------------------------------------------------------- columns


def _examples(values: Sequence[Any], n: int = 3) -> str:
    vals = list(dict.fromkeys(str(v) for v in values))
    return ", ".join(repr(v) for v in vals[:n]) + (", ..." if len(vals) > n else "")


def column_kind(s: pd.Series, name: str) -> str:
    """``"numeric"`` or ``"factor"`` for a column used as a predictor, or a DataError.

    Numbers are numeric; categoricals, booleans and text are factors. A column mixing
    numbers and text (one ``-`` in a column of numbers, say), numbers stored as text, or
    dates are refused with a message naming the column and values: turning them into a
    factor silently would give a wrong model.

    Example:
        >>> column_kind(pd.Series([1.0, 2.0]), "x"), column_kind(pd.Series(["a", "b"]), "f")
        ('numeric', 'factor')
    """
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dt):
        return "factor"
    if (
        pd.api.types.is_datetime64_any_dtype(dt)
        or pd.api.types.is_timedelta64_dtype(dt)
        or isinstance(dt, pd.PeriodDtype)
    ):
        raise DataError(
            f"Column {name!r} holds dates or times ({dt}); a model needs numbers. Convert it, "
            "e.g. to days since the first date, or write C(...) of a text version to use it "
            "as a factor."
        )
    if pd.api.types.is_complex_dtype(dt):
        raise DataError(f"Column {name!r} holds complex numbers; a model needs real numbers.")
    if pd.api.types.is_numeric_dtype(dt):
        return "numeric"
    vals = s.dropna()
    kinds = {
        "text"
        if isinstance(v, str)
        else "bool"
        if isinstance(v, bool | np.bool_)
        else "number"
        if isinstance(v, int | float | np.integer | np.floating)
        else type(v).__name__
        for v in vals
    }
    if kinds <= {"bool"}:
        return "factor"
    if not kinds <= {"number", "text"}:
        raise DataError(
            f"Column {name!r} mixes values of different kinds ({', '.join(sorted(kinds))}); "
            "make it all numbers, or all text for a factor."
        )
    is_num = pd.to_numeric(vals, errors="coerce").notna().to_numpy()
    if not is_num.any():
        return "factor"
    if is_num.all():
        if kinds == {"number"}:
            return "numeric"
        raise DataError(
            f"Column {name!r} holds numbers written as text ({_examples(vals)}). Convert it "
            "to numbers (pandas.to_numeric), or write C(" + name + ") in the formula to use it "
            "as a factor."
        )
    bad = vals[~is_num]
    raise DataError(
        f"Column {name!r} holds numbers and text: {len(bad)} of {len(vals)} values are not "
        f"numbers ({_examples(bad)}). Correct them, treat them as missing "
        f"(lmmcore.coerce_numeric(data, {name!r})), or write C({name}) in the formula to use "
        "the column as a factor."
    )


def _levels_of(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        return [c for c in s.cat.categories if c in present]
    vals = s.dropna().unique()
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _label(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"  # R's labels of a logical
    return str(v)


def factor_of(s: pd.Series, contrast: str = "treatment") -> FactorVar:
    """A factor from a column: its levels (categories in order, else sorted values)."""
    levels = _levels_of(s)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.set_categories(levels).cat.codes.to_numpy().astype(np.int64)
    else:
        codes = pd.Categorical(s, categories=levels).codes.astype(np.int64)
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in levels)
    return FactorVar(codes, tuple(_label(v) for v in levels), values, contrast)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class _Evaluator:
    data: pd.DataFrame
    contrasts: Mapping[str, str]
    state: dict[str, tuple[float, float]]  # transform parameters by label (scale, center)
    fitting: bool  # True: compute scale/center parameters; False: reuse them (new data)
    text: str = ""

    def column(self, name: str) -> pd.Series:
        if name not in self.data.columns:
            raise FormulaError(f"The data has no column {name!r}.")
        col = self.data[name]
        if isinstance(col, pd.DataFrame):
            raise DataError(
                f"The data has {col.shape[1]} columns named {name!r}; give each column its "
                "own name."
            )
        return col

    def inputs_missing(self, node: Node) -> np.ndarray:
        """Rows where a column the node reads is missing (those rows are dropped)."""
        out = np.zeros(len(self.data), dtype=bool)
        for name in _names_in(node):
            out |= self.column(name).isna().to_numpy()
        return out

    def response(self, node: Node) -> Var:
        """The response: numbers only (text in it is named, never coded)."""
        if isinstance(node, Name):
            s = self.column(node.name)
            if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
                vals = s.dropna()
                bad = vals[pd.to_numeric(vals, errors="coerce").isna().to_numpy()]
                raise DataError(
                    f"The response {node.name!r} must be numeric; {len(bad)} of {len(vals)} "
                    f"values are not numbers (for example {_examples(bad)}). Convert it to "
                    "numbers or choose another column."
                )
        return NumericVar(self.numeric(node))

    def variable(self, node: Node) -> Var:
        if isinstance(node, Name):
            s = self.column(node.name)
            if column_kind(s, node.name) == "factor":
                contrast = self.contrasts.get(node.name)
                if contrast is None:
                    ordered = isinstance(s.dtype, pd.CategoricalDtype) and s.cat.ordered
                    contrast = "poly" if ordered else "treatment"
                return factor_of(s, contrast)
            return NumericVar(pd.to_numeric(s, errors="raise").to_numpy(dtype=float))
        if isinstance(node, Call) and node.func == "C":
            from lmmcore.formula import contrast_key

            arg = node.args[0]
            assert isinstance(arg, Name)
            key = contrast_key(node.args[1], self.text) if len(node.args) == 2 else "treatment"
            return factor_of(self.column(arg.name), key)
        return NumericVar(self.numeric(node))

    def numeric(self, node: Node) -> np.ndarray:
        n = len(self.data)
        with np.errstate(all="ignore"):
            out = self.arith(node)
        return np.broadcast_to(np.asarray(out, dtype=float), (n,)).copy()

    def arith(self, node: Node) -> np.ndarray | float:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Name):
            s = self.column(node.name)
            if column_kind(s, node.name) != "numeric":
                raise DataError(
                    f"{node.name!r} is a factor (its values are labels such as "
                    f"{_examples(s.dropna())}); arithmetic and transforms need a numeric column."
                )
            return pd.to_numeric(s).to_numpy(dtype=float)
        if isinstance(node, Paren):
            return self.arith(node.inner)
        if isinstance(node, Unary):
            v = self.arith(node.operand)
            return -v if node.op == "-" else v
        if isinstance(node, BinOp):
            a, b = self.arith(node.left), self.arith(node.right)
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            if node.op == "/":
                return np.divide(a, b)
            if node.op == "^":  # the parser only lets small literal exponents through
                return np.power(np.asarray(a, dtype=float), b)
            raise FormulaError(f"{node.op!r} is not arithmetic (in {deparse(node)!r}).")
        assert isinstance(node, Call)
        v = self.arith(node.args[0])
        if node.func == "I":
            return v
        if node.func in _NUMPY:
            return _NUMPY[node.func](v)
        # scale / center: parameters from the data being fitted, reused for new data
        label = deparse(node)
        if self.fitting:
            arr = np.broadcast_to(np.asarray(v, dtype=float), (len(self.data),))
            ok = arr[np.isfinite(arr)]
            if ok.size == 0:
                raise DataError(f"{label} has no finite values to compute its mean from.")
            mean = float(ok.mean())
            sd = float(ok.std(ddof=1)) if ok.size > 1 else 0.0
            if node.func == "scale" and not sd > 0:
                raise DataError(
                    f"{label}: the values are constant (SD 0), so they cannot be scaled; "
                    "remove the term or use center() instead."
                )
            self.state[label] = (mean, sd)
        if label not in self.state:
            raise DataError(f"{label}: no parameters from the fitted data to apply.")
        mean, sd = self.state[label]
        return (v - mean) / sd if node.func == "scale" else v - mean


def _names_in(node: Node) -> list[str]:
    """The columns a variable reads (not the contrast name of C(x, sum))."""
    if isinstance(node, Call) and node.func == "C":
        node = node.args[0]
    return list(dict.fromkeys(n.name for n in walk(node) if isinstance(n, Name)))


@dataclass(frozen=True, eq=False)
class ModelFrame:
    """The variables of a model, evaluated, with the rows of missing values dropped."""

    n: int
    keep: np.ndarray  # which rows of the data are used
    variables: dict[str, Var]  # by R label (response, predictors)
    groups: dict[str, FactorVar]  # grouping columns by name
    data: pd.DataFrame  # the rows used, columns the formula names
    state: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return int(self.keep.size - self.keep.sum())


def _missing(var: Var) -> np.ndarray:
    if isinstance(var, NumericVar):
        return np.isnan(var.values)
    return var.codes < 0


def _take(var: Var, keep: np.ndarray) -> Var:
    if isinstance(var, NumericVar):
        return NumericVar(var.values[keep])
    codes = var.codes[keep]
    used = np.unique(codes[codes >= 0])
    if used.size == var.k:  # every level still present
        return FactorVar(codes, var.levels, var.values, var.contrast)
    remap = np.full(var.k, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return FactorVar(
        remap[codes],
        tuple(var.levels[i] for i in used),
        tuple(var.values[i] for i in used),
        var.contrast,
    )


def model_frame(
    data: pd.DataFrame,
    nodes: Sequence[Node],
    *terms_list: Terms,
    groups: Sequence[str] = (),
    contrasts: Mapping[str, str] | None = None,
    columns: Sequence[str] = (),
    state: dict[str, tuple[float, float]] | None = None,
    text: str = "",
    warn: bool = True,
) -> ModelFrame:
    """Evaluate every variable on all rows, then drop rows with a missing value (na.omit).

    Args:
        data: the data.
        nodes: numeric variables by syntax tree (the response).
        terms_list: the expanded parts of the model (fixed part, random terms' left sides).
        groups: grouping columns (factors whatever their type).
        contrasts: per factor column, a key of `lmmcore.formula.CONTRASTS`.
        columns: the columns the formula names (kept in ``data``, for plots and checks).
        state: transform parameters from a fitted frame, to evaluate new data as the
            fitted data were (``scale(x)`` uses the fitted mean and SD).
        warn: warn (DataWarning) when rows are dropped.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if data.shape[0] == 0:
        raise DataError("The data has no rows.")
    dupes = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
    if dupes:
        raise DataError(
            f"The data has more than one column named {', '.join(map(repr, dupes))}; give each "
            "column its own name."
        )
    con = {str(k): _contrast_name(v, str(k)) for k, v in (contrasts or {}).items()}
    ev = _Evaluator(data, con, {} if state is None else dict(state), state is None, text)
    variables: dict[str, Var] = {}
    var_nodes: dict[str, Node] = {}
    for node in nodes:
        variables[deparse(node)] = ev.response(node)
        var_nodes[deparse(node)] = node
    for v in (v for terms in terms_list for v in terms.variables):
        if v.key not in variables:
            variables[v.key] = ev.variable(v.node)
            var_nodes[v.key] = v.node
    gvars = {g: factor_of(ev.column(g)) for g in dict.fromkeys(groups)}
    n_all = len(data)
    missing = np.zeros(n_all, dtype=bool)
    bad_cols: dict[str, None] = {}
    for key, var in variables.items():
        node_missing = ev.inputs_missing(var_nodes[key])
        if isinstance(var, NumericVar):
            # present inputs but no finite value (log(0), 1/0, inf in the data): an error,
            # never a silent drop
            bad = ~np.isfinite(var.values) & ~node_missing
            if bad.any():
                raise DataError(
                    f"{key} is infinite or undefined for {int(bad.sum())} of {n_all} rows "
                    "(e.g. an infinite value in the data, the log of a non-positive number, "
                    "or a division by zero); check the transforms and the data."
                )
        else:
            node_missing = node_missing | (var.codes < 0)
        if node_missing.any():
            bad_cols.update(dict.fromkeys(_names_in(var_nodes[key])))
            missing |= node_missing
    for g, var in gvars.items():
        if (var.codes < 0).any():
            bad_cols[g] = None
            missing |= var.codes < 0
    keep = ~missing
    n = int(keep.sum())
    if n == 0:
        raise DataError("No rows are left after dropping rows with missing values.")
    if n < n_all and warn:
        warnings.warn(
            f"Dropped {n_all - n} of {n_all} rows with missing values in column(s) "
            f"{', '.join(bad_cols)} (as lme4's na.omit).",
            DataWarning,
            stacklevel=4,
        )
    variables = {k: _take(v, keep) for k, v in variables.items()}
    gvars = {g: _take(v, keep) for g, v in gvars.items()}
    cols = [c for c in dict.fromkeys(columns) if c in data.columns]
    kept = data.loc[keep, cols].reset_index(drop=True)
    return ModelFrame(n, keep, variables, gvars, kept, ev.state)


def recode(var: FactorVar, fitted: FactorVar, what: str, new_levels: bool) -> FactorVar:
    """A factor of new data coded with the fitted data's levels. A level the fit did not
    see is an error, unless ``new_levels`` (grouping factors: coded -2, "a new unit")."""
    pos = {lvl: i for i, lvl in enumerate(fitted.levels)}
    mapping = np.array([pos.get(lvl, -2) for lvl in var.levels], dtype=np.int64)
    codes = np.where(var.codes >= 0, mapping[np.maximum(var.codes, 0)], -1)
    unseen = sorted({lvl for lvl in var.levels if lvl not in pos})
    if unseen and not new_levels:
        raise DataError(
            f"{what} has level(s) {', '.join(map(repr, unseen[:5]))} that the fitted data did "
            f"not have; the fitted levels are {', '.join(map(repr, fitted.levels[:10]))}."
        )
    return FactorVar(codes, fitted.levels, fitted.values, fitted.contrast)


def new_frame(
    data: pd.DataFrame,
    fitted: ModelFrame,
    terms_list: Sequence[Terms],
    groups: Sequence[str],
    text: str = "",
) -> tuple[ModelFrame, np.ndarray]:
    """New data evaluated as the fitted data were: the fit's transform parameters
    (``scale``'s mean and SD), its factor levels and contrasts. Returns the frame (every
    row kept; missing values coded 0 so matrices can be built) and the rows with a missing
    predictor (their predictions are undefined). Grouping levels the fit did not see are
    coded -2."""
    if not isinstance(data, pd.DataFrame) or data.shape[0] == 0:
        raise DataError("newdata must be a pandas DataFrame with at least one row.")
    ev = _Evaluator(data, {}, dict(fitted.state), False, text)
    n = len(data)
    missing = np.zeros(n, dtype=bool)
    variables: dict[str, Var] = {}
    for v in (v for terms in terms_list for v in terms.variables):
        if v.key in variables:
            continue
        old = fitted.variables[v.key]
        missing |= ev.inputs_missing(v.node)
        if isinstance(old, FactorVar):
            col = ev.column(_names_in(v.node)[0])
            var = recode(factor_of(col.astype(object).where(col.notna(), None)), old, v.key, False)
            missing |= var.codes < 0
            variables[v.key] = FactorVar(
                np.maximum(var.codes, 0), var.levels, var.values, var.contrast
            )
        else:
            vals = ev.numeric(v.node)
            variables[v.key] = NumericVar(np.where(missing, 0.0, vals))
    gvars = {}
    for g in dict.fromkeys(groups):
        col = ev.column(g)
        var = recode(
            factor_of(col.astype(object).where(col.notna(), None)), fitted.groups[g], g, True
        )
        missing |= var.codes == -1
        gvars[g] = var
    keep = np.ones(n, dtype=bool)
    return ModelFrame(n, keep, variables, gvars, data, dict(fitted.state)), missing


def _contrast_name(value: Any, column: str) -> str:
    key = str(value).lower().removeprefix("contr.")
    if key not in CONTRASTS:
        raise FormulaError(
            f"Unknown contrast {value!r} for {column!r}; use one of {', '.join(sorted(CONTRASTS))}."
        )
    return key


# ----------------------------------------------------------------------------- matrices


def contrast_matrix(kind: str, levels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """R's contrast matrix (k x (k-1)) of a factor and the suffixes of its column names.

    Example:
        >>> contrast_matrix("sum", ["a", "b", "c"])[0].tolist(), contrast_matrix("sum", "abc")[1]
        ([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], ['1', '2'])
    """
    k = len(levels)
    if kind == "treatment":
        return np.eye(k)[:, 1:], [str(v) for v in levels[1:]]
    if kind == "sum":
        m = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
        return m, [str(i) for i in range(1, k)]
    if kind == "helmert":
        m = np.zeros((k, k - 1))
        for j in range(k - 1):
            m[: j + 1, j] = -1.0
            m[j + 1, j] = j + 1.0
        return m, [str(i) for i in range(1, k)]
    if kind == "poly":  # R's contr.poly: orthonormal polynomials in the scores 1..k
        y = np.arange(1.0, k + 1) - (k + 1) / 2
        q, r = np.linalg.qr(np.vander(y, k, increasing=True))
        z = q * np.sign(np.diag(r))
        names = [".L", ".Q", ".C"] + [f"^{d}" for d in range(4, k)]
        return z[:, 1:], names[: k - 1]
    if kind == "diff":  # MASS::contr.sdif: successive differences
        i, j = np.indices((k, k - 1))
        m = (j + 1) / k - (i <= j)
        return m, [f"{j + 2}-{j + 1}" for j in range(k - 1)]  # as MASS names them
    raise FormulaError(f"Unknown contrast {kind!r}; use one of {', '.join(sorted(CONTRASTS))}.")


def _codings(terms: Terms, frame: ModelFrame) -> list[list[int]]:
    """Per term, per variable: 0 numeric, 1 contrasts, 2 indicators (R's TermCode)."""
    sets = [frozenset(t) for t in terms.terms]
    out: list[list[int]] = []
    for j, t in enumerate(terms.terms):
        codes = []
        for v in t:
            var = frame.variables[terms.variables[v].key]
            if isinstance(var, NumericVar):
                codes.append(0)
                continue
            reduced = sets[j] - {v}
            if not reduced or any(reduced <= s for s in sets[:j]):
                codes.append(1)
            else:
                codes.append(2)
        out.append(codes)
    if not terms.intercept:  # R: the first factor of the first term with one: indicators
        for codes in out:
            if any(c > 0 for c in codes):
                codes[next(i for i, c in enumerate(codes) if c > 0)] = 2
                break
    return out


def _width(var: Var, coding: int) -> int:
    if coding == 0:
        return 1
    assert isinstance(var, FactorVar)
    return var.k if coding == 2 else var.k - 1


def _layout(terms: Terms, frame: ModelFrame) -> tuple[list[list[int]], list[int]]:
    """Per term its codings and its number of columns (nothing is allocated)."""
    codings = _codings(terms, frame)
    widths = []
    for t, codes in zip(terms.terms, codings, strict=True):
        w = 1
        for v, c in zip(t, codes, strict=True):
            var = frame.variables[terms.variables[v].key]
            if c == 1 and isinstance(var, FactorVar) and var.k < 2:
                raise DataError(
                    f"The factor {terms.variables[v].key} has only one level "
                    f"({var.levels[0] if var.levels else 'none'}) in the rows used; it needs "
                    "at least two to be coded. Remove it from the formula."
                )
            w *= _width(var, c)
        widths.append(w)
    return codings, widths


def matrix_width(terms: Terms, frame: ModelFrame) -> int:
    """The number of columns `model_matrix` would build, without building them."""
    return int(terms.intercept) + sum(_layout(terms, frame)[1])


def model_matrix(
    terms: Terms,
    frame: ModelFrame,
    what: str = "the fixed-effects model matrix",
    max_columns: int = MAX_FIXED_COLUMNS,
) -> tuple[np.ndarray, list[str]]:
    """The model matrix of ``terms`` on ``frame`` and its R column names.

    Its width is computed from the terms and the factors' levels and checked against
    ``max_columns`` and `lmmcore.limits.MAX_MATRIX_ENTRIES` before it is allocated.
    """
    codings, widths = _layout(terms, frame)
    p = int(terms.intercept) + sum(widths)
    if p > max_columns:
        raise DataError(
            f"{what} would have {p:,} columns, more than the limit of {max_columns:,}; use "
            "fewer factor levels or interactions."
        )
    check_entries(frame.n, p, what.capitalize() if what[0].islower() else what)
    X = np.empty((frame.n, p))
    names: list[str] = []
    col = 0
    if terms.intercept:
        X[:, 0] = 1.0
        names.append("(Intercept)")
        col = 1
    for t, codes, w in zip(terms.terms, codings, widths, strict=True):
        block: np.ndarray | None = None
        labels: list[str] = [""]
        for v, c in zip(t, codes, strict=True):
            key = terms.variables[v].key
            var = frame.variables[key]
            if isinstance(var, NumericVar):
                m, suffix = var.values[:, None], [key]
            elif c == 2:
                m = np.zeros((frame.n, var.k))
                m[np.arange(frame.n), var.codes] = 1.0
                suffix = [key + lvl for lvl in var.levels]
            else:
                cm, sfx = contrast_matrix(var.contrast, var.levels)
                m, suffix = cm[var.codes], [key + s for s in sfx]
            if block is None:
                block, labels = m, suffix
            else:  # the earlier variables vary fastest, as in R
                k0 = block.shape[1]
                block = (
                    (block[:, :, None] * m[:, None, :])
                    .transpose(0, 2, 1)
                    .reshape(frame.n, k0 * m.shape[1])
                )
                labels = [f"{a}:{b}" for b in suffix for a in labels]
        assert block is not None and block.shape[1] == w
        X[:, col : col + w] = block
        names.extend(labels)
        col += w
    return X, names


def random_matrix(terms: Terms, frame: ModelFrame, what: str) -> tuple[np.ndarray, list[str]]:
    """The columns of one random-effects term (at most `MAX_RANDOM_COLUMNS`)."""
    return model_matrix(terms, frame, what, max_columns=MAX_RANDOM_COLUMNS)
