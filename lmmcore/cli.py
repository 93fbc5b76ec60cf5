"""Command line: ``lmmcore power SPEC.json --nsim 1000 --vary subjects=10,20,40 --out power.csv``.

SPEC.json holds ``{"spec": ModelSpec.to_dict(), "design": Design.to_dict()}``. Errors in
the file are reported with the offending field and exit code 2 (no traceback).

Example:
    >>> main(["--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmmcore.errors import LmmError

__all__ = ["main"]

DESCRIPTION = """\
lmmcore: power analysis of linear mixed models by simulation.

  lmmcore power SPEC.json --nsim 1000 --vary subjects=10,20,40 --out results.csv

SPEC.json is {"spec": <ModelSpec.to_dict()>, "design": <Design.to_dict()>}; the spec gives
the formula, fixed effects, random-effect SDs/correlations and residual SD, the design the
subjects, items and factors. Every fixed effect is tested in every simulated data set; the
output has one row per design point and effect (power, its 95% Clopper-Pearson CI, bias,
coverage, fit counts). Effects whose true value is 0 report the type I error rate.
"""

POWER_EPILOG = """\
examples:
  lmmcore power p1.json --nsim 1000 --seed 1
  lmmcore power p1.json --vary subjects=10,20,40 --vary items=20,40 --out grid.csv
  lmmcore power p1.json --test wald --backend dask --scheduler tcp://10.0.0.5:8786
"""


class _Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lmmcore",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    pw = sub.add_parser(
        "power",
        help="simulate power for a spec + design JSON file",
        description="Power of every fixed effect by simulation (simulate, refit, test).",
        epilog=POWER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pw.add_argument("spec", metavar="SPEC.json", help='{"spec": {...}, "design": {...}}')
    pw.add_argument(
        "--nsim", type=int, default=1000, help="simulations per design point (at most 1,000,000)"
    )
    pw.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="DIM=N1,N2,...",
        help="sizes to try: subjects=10,20,40 or items=...; twice for a 2-D grid",
    )
    pw.add_argument(
        "--test",
        default="satterthwaite",
        choices=["satterthwaite", "wald", "kr", "lrt"],
        help="satterthwaite (default), wald (z), kr (Kenward-Roger, slow), lrt",
    )
    pw.add_argument("--alpha", type=float, default=0.05, help="significance level")
    pw.add_argument("--effects", help="comma-separated effects to test (default: all)")
    pw.add_argument("--formula", help="analysis formula, if it differs from the spec's")
    pw.add_argument("--seed", type=int, default=None, help="random seed (reproducible runs)")
    pw.add_argument("--n-jobs", type=int, default=1, help="worker processes (-1: all cores)")
    pw.add_argument("--backend", choices=["local", "processes", "dask"], default=None)
    pw.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    pw.add_argument("--out", help="write the table as CSV here (default: print it)")
    pw.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def _vary(items: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for it in items:
        name, eq, values = it.partition("=")
        if not eq or name not in ("subjects", "items", "trials"):
            raise _Usage(f"--vary {it!r}: use subjects=10,20,40 (or items=..., trials=...).")
        try:
            sizes = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise _Usage(f"--vary {it!r}: sizes must be whole numbers, e.g. 10,20,40.") from None
        if not sizes or min(sizes) < 1:
            raise _Usage(f"--vary {it!r}: give one or more positive sizes.")
        out[name] = sizes
    return out


#: Largest spec file read (a spec with a design is a few kB).
MAX_SPEC_BYTES = 1_000_000


def _load(path: str) -> tuple[Any, Any]:
    from lmmcore.design import Design
    from lmmcore.spec import ModelSpec

    try:
        p = Path(path)
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise _Usage(
                f"{path} is {size:,} bytes, more than the limit of {MAX_SPEC_BYTES:,} for a spec "
                "file; export it again from the app or from ModelSpec.to_dict()."
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise _Usage(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Usage(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Usage(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise _Usage(f"{path} is nested too deeply to be a spec file.") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise _Usage(f"{path} holds a value that cannot be read: {exc}.") from None
    if not isinstance(data, dict) or "spec" not in data or "design" not in data:
        raise _Usage(
            f'{path}: expected {{"spec": {{...}}, "design": {{...}}}} at the top level; '
            f"found {sorted(data) if isinstance(data, dict) else type(data).__name__}."
        )
    try:
        spec = ModelSpec.from_dict(data["spec"])
    except (LmmError, TypeError, ValueError) as exc:
        raise _Usage(f"{path}: field 'spec': {exc}") from None
    try:
        design = Design.from_dict(data["design"])
    except (LmmError, TypeError, ValueError) as exc:
        raise _Usage(f"{path}: field 'design': {exc}") from None
    return spec, design


def _power(args: argparse.Namespace) -> int:
    from lmmcore.power import power, power_curve, smooth_power_table

    spec, design = _load(args.spec)
    vary = _vary(args.vary)
    backend: Any = args.backend
    if args.scheduler:
        backend = args.scheduler
    elif backend == "dask":
        raise _Usage("--backend dask needs --scheduler tcp://host:port.")
    kw: dict[str, Any] = {
        "nsim": args.nsim,
        "alpha": args.alpha,
        "test": args.test,
        "effects": args.effects.split(",") if args.effects else None,
        "formula": args.formula,
        "seed": args.seed,
        "n_jobs": args.n_jobs,
        "backend": backend,
        "show_progress": args.progress,
    }
    requested = int(args.nsim)
    try:
        if vary:
            table = power_curve(spec, design, vary, **kw)
            interrupted = bool(table.attrs.get("interrupted"))
        else:
            res = power(spec, design, **kw)
            table = smooth_power_table(res.table).reset_index().assign(nsim=res.nsim)
            interrupted = res.interrupted
    except LmmError as exc:
        raise _Usage(str(exc)) from None
    if interrupted:
        # mark partial output: every row says how many simulations it rests on
        table["complete"] = table["nsim"] >= requested
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} rows to {args.out}")
    else:
        cols = [c for c in ("subjects", "items", "trials") if c in table.columns]
        cols += ["effect", "quantity", "power", "ci_lower", "ci_upper", "power_rejections"]
        cols += ["n_valid", "n_failed"]
        cols += ["nsim"] + (["complete"] if interrupted else [])
        print(table[cols].to_string(index=False))
    if interrupted:
        dims = [c for c in ("subjects", "items", "trials") if c in table.columns and vary]
        done = len(table.drop_duplicates(dims)) if dims else 1
        total = math.prod(len(v) for v in vary.values()) if vary else 1
        print(
            f"lmmcore power: interrupted: results for {done} of {total} design point(s); rows "
            f"with complete=False rest on fewer than {requested} simulations (see 'nsim').",
            file=sys.stderr,
        )
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _power(args)
    except _Usage as exc:
        print(f"lmmcore power: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmmcore power: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
