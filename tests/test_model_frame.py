"""lmmcore's own model frames and model matrices against R's model.matrix.

The fixture ``tests/data/model_matrices_r.json`` holds R's column names and values for 38
formulas (factor codings with and without intercepts, interactions without main effects,
nesting, powers, every contrast, transforms); ``tests/data/make_model_matrices.R`` made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmcore import DataError, FormulaError, parse_formula
from lmmcore.model_frame import column_kind, model_frame, model_matrix
from lmmcore.terms import expand

FIXTURE = json.loads((Path(__file__).parent / "data" / "model_matrices_r.json").read_text())


def fixture_data() -> pd.DataFrame:
    d = FIXTURE["data"]
    return pd.DataFrame(
        {
            "a": d["a"],
            "b": d["b"],
            "o": pd.Categorical(d["o"], categories=d["o_levels"], ordered=True),
            "x": d["x"],
            "z": d["z"],
            "l": d["l"],
            "y": np.arange(len(d["x"]), dtype=float),
        }
    )


def matrix(formula: str, data: pd.DataFrame, contrasts=None):
    p = parse_formula(formula)
    terms = expand(p.fixed_node, formula)
    frame = model_frame(data, [p.response_node], terms, contrasts=contrasts)
    return model_matrix(terms, frame)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["formula"] for c in FIXTURE["cases"]])
def test_model_matrix_equals_r(case):
    X, names = matrix("y " + case["formula"], fixture_data(), case["contrasts"])
    assert names == case["colnames"]
    np.testing.assert_allclose(X, np.array(case["matrix"]), rtol=1e-12, atol=1e-12)


def test_transforms_use_every_row_with_the_variable_before_rows_are_dropped():
    # R evaluates scale(x) on the whole model frame and drops incomplete rows afterwards
    df = fixture_data()
    df.loc[[0, 5], "y"] = np.nan
    X, names = matrix("y ~ scale(x) + center(z)", df)
    keep = df["y"].notna()
    x, z = df["x"], df["z"]
    np.testing.assert_allclose(X[:, 1], ((x - x.mean()) / x.std())[keep])
    np.testing.assert_allclose(X[:, 2], (z - z.mean())[keep])


def test_missing_values_in_a_transformed_column_drop_the_row_not_the_model():
    df = fixture_data()
    df.loc[3, "z"] = np.nan
    with pytest.warns(UserWarning, match="Dropped 1 of 24 rows"):
        X, _ = matrix("y ~ log(z)", df)
    assert X.shape[0] == 23


def test_undefined_transform_is_an_error_not_a_silent_drop():
    df = fixture_data().assign(z=lambda d: d["z"] - 3)
    with pytest.raises(DataError, match=r"log\(z\) is infinite or undefined for \d+ of 24"):
        matrix("y ~ log(z)", df)


@pytest.mark.parametrize(
    "values, kind",
    [
        ([1.0, 2.0, np.nan], "numeric"),
        (np.array([1, 2, 3], dtype=object), "numeric"),
        (["lo", "hi", None], "factor"),
        ([True, False, True], "factor"),
        (pd.Categorical(["1", "2", "1"]), "factor"),
    ],
)
def test_column_kinds(values, kind):
    assert column_kind(pd.Series(values), "c") == kind


@pytest.mark.parametrize(
    "values, message",
    [
        ([1.0, "-", 3.0], "mixes values of different kinds"),
        (["1", "2", "-", "4"], r"numbers and text: 1 of 4 values are not numbers \('-'\)"),
        (["0", "1", "2"], "numbers written as text"),
        (pd.to_datetime(["2020-01-01", "2020-01-02"]), "dates or times"),
        (["a", 1, 2.5], "mixes values of different kinds"),
    ],
)
def test_ambiguous_columns_are_refused_not_reinterpreted(values, message):
    with pytest.raises(DataError, match=message):
        column_kind(pd.Series(values), "days")


def test_numbers_as_text_can_be_declared_a_factor_with_C():
    df = fixture_data().assign(d=lambda d: (np.arange(24) % 3).astype(str))
    with pytest.raises(DataError, match=r"write C\(d\)"):
        matrix("y ~ d", df)
    _, names = matrix("y ~ C(d)", df)
    assert names == ["(Intercept)", "C(d)1", "C(d)2"]


def test_columns_are_known_before_the_matrix_is_allocated():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"c{i}": rng.normal(size=30) for i in range(12)}).assign(y=1.0)
    rhs = " + ".join(f"c{i}" for i in range(12))
    with pytest.raises(FormulaError, match="expands to 4,095 terms"):
        matrix(f"y ~ ({rhs})^12", df)
    many = pd.DataFrame({"y": np.zeros(2002), "f": [f"l{i}" for i in range(1001)] * 2})
    with pytest.raises(DataError, match="would have 1,001 columns, more than the limit of 1,000"):
        matrix("y ~ f", many)


def test_duplicate_column_names_are_a_data_error():
    df = pd.DataFrame([[1.0, 2.0, 3.0]] * 4, columns=["y", "x", "x"])
    with pytest.raises(DataError, match="more than one column named 'x'"):
        matrix("y ~ x", df)
