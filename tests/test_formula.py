"""The lme4 formula parser: expansions, R names, and hostile input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcore import FormulaError, build_structure, parse_formula


@pytest.mark.parametrize(
    "formula, fixed, terms",
    [
        (
            "rt ~ cond + (1 + cond | subj) + (1 | item)",
            "cond",
            [("1 + cond", "subj", True), ("1", "item", True)],
        ),
        ("y ~ x + (x | g)", "x", [("x", "g", True)]),
        ("y ~ x + (0 + x | g)", "x", [("0 + x", "g", True)]),
        ("y ~ x + (x || g)", "x", [("1", "g", False), ("0 + x", "g", False)]),
        ("y ~ 1 + (1 | a/b)", "1", [("1", "a", True), ("1", "b:a", True)]),
        ("y ~ (1 | a:b)", "1", [("1", "a:b", True)]),
        ("y ~ 0 + x + (1 | g)", "0 + x", [("1", "g", True)]),
        ("y ~ x - 1 + (1 | g)", "x - 1", [("1", "g", True)]),
        ("y ~ a * b + (1 | s) + (1 | i)", "a * b", [("1", "s", True), ("1", "i", True)]),
    ],
)
def test_random_terms_are_expanded_as_lme4(formula, fixed, terms):
    p = parse_formula(formula)
    assert p.fixed == fixed
    assert [(t.expr, t.group_name, t.correlated) for t in p.random] == terms


def test_groups_convenience_adds_crossed_intercepts():
    p = parse_formula("rt ~ condition", groups=["subject", "item"])
    assert [(t.expr, t.group_name) for t in p.random] == [("1", "subject"), ("1", "item")]


def test_intercept_implied_in_random_slope_term():
    assert parse_formula("y ~ (x | g)").random[0].has_intercept
    assert not parse_formula("y ~ (0 + x | g)").random[0].has_intercept
    assert not parse_formula("y ~ (x - 1 | g)").random[0].has_intercept


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x.__class__",
        "y ~ __import__('os').system('ls')",
        "y ~ os.system(1)",
        "y ~ lambda: 1",
        "y ~ x[0]",
        "y ~ eval(x)",
        "y ~ exec(x)",
        "y ~ open(x)",
        "y ~ getattr(x, 'a')",
        "y ~ x + {1: 2}",
        "y ~ x; import os",
        "y ~ C(x, os)",
        "y ~ np.exp(x)",
        "y ~ _x",
        "y ~ x @ x",
        "y ~ I(x.__dict__)",
        "y ~ log(x).real",
    ],
)
def test_hostile_formulas_are_refused_before_evaluation(formula):
    with pytest.raises(FormulaError):
        parse_formula(formula)


@pytest.mark.parametrize(
    "formula, message",
    [
        ("", "empty"),
        ("y x + (1 | g)", "'~'"),
        ("~ x + (1 | g)", "no response"),
        ("y ~ ", "nothing on the right"),
        ("y ~ x + (1 | g", r"'\)' is missing"),
        ("y ~ x + (1 | g))", r"extra '\)'"),
        ("y ~ x + ( | g)", "nothing before '|'"),
        ("y ~ x + (1 | )", "nothing after '|'"),
        ("y ~ x ~ z", "'~'"),
        ("y ~ foo(x)", "not allowed"),
    ],
)
def test_syntax_errors_say_what_is_wrong(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


def test_unknown_column_is_named_with_a_suggestion():
    df = pd.DataFrame({"rt": [1.0, 2.0], "cond": [0, 1], "subj": ["a", "b"]})
    with pytest.raises(FormulaError, match=r"'conf' \(did you mean 'cond'\?\)"):
        parse_formula("rt ~ conf + (1 | subj)", columns=df.columns)


def test_whitelisted_transforms_evaluate():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"y": rng.normal(size=40), "x": rng.uniform(1, 2, 40), "g": np.repeat(list("abcd"), 10)}
    )
    s = build_structure("log(exp(y)) ~ log(x) + I(x^2) + center(x) + (1 | g)", df)
    np.testing.assert_allclose(s.y, df.y)
    assert s.fe_names[:3] == ("(Intercept)", "log(x)", "I(x^2)")
    np.testing.assert_allclose(s.X[:, 2], df.x**2)


def test_sum_contrasts_and_factor_slopes():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "y": rng.normal(size=60),
            "f": np.tile(["lo", "mid", "hi"], 20),
            "g": np.repeat(np.arange(6), 10),
        }
    )
    df["f"] = pd.Categorical(df.f, categories=["lo", "mid", "hi"])
    s = build_structure("y ~ f + (0 + f | g)", df, contrasts={"f": "sum"})
    assert s.fe_names == ("(Intercept)", "f1", "f2")
    assert s.blocks[0].terms == ("flo", "fmid", "fhi")
    s2 = build_structure("y ~ f + (f | g)", df)
    assert s2.fe_names == ("(Intercept)", "fmid", "fhi")
    assert s2.blocks[0].terms == ("(Intercept)", "fmid", "fhi")


def test_groups_convenience_fits_crossed_intercepts_and_shows_them():
    from tests.lme4_fixtures import load_case

    fx, df, _ = load_case("penicillin")
    import lmmcore

    r = lmmcore.fit("diameter ~ 1", df, groups=["plate", "sample"])
    assert r.formula == "diameter ~ 1 + (1 | plate) + (1 | sample)"
    assert abs(r.objective - fx["tight_refit"]["objective"]) < 1e-6


def test_a_leading_underscore_is_explained_not_called_unexpected():
    with pytest.raises(
        FormulaError,
        match=r"starts with an underscore; write such a column name "
        r"in backticks, e\.g\. `_id`",
    ) as info:
        parse_formula("y ~ _id + (1 | g)")
    assert "Unexpected" not in str(info.value)
    df = pd.DataFrame({"y": np.arange(8.0), "_id": [0.0, 1.0] * 4, "g": list("aabbccdd")})
    assert build_structure("y ~ `_id` + (1 | g)", df).fe_names == ("(Intercept)", "`_id`")
