"""Typed exceptions and warnings of lmmcore.

Every error message says what is wrong and how to fix it, so that the app can show it
to a user as it is.

Example:
    >>> from lmmcore.errors import FormulaError
    >>> isinstance(FormulaError("bad"), ValueError)
    True
"""

from __future__ import annotations


class LmmError(Exception):
    """Base class of every lmmcore error."""


class FormulaError(LmmError, ValueError):
    """A formula does not parse, names an unknown column, or uses a forbidden term."""


class DataError(LmmError, ValueError):
    """The data cannot be used for this model (wrong types, too few levels, empty...)."""


class SpecError(LmmError, ValueError):
    """A model specification (fixed effects, SDs, correlations) is invalid."""


class DesignError(LmmError, ValueError):
    """A study design cannot be built (bad sizes, not divisible, too large for memory)."""


class BootstrapError(LmmError, ValueError):
    """Bad arguments to the bootstrap or a statistic that misbehaves."""


class PowerError(LmmError, RuntimeError):
    """A power simulation cannot proceed (too many failed fits, bad arguments)."""


class LmmWarning(UserWarning):
    """Base class of lmmcore warnings."""


class ConvergenceWarning(LmmWarning):
    """The optimiser did not converge."""


class SingularFitWarning(LmmWarning):
    """The fit is singular: a random-effect variance is zero or a correlation is +-1."""


class DataWarning(LmmWarning):
    """Rows were dropped or columns removed from the data (missing values, rank deficiency)."""
