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
