"""Run small R scripts (lme4) from the benchmarks and read back their JSON result.

The R side gets a prelude with two helpers:

* ``read_data(path, factors)``: ``read.csv`` with the named columns (comma separated) read as
  character and turned into factors (levels in sorted order, as lme4's fixtures use);
* ``emit(x)``: print a named list / named numeric vector as one JSON line (no jsonlite needed).

``run_r`` returns the parsed JSON of the last ``emit``. ``r_status`` says whether Rscript and
lme4 are usable; callers print its note and skip the R column when they are not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

MARK = "@@BENCH_JSON@@"

PRELUDE = r"""
suppressPackageStartupMessages(library(lme4))
read_data <- function(path, factors) {
  factors <- if (nzchar(factors)) strsplit(factors, ",")[[1]] else character(0)
  d <- read.csv(path, colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
to_json <- function(x) {
  if (is.list(x)) {
    body <- vapply(x, to_json, "")
    if (is.null(names(x))) return(paste0("[", paste(body, collapse = ","), "]"))
    return(paste0("{", paste0("\"", names(x), "\":", body, collapse = ","), "}"))
  }
  v <- if (is.character(x)) paste0("\"", x, "\"")
       else if (is.logical(x)) ifelse(is.na(x), "null", tolower(as.character(x)))
       else ifelse(is.finite(x), sprintf("%.17g", as.double(x)), "null")
  if (!is.null(names(x))) return(paste0("{", paste0("\"", names(x), "\":", v, collapse = ","), "}"))
  if (length(x) == 1) v else paste0("[", paste(v, collapse = ","), "]")
}
emit <- function(x) cat("@@BENCH_JSON@@", to_json(x), "\n", sep = "")
now <- function() as.numeric(Sys.time())
"""

# One thread for R's BLAS, whichever BLAS it is linked to.
R_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@cache
def r_status() -> tuple[bool, str]:
    """(available, note): is ``Rscript`` on PATH with lme4 installed? The note says which."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, "R column skipped: Rscript not found on PATH"
    code = (
        'cat(R.version$major, ".", R.version$minor, " lme4 ",'
        ' if (requireNamespace("lme4", quietly = TRUE)) as.character(packageVersion("lme4"))'
        ' else "MISSING", sep = "")'
    )
    try:
        out = subprocess.run(
            [rscript, "--vanilla", "-e", code], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"R column skipped: Rscript failed to start ({exc})"
    version = out.stdout.strip()
    if out.returncode != 0 or "MISSING" in version or not version:
        return False, f"R column skipped: lme4 not installed for {rscript} ({version or 'no R'})"
    return True, f"R {version} via {rscript} (1 BLAS thread)"


def run_r(script: str, *args: str | os.PathLike, timeout: float = 1800) -> dict:
    """Run ``script`` (R code, after the prelude) with ``commandArgs(trailingOnly=TRUE)`` = args.

    Returns the JSON of the last ``emit(...)``; raises RuntimeError with R's stderr on failure.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.R"
        path.write_text(PRELUDE + script)
        out = subprocess.run(
            ["Rscript", "--vanilla", str(path), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **R_ENV},
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(MARK)]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"Rscript failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK) :])
