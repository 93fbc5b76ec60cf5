"""Tests of the ``lmmcore`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lmmcore import Design, Factor, ModelSpec
from lmmcore.cli import main

SPEC = ModelSpec(
    "y ~ 1 + x + (1 | subj) + (1 | item)",
    fixed={"(Intercept)": 1.0, "x": 0.5},
    random={"subj": {"sd": {"(Intercept)": 0.5}}, "item": {"sd": {"(Intercept)": 0.3}}},
    sigma=1.0,
)
DESIGN = Design(6, 6, [Factor("x", ["a", "b"])])


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"spec": SPEC.to_dict(), "design": DESIGN.to_dict()}))
    return p


def test_power_vary_writes_csv(spec_file, tmp_path, capsys):
    out = tmp_path / "res.csv"
    rc = main(
        [
            "power",
            str(spec_file),
            "--nsim",
            "8",
            "--vary",
            "subjects=4,8",
            "--test",
            "wald",
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out)
    assert df[["subjects", "effect"]].values.tolist() == [
        [4, "(Intercept)"],
        [4, "x"],
        [8, "(Intercept)"],
        [8, "x"],
    ]
    assert "wrote 4 rows" in capsys.readouterr().out


def test_power_prints_table(spec_file, capsys):
    assert (
        main(
            [
                "power",
                str(spec_file),
                "--nsim",
                "5",
                "--test",
                "wald",
                "--seed",
                "2",
                "--effects",
                "x",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "power" in out and "x" in out and "ci_lower" in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"spec": {}}), "expected"),
        (
            json.dumps({"spec": {**SPEC.to_dict(), "sigma": -1}, "design": DESIGN.to_dict()}),
            "field 'spec': sigma",
        ),
        (
            json.dumps({"spec": SPEC.to_dict(), "design": {**DESIGN.to_dict(), "subjects": "x"}}),
            "field 'design'",
        ),
        (
            json.dumps(
                {
                    "spec": {**SPEC.to_dict(), "fixed": {"(Intercept)": 1.0}},
                    "design": DESIGN.to_dict(),
                }
            ),
            "no value for x",
        ),
    ],
)
def test_bad_spec_files_exit_2_without_traceback(tmp_path, capsys, content, needle):
    p = tmp_path / "bad.json"
    p.write_text(content)
    assert main(["power", str(p), "--nsim", "2", "--test", "wald"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_vary_and_missing_file(spec_file, tmp_path, capsys):
    assert main(["power", str(spec_file), "--vary", "people=3"]) == 2
    assert "--vary" in capsys.readouterr().err
    assert main(["power", str(tmp_path / "none.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["power", str(spec_file), "--backend", "dask"]) == 2
    assert "--scheduler" in capsys.readouterr().err


def test_help_documents_power(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "lmmcore power SPEC.json" in out and '"design"' in out
    with pytest.raises(SystemExit):
        main(["power", "--help"])
    out = capsys.readouterr().out
    assert "--vary" in out and "--scheduler" in out and "--test" in out


def test_subprocess_entry_point(spec_file, tmp_path):
    out = tmp_path / "r.csv"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [
        sys.executable,
        "-m",
        "lmmcore.cli",
        "power",
        str(spec_file),
        "--nsim",
        "4",
        "--test",
        "wald",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out)) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"spec": {**SPEC.to_dict(), "sigma": 0}, "design": {}}))
    r = subprocess.run([*cmd[:4], str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "field 'spec'" in r.stderr and "Traceback" not in r.stderr


def test_interrupt_stops_the_whole_curve_marks_partial_rows_and_exits_130(
    spec_file, tmp_path, monkeypatch, capsys
):
    import importlib

    pw = importlib.import_module("lmmcore.power")  # the module, not the function
    real, calls = pw._run_chunk, []

    def interrupt_fourth_chunk(*args):  # 100 simulations run as two chunks of 50
        calls.append(args[1:3])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(pw, "_run_chunk", interrupt_fourth_chunk)
    out = tmp_path / "res.csv"
    argv = [
        "power",
        str(spec_file),
        "--nsim",
        "100",
        "--vary",
        "subjects=4,8,12",
        "--test",
        "wald",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    with pytest.warns(UserWarning):
        assert main(argv) == 130
    df = pd.read_csv(out)
    # point 1 finished, point 2 was cut after its first chunk, point 3 never started
    assert df.groupby("subjects")["nsim"].first().to_dict() == {4: 100, 8: 50}
    assert df.groupby("subjects")["complete"].first().to_dict() == {4: True, 8: False}
    err = capsys.readouterr().err
    assert "interrupted: results for 2 of 3 design point(s)" in err


def test_a_real_sigint_exits_130(spec_file, tmp_path):
    import signal
    import time

    out = tmp_path / "res.csv"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmmcore.cli",
            "power",
            str(spec_file),
            "--nsim",
            "200000",
            "--test",
            "wald",
            "--seed",
            "1",
            "--progress",
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.time() + 120
    seen = ""
    while "sim" not in seen and time.time() < deadline:  # the tqdm bar has started
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    df = pd.read_csv(out)
    assert not df["complete"].any() and (df["nsim"] < 200000).all()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe{\x00}", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"spec": ' + b"1" * 5001 + b', "design": {}}', "cannot be read"),
        (b" " * 1_000_001, "more than the limit of 1,000,000"),
    ],
)
def test_hostile_spec_files_exit_2_with_a_message(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["power", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_nsim_beyond_the_cap_exits_2(spec_file, capsys):
    assert main(["power", str(spec_file), "--nsim", "1000000000"]) == 2
    assert "more than the limit of 1,000,000" in capsys.readouterr().err


def test_a_custom_design_round_trips_through_export_json_and_the_cli(tmp_path, capsys):
    from lmmcore.export import read_spec_design, spec_design_json

    design = Design(
        nested=[("school", 4), ("class", 2), ("pupil", 6)],
        factors=[
            Factor("dose", ["lo", "mid", "hi"], "within", coding="poly"),
            Factor("tr", ["c", "t"], "between_subject", coding="helmert", at="class"),
        ],
        covariates=[
            {
                "name": "age",
                "distribution": "uniform",
                "params": (6, 10),
                "per": "pupil",
                "center": True,
            }
        ],
        missing=0.1,
    )
    formula = design.propose_formula("score", "intercepts")
    spec = ModelSpec(
        formula,
        fixed={
            "(Intercept)": 50.0,
            "dose.L": 2.0,
            "dose.Q": 0.0,
            "tr": 3.0,
            "age": 0.5,
            "dose.L:tr": 0.0,
            "dose.Q:tr": 0.0,
        },
        random={g: {"sd": {"(Intercept)": 2.0}} for g in ("school", "class", "pupil")},
        sigma=5.0,
        unit="points",
    )
    text = spec_design_json(spec, design)
    assert read_spec_design(text) == (spec, design)
    f = tmp_path / "custom.json"
    f.write_text(text)
    assert main(["power", str(f), "--nsim", "6", "--test", "wald", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "dose.L" in out and "tr" in out
