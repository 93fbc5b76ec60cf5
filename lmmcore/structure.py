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

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmmcore.errors import DataError, DataWarning, FormulaError
from lmmcore.formula import ParsedFormula, check_columns, parse_formula
from lmmcore.limits import MAX_RANDOM_COLUMNS, MAX_THETA, check_entries
from lmmcore.model_frame import (
    ModelFrame,
    NumericVar,
    matrix_width,
    model_frame,
    model_matrix,
    new_frame,
    random_matrix,
)
from lmmcore.terms import expand

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
    values: tuple[Any, ...] = ()  # the levels as the data holds them (ints stay ints)

    @property
    def index(self) -> pd.Index:
        """The levels as a pandas Index of the data's own type, named after the group."""
        return pd.Index(list(self.values or self.levels), name=self.group)

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
    state: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # scale()/center()
    frame: ModelFrame | None = field(default=None, repr=False)  # for new data (predict)

    def new_data(self, newdata: pd.DataFrame) -> tuple[np.ndarray, list, np.ndarray]:
        """X and, per block, (codes, T) for new data, coded as the fitted data were (the
        fit's scale()/center() parameters, factor levels, contrasts and dropped columns);
        a grouping level the fit did not see has code -1 (no random effect: population
        level). Also returns the rows with a missing predictor.

        Example:
            >>> import lmmcore
            >>> s = lmmcore.fit("Reaction ~ scale(Days) + (1 | Subject)",
            ...                 lmmcore.load_dataset("sleepstudy")).structure
            >>> X, blocks, missing = s.new_data(pd.DataFrame({"Days": [4.5], "Subject": ["x"]}))
            >>> X.round(6).tolist(), blocks[0][0].tolist()
            ([[1.0, 0.0]], [-1])
        """
        if self.frame is None:
            raise DataError("This structure was not built from data; it cannot code new data.")
        parsed = self.parsed
        fixed_terms = expand(parsed.fixed_node, parsed.formula)
        random_terms = [expand(t.lhs, parsed.formula) for t in parsed.random]
        frame, missing = new_frame(
            newdata,
            self.frame,
            [fixed_terms, *random_terms],
            parsed.grouping_factors,
            parsed.formula,
        )
        X_all, names = model_matrix(fixed_terms, frame)
        X = X_all[:, [names.index(n) for n in self.fe_names]]
        by_term: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, (term, terms) in enumerate(zip(parsed.random, random_terms, strict=True)):
            gv = [frame.groups[f] for f in term.factors]
            labels = [
                ":".join(g.levels[c] for g, c in zip(gv, row, strict=True))
                if min(row) >= 0
                else None
                for row in zip(*(g.codes for g in gv), strict=True)
            ]
            T, _ = random_matrix(terms, frame, f"the term ({term.expr} | {term.group_name})")
            by_term[i] = (term.group_name, labels, T)
        blocks = []
        used: set[int] = set()
        for b in self.blocks:
            i = next(
                j
                for j, v in by_term.items()
                if j not in used and v[0] == b.group and v[2].shape[1] == b.k
            )
            used.add(i)
            _, labels, T = by_term[i]
            pos = {lvl: k for k, lvl in enumerate(b.levels)}
            blocks.append((np.array([pos.get(lvl, -1) for lvl in labels], dtype=np.int64), T))
        X[missing] = np.nan
        return X, blocks, missing

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
        if nv == 0 or nr <= RANK_TOL * nv:  # relative: the scale of a column is no reason
            dropped.append(names[j])
            continue
        keep.append(j)
        Q = np.column_stack([Q, r / nr])
    return X[:, keep], [names[j] for j in keep], dropped


def _group_codes(
    frame: ModelFrame, factors: tuple[str, ...]
) -> tuple[np.ndarray, list[str], list[Any]]:
    """Codes, labels and level values of a grouping factor (an interaction of columns:
    levels ordered with the first column varying slowest, unused combinations dropped)."""
    gv = [frame.groups[f] for f in factors]
    if len(gv) == 1:
        return gv[0].codes, list(gv[0].levels), list(gv[0].values)
    mult = np.ones(len(gv), dtype=np.int64)
    for i in range(len(gv) - 2, -1, -1):
        mult[i] = mult[i + 1] * gv[i + 1].k
    combo = sum(g.codes * m for g, m in zip(gv, mult, strict=True))
    uniq, codes = np.unique(combo, return_inverse=True)
    labels = [
        ":".join(g.levels[(u // m) % g.k] for g, m in zip(gv, mult, strict=True)) for u in uniq
    ]
    return codes.astype(np.int64), labels, list(labels)


def build_structure(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    *,
    groups: Sequence[str] | str | None = None,
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
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    check_columns(parsed.columns, data.columns, parsed.formula)
    contrasts = dict(contrasts or {})
    fixed_terms = expand(parsed.fixed_node, parsed.formula)
    random_terms = [expand(t.lhs, parsed.formula) for t in parsed.random]
    frame = model_frame(
        data,
        [parsed.response_node],
        fixed_terms,
        *random_terms,
        groups=parsed.grouping_factors,
        contrasts=contrasts,
        columns=list(parsed.columns),
        text=parsed.formula,
    )
    n = frame.n

    # response
    yvar = frame.variables[parsed.response]
    if not isinstance(yvar, NumericVar):
        raise DataError(
            f"The response {parsed.response!r} must be numeric; it holds labels such as "
            f"{yvar.levels[0]!r}. Convert it to numbers or choose another column."
        )
    y = yvar.values

    # fixed effects
    X, names = model_matrix(fixed_terms, frame)
    for j, name in enumerate(names):
        check_scale(X[:, j], f"The column {name!r} of the fixed-effects model matrix")
    X, names, dropped = _drop_rank_deficient(X, names)
    if dropped:
        warnings.warn(
            f"The fixed-effects model matrix is rank deficient, so {len(dropped)} "
            f"column(s) were dropped: {', '.join(dropped)} (as lme4 does).",
            DataWarning,
            stacklevel=2,
        )

    # random effects: sizes first, nothing allocated
    widths = [matrix_width(t, frame) for t in random_terms]
    for term, k in zip(parsed.random, widths, strict=True):
        if k > MAX_RANDOM_COLUMNS:
            raise DataError(
                f"The random-effects term ({term.expr} | {term.group_name}) has {k} columns, "
                f"more than the limit of {MAX_RANDOM_COLUMNS}; use fewer random slopes (or "
                "a factor with fewer levels)."
            )
    n_theta = sum(k * (k + 1) // 2 for k in widths)
    if n_theta > MAX_THETA:
        raise DataError(
            f"The random effects have {n_theta} variance and correlation parameters, more "
            f"than the limit of {MAX_THETA}; use fewer random slopes, or (x || g) for "
            "uncorrelated ones."
        )
    check_entries(n, sum(widths), "The random-effects model matrices (all terms together)")
    raw_blocks = []
    for term, terms in zip(parsed.random, random_terms, strict=True):
        codes, labels, values = _group_codes(frame, term.factors)
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
        T, tnames = random_matrix(
            terms, frame, f"the random-effects term ({term.expr} | {term.group_name})"
        )
        if T.shape[1] == 0:
            raise FormulaError(f"The random term ({term.expr} | {term.group_name}) is empty.")
        for j, tname in enumerate(tnames):
            check_scale(
                T[:, j],
                f"The column {tname!r} of ({term.expr} | {term.group_name})",
                RANDOM_SCALE,
            )
        if n <= len(labels) * T.shape[1]:
            raise DataError(
                f"The term ({term.expr} | {term.group_name}) has {len(labels) * T.shape[1]} "
                f"random effects for {n} observations; the variance parameters are not "
                "identifiable. Use fewer random slopes or more data."
            )
        raw_blocks.append((term, codes, labels, values, T, tnames))
    # lme4 orders terms by decreasing number of levels (stable)
    raw_blocks.sort(key=lambda b: -len(b[2]))
    counts: dict[str, int] = {}
    blocks = []
    for term, codes, labels, values, T, tnames in raw_blocks:
        seen = counts.get(term.group_name, 0)
        counts[term.group_name] = seen + 1
        name = term.group_name if seen == 0 else f"{term.group_name}.{seen}"
        blocks.append(
            RandomBlock(
                name,
                term.group_name,
                tuple(tnames),
                tuple(labels),
                codes,
                T,
                term.correlated,
                tuple(values),
            )
        )
    return ModelStructure(
        parsed=parsed,
        X=X,
        y=y,
        fe_names=tuple(names),
        blocks=tuple(blocks),
        data=frame.data,
        n_dropped_rows=frame.n_dropped,
        dropped_columns=tuple(dropped),
        contrasts=contrasts,
        state=dict(frame.state),
        frame=frame,
    )


#: Magnitudes beyond which double-precision cross-products overflow or lose all precision.
VALUE_SCALE = (1e-100, 1e100)
#: Magnitudes of random-effect columns beyond which a variance can no longer be told from
#: zero: theta is relative to the column's scale (sleepstudy with Days in 1e-8 or 1e8 of
#: its units fits to a wrong, singular optimum; 1e-6 to 1e3 of them fit exactly).
RANDOM_SCALE = (1e-6, 1e6)


def check_response(s: ModelStructure) -> None:
    """Refuse a response that cannot be fitted: constant, or of an unusable magnitude."""
    check_scale(s.y, f"The response {s.response!r}")
    if np.ptp(s.y) == 0:
        raise DataError(
            f"The response {s.response!r} has the same value ({s.y[0]:g}) in all {s.n} rows "
            "used; there is nothing to model. Check the column."
        )


def check_scale(v: np.ndarray, what: str, bounds: tuple[float, float] = VALUE_SCALE) -> None:
    """Refuse values too large or too small for the model to be computed accurately."""
    a = np.abs(v[v != 0])
    lo, hi = bounds
    if a.size and (a.max() > hi or a.max() < lo):
        raise DataError(
            f"{what} has values of size {a.max():.3g}, outside {lo:g} to {hi:g}: on that "
            "scale the model cannot be computed accurately. Rescale it (other units, e.g. "
            "seconds instead of milliseconds, or divide by a power of 10)."
        )
