"""Tests of lmmcore.autora: the seed's documented outputs, digit for digit, and the errors."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lmmcore.autora import (
    DV,
    IV,
    SyntheticExperiment,
    ValueType,
    VariableCollection,
    lmm_experiment,
)
from lmmcore.errors import DataError, FormulaError, LmmWarning, SpecError


def shows(frame: pd.DataFrame, expected: str) -> None:
    """The frame prints exactly as ``expected`` (a doctest output block)."""
    assert repr(frame) == textwrap.dedent(expected).strip("\n")


@pytest.fixture
def x1_conditions() -> pd.DataFrame:
    return pd.DataFrame({"x1": np.linspace(0, 1, 5)})


@pytest.fixture
def subject_conditions() -> pd.DataFrame:
    c1 = pd.DataFrame({"x1": np.linspace(0, 1, 3), "subject": np.repeat(1, 3)})
    c2 = pd.DataFrame({"x1": np.linspace(0, 1, 3), "subject": np.repeat(2, 3)})
    return pd.concat([c1, c2])


@pytest.fixture
def two_factor_conditions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 10
    return pd.DataFrame(
        {
            "x1": rng.normal(0, 1, n),
            "x2": rng.normal(0, 1, n),
            "subject": rng.choice(["A", "B", "C", "D"], n),
            "group": rng.choice(["E", "F", "G", "H"], n),
        }
    )


# --------------------------------------------------------------------------- seed doctests


def test_seed_intercept_only(x1_conditions):
    exp = lmm_experiment(formula="rt ~ 1", fixed_effects={"Intercept": 1.5})
    shows(
        exp.ground_truth(conditions=x1_conditions),
        """
             x1   rt
        0  0.00  1.5
        1  0.25  1.5
        2  0.50  1.5
        3  0.75  1.5
        4  1.00  1.5
        """,
    )


def test_seed_intercept_and_slope(x1_conditions):
    exp = lmm_experiment(formula="rt ~ 1 + x1", fixed_effects={"Intercept": 1.0, "x1": 2.0})
    shows(
        exp.ground_truth(conditions=x1_conditions),
        """
             x1   rt
        0  0.00  1.0
        1  0.25  1.5
        2  0.50  2.0
        3  0.75  2.5
        4  1.00  3.0
        """,
    )


def test_seed_implicit_intercept_equals_explicit(x1_conditions):
    e1 = lmm_experiment(formula="rt ~ 1 + x1", fixed_effects={"Intercept": 0.0, "x1": 2.0})
    e2 = lmm_experiment(formula="rt ~ x1", fixed_effects={"x1": 2.0})
    shows(
        e1.ground_truth(conditions=x1_conditions) == e2.ground_truth(conditions=x1_conditions),
        """
             x1    rt
        0  True  True
        1  True  True
        2  True  True
        3  True  True
        4  True  True
        """,
    )


def test_seed_random_intercept(subject_conditions):
    shows(
        subject_conditions,
        """
            x1  subject
        0  0.0        1
        1  0.5        1
        2  1.0        1
        0  0.0        2
        1  0.5        2
        2  1.0        2
        """,
    )
    exp = lmm_experiment(
        formula="rt ~ 1 + (1|subject) + x1",
        fixed_effects={"Intercept": 1, "x1": 2},
        random_effects={"subject": {"Intercept": 0.1}},
    )
    shows(
        exp.ground_truth(conditions=subject_conditions, random_state=42),
        """
            x1  subject        rt
        0  0.0        1  1.030472
        1  0.5        1  2.030472
        2  1.0        1  3.030472
        0  0.0        2  0.896002
        1  0.5        2  1.896002
        2  1.0        2  2.896002
        """,
    )


def test_seed_random_slope_only(subject_conditions):
    exp = lmm_experiment(formula="rt ~ (x1|subject)", random_effects={"subject": {"x1": 0.1}})
    shows(
        exp.ground_truth(conditions=subject_conditions, random_state=42),
        """
            x1  subject        rt
        0  0.0        1  0.000000
        1  0.5        1  0.015236
        2  1.0        1  0.030472
        0  0.0        2  0.000000
        1  0.5        2 -0.051999
        2  1.0        2 -0.103998
        """,
    )


def test_seed_random_and_fixed_slope(subject_conditions):
    exp = lmm_experiment(
        formula="rt ~ (x1|subject) + x1",
        fixed_effects={"x1": 1.0},
        random_effects={"subject": {"x1": 0.01}},
    )
    shows(
        exp.ground_truth(conditions=subject_conditions, random_state=42),
        """
            x1  subject        rt
        0  0.0        1  0.000000
        1  0.5        1  0.501524
        2  1.0        1  1.003047
        0  0.0        2  0.000000
        1  0.5        2  0.494800
        2  1.0        2  0.989600
        """,
    )


SEED_FORMULA = "y ~ x1 + x2 + (1 + x1|subject) + (x2|group)"
SEED_FIXED = {"Intercept": 1.5, "x1": 2.0, "x2": -1.2}
SEED_RANDOM = {"subject": {"1": 0.5, "x1": 0.3}, "group": {"x2": 0.4}}


def test_seed_two_grouping_factors(two_factor_conditions):
    exp = lmm_experiment(formula=SEED_FORMULA, fixed_effects=SEED_FIXED, random_effects=SEED_RANDOM)
    shows(
        exp.ground_truth(conditions=two_factor_conditions, random_state=42),
        """
                 x1        x2 subject group         y
        0  0.125730 -0.623274       B     H  2.502995
        1 -0.132105  0.041326       A     F  1.258294
        2  0.640423 -2.325031       A     F  5.490146
        3  0.104900 -0.218792       A     H  1.899763
        4 -0.535669 -1.245911       A     H  2.173576
        5  0.361595 -0.732267       C     H  2.923207
        6  1.304000 -0.544259       C     F  4.320545
        7  0.947081 -0.316300       C     G  3.405867
        8 -0.703735  0.411631       B     H -0.578950
        9 -1.265421  1.042513       C     G -1.794523
        """,
    )
    shows(
        exp.run(conditions=two_factor_conditions, added_noise=0.1, random_state=42),
        """
                 x1        x2 subject group         y
        0  0.125730 -0.623274       B     H  2.417691
        1 -0.132105  0.041326       A     F  1.346234
        2  0.640423 -2.325031       A     F  5.567925
        3  0.104900 -0.218792       A     H  1.906366
        4 -0.535669 -1.245911       A     H  2.286300
        5  0.361595 -0.732267       C     H  2.969958
        6  1.304000 -0.544259       C     F  4.234616
        7  0.947081 -0.316300       C     G  3.442742
        8 -0.703735  0.411631       B     H -0.674839
        9 -1.265421  1.042513       C     G -1.706678
        """,
    )


# --------------------------------------------------------------------------- draw order, quirks


def test_draw_order_matches_hand_computation(two_factor_conditions):
    c = two_factor_conditions
    exp = lmm_experiment(SEED_FORMULA, SEED_FIXED, SEED_RANDOM)
    got = exp.run(c, added_noise=0.1, random_state=7)["y"].to_numpy()

    rng = np.random.default_rng(7)
    subjects, groups = pd.unique(c["subject"]), pd.unique(c["group"])
    _unused_intercept = [rng.normal(0, 0.5) for _ in subjects]  # '1 ' part: drawn, not added
    slope = dict(zip(subjects, [rng.normal(0, 0.3) for _ in subjects], strict=True))
    g_slope = dict(zip(groups, [rng.normal(0, 0.4) for _ in groups], strict=True))
    want = 1.5 + 2.0 * c["x1"] - 1.2 * c["x2"]
    want = want + c["subject"].map(slope) * c["x1"] + c["group"].map(g_slope) * c["x2"]
    want = want + rng.normal(0, 0.1, len(c))
    np.testing.assert_allclose(got, want.to_numpy(), rtol=0, atol=1e-12)


def test_unpadded_one_is_a_random_intercept(two_factor_conditions):
    c = two_factor_conditions
    padded = lmm_experiment(
        "y ~ x1 + (1 + x1|subject)", {"x1": 1.0}, {"subject": {"Intercept": 0.5, "x1": 0.3}}
    )
    tight = lmm_experiment(
        "y ~ x1 + (1+x1|subject)", {"x1": 1.0}, {"subject": {"Intercept": 0.5, "x1": 0.3}}
    )
    a = padded.ground_truth(c, random_state=3)["y"]
    b = tight.ground_truth(c, random_state=3)["y"]
    rng = np.random.default_rng(3)
    subjects = pd.unique(c["subject"])
    intercepts = dict(zip(subjects, [rng.normal(0, 0.5) for _ in subjects], strict=True))
    np.testing.assert_allclose(b - a, c["subject"].map(intercepts), atol=1e-12)


def test_slope_only_term_has_no_random_intercept(subject_conditions):
    exp = lmm_experiment("rt ~ (x1|subject)", random_effects={"subject": {"x1": 1.0}})
    out = exp.ground_truth(subject_conditions, random_state=1)
    assert (out.loc[out["x1"] == 0.0, "rt"] == 0.0).all()


def test_zero_anywhere_removes_every_intercept(subject_conditions):
    fixed = {"Intercept": 10.0, "x1": 1.0}
    sds = {"subject": {"Intercept": 1.0, "x1": 0.0}}
    with_int = lmm_experiment("rt ~ x1 + (1|subject)", fixed, sds)
    no_int = lmm_experiment("rt ~ x1 + (1|subject) + (0 + x1|subject)", fixed, sds)
    assert not np.allclose(with_int.ground_truth(subject_conditions, random_state=0)["rt"], 0)
    np.testing.assert_allclose(
        no_int.ground_truth(subject_conditions, random_state=0)["rt"], subject_conditions["x1"]
    )
    # a '1' key in fixed_effects brings the intercept back, autora-style
    forced = lmm_experiment("rt ~ 0 + x1", {"1": 0.0, "Intercept": 10.0, "x1": 1.0})
    np.testing.assert_allclose(
        forced.ground_truth(subject_conditions)["rt"], 10.0 + subject_conditions["x1"]
    )


def test_missing_sd_defaults_to_half(subject_conditions):
    exp = lmm_experiment("rt ~ (1|subject)", random_effects={"subject": {}})
    out = exp.ground_truth(subject_conditions, random_state=5)["rt"].to_numpy()
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 0.5), rng.normal(0, 0.5)
    np.testing.assert_allclose(out, [a, a, a, b, b, b], atol=1e-15)


def test_effects_follow_first_appearance_not_identity(subject_conditions):
    exp = lmm_experiment("rt ~ (1|subject)", random_effects={"subject": {"Intercept": 1.0}})
    forward = exp.ground_truth(subject_conditions, random_state=9)
    backward = exp.ground_truth(subject_conditions.iloc[::-1], random_state=9)
    first = forward.groupby("subject")["rt"].first()
    reversed_ = backward.groupby("subject")["rt"].first()
    assert first[1] == pytest.approx(reversed_[2]) and first[2] == pytest.approx(reversed_[1])


def test_own_rng_advances_and_is_seeded(subject_conditions):
    spec = ("rt ~ (1|subject)", None, {"subject": {"Intercept": 1.0}})
    a = lmm_experiment(*spec, random_state=11)
    b = lmm_experiment(*spec, random_state=11)
    first, second = a.run(subject_conditions), a.run(subject_conditions)
    assert not np.allclose(first["rt"], second["rt"])
    pd.testing.assert_frame_equal(first, b.run(subject_conditions))
    # an explicit random_state does not touch the experiment's generator
    a2 = lmm_experiment(*spec, random_state=11)
    a2.run(subject_conditions, random_state=1)
    pd.testing.assert_frame_equal(a2.run(subject_conditions), first)


def test_noise_is_drawn_even_at_zero():
    exp = lmm_experiment("y ~ 1", random_state=0)
    exp.ground_truth(pd.DataFrame({"x": [1, 2, 3]}))
    rng = np.random.default_rng(0)
    rng.normal(0, 0.0, 3)
    out = exp.run(pd.DataFrame({"x": [1]}), added_noise=1.0)["y"].iloc[0]
    assert out == rng.normal(0, 1.0, 1)[0]


def test_capitalised_names():
    cond = pd.DataFrame({"X_i": [-0.5, 0.5], "Xb": [1.0, 2.0], "Subj": ["a", "b"]})
    for mode in ("exact", "corrected"):  # a random slope also gets its fixed effect
        exp = lmm_experiment(
            "RT ~ X_i + (X_i|Subj)", {"X_i": 2.0}, {"Subj": {"X_i": 0.0}}, mode=mode
        )
        assert exp.ground_truth(cond)["RT"].tolist() == [-1.0, 1.0]
    # autora's fixed-part regex needs a lower-case first letter: Xb is read as "b"
    with pytest.warns(LmmWarning, match=r"\['Xb'\] get no fixed effect.*mode='corrected'"):
        exact = lmm_experiment("RT ~ Xb + (1|Subj)", {"Xb": 1.0}, {"Subj": {"Intercept": 0.0}})
    assert exact.ground_truth(cond)["RT"].tolist() == [0.0, 0.0]
    corrected = lmm_experiment(
        "RT ~ Xb + (1|Subj)", {"Xb": 1.0}, {"Subj": {"Intercept": 0.0}}, mode="corrected"
    )
    assert corrected.ground_truth(cond)["RT"].tolist() == [1.0, 2.0]


def test_one_plus_removal_exact_and_corrected():
    """autora 2.2.0 gives 0, 0 here (its "1 + " removal turns x1 + x2 into xx2)."""
    cond = pd.DataFrame({"x1": [1.0, 2.0], "x2": [10.0, 20.0], "g": ["a", "b"]})
    spec = ("y ~ (x1 + x2|g)", {"x1": 1, "x2": 1}, {"g": {"x1": 0, "x2": 0}})
    with pytest.warns(LmmWarning, match=r"as \['xx2'\].*\['x1', 'x2'\] get no fixed effect"):
        exact = lmm_experiment(*spec)
    assert exact.params["mode"] == "exact"
    assert exact.ground_truth(cond)["y"].tolist() == [0.0, 0.0]
    assert [iv.name for iv in exact.variables.independent_variables] == ["xx2", "g"]
    corrected = lmm_experiment(*spec, mode="corrected")
    assert corrected.ground_truth(cond)["y"].tolist() == [11.0, 22.0]
    assert [iv.name for iv in corrected.variables.independent_variables] == ["x1", "x2", "g"]
    again = corrected.factory_function(**corrected.params)
    assert again.ground_truth(cond)["y"].tolist() == [11.0, 22.0]
    with pytest.raises(SpecError, match="mode must be 'exact'"):
        lmm_experiment("y ~ x", mode="lme4")


def test_exact_mode_lists_autoras_variables_and_accepts_either_x():
    formula, sds = "rt ~ 1 + (1|subject) + x1", {"subject": {"Intercept": 0.1}}
    exp = lmm_experiment(formula, {"x1": 1.0}, sds)
    # autora 2.2.0: _extract_variable_names gives ('rt', ['1', 'x1'], ['subject'])
    assert [iv.name for iv in exp.variables.independent_variables] == ["1", "x1", "subject"]
    x = [IV(name="x1", allowed_values=[0, 1]), IV(name="subject", allowed_values=[1, 2])]
    assert lmm_experiment(formula, None, sds, X=x).variables.independent_variables == tuple(x)
    as_autora = [IV(name="1", allowed_values=[1]), *x]
    lmm_experiment(formula, None, sds, X=as_autora)
    with pytest.raises(SpecError, match=r"X describes \['1', 'subject', 'x1'\]"):
        lmm_experiment(formula, None, sds, X=as_autora, mode="corrected")


def test_ground_truth_noise_can_be_overridden(subject_conditions):
    exp = lmm_experiment("rt ~ x1 + (1|subject)", {"x1": 1.0}, {"subject": {"Intercept": 1.0}})
    noisy = exp.ground_truth(subject_conditions, added_noise=0.5, random_state=3)
    pd.testing.assert_frame_equal(noisy, exp.run(subject_conditions, 0.5, random_state=3))
    assert not noisy.equals(exp.ground_truth(subject_conditions, random_state=3))
    with pytest.raises(TypeError):  # keyword-only, as autora's partial(run, added_noise=0)
        exp.ground_truth(subject_conditions, 0.5)


def test_variables_match_autoras_objects():
    iv = IV("x1", (0, 1))  # autora's positional order: name, value_range, allowed_values
    assert iv.value_range == (0, 1) and iv.allowed_values is None
    assert (iv.units, iv.type, iv.rescale, iv.is_covariate) == ("", ValueType.REAL, 1, False)
    assert iv.type == "real" and iv.variable_label == "Independent Variable"
    assert IV().name == "IV" and DV().name == "DV"
    assert DV("y").variable_label == "Dependent Variable"
    assert VariableCollection().covariates == ()
    assert lmm_experiment("y ~ x").variables.covariates == ()


def test_x_from_autoras_own_iv_objects_and_domain_array():
    class AutoraIV:  # the attributes of autora.variable.IV
        def __init__(self, name, allowed_values):
            self.name, self.allowed_values = name, allowed_values
            self.value_range, self.units, self.type = None, "", "real"
            self.variable_label, self.rescale, self.is_covariate = "Independent Variable", 1, False

    exp = lmm_experiment("y ~ x", {"x": 2.0}, X=[AutoraIV("x", np.linspace(0, 1, 3))])
    assert exp.variables.independent_variables == (IV("x", allowed_values=[0.0, 0.5, 1.0]),)
    dom = exp.domain()  # autora: the first variable's allowed values, shape (n, 1)
    assert isinstance(dom, np.ndarray) and dom.shape == (3, 1)
    assert exp.ground_truth(dom)["y"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(SpecError, match="list of IV objects"):
        lmm_experiment("y ~ x", X=[3])


def test_conditions_as_array_and_input_untouched():
    exp = lmm_experiment("y ~ x1 + x2", {"x1": 1.0, "x2": 10.0})
    out = exp.ground_truth(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert list(out.columns) == ["x1", "x2", "y"] and out["y"].tolist() == [21.0, 43.0]
    cond = pd.DataFrame({"x1": [1.0], "x2": [1.0]})
    exp.run(cond)
    assert list(cond.columns) == ["x1", "x2"]
    with pytest.raises(DataError, match="2 independent variables"):
        exp.run(np.zeros((3, 3)))


# --------------------------------------------------------------------------- attributes


def test_attributes_and_factory_roundtrip(two_factor_conditions):
    exp = lmm_experiment(SEED_FORMULA, SEED_FIXED, SEED_RANDOM, random_state=4, name="demo")
    assert isinstance(exp, SyntheticExperiment)
    assert exp.name == "demo" and "demo" in exp.description and SEED_FORMULA in exp.description
    assert exp.factory_function is lmm_experiment
    assert exp.params["formula"] == SEED_FORMULA and exp.params["random_state"] == 4
    json.dumps({k: v for k, v in exp.params.items() if k != "X"})
    assert isinstance(exp.variables, VariableCollection)
    assert [iv.name for iv in exp.variables.independent_variables] == [
        "x1",
        "x2",
        "group",
        "subject",
    ]
    assert exp.variables.dependent_variables == (DV("y"),)
    again = exp.factory_function(**exp.params)
    pd.testing.assert_frame_equal(again.run(two_factor_conditions), exp.run(two_factor_conditions))


def test_params_are_copies():
    fixed = {"x": 1.0}
    exp = lmm_experiment("y ~ x", fixed)
    fixed["x"] = 5.0
    assert exp.ground_truth(pd.DataFrame({"x": [1.0]}))["y"].iloc[0] == 1.0


# --------------------------------------------------------------------------- domain, plotter


def test_domain_grid_and_errors():
    exp = lmm_experiment(
        "y ~ x1 + x2", X=[IV("x1", allowed_values=[0, 1]), IV("x2", allowed_values=[5, 6, 7])]
    )
    dom = exp.domain_grid()
    assert list(dom.columns) == ["x1", "x2"] and len(dom) == 6
    assert dom.iloc[1].tolist() == [0, 6]
    with pytest.raises(SpecError, match=r"allowed values .*\['x'\].*X=\[IV"):
        lmm_experiment("y ~ x").domain()
    with pytest.raises(SpecError, match=r"allowed values .*\['x'\].*X=\[IV"):
        lmm_experiment("y ~ x").domain_grid()
    with pytest.raises(SpecError, match=r"X describes \['z'\] but the formula uses \['x'\]"):
        lmm_experiment("y ~ x", X=[IV("z", allowed_values=[1])])


def test_plotter_one_iv_with_model():
    class Model:
        def predict(self, frame):
            return 2.0 * frame["x"].to_numpy() + 0.1

    exp = lmm_experiment(
        "y ~ x",
        {"Intercept": 1.0, "x": 2.0},
        X=[IV("x", allowed_values=np.linspace(0, 1, 11))],
        name="lin",
    )
    fig = exp.plotter(model=Model())
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Ground truth", "Fitted model"]
    np.testing.assert_allclose(fig.data[0].y, 1.0 + 2.0 * np.linspace(0, 1, 11))
    assert fig.layout.title.text == "lin"

    class Bad:
        def predict(self, frame):
            return [1.0]

    with pytest.raises(DataError, match="one prediction per row"):
        exp.plotter(model=Bad())


def test_plotter_two_numeric_ivs_is_3d():
    exp = lmm_experiment(
        "y ~ x1 + x2",
        {"x1": 1.0, "x2": -1.0},
        X=[IV("x1", allowed_values=[0, 1, 2]), IV("x2", allowed_values=[0, 1])],
    )
    fig = exp.plotter()
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Scatter3d)
    assert len(fig.data[0].z) == 6


def test_plotter_iv_and_group_draws_lines_per_level():
    exp = lmm_experiment(
        "y ~ x + (1|subject)",
        {"x": 1.0},
        {"subject": {"Intercept": 1.0}},
        X=[IV("x", allowed_values=[0, 1, 2]), IV("subject", allowed_values=["a", "b"])],
    )
    fig = exp.plotter(random_state=0)
    assert [t.name for t in fig.data] == ["Ground truth, subject=a", "Ground truth, subject=b"]


def test_plotter_refuses_three_ivs():
    exp = lmm_experiment("y ~ a + b + c", X=[IV(n, allowed_values=[0, 1]) for n in ("a", "b", "c")])
    with pytest.raises(SpecError, match="one or two independent variables"):
        exp.plotter()


# --------------------------------------------------------------------------- errors


def test_missing_grouping_factor_in_random_effects():
    with pytest.raises(SpecError, match=r"groups by 'subject' but random_effects has no entry"):
        lmm_experiment("rt ~ x1 + (1|subject)", {"x1": 1.0})


def test_missing_grouping_factor_in_data():
    exp = lmm_experiment("rt ~ x1 + (1|subject)", random_effects={"subject": {}})
    with pytest.raises(DataError, match=r"grouping factor 'subject' .* not a column"):
        exp.run(pd.DataFrame({"x1": [1.0]}))
    with pytest.raises(DataError, match="missing values"):
        exp.run(pd.DataFrame({"x1": [1.0], "subject": [np.nan]}))


def test_non_numeric_predictor():
    exp = lmm_experiment("rt ~ x1", {"x1": 1.0})
    with pytest.raises(DataError, match=r"column 'x1' is used as a fixed effect"):
        exp.run(pd.DataFrame({"x1": ["a", "b"]}))


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("rt", "exactly one '~'"),
        ("rt ~ x ~ z", "exactly one '~'"),
        ("rt ~ ", "nothing right of '~'"),
        ("log(rt) ~ x", "plain column name"),
        ("rt ~ x - 1", "write '0 \\+ ...'"),
        ("rt ~ x1 * x2", "fixed term 'x1 \\* x2'"),
        ("rt ~ x1:x2", "fixed term 'x1:x2'"),
        ("rt ~ log(x)", "fixed term 'log\\(x\\)'"),
        ("rt ~ (1|school/class)", "nested factors are not supported"),
        ("rt ~ (1||g)", "'\\|\\|' is not supported"),
        ("rt ~ (x1:x2|g)", "random-term part 'x1:x2'"),
        ("rt ~ rt + x", "response 'rt' also appears"),
        (3, "must be a string"),
    ],
)
def test_formula_errors(formula, message):
    with pytest.raises(FormulaError, match=message):
        lmm_experiment(formula, random_effects={"g": {}, "school/class": {}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixed_effects": {"x": "big"}}, "fixed effect 'x' must be a finite number"),
        ({"fixed_effects": {"x": float("nan")}}, "must be a finite number"),
        ({"fixed_effects": [1.0]}, "fixed_effects must be a dict"),
        ({"random_effects": {"g": {"x": -1.0}}}, "cannot be negative"),
        ({"random_effects": {"g": 0.5}}, r"random_effects\['g'\] must be a dict"),
        ({"random_effects": {"g": {}}, "X": ["x"]}, "list of IV objects"),
        ({"random_effects": {"g": {}}, "X": [IV("x"), IV("x")]}, "names a variable twice"),
    ],
)
def test_spec_errors(kwargs, message):
    with pytest.raises(SpecError, match=message):
        lmm_experiment("y ~ x + (1|g)", **{"random_effects": {"g": {}}, **kwargs})


def test_negative_noise():
    with pytest.raises(SpecError, match="noise SD cannot be negative"):
        lmm_experiment("y ~ 1").run(pd.DataFrame({"x": [1]}), added_noise=-1)


def test_iv_validation():
    with pytest.raises(SpecError, match="non-empty string name"):
        IV("")
    with pytest.raises(SpecError, match="empty allowed_values"):
        IV("x", allowed_values=[])


def test_categorical_groups_follow_appearance_order():
    exp = lmm_experiment("y ~ (1|g)", random_effects={"g": {"Intercept": 1.0}})
    plain = pd.DataFrame({"g": ["b", "a", "b", "c"]})
    cat = pd.DataFrame({"g": pd.Categorical(plain["g"], categories=["a", "b", "c", "d"])})
    np.testing.assert_array_equal(
        exp.ground_truth(plain, random_state=2)["y"], exp.ground_truth(cat, random_state=2)["y"]
    )


def test_runs_on_a_design_table():
    from lmmcore.design import Design, Factor

    design = Design(10, 6, [Factor("X_i", ["in", "out"], "within_subject")], subject_col="subj_id")
    exp = lmm_experiment(
        "RT ~ X_i + (X_i|subj_id) + (1|item)",
        {"Intercept": 800.0, "X_i": 50.0},
        {"subj_id": {"X_i": 40.0}, "item": {"Intercept": 80.0}},
    )
    out = exp.run(design.conditions(), added_noise=200.0, random_state=1)
    assert len(out) == 60 and out["RT"].notna().all() and abs(out["RT"].mean() - 800) < 150


def test_experiment_is_hashable():
    exp = lmm_experiment("y ~ 1")
    assert hash(exp) == hash(exp) and exp != lmm_experiment("y ~ 1")
