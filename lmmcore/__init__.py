"""lmmcore: power and design of studies analysed with linear mixed models.

Example:
    >>> import lmmcore
    >>> lmmcore.__version__
    '0.1.0'
"""

from __future__ import annotations

from lmmcore.datasets import load_dataset
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
from lmmcore.fit import fit
from lmmcore.formula import parse_formula
from lmmcore.result import LMMResult
from lmmcore.structure import build_structure

__version__ = "0.1.0"

__all__ = [
    "BootstrapError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DesignError",
    "FormulaError",
    "LMMResult",
    "LmmError",
    "PowerError",
    "SingularFitWarning",
    "SpecError",
    "build_structure",
    "fit",
    "load_dataset",
    "parse_formula",
    "__version__",
]
