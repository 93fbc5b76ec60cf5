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
from lmmcore.errors import ConvergenceWarning, SingularFitWarning, SpecError
from lmmcore.optimize import minimize_theta
from lmmcore.refit import newton_fit
from lmmcore.result import LMMResult
from lmmcore.structure import ModelStructure, build_structure


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
    if optimizer == "newton":
        opt = newton_fit(engine, responses, rep, theta0, REML, scan=start is None)
    elif optimizer == "bobyqa":

        def objective(theta: np.ndarray) -> float:
            return float(engine.criterion(theta[None, :], reps, responses, REML)[0])

        opt = minimize_theta(
            objective, theta0, structure.theta_lower, columns=structure.theta_columns
        )
    else:
        raise SpecError(f"Unknown optimizer {optimizer!r}; use 'newton' or 'bobyqa'.")
    sol = engine.solve(opt.theta, rep, responses)
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
            warnings.warn(
                "boundary (singular) fit: a random-effect variance is (nearly) zero or a "
                "correlation is +-1; consider simplifying the random-effects structure.",
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
    optimizer: str = "newton",
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
        optimizer: ``"newton"`` (default: a few batched criterion evaluations per
            iteration, quadratic convergence) or ``"bobyqa"`` (lme4's optimiser, run to
            tight tolerances; many more evaluations).

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
    return fit_structure(structure, REML=REML, start=start, optimizer=optimizer)
