"""Likelihood-ratio tests between nested fits (lme4's ``anova(m0, m1, ...)``).

As lme4, REML fits are refitted by maximum likelihood first (a likelihood-ratio test
between REML criteria of models with different fixed effects is meaningless), with a
warning that says so; the models are ordered by their number of parameters, and each row
tests the model against the one above it.

Example:
    >>> import warnings, lmmcore
    >>> data = lmmcore.load_dataset("sleepstudy")
    >>> m0 = lmmcore.fit("Reaction ~ Days + (1 | Subject)", data, REML=False)
    >>> m1 = lmmcore.fit("Reaction ~ Days + (Days | Subject)", data, REML=False)
    >>> tab = lmmcore.anova(m1, m0, model_names=["m1", "m0"])
    >>> tab.index.tolist(), tab["npar"].tolist(), round(float(tab.loc["m1", "Chisq"]), 4)
    (['m0', 'm1'], [4, 6], 42.1393)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lmmcore.errors import DataError, LmmWarning
from lmmcore.fit import refit_ml
from lmmcore.result import LMMResult

#: lme4's columns, in its order
COLUMNS = ("npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)")


def anova(
    *models: LMMResult, refit: bool = True, model_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Likelihood-ratio tests between two or more nested models fitted to the same data.

    Args:
        *models: fitted models (``lmmcore.fit``), in any order.
        refit: refit REML fits by ML first (lme4's default); with ``refit=False`` the
            criteria are compared as they are, with a warning if REML and ML fits mix.
        model_names: row names, one per model in the order given (default ``MODEL1``,
            ``MODEL2``, ...: Python cannot see the variable names R would print).

    Returns:
        lme4's table, one row per model ordered by number of parameters (ties keep the
        order given): ``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance``, and, from the
        second row on, ``Chisq`` (twice the log-likelihood gain over the row above, at
        least 0), ``Df`` (the extra parameters) and ``Pr(>Chisq)``. ``table.attrs``
        holds ``"heading"`` (the models and their formulas, as lme4 prints them) and
        ``"refitted"`` (the names of the models refitted by ML).

    Raises:
        TypeError: fewer than two models, or something that is not a fitted model.
        DataError: the models were not fitted to the same observations.
    """
    if len(models) < 2 or not all(isinstance(m, LMMResult) for m in models):
        raise TypeError(
            "anova() compares two or more models fitted with lmmcore.fit, e.g. "
            f"anova(m0, m1); got {[type(m).__name__ for m in models]}."
        )
    if model_names is None:
        names = [f"MODEL{i + 1}" for i in range(len(models))]
    else:
        names = [str(n) for n in model_names]
        if len(names) != len(models) or len(set(names)) != len(names):
            raise TypeError(
                f"model_names must give {len(models)} different names, one per model; got "
                f"{model_names!r}."
            )
    first = models[0]
    for name, m in zip(names, models, strict=True):
        if m.nobs != first.nobs or not np.array_equal(m.y, first.y):
            raise DataError(
                f"{name} was fitted to other observations than {names[0]} ({m.nobs} vs "
                f"{first.nobs} rows, or other response values); likelihood-ratio tests "
                "need every model fitted to the same rows of the same data."
            )
    reml = [m.REML for m in models]
    refitted: list[str] = []
    if refit and any(reml):
        refitted = [n for n, r in zip(names, reml, strict=True) if r]
        warnings.warn(
            f"refitting model(s) with ML (instead of REML): {', '.join(refitted)} (as lme4; "
            "pass refit=False to compare the criteria as they are).",
            LmmWarning,
            stacklevel=2,
        )
        models = tuple(refit_ml(m) for m in models)
    elif any(reml) and not all(reml):
        warnings.warn("some models fit with REML = TRUE, some not", LmmWarning, stacklevel=2)
    npar = np.array([m.n_params for m in models])
    order = np.argsort(npar, kind="stable")
    ordered = [models[i] for i in order]
    llk = np.array([m.llf for m in ordered])
    npar = npar[order]
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0.0, np.diff(llk))])
    df = np.concatenate([[np.nan], np.diff(npar).astype(float)])
    with np.errstate(invalid="ignore"):
        p = np.where(df == 0, np.nan, stats.chi2.sf(chisq, df))
    table = pd.DataFrame(
        {
            "npar": npar,
            "AIC": [m.aic for m in ordered],
            "BIC": [m.bic for m in ordered],
            "logLik": llk,
            "deviance": -2 * llk,
            "Chisq": chisq,
            "Df": pd.array([None, *np.diff(npar).tolist()], dtype="Int64"),
            "Pr(>Chisq)": p,
        },
        index=pd.Index([names[i] for i in order]),
    )
    table.attrs["heading"] = [
        "Models:",
        *(f"{names[i]}: {models[i].formula}" for i in order),
    ]
    table.attrs["refitted"] = refitted
    return table
