"""The hostile corpus (tests/hostile_cases.py): nothing executes, everything is refused
cleanly (a typed error in under 2 s) or kept as plain data.

Every case runs in its own process, in an empty temporary directory: a clean "runner"
process is spawned once (it imports lmmcore), and it forks one child per case, so a case
cannot leave state behind for the next and a frozen one is killed after a time limit.
After each case the directory must still be empty (the code-execution payloads try to
create files named ``pwned``).
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests import hostile_cases

CASES = hostile_cases.all_cases()
#: A case slower than this in its child is a finding (the issue asks for < 2 s).
MAX_SECONDS = 2.0
#: A child still running after this is killed and reported as frozen.
KILL_AFTER = 30.0


def _serve(conn) -> None:  # in the spawned runner: fork one child per case
    import lmmcore  # noqa: F401 - imported once, before forking
    from tests import hostile_cases as hc

    while True:
        msg = conn.recv()
        if msg is None:
            return
        kind, payload, workdir = msg
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the case's own process
            os.close(r)
            try:
                os.chdir(workdir)
                import pickle

                res = hc.run(kind, payload)
                data = pickle.dumps(res)
            except BaseException as exc:  # noqa: BLE001
                import pickle

                data = pickle.dumps({"outcome": "crashed", "error": repr(exc), "seconds": 0})
            with os.fdopen(w, "wb") as f:
                f.write(data)
            os._exit(0)
        os.close(w)
        chunks: list[bytes] = []
        deadline = time.monotonic() + KILL_AFTER
        os.set_blocking(r, False)
        while True:
            try:
                block = os.read(r, 1 << 16)
            except BlockingIOError:
                block = None
            if block:
                chunks.append(block)
                continue
            if block == b"":
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        import pickle

        if chunks:
            conn.send(pickle.loads(b"".join(chunks)))
        else:
            conn.send(
                {
                    "outcome": "frozen" if status else "crashed",
                    "error": str(status),
                    "seconds": KILL_AFTER,
                }
            )


@pytest.fixture(scope="module")
def runner():
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()

    def run(kind, payload):
        with tempfile.TemporaryDirectory() as d:
            parent.send((kind, payload, d))
            res = parent.recv()
            res["files"] = sorted(os.listdir(d))
        return res

    yield run
    parent.send(None)
    proc.join(10)


@pytest.fixture(scope="module")
def benign_scripts():
    """Identifiers and calls the exporters emit for an ordinary model (the allowlist)."""
    import lmmcore
    from lmmcore.export import python_script, r_script

    spec = lmmcore.ModelSpec(
        "y ~ 1 + x + (1 + x | subj) + (1 | item)",
        fixed={"(Intercept)": 0.0, "x": 0.5},
        random={
            "subj": {"sd": {"(Intercept)": 1.0, "x": 0.5}, "corr": [[1, 0.2], [0.2, 1]]},
            "item": {"sd": {"(Intercept)": 1.0}},
        },
        sigma=1.0,
        contrasts={"x": "sum"},
    )
    design = lmmcore.Design(8, 4, [lmmcore.Factor("x", ["a", "b"])])
    return r_identifiers(r_script(spec, design, 1)), py_calls(python_script(spec, design, 1))


_R_TOKEN = re.compile(
    r"""(?P<comment>\#[^\n]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<bq>`(?:[^`\\]|\\.)*`)
      | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
      | (?P<ident>[A-Za-z.][A-Za-z0-9._]*)
      | (?P<ws>\s+)
      | (?P<op>%[^%\n]*%|<-|<=|>=|==|!=|&&|\|\||::|[-+*/^~:$@<>=!&|?,;(){}\[\]])""",
    re.VERBOSE,
)


def r_tokens(code: str) -> list[tuple[str, str]]:
    """A minimal R lexer: strings, backtick names, comments, identifiers, operators."""
    out, pos = [], 0
    while pos < len(code):
        m = _R_TOKEN.match(code, pos)
        assert m, f"R lexer stuck at {code[pos : pos + 40]!r}"
        if m.lastgroup not in ("ws", "comment"):
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def r_identifiers(code: str) -> set[str]:
    return {t for k, t in r_tokens(code) if k == "ident"}


def r_literal(token: str) -> str:
    """The text an R string or backtick token holds."""
    body = token[1:-1]
    body = re.sub(r"\\U\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), body)
    return re.sub(r"\\(.)", r"\1", body)


def py_calls(code: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
    return names


@pytest.mark.parametrize("case_id, kind, payload, expect", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(runner, benign_scripts, case_id, kind, payload, expect):
    res = runner(kind, payload)
    assert res["files"] == [], f"{case_id} created {res['files']}: code ran"
    assert res["outcome"] not in ("untyped", "crashed", "frozen"), res
    if expect == "reject":
        assert res["outcome"] == "rejected", res
        assert res["message"], "a rejection must say what is wrong"
        assert res["seconds"] < MAX_SECONDS, f"{case_id} took {res['seconds']:.2f} s"
        return
    assert res["outcome"] == "accepted", res
    if kind == "export":
        r_allowed, py_allowed = benign_scripts
        toks = r_tokens(res["r"])
        idents = {t for k, t in toks if k == "ident"}
        # every identifier of the hostile script is one the benign script has, or a
        # (syntactic) factor/level-free name of the design
        assert idents - r_allowed <= {"x"}, idents - r_allowed
        held = {r_literal(t) for k, t in toks if k in ("string", "bq")}
        for name in res["names"][:1]:
            assert name in held
        assert py_calls(res["py"]) <= py_allowed
        # the Python script runs in a child without executing anything hostile
        with tempfile.TemporaryDirectory() as d:
            script = Path(d) / "s.py"
            script.write_text(res["py"])
            import subprocess

            subprocess.run(
                [sys.executable, str(script), "out.csv", "--no-fit"],
                cwd=d,
                capture_output=True,
                timeout=120,
                env={**os.environ, "PYTHONPATH": str(hostile_cases.ROOT)},
            )
            assert not [f for f in os.listdir(d) if f.startswith("pwned")]


def test_corpus_size_and_every_reproduction_present():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    rejected = [c for c in CASES if c[3] == "reject"]
    assert len(rejected) >= 150, len(rejected)
    for needed in (
        "security-backtick-rce",
        "security-dos-P1",
        "expand-12-columns-to-the-12th",
        "design-factor-30000-levels",
        "csv-security-rce-upload",
        "cli-nsim-1e9",
        "url-preset-unknown",
        "csv-dash-in-numbers",
        "csv-constant-response",
    ):
        assert needed in ids
