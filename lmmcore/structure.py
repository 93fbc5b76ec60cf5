"""Model structure: X, the random-effect blocks (Z) and the Lambda(theta) template.

Built once per formula and data (lme4's ``lFormula``) and shared by every fit of the same
design: a bootstrap or power simulation changes only the response.

Example:
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"y": np.arange(8.0), "x": [0, 1] * 4, "g": list("aabbccdd")})
    >>> s = build_structure("y ~ x + (1 | g)", df)
    >>> s.fe_names, s.n_theta, [b.nlevels for b in s.blocks]
    (('(Intercept)', 'x'), 1, [4])
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import model_matrix

from lmmcore.errors import DataError, DataWarning, FormulaError
from lmmcore.formula import CONTRASTS, ParsedFormula, check_columns, parse_formula

#: Functions available to formulaic when it evaluates a (validated) formula.
FORMULA_CONTEXT: dict[str, object] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}

RANK_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effects term: ``Z_b[i, codes[i] * k + j] = T[i, j]``.

    ``name`` is lme4's VarCorr name (``Subject``, ``Subject.1`` for a second block of the
    same factor), ``group`` the grouping factor, ``terms`` the columns of T.
    """

    name: str
    group: str
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    T: np.ndarray
    correlated: bool = True

    @property
    def k(self) -> int:
        return self.T.shape[1]

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return self.nlevels * self.k

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    @cached_property
    def tril(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the lower triangle, column by column (lme4's order)."""
        rows, cols = [], []
        for j in range(self.k):
            for i in range(j, self.k):
                rows.append(i)
                cols.append(j)
        return np.array(rows), np.array(cols)

    def Z(self) -> sp.csr_matrix:
        n, k = self.T.shape
        rows = np.repeat(np.arange(n), k)
        cols = (self.codes[:, None] * k + np.arange(k)[None, :]).ravel()
        return sp.csr_matrix((self.T.ravel(), (rows, cols)), shape=(n, self.q))


@dataclass(frozen=True, eq=False)
class ModelStructure:
    """Everything about a model that does not depend on the response's values."""

    parsed: ParsedFormula
    X: np.ndarray
    y: np.ndarray
    fe_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    data: pd.DataFrame
    n_dropped_rows: int = 0
    dropped_columns: tuple[str, ...] = ()
    contrasts: Mapping[str, str] = field(default_factory=dict)

    @property
    def formula(self) -> str:
        return self.parsed.formula

    @property
    def response(self) -> str:
        return self.parsed.response

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    @property
    def n_theta(self) -> int:
        return sum(b.n_theta for b in self.blocks)

    @cached_property
    def theta_slices(self) -> tuple[slice, ...]:
        out, start = [], 0
        for b in self.blocks:
            out.append(slice(start, start + b.n_theta))
            start += b.n_theta
        return tuple(out)

    @cached_property
    def theta_lower(self) -> np.ndarray:
        """0 for diagonal elements of each Lambda block, -inf for off-diagonal ones."""
        lo = []
        for b in self.blocks:
            r, c = b.tril
            lo.extend(np.where(r == c, 0.0, -np.inf))
        return np.array(lo)

    @cached_property
    def theta_columns(self) -> tuple[tuple[int, np.ndarray], ...]:
        """Per column of each Lambda block: (theta index of its diagonal element, theta
        indices of the elements below it). Lambda Lambda' does not change when a column's
        sign flips, which matters to an optimiser stopped with that diagonal at zero."""
        out, off = [], 0
        for b in self.blocks:
            r, c = b.tril
            for j in range(b.k):
                diag = off + int(np.flatnonzero((r == j) & (c == j))[0])
                out.append((diag, off + np.flatnonzero((c == j) & (r > j))))
            off += b.n_theta
        return tuple(out)

    @cached_property
    def theta0(self) -> np.ndarray:
        """lme4's starting value: identity Lambda."""
        return np.where(self.theta_lower == 0.0, 1.0, 0.0)

    @cached_property
    def theta_names(self) -> tuple[str, ...]:
        names = []
        for b in self.blocks:
            r, c = b.tril
            for i, j in zip(r, c, strict=True):
                if i == j:
                    names.append(f"{b.group}.{b.terms[i]}")
                else:
                    names.append(f"{b.group}.{b.terms[i]}.{b.terms[j]}")
        return tuple(names)

    @cached_property
    def Z(self) -> sp.csr_matrix:
        return sp.hstack([b.Z() for b in self.blocks], format="csr")

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per block, the k x k lower-triangular relative covariance factor."""
        theta = np.asarray(theta, dtype=float)
        out = []
        for b, sl in zip(self.blocks, self.theta_slices, strict=True):
            lam = np.zeros((b.k, b.k))
            r, c = b.tril
            lam[r, c] = theta[sl]
            out.append(lam)
        return out


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------


def _levels_of(s: pd.Series) -> list:
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        return [c for c in s.cat.categories if c in present]
    vals = s.dropna().unique()
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _prepare_data(data: pd.DataFrame, parsed: ParsedFormula) -> tuple[pd.DataFrame, int]:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if data.shape[0] == 0:
        raise DataError("The data has no rows.")
    check_columns(parsed.columns, data.columns, parsed.formula)
    cols = [c for c in data.columns if c in parsed.columns]
    df = data.loc[:, cols]
    na = df.isna().any(axis=1).to_numpy()
    n_na = int(na.sum())
    if n_na:
        bad = [c for c in cols if df[c].isna().any()]
        warnings.warn(
            f"Dropped {n_na} of {len(df)} rows with missing values in column(s) "
            f"{', '.join(bad)} (as lme4's na.omit).",
            DataWarning,
            stacklevel=3,
        )
        df = df.loc[~na]
    if df.shape[0] == 0:
        raise DataError("No rows are left after dropping rows with missing values.")
    df = df.reset_index(drop=True).copy()
    for c in cols:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            df[c] = s.cat.remove_unused_categories()
        elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            df[c] = pd.Categorical(s.astype(str), categories=[str(v) for v in _levels_of(s)])
    return df, n_na


def _wrap_contrasts(expr: str, df: pd.DataFrame, contrasts: Mapping[str, str]) -> str:
    """Wrap bare factor names in C(name, contrast) where a non-default contrast applies."""
    for col in df.columns:
        s = df[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            continue
        con = contrasts.get(col)
        if con is None and s.cat.ordered:
            con = "poly"
        if con is None:
            continue
        key = str(con).lower().removeprefix("contr.")
        if key not in CONTRASTS:
            raise FormulaError(
                f"Unknown contrast {con!r} for {col!r}; use one of {', '.join(sorted(CONTRASTS))}."
            )
        name = re.escape(col)
        pattern = rf"(?<![\w.`(])(?<!C\(){name}(?![\w.`(])"
        expr = re.sub(pattern, f"C({col}, {CONTRASTS[key]})", expr)
    return expr


_PIECE = re.compile(
    r"^(?:C\((?P<a>[^,]+),[^)]*\)|(?P<b>[^\[]+))\[(?P<pre>T\.|S\.|H\.|D\.)?(?P<lvl>.*)\]$"
)


def _split_colon(name: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in name:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def r_names(columns: Sequence[str]) -> list[str]:
    """Turn formulaic's column names into R's (``cond[T.B]`` -> ``condB``).

    Example:
        >>> r_names(["Intercept", "f[T.b]", "C(f, contr.sum)[S.x]", "C(t, contr.poly)[.L]"])
        ['(Intercept)', 'fb', 'f1', 't.L']
    """
    numbered: dict[str, list[str]] = {}
    out = []
    for col in columns:
        pieces = []
        for piece in _split_colon(str(col)):
            if piece == "Intercept":
                pieces.append("(Intercept)")
                continue
            m = _PIECE.match(piece)
            if not m:
                pieces.append(piece.replace("`", "").replace(" ** ", "^").replace("**", "^"))
                continue
            var = (m.group("a") or m.group("b")).strip().strip("`")
            pre, lvl = m.group("pre"), m.group("lvl")
            if pre in {"S.", "H.", "D."}:
                seen = numbered.setdefault(var, [])
                if lvl not in seen:
                    seen.append(lvl)
                pieces.append(f"{var}{seen.index(lvl) + 1}")
            else:
                pieces.append(f"{var}{lvl}")
        out.append(":".join(pieces))
    return out


def _model_matrix(expr: str, df: pd.DataFrame, what: str, formula: str) -> tuple[np.ndarray, list]:
    try:
        mm = model_matrix(expr, df, context=FORMULA_CONTEXT, na_action="ignore")
    except FormulaError:
        raise
    except Exception as exc:  # formulaic's own parse/eval errors
        raise FormulaError(
            f"Could not build the {what} of {formula!r} from {expr!r}: {exc}"
        ) from None
    X = np.asarray(mm, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if not np.all(np.isfinite(X)):
        raise DataError(
            f"The {what} of {formula!r} has infinite or undefined values (e.g. log of a "
            "non-positive number); check the transforms and the data."
        )
    return X, r_names(list(mm.columns))


def _drop_rank_deficient(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list, list]:
    keep: list[int] = []
    dropped: list[str] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        v = X[:, j]
        nv = np.linalg.norm(v)
        r = v - Q @ (Q.T @ v) if Q.shape[1] else v
        r = r - Q @ (Q.T @ r) if Q.shape[1] else r
        nr = np.linalg.norm(r)
        if nv == 0 or nr <= RANK_TOL * max(nv, 1.0):
            dropped.append(names[j])
            continue
        keep.append(j)
        Q = np.column_stack([Q, r / nr])
    return X[:, keep], [names[j] for j in keep], dropped


def _group_codes(df: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    code_cols = []
    label_cols = []
    for f in factors:
        s = df[f]
        levels = _levels_of(s)
        cat = pd.Categorical(s, categories=levels)
        code_cols.append(np.asarray(cat.codes, dtype=np.int64))
        label_cols.append([str(v) for v in levels])
    if len(factors) == 1:
        return code_cols[0], label_cols[0]
    # interaction: levels ordered with the first factor varying slowest, unused dropped
    mult = np.ones(len(factors), dtype=np.int64)
    for i in range(len(factors) - 2, -1, -1):
        mult[i] = mult[i + 1] * len(label_cols[i + 1])
    combo = sum(c * m for c, m in zip(code_cols, mult, strict=True))
    uniq, codes = np.unique(combo, return_inverse=True)
    labels = []
    for u in uniq:
        parts = []
        for i in range(len(factors)):
            parts.append(label_cols[i][(u // mult[i]) % len(label_cols[i])])
        labels.append(":".join(parts))
    return codes.astype(np.int64), labels


def build_structure(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
    contrasts: Mapping[str, str] | None = None,
) -> ModelStructure:
    """Build X, the random-effect blocks and the theta layout (lme4's ``lFormula``).

    Args:
        formula: an lme4 formula (or an already parsed one).
        data: the data; rows with missing values in used columns are dropped with a warning.
        groups: crossed random intercepts for each listed column (interlace's convenience).
        contrasts: per factor column, ``"treatment"`` (default), ``"sum"``, ``"helmert"``,
            ``"poly"`` (default for ordered categoricals) or ``"diff"``.

    Raises:
        FormulaError, DataError: with a message that says what to change.
    """
    parsed = (
        formula if isinstance(formula, ParsedFormula) else parse_formula(formula, groups=groups)
    )
    if not parsed.random:
        raise FormulaError(
            f"The formula {parsed.formula!r} has no random-effects term such as (1 | subject). "
            "A mixed model needs at least one; for fixed effects only use a linear model."
        )
    contrasts = dict(contrasts or {})
    df, n_na = _prepare_data(data, parsed)
    n = df.shape[0]

    # response
    if parsed.response in df.columns:
        ys = df[parsed.response]
        if not pd.api.types.is_numeric_dtype(ys) or isinstance(ys.dtype, pd.CategoricalDtype):
            raise DataError(
                f"The response {parsed.response!r} must be numeric; it holds values such as "
                f"{ys.astype(str).iloc[0]!r}. Convert it to numbers or choose another column."
            )
        y = ys.to_numpy(dtype=float)
    else:
        yy, _ = _model_matrix(f"0 + {parsed.response}", df, "response", parsed.formula)
        if yy.shape[1] != 1:
            raise DataError(f"The response {parsed.response!r} must be a single numeric column.")
        y = yy[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(f"The response {parsed.response!r} has infinite values.")

    # fixed effects
    fixed_expr = _wrap_contrasts(parsed.fixed, df, contrasts)
    X, names, dropped = _drop_rank_deficient(
        *_model_matrix(fixed_expr, df, "fixed-effects model matrix", parsed.formula)
    )
    if dropped:
        warnings.warn(
            f"The fixed-effects model matrix is rank deficient, so {len(dropped)} "
            f"column(s) were dropped: {', '.join(dropped)} (as lme4 does).",
            DataWarning,
            stacklevel=2,
        )

    # random effects
    raw_blocks = []
    for term in parsed.random:
        codes, labels = _group_codes(df, term.factors)
        if len(labels) < 2:
            raise DataError(
                f"The grouping factor {term.group_name!r} has only {len(labels)} level; a "
                "random effect needs at least 2 groups. Remove the term or use more groups."
            )
        if len(labels) >= n:
            raise DataError(
                f"The grouping factor {term.group_name!r} has {len(labels)} levels for {n} "
                "observations; each level needs more than one observation on average "
                "(lme4: number of levels must be < number of observations)."
            )
        T, tnames = _model_matrix(
            _wrap_contrasts(term.expr, df, contrasts),
            df,
            f"random-effects term ({term.expr} | {term.group_name})",
            parsed.formula,
        )
        if T.shape[1] == 0:
            raise FormulaError(f"The random term ({term.expr} | {term.group_name}) is empty.")
        if n <= len(labels) * T.shape[1]:
            raise DataError(
                f"The term ({term.expr} | {term.group_name}) has {len(labels) * T.shape[1]} "
                f"random effects for {n} observations; the variance parameters are not "
                "identifiable. Use fewer random slopes or more data."
            )
        raw_blocks.append((term, codes, labels, T, tnames))
    # lme4 orders terms by decreasing number of levels (stable)
    raw_blocks.sort(key=lambda b: -len(b[2]))
    counts: dict[str, int] = {}
    blocks = []
    for term, codes, labels, T, tnames in raw_blocks:
        seen = counts.get(term.group_name, 0)
        counts[term.group_name] = seen + 1
        name = term.group_name if seen == 0 else f"{term.group_name}.{seen}"
        blocks.append(
            RandomBlock(
                name, term.group_name, tuple(tnames), tuple(labels), codes, T, term.correlated
            )
        )
    return ModelStructure(
        parsed=parsed,
        X=X,
        y=y,
        fe_names=tuple(names),
        blocks=tuple(blocks),
        data=df,
        n_dropped_rows=n_na,
        dropped_columns=tuple(dropped),
        contrasts=contrasts,
    )
