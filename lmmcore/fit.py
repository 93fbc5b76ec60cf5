"""``fit``: formula -> structure -> objective(theta) -> optimise -> result (lme4's ``lmer``).

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
from lmmcore.errors import ConvergenceWarning, DataError, SingularFitWarning
from lmmcore.optimize import minimize_theta
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
) -> LMMResult:
    """Fit a model whose structure is already built (one column of a response block)."""
    engine = engine or Engine(structure)
    responses = responses if responses is not None else engine.responses(structure.y)
    reps = np.array([rep])

    def objective(theta: np.ndarray) -> float:
        return float(engine.criterion(theta[None, :], reps, responses, REML)[0])

    theta0 = structure.theta0 if start is None else np.asarray(start, dtype=float)
    try:
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


def fit(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    groups: Sequence[str] | None = None,
    contrasts: Mapping[str, str] | None = None,
    start: np.ndarray | None = None,
) -> LMMResult:
    """Fit a linear mixed model by REML (default) or ML, as ``lme4::lmer``.

    Args:
        formula: lme4 syntax, e.g. ``"rt ~ cond + (1 + cond | subj) + (1 | item)"``.
        data: a DataFrame holding every column the formula names.
        REML: REML (True, lme4's default) or maximum likelihood.
        groups: interlace's convenience, ``groups=["subject", "item"]`` adds crossed
            random intercepts ``(1 | subject) + (1 | item)``.
        contrasts: coding per factor column: ``"treatment"`` (default), ``"sum"``,
            ``"helmert"``, ``"poly"`` (default for ordered categoricals), ``"diff"``.
        start: starting theta (default: lme4's, identity Lambda).

    Returns:
        LMMResult

    Raises:
        FormulaError, DataError: bad formula or data, with a message that says the fix.

    Example:
        >>> import lmmcore
        >>> from lmmcore.datasets import load_dataset
        >>> r = lmmcore.fit("Yield ~ 1 + (1 | Batch)", load_dataset("Dyestuff"))
        >>> round(r.sigma, 3)
        49.51
    """
    structure = build_structure(formula, data, groups=groups, contrasts=contrasts)
    check_response(structure)
    return fit_structure(structure, REML=REML, start=start)
