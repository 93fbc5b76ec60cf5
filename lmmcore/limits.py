"""Every size lmmcore accepts, in one place, and the checks made before allocating.

Formulas, data, designs and simulation requests come from web users, so each size is
checked against a cap *before* anything of that size is allocated or computed, and the
refusal names the size and the cap. The app checks the same caps (and `work_budget` for
every action), so no request can exhaust the server's memory or time.

Example:
    >>> check_entries(1_000, 10, "the fixed-effects model matrix")
    >>> try:
    ...     check_entries(10**7, 10**3, "X")
    ... except DataError as e:
    ...     print(str(e)[:64])
    X would have 10,000,000 rows x 1,000 columns (10,000,000,000 num
"""

from __future__ import annotations

from lmmcore.errors import DataError, LmmError

__all__ = [
    "MAX_CELLS",
    "MAX_DENSE_BYTES",
    "MAX_DENSE_Q",
    "MAX_EXPONENT",
    "MAX_FACTOR_LEVELS",
    "MAX_FIXED_COLUMNS",
    "MAX_FORMULA_DEPTH",
    "MAX_FORMULA_LENGTH",
    "MAX_MATRIX_ENTRIES",
    "MAX_NSIM",
    "MAX_RANDOM_COLUMNS",
    "MAX_TERMS",
    "MAX_THETA",
    "MAX_WORK",
    "check_entries",
    "fmt_bytes",
    "work_budget",
]

#: Characters in one formula.
MAX_FORMULA_LENGTH = 2_000
#: Nesting depth of parentheses and operators in one formula.
MAX_FORMULA_DEPTH = 60
#: Largest |exponent| in I(x^k) (a literal number; powers of columns only).
MAX_EXPONENT = 16
#: Terms of the fixed part after expanding *, ^ and / (main effects and interactions).
MAX_TERMS = 256
#: Columns of the fixed-effects model matrix.
MAX_FIXED_COLUMNS = 1_000
#: Columns of one random-effects term (a k x k covariance block has k(k+1)/2 parameters).
MAX_RANDOM_COLUMNS = 16
#: Variance parameters (theta) of a whole model.
MAX_THETA = 150
#: Numbers in one dense matrix (X, one random-effects term's columns): 400 MB of float64.
MAX_MATRIX_ENTRIES = 50_000_000
#: Bytes of the engine's dense remainder of one design (lmmcore.engine.dense_bytes).
MAX_DENSE_BYTES = 2**30
#: Random effects (q, summed over terms and levels) of a design that `approx_power` accepts:
#: it works with a handful of dense q x q matrices (72 MB each at the cap, about a second).
MAX_DENSE_Q = 3_000
#: Cells (rows x columns) of a data table or a design's conditions table.
MAX_CELLS = 60_000_000
#: Levels of one factor of a design, and of one factor used as a fixed effect.
MAX_FACTOR_LEVELS = 500
#: Simulations (or bootstrap replicates) in one call.
MAX_NSIM = 1_000_000
#: Simulated observations in one action (simulations x rows, summed over design points).
MAX_WORK = 50_000_000


def fmt_bytes(n: float) -> str:
    """A byte count in words.

    Example:
        >>> fmt_bytes(8 * 50_000_000), fmt_bytes(2.5e9)
        ('400 MB', '2.5 GB')
    """
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{int(n)} bytes"


def check_entries(
    rows: int,
    cols: int,
    what: str,
    cap: int = MAX_MATRIX_ENTRIES,
    error: type[LmmError] = DataError,
    fix: str = "Use fewer rows or fewer columns (factor levels, interactions).",
) -> None:
    """Refuse a dense ``rows x cols`` float64 array above ``cap`` numbers, before it exists."""
    n = int(rows) * int(cols)
    if n > cap:
        raise error(
            f"{what} would have {int(rows):,} rows x {int(cols):,} columns ({n:,} numbers, "
            f"{fmt_bytes(8 * n)}); the limit is {cap:,} numbers ({fmt_bytes(8 * cap)}). {fix}"
        )


def work_budget(
    observations: int, what: str, cap: int | None = None, error: type[LmmError] = DataError
) -> int:
    """Refuse an action that would simulate more than ``cap`` observations in total.

    ``observations`` is simulations x rows, summed over every design point the action
    computes (a power curve, a heatmap, "add more simulations", a bootstrap).

    Example:
        >>> work_budget(1000 * 5000, "this power curve")
        5000000
    """
    n = int(observations)
    cap = MAX_WORK if cap is None else cap  # read at call time: one budget, one place
    if n > cap:
        raise error(
            f"{what} would simulate {n:,} observations (simulations x rows), more than the "
            f"limit of {cap:,}. Use fewer simulations, fewer design points or a smaller design."
        )
    return n
