"""The hostile corpus: inputs a web user (or a shared file) could send, and how to run one.

Each case is (id, kind, payload, expect): ``expect`` is ``"reject"`` (a typed lmmcore error,
or exit code 2 for the CLI, in under 2 s) or ``"safe"`` (accepted, with the hostile text
kept as plain data: names and levels survive literally, exported scripts carry them only
inside string literals and quoted names). Code-execution attempts try to create a file
named ``pwned`` (or ``pwned_<something>``) in the working directory; `test_hostile.py`
runs every case in its own process in an empty directory and checks that no file appears.
The reproductions of ``../shared/security/`` are the first cases.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SECURITY = ROOT.parent / "shared" / "security"
EXEC = "__import__('os').system('touch pwned')"
OPEN = "open('pwned', 'w').write('x')"


def security_reproduction() -> dict:
    """``../shared/security/backtick-rce.json`` (the code-execution reproduction)."""
    path = SECURITY / "backtick-rce.json"
    if path.exists():
        return json.loads(path.read_text())
    raise FileNotFoundError(
        f"{path} is missing: the security reproductions must sit beside the checkout, in "
        f"{SECURITY.parent} (clone the project next to its shared/ folder, as CI does)."
    )


def frame(columns: dict[str, str] | None = None, n: int = 40) -> pd.DataFrame:
    """Data for a formula: numeric columns in [1, 2], grouping columns of 4 levels."""
    rng = np.random.default_rng(0)
    cols = columns or {"y": "numeric", "x": "numeric", "z": "numeric", "g": "grouping"}
    out = {}
    for name, kind in cols.items():
        if "grouping" in kind:
            out[name] = np.repeat(list("abcd"), n // 4)
        else:
            out[name] = rng.uniform(1, 2, n)
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- formulas

CODE_FORMULAS = [
    f"y ~ {EXEC}",
    f'y ~ exec("{OPEN}")',
    "y ~ eval('1')",
    f"y ~ {OPEN}",
    "y ~ compile('x', 'f', 'exec')",
    "y ~ globals()",
    "y ~ locals()",
    "y ~ vars()",
    "y ~ getattr(x, 'a')",
    "y ~ setattr(x, 'a', 1)",
    "y ~ x.__class__",
    "y ~ x.__class__.__bases__",
    "y ~ I(x.__class__)",
    "y ~ log(x).real",
    "y ~ I(x)[0]",
    "y ~ x[0]",
    "y ~ x + {1: 2}",
    "y ~ [x]",
    "y ~ x; import os",
    "y ~ x\nimport os",
    "y ~ x # comment",
    "y ~ lambda: 1",
    "y ~ (lambda: 1)()",
    "y ~ x if x else x",
    "y ~ x @ x",
    "y ~ (x := 1)",
    "y ~ f'{x}'",
    "y ~ 'x'",
    'y ~ "x"',
    "y ~ np.exp(x)",
    "y ~ pd.eval('1')",
    "y ~ os.system('touch pwned')",
    "y ~ sys.exit()",
    "y ~ breakpoint()",
    "y ~ print(x)",
    "y ~ input()",
    "y ~ type(x)",
    "y ~ object()",
    "y ~ dir()",
    "y ~ C(x, os)",
    "y ~ C(g, I(x))",
    "y ~ C(x, __import__)",
    "y ~ C(x, 'sum')",
    "y ~ C(log(x), sum)",
    "y ~ I(exec)",
    "y ~ `ｅｘｅｃ`(x)",
    "y ~ `exec`(x)",
    "y ~ `__import__`",
    "y ~ ＿＿import＿＿",
    "y ~ `＿＿import＿＿`",
    "y ~ `__builtins__`",
    "y ~ x.__dict__",
    "y ~ _x",
    "y ~ `_x`",
    "y ~ I(`__class__`)",
    "y ~ \\x41",
    "y ~ `x",
    "y ~ `a\\nb`",
    "y ~ x\x00",
    "y ~ x + `a\x01b`",
    "y ~ x +\u202e z",
    "y ~ x + (1 | g) + (1 | `__import__`)",
    "y ~ x + (1 | g) + (1 | os.system('x'))",
    f"{EXEC} ~ x + (1 | g)",
    "log(y, 2) ~ x + (1 | g)",
    "y ~ log(x, base=2) + (1 | g)",
]

DOS_FORMULAS = [
    "y ~ I(9^9^9) + (1 | g)",
    "y ~ I(10**10**10) + (1 | g)",
    "y ~ I(x^1e9) + (1 | g)",
    "y ~ I(x^(2^100)) + (1 | g)",
    "y ~ I(2^x) + (1 | g)",
    "y ~ I(x^z) + (1 | g)",
    "y ~ I(x^17) + (1 | g)",
    "y ~ I(x^-99) + (1 | g)",
    "y ~ (x + z)^0.5 + (1 | g)",
    "y ~ " + "(" * 1000 + "x" + ")" * 1000 + " + (1 | g)",
    "y ~ " + "(" * 400 + "x" + ")" * 400 + " + (1 | g)",
    "y ~ " + "I(" * 300 + "x" + ")" * 300 + " + (1 | g)",
    "y ~ " + "-" * 500 + "x + (1 | g)",
    "y ~ " + "x + " * 600 + "(1 | g)",
    "y ~ " + " + ".join(f"I(x^{k % 16})" for k in range(400)) + " + (1 | g)",
    "y ~ x + (1 | g)" + " + (1 | g)" * 300,
]

SYNTAX_FORMULAS = [
    "y ~ x %in% g + (1 | g)",
    "y ~ . + (1 | g)",
    "y ~ x | g",
    "y ~ x + (1 | g):x",
    "y ~ x - (1 | g)",
    "y ~ x + (1 | g | z)",
    "y ~ x + (1 | log(g))",
    "y ~ x + (1 | g)(x)",
    "y ~ 2 + x + (1 | g)",
    "y ~ x:1 + (1 | g)",
    "y ~ x + (1 | g",
    "y ~ x + (1 | g))",
    "y ~ x ~ z + (1 | g)",
    "~ x + (1 | g)",
    "",
]


def _columns_formula(n: int) -> str:
    return "y ~ (" + " + ".join(f"c{i}" for i in range(n)) + f")^{n} + (1 | g)"


def _columns_data(n: int) -> dict[str, str]:
    return {"y": "numeric", **{f"c{i}": "numeric" for i in range(n)}, "g": "grouping"}


def formula_cases() -> list[tuple[str, str, Any, str]]:
    sec = security_reproduction()
    cases: list[tuple[str, str, Any, str]] = [
        (
            "security-backtick-rce",
            "fit",
            {"formula": sec["formula"], "columns": sec["columns"]},
            "reject",
        ),
        ("security-dos-P1", "spec_p1", sec["dos_formula"], "reject"),
        (
            "expand-12-columns-to-the-12th",
            "fit",
            {"formula": _columns_formula(12), "columns": _columns_data(12)},
            "reject",
        ),
        (
            "expand-20-way-product",
            "fit",
            {
                "formula": "y ~ " + "*".join(f"c{i}" for i in range(20)) + " + (1 | g)",
                "columns": _columns_data(20),
            },
            "reject",
        ),
    ]
    for i, f in enumerate(CODE_FORMULAS):
        cases.append((f"code-{i:02d}", "fit", {"formula": f + " + (1 | g)"}, "reject"))
    for i, f in enumerate(DOS_FORMULAS):
        cases.append((f"dos-{i:02d}", "fit", {"formula": f}, "reject"))
    for i, f in enumerate(SYNTAX_FORMULAS):
        cases.append((f"syntax-{i:02d}", "fit", {"formula": f}, "reject"))
    # names that look like code are refused, or must be columns of the data
    cases += [
        ("fullwidth-name-not-a-column", "fit", {"formula": "y ~ `ｘ` + (1 | g)"}, "reject"),
        (
            "dunder-column-name",
            "fit",
            {
                "formula": "y ~ `__class__` + (1 | g)",
                "columns": {"y": "numeric", "__class__": "numeric", "g": "grouping"},
            },
            "reject",
        ),
        (
            "fullwidth-dunder-column-name",
            "fit",
            {
                "formula": "y ~ `＿＿class＿＿` + (1 | g)",
                "columns": {"y": "numeric", "＿＿class＿＿": "numeric", "g": "grouping"},
            },
            "reject",
        ),
    ]
    return cases


# ----------------------------------------------------------------------------- JSON

SPEC_OK = {
    "formula": "y ~ 1 + x + (1 + x | subj) + (1 | item)",
    "fixed": {"(Intercept)": 0.0, "x": 0.5},
    "random": {
        "subj": {"sd": {"(Intercept)": 1.0, "x": 0.5}, "corr": [[1, 0.2], [0.2, 1]]},
        "item": {"sd": {"(Intercept)": 1.0}},
    },
    "sigma": 1.0,
}
DESIGN_OK = {"subjects": 8, "items": 8, "factors": [{"name": "x", "levels": ["a", "b"]}]}


def _spec(**changes: Any) -> dict:
    out = json.loads(json.dumps(SPEC_OK))
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _design(**changes: Any) -> dict:
    out = json.loads(json.dumps(DESIGN_OK))
    out.update(changes)
    return out


def json_cases() -> list[tuple[str, str, Any, str]]:
    subj = SPEC_OK["random"]["subj"]

    def corr(c: Any) -> dict:
        return _spec(random={**SPEC_OK["random"], "subj": {**subj, "corr": c}})

    specs = {
        "unknown-field": _spec(evil=EXEC),
        "wrong-kind": _spec(kind="os.system"),
        "wrong-version": _spec(version=99),
        "formula-code": _spec(formula=f"y ~ {EXEC} + (1 | subj)"),
        "formula-dos": _spec(formula="y ~ x + I(9^9^9) + (1 | subj)"),
        "formula-not-string": _spec(formula=["y ~ x"]),
        "response-transform": _spec(formula="log(y) ~ x + (1 | subj)"),
        "fixed-not-dict": _spec(fixed=[1, 2]),
        "fixed-string-value": _spec(fixed={"(Intercept)": "0", "x": EXEC}),
        "fixed-nan": _spec(fixed={"(Intercept)": float("nan"), "x": 1}),
        "fixed-bool": _spec(fixed={"(Intercept)": True, "x": 1}),
        "fixed-2000-keys": _spec(fixed={f"c{i}": 1.0 for i in range(2000)}),
        "sigma-zero": _spec(sigma=0),
        "sigma-string": _spec(sigma=EXEC),
        "sigma-missing": _spec(sigma=None),
        "random-unknown-group": _spec(random={**SPEC_OK["random"], EXEC: {"sd": {"x": 1}}}),
        "sd-negative": _spec(random={**SPEC_OK["random"], "item": {"sd": {"(Intercept)": -1}}}),
        "corr-3x3": _spec(
            random={**SPEC_OK["random"], "subj": {**subj, "corr": np.eye(3).tolist()}}
        ),
        "corr-ragged": _spec(random={**SPEC_OK["random"], "subj": {**subj, "corr": [[1], [0, 1]]}}),
        "corr-huge": _spec(
            random={**SPEC_OK["random"], "subj": {**subj, "corr": [[0] * 3000] * 3000}}
        ),
        "corr-above-1": _spec(
            random={**SPEC_OK["random"], "subj": {**subj, "corr": [[1, 2], [2, 1]]}}
        ),
        "corr-string": _spec(random={**SPEC_OK["random"], "subj": {**subj, "corr": EXEC}}),
        "random-extra-key": _spec(
            random={**SPEC_OK["random"], "item": {"sd": {"(Intercept)": 1}, "code": EXEC}}
        ),
        "contrasts-unknown": _spec(contrasts={"x": EXEC}),
        "contrasts-list": _spec(contrasts=["sum"]),
    }
    designs = {
        "factor-30000-levels": _design(
            factors=[
                {
                    "name": "f",
                    "levels": [f"l{i}" for i in range(30000)],
                    "varies": "between_subject",
                }
            ],
            subjects=30000,
        ),
        "nested-level-lists": _design(factors=[{"name": "x", "levels": [["a", "b"], "c"]}]),
        "level-dicts": _design(factors=[{"name": "x", "levels": [{"eval": EXEC}, "b"]}]),
        "one-level": _design(factors=[{"name": "x", "levels": ["a"]}]),
        "duplicate-levels": _design(factors=[{"name": "x", "levels": ["a", "a"]}]),
        "level-control-char": _design(factors=[{"name": "x", "levels": ["a\nb", "c"]}]),
        "level-1000-chars": _design(factors=[{"name": "x", "levels": ["a" * 1000, "b"]}]),
        "factor-name-code": _design(factors=[{"name": EXEC, "levels": ["a", "b"]}]),
        "factor-name-dunder": _design(factors=[{"name": "__class__", "levels": ["a", "b"]}]),
        "subject-col-code": _design(subject_col="x; rm -rf"),
        "subjects-zero": _design(subjects=0),
        "subjects-negative": _design(subjects=-5),
        "subjects-string": _design(subjects="8"),
        "subjects-bool": _design(subjects=True),
        "subjects-huge": _design(subjects=10**9),
        "subjects-10^5000": _design(subjects=10**5000),
        "items-float": _design(items=8.5),
        "trials-zero": _design(trials=0),
        "missing-one": _design(missing=1.0),
        "missing-string": _design(missing=EXEC),
        "coding-unknown": _design(factors=[{"name": "x", "levels": ["a", "b"], "coding": EXEC}]),
        "varies-unknown": _design(factors=[{"name": "x", "levels": ["a", "b"], "varies": "all"}]),
        "unknown-key": _design(code=EXEC),
        "nested-malformed": {"nested": [["school", "ten"]]},
        "covariate-bad-params": _design(covariates=[{"name": "age", "params": [EXEC, 1]}]),
        "cells-over-cap": _design(
            subjects=25000, items=100, covariates=[{"name": f"c{i}"} for i in range(9)]
        ),
    }
    out = [(f"spec-{k}", "spec_json", v, "reject") for k, v in specs.items()]
    out += [(f"design-{k}", "design_json", v, "reject") for k, v in designs.items()]
    return out


def cli_cases() -> list[tuple[str, str, Any, str]]:
    good = json.dumps({"spec": SPEC_OK, "design": DESIGN_OK}).encode()
    return [
        ("cli-not-utf8", "cli", {"content": b"\xff\xfe{\x00}"}, "reject"),
        ("cli-nested-100000", "cli", {"content": b"[" * 100_000 + b"]" * 100_000}, "reject"),
        ("cli-int-5001-digits", "cli", {"content": b'{"spec": ' + b"9" * 5001 + b"}"}, "reject"),
        ("cli-over-1mb", "cli", {"content": b" " * 1_100_000}, "reject"),
        ("cli-not-json", "cli", {"content": f"{EXEC}".encode()}, "reject"),
        ("cli-array", "cli", {"content": b"[1, 2]"}, "reject"),
        ("cli-nsim-1e9", "cli", {"content": good, "argv": ["--nsim", "1000000000"]}, "reject"),
        (
            "cli-formula-code",
            "cli",
            {"content": good, "argv": ["--formula", f"y ~ {EXEC}"]},
            "reject",
        ),
        (
            "cli-effects-code",
            "cli",
            {"content": good, "argv": ["--effects", EXEC, "--nsim", "2"]},
            "reject",
        ),
        (
            "cli-vary-huge",
            "cli",
            {"content": good, "argv": ["--vary", "subjects=10000000000"]},
            "reject",
        ),
    ]


def url_cases() -> list[tuple[str, str, Any, str]]:
    return [
        ("url-preset-unknown", "url", {"preset": "ZZZ"}, "reject"),
        ("url-subjects-negative", "url", {"subjects": "-5"}, "reject"),
        ("url-seed-text", "url", {"seed": "abc"}, "reject"),
        ("url-subjects-1e9", "url", {"subjects": "1e9"}, "reject"),
        ("url-items-huge", "url", {"items": "99999999999999999999"}, "reject"),
        ("url-seed-2^40", "url", {"seed": str(2**40)}, "reject"),
        ("url-preset-script", "url", {"preset": "<script>alert(1)</script>"}, "reject"),
        ("url-subjects-code", "url", {"subjects": EXEC}, "reject"),
        ("url-subjects-space", "url", {"subjects": " 5"}, "reject"),
        ("url-subjects-over-cap", "url", {"subjects": "100001"}, "reject"),
        ("url-preset-P1-huge", "url_design", {"preset": "P1", "subjects": "100000"}, "reject"),
    ]


def csv_cases() -> list[tuple[str, str, Any, str]]:
    sec = security_reproduction()
    rce = frame({k: v for k, v in sec["columns"].items()}).to_csv(index=False).encode()
    sleep = ROOT / "lmmcore" / "data" / "sleepstudy.csv"
    text = sleep.read_text()
    dash = text.replace(",9,", ",-,", 1)
    return [
        ("csv-security-rce-upload", "csv_fit", {"raw": rce, "formula": sec["formula"]}, "reject"),
        ("csv-nul-bytes", "csv", {"raw": b"a,b\x00c\n1,2\n"}, "reject"),
        ("csv-png", "csv", {"raw": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}, "reject"),
        ("csv-empty", "csv", {"raw": b""}, "reject"),
        ("csv-header-only", "csv", {"raw": b"x,y\n"}, "reject"),
        ("csv-duplicate-names", "csv", {"raw": b"y,x,x\n1,2,3\n"}, "reject"),
        ("csv-ragged", "csv", {"raw": b"a,b\n1,2\n3,4,5,6\n"}, "reject"),
        ("csv-600-columns", "csv", {"raw": ("," * 600 + "\n1" + ",1" * 600).encode()}, "reject"),
        ("csv-over-size", "csv", {"raw": b"x\n" + b"1\n" * 10_100_000}, "reject"),
        (
            "csv-dash-in-numbers",
            "csv_fit",
            {"raw": dash.encode(), "formula": "Reaction ~ Days + (1 | Subject)"},
            "reject",
        ),
        (
            "csv-dates",
            "csv_fit",
            {
                "raw": b"y,d,g\n"
                + b"".join(f"{i},2020-01-0{i % 9 + 1},{'ab'[i % 2]}\n".encode() for i in range(20)),
                "formula": "y ~ d + (1 | g)",
                "dates": ["d"],
            },
            "reject",
        ),
        (
            "csv-constant-response",
            "csv_fit",
            {
                "raw": b"y,x,g\n" + b"".join(f"1,{i},{'ab'[i % 2]}\n".encode() for i in range(20)),
                "formula": "y ~ x + (1 | g)",
            },
            "reject",
        ),
        (
            "csv-scaled-1e300",
            "csv_fit",
            {
                "raw": b"y,x,g\n"
                + b"".join(f"{i}e300,{i},{'abc'[i % 3]}\n".encode() for i in range(1, 20)),
                "formula": "y ~ x + (1 | g)",
            },
            "reject",
        ),
    ]


def run_cases() -> list[tuple[str, str, Any, str]]:
    p1 = "P1"
    return [
        ("power-nsim-1e9", "power", {"preset": p1, "nsim": 10**9}, "reject"),
        ("power-alpha-2", "power", {"preset": p1, "nsim": 10, "alpha": 2}, "reject"),
        ("power-test-code", "power", {"preset": p1, "nsim": 10, "test": EXEC}, "reject"),
        ("power-effect-code", "power", {"preset": p1, "nsim": 10, "effects": [EXEC]}, "reject"),
        (
            "power-formula-code",
            "power",
            {"preset": p1, "nsim": 10, "formula": f"RT ~ {EXEC}"},
            "reject",
        ),
        ("bootstrap-B-1e9", "bootstrap", {"B": 10**9}, "reject"),
        ("engine-dense-over-cap", "fit_big", {}, "reject"),
    ]


SAFE_NAMES = [
    "os.system('touch pwned')",
    "a` + I(exec(\"open('pwned','w')\")) + `b",
    "x\\",
    '"); system("touch pwned"); ("',
    "`; system('touch pwned'); `",
    "größe",
    "2nd try",
    "a:b",
    "${HOME}",
    "'; DROP TABLE x; --",
]
SAFE_LEVELS = [
    EXEC,
    "]:x[",
    "`",
    '"); system("touch pwned")',
    "${x}",
    "a\\b",
    "ünïcödé",
]


def safe_cases() -> list[tuple[str, str, Any, str]]:
    out = [(f"safe-column-{i}", "safe_column", name, "safe") for i, name in enumerate(SAFE_NAMES)]
    out += [(f"safe-level-{i}", "safe_level", lvl, "safe") for i, lvl in enumerate(SAFE_LEVELS)]
    out.append(("safe-export-hostile-names", "export", SAFE_NAMES + SAFE_LEVELS, "safe"))
    # a huge power of a sum only means "every interaction": it is capped by the number of
    # terms (as in R), so nothing is computed beyond (x + z)^2
    out.append(("safe-power-1e9", "fit", {"formula": "y ~ (x + z)^1e9 + (1 | g)"}, "safe"))
    return out


def all_cases() -> list[tuple[str, str, Any, str]]:
    return (
        formula_cases()
        + json_cases()
        + cli_cases()
        + url_cases()
        + csv_cases()
        + run_cases()
        + safe_cases()
    )


# ----------------------------------------------------------------------------- running


def run(kind: str, payload: Any) -> dict:
    """Run one case here (in the child process); return what happened."""
    import lmmcore

    start = time.perf_counter()
    out: dict[str, Any] = {"outcome": "accepted", "error": None, "message": ""}
    try:
        detail = _RUNNERS[kind](payload)
        if isinstance(detail, dict):
            out.update(detail)
    except lmmcore.LmmError as exc:
        out.update(outcome="rejected", error=type(exc).__name__, message=str(exc))
    except SystemExit as exc:
        out.update(outcome="exit", error=f"exit {exc.code}", message="")
    except BaseException as exc:  # anything untyped is a finding
        out.update(outcome="untyped", error=type(exc).__name__, message=str(exc)[:500])
    out["seconds"] = time.perf_counter() - start
    return out


def _fit(payload: dict) -> None:
    import lmmcore

    lmmcore.fit(payload["formula"], frame(payload.get("columns")))


def _spec_p1(formula: str) -> None:
    import lmmcore

    p1 = lmmcore.PRESETS["P1"]
    spec = lmmcore.ModelSpec(formula, p1.spec.fixed, p1.spec.random, p1.spec.sigma)
    spec.structure(p1.design.conditions(1))


def _spec_json(payload: dict) -> None:
    import lmmcore

    lmmcore.ModelSpec.from_dict(payload).structure(lmmcore.Design(**DESIGN_OK).conditions(1))


def _design_json(payload: dict) -> None:
    import lmmcore

    lmmcore.Design.from_dict(payload).conditions(1)


def _cli(payload: dict) -> dict:
    import contextlib
    import io

    from lmmcore.cli import main

    Path("spec.json").write_bytes(payload["content"])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["power", "spec.json", "--test", "wald", *payload.get("argv", [])])
    Path("spec.json").unlink()
    text = err.getvalue()
    if rc == 2 and "Traceback" not in text:
        return {"outcome": "rejected", "error": "exit 2", "message": text.strip()}
    return {"outcome": "accepted", "error": f"exit {rc}", "message": text.strip()[:500]}


def _url(payload: dict) -> dict:
    from views._common import parse_query

    updates, note = parse_query(payload)
    used = set(updates) - {"md_query_sizes"} | set(updates["md_query_sizes"])
    mapping = {
        "seed": "seed",
        "preset": "md_preset",
        "subjects": "md_subjects",
        "items": "md_items",
    }
    leaked = [k for k in payload if mapping.get(k) in used]
    if note and not leaked:
        return {"outcome": "rejected", "error": "note", "message": note}
    return {"outcome": "accepted", "message": f"used {leaked}"}


def _url_design(payload: dict) -> None:
    import lmmcore
    from views._common import check_app_design, parse_query

    updates, _ = parse_query(payload)
    sizes = updates["md_query_sizes"]
    design = lmmcore.PRESETS[updates["md_preset"]].design.with_size(
        subjects=sizes.get("md_subjects"), items=sizes.get("md_items")
    )
    check_app_design(design)


def _csv(payload: dict) -> None:
    import lmmcore

    lmmcore.read_csv(payload["raw"])


def _csv_fit(payload: dict) -> None:
    import lmmcore

    data, _ = lmmcore.read_csv(payload["raw"])
    for c in payload.get("dates", []):
        data[c] = pd.to_datetime(data[c])
    lmmcore.fit(payload["formula"], data)


def _power(payload: dict) -> None:
    import lmmcore

    p = lmmcore.PRESETS[payload.pop("preset")]
    lmmcore.power(p.spec, p.design.with_size(subjects=4, items=4), seed=1, **payload)


def _bootstrap(payload: dict) -> None:
    import lmmcore

    fit = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
    lmmcore.bootMer(fit, B=payload["B"], seed=1)


def _fit_big(payload: dict) -> None:
    import lmmcore

    rng = np.random.default_rng(1)
    n = 200_000
    df = pd.DataFrame(
        {"s": rng.integers(0, 15000, n), "i": rng.integers(0, 15000, n), "y": rng.normal(size=n)}
    )
    lmmcore.fit("y ~ 1 + (1 | s) + (1 | i)", df)


def _safe_column(name: str) -> dict:
    import lmmcore
    from lmmcore.formula import r_name

    df = frame({"y": "numeric", name: "numeric", "g": "grouping"})
    res = lmmcore.fit(f"y ~ {r_name(name)} + (1 | g)", df)
    ok = list(res.fe_names) == ["(Intercept)", r_name(name)]
    return {"outcome": "accepted" if ok else "wrong", "message": str(res.fe_names)}


def _safe_level(level: str) -> dict:
    import lmmcore

    df = frame().assign(
        f=lambda d: pd.Categorical(
            np.where(np.arange(len(d)) % 2, level, "base"), categories=["base", level]
        )
    )
    res = lmmcore.fit("y ~ f + (1 | g)", df)
    names = list(res.fe_names)
    expected = ["(Intercept)", "f" + level]  # the level is kept literally in the name
    return {"outcome": "accepted" if names == expected else "wrong", "message": str(names)}


def _export(names: list[str]) -> dict:
    """Hostile column names (via backticks) and level names through both exporters."""
    import lmmcore
    from lmmcore.export import python_script, r_script
    from lmmcore.formula import r_name

    col, lvl = names[0], names[len(SAFE_NAMES)]
    spec = lmmcore.ModelSpec(
        f"y ~ 1 + x + {r_name(col)} + (1 | subj)",
        fixed={"(Intercept)": 0.0, "x": 0.5, r_name(col): 0.1},
        random={"subj": {"sd": {"(Intercept)": 1.0}}},
        sigma=1.0,
    )
    design = lmmcore.Design(8, 4, [lmmcore.Factor("x", ["a", lvl[:90]])], covariates=[])
    return {
        "outcome": "accepted",
        "r": r_script(spec, design, 1),
        "py": python_script(spec, design, 1),
        "names": names,
    }


_RUNNERS = {
    "fit": _fit,
    "spec_p1": _spec_p1,
    "spec_json": _spec_json,
    "design_json": _design_json,
    "cli": _cli,
    "url": _url,
    "url_design": _url_design,
    "csv": _csv,
    "csv_fit": _csv_fit,
    "power": _power,
    "bootstrap": _bootstrap,
    "fit_big": _fit_big,
    "safe_column": _safe_column,
    "safe_level": _safe_level,
    "export": _export,
}
