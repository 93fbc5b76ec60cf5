"""lmmcore: power and design of studies analysed with linear mixed models.

Example:
    >>> import lmmcore
    >>> lmmcore.__version__
    '0.1.0'
"""

from __future__ import annotations

from lmmcore.errors import (
    BootstrapError,
    ConvergenceWarning,
    DataError,
    DataWarning,
    DesignError,
    FormulaError,
    LmmError,
    PowerError,
    SingularFitWarning,
    SpecError,
)

__version__ = "0.1.0"

__all__ = [
    "BootstrapError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DesignError",
    "FormulaError",
    "LmmError",
    "PowerError",
    "SingularFitWarning",
    "SpecError",
    "__version__",
]
