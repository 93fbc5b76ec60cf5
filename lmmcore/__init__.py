"""lmmcore: power and design of studies analysed with linear mixed models.

Example:
    >>> import lmmcore
    >>> lmmcore.__version__
    '0.1.0'
"""

from __future__ import annotations

from lmmcore.anova import anova
from lmmcore.approx import approx_power, approx_power_curve, expected_information
from lmmcore.autora import DV, IV, SyntheticExperiment, VariableCollection, lmm_experiment
from lmmcore.bootstrap import BootResult, bootMer
from lmmcore.data_io import coerce_numeric, numeric_text, read_csv
from lmmcore.datasets import load_dataset
from lmmcore.design import MAX_ROWS, Covariate, Design, Factor
from lmmcore.engine import warm_up
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
from lmmcore.pilot import extend
from lmmcore.power import (
    PowerResult,
    SampleSizeResult,
    find_sample_size,
    power,
    power_curve,
    smooth_power_table,
)
from lmmcore.presets import PRESETS, Preset
from lmmcore.result import LMMResult, isSingular
from lmmcore.simulate import simulate
from lmmcore.spec import ModelSpec
from lmmcore.standardize import Standardized, standardize, unstandardize
from lmmcore.structure import build_structure

__version__ = "0.1.0"

__all__ = [
    "DV",
    "IV",
    "MAX_ROWS",
    "PRESETS",
    "ModelSpec",
    "PowerResult",
    "Preset",
    "SampleSizeResult",
    "find_sample_size",
    "power",
    "power_curve",
    "smooth_power_table",
    "Covariate",
    "Design",
    "Factor",
    "SyntheticExperiment",
    "VariableCollection",
    "lmm_experiment",
    "BootResult",
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
    "Standardized",
    "anova",
    "approx_power",
    "approx_power_curve",
    "expected_information",
    "bootMer",
    "build_structure",
    "coerce_numeric",
    "extend",
    "fit",
    "isSingular",
    "load_dataset",
    "numeric_text",
    "parse_formula",
    "read_csv",
    "simulate",
    "standardize",
    "unstandardize",
    "warm_up",
    "__version__",
]
