"""``fit``: formula -> structure -> objective(theta) -> optimise -> result (lme4's ``lmer``).

The optimiser is the refit engine's projected Newton iteration (a handful of batched
criterion evaluations per step); BOBYQA, lme4's optimiser, is kept as ``optimizer=
"bobyqa"`` and as the reference the tests compare Newton's optimum with.

Example:
    >>> import lmmcore
    >>> from lmmcore.datasets import load_dataset
    >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", load_dataset("sleepstudy"))
    >>> round(res.objective, 3)
    1743.628
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lmmcore.engine import Engine, Responses
from lmmcore.errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    SingularFitWarning,
    SpecError,
)
from lmmcore.optimize import minimize_theta
from lmmcore.refit import newton_fit
from lmmcore.result import LMMResult
from lmmcore.structure import ModelStructure, build_structure, check_response


def fit_structure(
    structure: ModelStructure,
    *,
    REML: bool = True,
    engine: Engine | None = None,
    responses: Responses | None = None,
    rep: int = 0,
    start: np.ndarray | None = None,
    warn: bool = True,
    optimizer: str = "newton",
) -> LMMResult:
    """Fit a model whose structure is already built (one column of a response block).

    ``optimizer``: ``"newton"`` (default; the batched refit engine's projected Newton
    iteration, see :func:`lmmcore.refit.newton_fit`) or ``"bobyqa"`` (NLopt's BOBYQA to
    tight tolerances with restarts, as lme4's default optimiser; the reference the tests
    compare Newton with).
    """
    engine = engine or Engine(structure)
    responses = responses if responses is not None else engine.responses(structure.y)
    reps = np.array([rep])
    theta0 = structure.theta0 if start is None else np.asarray(start, dtype=float)
    if optimizer not in ("newton", "bobyqa"):
        raise SpecError(f"Unknown optimizer {optimizer!r}; use 'newton' or 'bobyqa'.")
    try:
        if optimizer == "newton":
            opt = newton_fit(engine, responses, rep, theta0, REML, scan=start is None)
        else:

            def objective(theta: np.ndarray) -> float:
                return float(engine.criterion(theta[None, :], reps, responses, REML)[0])

            opt = minimize_theta(
                objective, theta0, structure.theta_lower, columns=structure.theta_columns
            )
        sol = engine.solve(opt.theta, rep, responses)
    except np.linalg.LinAlgError as exc:
        raise DataError(
            f"The model could not be computed ({exc}): a matrix of the fit is numerically "
            "singular. This happens with predictors or a response on extreme scales, or "
            "predictors that are (nearly) copies of each other; rescale or remove them."
        ) from None
    res = LMMResult(structure, engine, responses, rep, sol, opt, REML)
    if warn:
        if not res.converged:
            warnings.warn(
                f"The optimiser did not converge ({opt.message}); estimates may be inaccurate. "
                "Simplify the random-effects structure or rescale the predictors.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if res.is_singular:
            big = [
                (t, float(np.abs(b.T[:, j]).max()))
                for b in structure.blocks
                for j, t in enumerate(b.terms)
                if np.abs(b.T[:, j]).max() > 100
            ]
            hint = (
                f" Note: {big[0][0]} has values of size {big[0][1]:.3g}; a random-effect SD on "
                "that scale can look like zero, so rescale it (e.g. divide by 100) and refit."
                if big
                else ""
            )
            warnings.warn(
                "boundary (singular) fit: a random-effect variance is (nearly) zero or a "
                "correlation is +-1; consider simplifying the random-effects structure." + hint,
                SingularFitWarning,
                stacklevel=3,
            )
    return res


def refit_ml(result: LMMResult, warn: bool = True) -> LMMResult:
    """The same model fitted by maximum likelihood, started from the fit's theta (lme4's
    ``refitML``); an ML fit is returned as it is."""
    if not result.REML:
        return result
    return fit_structure(result.structure, REML=False, start=result.theta, warn=warn)


#: interlace's ``method=`` values and the ``REML`` flag each means
METHODS = {"REML": True, "ML": False}


def _reml_flag(REML: object, method: object) -> bool:
    """``REML`` (a bool) or interlace's ``method="REML" | "ML"``, checked."""
    if REML is not None and not isinstance(REML, bool | np.bool_):
        raise TypeError(
            f"REML must be True (REML, the default) or False (maximum likelihood), got "
            f"{REML!r}; interlace's method='REML' or method='ML' is also accepted."
        )
    if method is None:
        return True if REML is None else bool(REML)
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise TypeError(f"method must be 'REML' or 'ML' (interlace's names), got {method!r}.")
    flag = METHODS[method.upper()]
    if REML is not None and bool(REML) != flag:
        raise TypeError(
            f"REML={REML!r} contradicts method={method!r}; give one of them "
            "(REML=True is method='REML', REML=False is method='ML')."
        )
    return flag


def _check_groups(groups: object) -> str | Sequence[str] | None:
    """interlace's ``groups``: one column name or a list of them (the parser adds the
    terms); anything else is a FormulaError, not a TypeError from deep inside."""
    if groups is None or isinstance(groups, str | Sequence):
        return groups
    raise FormulaError(
        f"groups must be a column name or a list of column names, got {type(groups).__name__}."
    )


def fit(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool | None = None,
    method: str | None = None,
    groups: str | Sequence[str] | None = None,
    contrasts: Mapping[str, str] | None = None,
    start: np.ndarray | None = None,
    optimizer: str = "newton",
) -> LMMResult:
    """Fit a linear mixed model by REML (default) or ML, as ``lme4::lmer``.

    Args:
        formula: lme4 syntax, e.g. ``"rt ~ cond + (1 + cond | subj) + (1 | item)"``.
        data: a DataFrame holding every column the formula names.
        REML: True (REML, lme4's default when neither this nor ``method`` is given) or
            False (maximum likelihood); anything but a bool is a TypeError.
        method: interlace's spelling, ``"REML"`` or ``"ML"``, instead of ``REML``.
        groups: interlace's convenience, ``groups=["subject", "item"]`` adds crossed
            random intercepts ``(1 | subject) + (1 | item)``; ``groups="subject"`` is one
            column.
        contrasts: coding per factor column: ``"treatment"`` (default), ``"sum"``,
            ``"helmert"``, ``"poly"`` (default for ordered categoricals), ``"diff"``.
        start: starting theta (default: lme4's, identity Lambda).
        optimizer: ``"newton"`` (default: a few batched criterion evaluations per
            iteration, quadratic convergence) or ``"bobyqa"`` (lme4's optimiser, run to
            tight tolerances; many more evaluations).

    Returns:
        LMMResult

    Raises:
        FormulaError, DataError: bad formula, ``groups`` or data, with a message that says
            the fix.
        TypeError: ``REML`` not a bool, ``method`` not ``"REML"``/``"ML"``, or the two
            contradicting each other.

    Example:
        >>> import lmmcore
        >>> from lmmcore.datasets import load_dataset
        >>> r = lmmcore.fit("Yield ~ 1 + (1 | Batch)", load_dataset("Dyestuff"))
        >>> round(r.sigma, 3)
        49.51
        >>> lmmcore.fit("Yield ~ 1", load_dataset("Dyestuff"), groups="Batch", method="ML").REML
        False
    """
    reml = _reml_flag(REML, method)
    structure = build_structure(formula, data, groups=_check_groups(groups), contrasts=contrasts)
    check_response(structure)
    return fit_structure(structure, REML=reml, start=start, optimizer=optimizer)
