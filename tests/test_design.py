"""Tests of lmmcore.design: the presets, coding, counterbalancing, extras and every error."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest

from lmmcore.design import MAX_ROWS, Covariate, Design, Factor
from lmmcore.errors import DesignError


def two(name: str, a: str, b: str, varies: str = "within", coding: str = "deviation") -> Factor:
    return Factor(name, [a, b], varies=varies, coding=coding)


# --------------------------------------------------------------------------- presets


def _preset(name: str):
    """The shipped preset's design: these tests check what the app and the presets use."""
    from lmmcore import PRESETS

    return lambda: PRESETS[name].design


p1, p1b, p2, p3, p4, p5 = (_preset(n) for n in ("P1", "P1b", "P2", "P3", "P4", "P5"))


def test_p1_debruine_barr():
    d = p1()
    c = d.conditions()
    assert d.n_rows == len(c) == 5000
    assert list(c.columns) == ["subj_id", "item_id", "X_i", "X_i_label"]
    assert c["subj_id"].nunique() == 100 and c["item_id"].nunique() == 50
    # each subject sees every item once; X_i is between items (25/25), within subjects
    assert (c.groupby(["subj_id", "item_id"], observed=True).size() == 1).all()
    assert (c.groupby("item_id", observed=True)["X_i"].nunique() == 1).all()
    per_item = c.drop_duplicates("item_id")["X_i_label"].value_counts()
    assert per_item.to_dict() == {"ingroup": 25, "outgroup": 25}
    assert (c.groupby("subj_id", observed=True)["X_i"].sum() == 0).all()
    assert dict(zip(c["X_i_label"], c["X_i"], strict=True)) == {"ingroup": -0.5, "outgroup": 0.5}


def test_p1b_two_by_two():
    c = p1b().conditions()
    assert len(c) == 5000
    assert (c.groupby(["subj_id", "item_id"], observed=True).size() == 2).all()
    assert (c.groupby("item_id", observed=True)["X_c"].nunique() == 1).all()
    assert (c.groupby("item_id", observed=True)["X_e"].nunique() == 2).all()
    cells = c.groupby(["X_e", "X_c"]).size()
    assert set(cells.index) == {(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)}
    assert (cells == 1250).all()


def test_p2_kb07_counterbalanced():
    d = p2()
    c = d.conditions()
    assert d.n_rows == len(c) == 56 * 32
    assert (c.groupby(["subj", "item"], observed=True).size() == 1).all()
    assert set(c[["spkr", "prec", "load"]].stack().unique()) == {-1.0, 1.0}
    # every subject sees each of the 8 cells 4 times
    per_subject = c.groupby(["subj", "spkr", "prec", "load"], observed=True).size()
    assert len(per_subject) == 56 * 8 and (per_subject == 4).all()
    # every item appears in all 8 cells (7 times each, as 56 = 7 x 8 subjects)
    per_item = c.groupby(["item", "spkr", "prec", "load"], observed=True).size()
    assert len(per_item) == 32 * 8 and (per_item == 7).all()
    # the tutorial's sweep: 20, 30, 40 subjects x 16, 24, 32 items all build
    for s in (20, 30, 40):
        for i in (16, 24, 32):
            assert p2().with_size(subjects=s, items=i).n_rows == s * i


def test_p3_alday_crossed():
    c = p3().conditions()
    assert len(c) == 40 * 40 * 2
    assert (c.groupby("subj", observed=True)["age"].nunique() == 1).all()
    assert (c.groupby("item", observed=True)["age"].nunique() == 2).all()
    assert (c.groupby("item", observed=True)["frequency"].nunique() == 1).all()
    assert (c.groupby("subj", observed=True)["frequency"].nunique() == 2).all()
    assert (c.groupby(["subj", "item"], observed=True)["context"].nunique() == 2).all()
    assert c.drop_duplicates("subj")["age_label"].value_counts().to_dict() == {
        "old": 20,
        "young": 20,
    }
    cells = c.groupby(["age", "frequency", "context"]).size()
    assert len(cells) == 8 and (cells == 400).all()
    assert dict(zip(c["age_label"], c["age"], strict=True)) == {"old": -1.0, "young": 1.0}


def test_p4_yan_covariates():
    d = p4()
    c = d.conditions(seed=2014)
    assert d.n_rows == len(c) == 13523
    assert list(c.columns) == ["subject", "sentence", "word_length", "complexity", "rep"]
    assert c["subject"].nunique() == 48 and c["sentence"].nunique() == 120
    words = c.groupby(["subject", "sentence"], observed=True).size()
    assert words.min() < words.max() <= 3  # several words per sentence, unbalanced
    assert (c.groupby("sentence", observed=True)["complexity"].nunique() == 1).all()
    per_sentence = c.drop_duplicates("sentence")["complexity"]
    assert abs(per_sentence.mean()) < 1e-12
    assert abs(c["word_length"].mean()) < 0.05 and 0.9 < c["word_length"].std() < 1.1
    pd.testing.assert_frame_equal(c, d.conditions(seed=2014))


def test_p5_perea_repetition():
    c = p5().conditions()
    assert len(c) == 4800
    assert (c.groupby(["SUBJECT", "ITEM"], observed=True).size() == 1).all()
    per_subject = c.groupby(["SUBJECT", "REPETITION_label"], observed=True).size()
    assert (per_subject == 60).all() and len(per_subject) == 80
    per_item = c.groupby(["ITEM", "REPETITION_label"], observed=True).size()
    assert (per_item == 20).all() and len(per_item) == 240


# --------------------------------------------------------------------------- coding


@pytest.mark.parametrize(
    ("coding", "values"),
    [("deviation", [-0.5, 0.5]), ("sum", [-1.0, 1.0]), ("treatment", [0.0, 1.0])],
)
def test_two_level_codings(coding, values):
    d = Design(2, 2, [Factor("cond", ["a", "b"], coding=coding)])
    c = d.conditions()
    assert d.columns == ("cond",)
    assert c.groupby("cond_label", observed=True)["cond"].first().tolist() == values


def test_three_level_codings():
    f = ["lo", "mid", "hi"]
    treat = Factor("cond", f, coding="treatment")
    assert treat.columns == ("condmid", "condhi")
    assert treat.contrasts().tolist() == [[0, 0], [1, 0], [0, 1]]
    assert Factor("cond", f, coding="sum").contrasts().tolist() == [[-1, -1], [1, 0], [0, 1]]
    dev = Factor("cond", f).contrasts()
    np.testing.assert_allclose(dev, [[-1 / 3, -1 / 3], [2 / 3, -1 / 3], [-1 / 3, 2 / 3]])
    np.testing.assert_allclose(dev.sum(axis=0), 0, atol=1e-15)
    c = Design(3, 3, [Factor("cond", f, coding="treatment")]).conditions()
    rows = c.drop_duplicates("cond_label").set_index("cond_label")[["condmid", "condhi"]]
    assert rows.loc["hi"].tolist() == [0.0, 1.0] and rows.loc["lo"].tolist() == [0.0, 0.0]
    assert Factor("w", ["a b", "c-d"], coding="sum").columns == ("w",)
    assert Factor("w", ["x", "a b", "c-d"]).columns == ("wa_b", "wc_d")


def test_categorical_coding_keeps_labels():
    c = Design(2, 2, [Factor("cond", ["b", "a"], coding="categorical")]).conditions()
    assert isinstance(c["cond"].dtype, pd.CategoricalDtype)
    assert list(c["cond"].cat.categories) == ["b", "a"]
    assert Factor("cond", ["b", "a"], coding="categorical").columns == ()


def test_label_columns_are_ordered_categoricals():
    c = p1().conditions()
    assert c["X_i_label"].cat.ordered and list(c["X_i_label"].cat.categories) == [
        "ingroup",
        "outgroup",
    ]
    assert all(re.fullmatch(r"[A-Za-z][\w.]*", col) for col in c.columns)


# --------------------------------------------------------------------------- structure


def test_latin_square_rule():
    d = Design(6, 6, [Factor("c", ["a", "b", "c"])], counterbalance=True)
    c = d.conditions()
    s = c["subj"].cat.codes.to_numpy()
    i = c["item"].cat.codes.to_numpy()
    cell = c["c_label"].cat.codes.to_numpy()
    np.testing.assert_array_equal(cell, (s + i) % 3)


def test_counterbalance_within_item_groups_and_subject_groups():
    d = Design(
        8,
        8,
        [
            two("g", "young", "old", "between_subject"),
            two("w", "hf", "lf", "within_subject"),
            two("c", "x", "y"),
        ],
        counterbalance=True,
    )
    c = d.conditions()
    assert len(c) == 64
    # each subject sees each within cell equally often inside each item group
    counts = c.groupby(["subj", "w", "c"], observed=True).size()
    assert (counts == 2).all() and len(counts) == 8 * 4
    # each item meets each within cell equally often inside each subject group
    counts = c.groupby(["item", "g", "c"], observed=True).size()
    assert (counts == 2).all() and len(counts) == 8 * 4


def test_between_both_subjects_only_meet_matching_items():
    d = Design(4, 6, [two("lang", "en", "de", "between"), two("c", "x", "y")])
    c = d.conditions()
    assert d.n_rows == len(c) == 4 * 3 * 2
    assert (c.groupby("subj", observed=True)["item"].nunique() == 3).all()
    assert (c.groupby("item", observed=True)["subj"].nunique() == 2).all()
    assert (c.groupby("item", observed=True)["lang"].nunique() == 1).all()


def test_no_items_and_trials():
    d = Design(5, factors=[two("c", "x", "y")], trials=3)
    c = d.conditions()
    assert d.n_rows == len(c) == 30
    assert list(c.columns) == ["subj", "c", "c_label", "rep"]
    assert c["rep"].tolist()[:6] == [1, 2, 3, 1, 2, 3]


def test_nested_schools():
    d = Design(
        nested=[("school", 10), ("class", 4), ("pupil", 25)],
        factors=[
            Factor("treat", ["control", "tutoring"], "between_subject", "treatment", at="school"),
            two("time", "pre", "post"),
        ],
    )
    assert d.subjects == 1000 and d.subject_col == "pupil"
    c = d.conditions(seed=3)
    assert d.n_rows == len(c) == 2000
    assert list(c.columns) == [
        "school",
        "class",
        "pupil",
        "treat",
        "treat_label",
        "time",
        "time_label",
    ]
    assert c["school"].nunique() == 10 and c["class"].nunique() == 40
    assert c["pupil"].nunique() == 1000
    assert (c.groupby("class", observed=True)["school"].nunique() == 1).all()
    assert (c.groupby("pupil", observed=True)["class"].nunique() == 1).all()
    assert (c.groupby("school", observed=True)["treat"].nunique() == 1).all()
    schools = c.drop_duplicates("school")["treat_label"].value_counts()
    assert schools.to_dict() == {"control": 5, "tutoring": 5}
    assert (c.groupby("pupil", observed=True)["time"].sum() == 0).all()


def test_nested_at_level_balance():
    d = Design(
        nested=[("school", 4), ("class", 2), ("pupil", 6)],
        factors=[
            Factor("treat", ["control", "tutoring"], "between_subject", at="school"),
            two("sex", "f", "m", "between_subject"),
        ],
        covariates=[Covariate("ses", per="class", center=True)],
    )
    c = d.conditions(seed=0)
    assert len(c) == 48
    assert (c.groupby("school", observed=True)["treat"].nunique() == 1).all()
    assert (c.groupby(["class", "sex"], observed=True).size() == 3).all()
    assert (c.groupby("class", observed=True)["ses"].nunique() == 1).all()
    assert abs(c.drop_duplicates("class")["ses"].mean()) < 1e-12
    resized = d.with_size(nested={"pupil": 10})
    assert resized.subjects == 80 and resized.n_rows == 80


def test_covariates_per_unit_and_seed():
    d = Design(
        6,
        4,
        covariates=[
            Covariate("age", "uniform", (18, 30), per="subject"),
            Covariate("freq", "normal", (5.0, 2.0), per="item"),
            Covariate("noise", per="row", center=True),
        ],
    )
    a, b = d.conditions(seed=1), d.conditions(seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["noise"], d.conditions(seed=2)["noise"])
    assert (a.groupby("subj", observed=True)["age"].nunique() == 1).all()
    assert a["age"].between(18, 30).all() and a["age"].nunique() == 6
    assert (a.groupby("item", observed=True)["freq"].nunique() == 1).all()
    assert abs(a["noise"].mean()) < 1e-12


def test_missingness_exact_and_seeded():
    d = Design(20, 10, [two("c", "x", "y")], missing=0.1)
    assert d.n_rows == 400 - 40
    a = d.conditions(seed=5)
    assert len(a) == 360 and a.index.equals(pd.RangeIndex(360))
    pd.testing.assert_frame_equal(a, d.conditions(seed=5))
    assert not a.equals(d.conditions(seed=6))
    full = Design(20, 10, [two("c", "x", "y")]).conditions()
    assert set(map(tuple, a[["subj", "item", "c"]].astype(str).values)) < set(
        map(tuple, full[["subj", "item", "c"]].astype(str).values)
    )


@pytest.mark.parametrize(
    "design",
    [
        p1(),
        p1b(),
        p2(),
        p3(),
        p4(),
        p5(),
        Design(7, None, trials=2, missing=0.3),
        Design(3, 4, [Factor("c", list("abcd"))], counterbalance=True, trials=2),
        Design(nested=[("a", 2), ("b", 4)], items=2, factors=[two("w", "x", "y", "between")]),
    ],
)
def test_n_rows_matches_conditions(design):
    assert design.n_rows == len(design.conditions(seed=0))


def test_with_size():
    d = p1()
    small = d.with_size(subjects=20, items=10)
    assert (small.subjects, small.items, small.n_rows) == (20, 10, 200)
    assert small.factors == d.factors and d.subjects == 100
    assert d.with_size(trials=2).n_rows == 10000
    with pytest.raises(DesignError, match=r"items \(11\) must be a multiple of 2.*use 10 or 12"):
        d.with_size(items=11)


def test_json_round_trip():
    designs = [p1(), p2(), p3(), p4(), p5()]
    designs.append(
        Design(
            nested=[("school", 2), ("class", 2), ("pupil", 4)],
            factors=[Factor("t", ["a", "b"], "between_subject", at="school")],
            covariates=[Covariate("ses", per="school")],
        )
    )
    for d in designs:
        back = Design.from_dict(json.loads(json.dumps(d.to_dict())))
        assert back == d
        assert back.n_rows == d.n_rows


def test_factors_and_covariates_from_dicts():
    d = Design(4, 4, factors=[{"name": "c", "levels": ["x", "y"]}], covariates=[{"name": "z"}])
    assert d.factors == (Factor("c", ("x", "y")),) and d.covariates == (Covariate("z"),)


def test_summary():
    assert p1().summary() == (
        "100 subj_id x 50 item_id; X_i: ingroup/outgroup (within subjects, between items, "
        "deviation); 5,000 rows"
    )


def test_cap_is_checked_without_building():
    start = time.perf_counter()
    with pytest.raises(DesignError, match=r"5,000,000-row limit") as err:
        Design(10**6, 10**6)
    assert "1,000,000,000,000 rows" in str(err.value)
    assert time.perf_counter() - start < 1
    assert MAX_ROWS == 5_000_000
    assert Design(5000, 1000).n_rows == MAX_ROWS


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Design(0, 10), r"subjects must be a positive whole number, got 0; use at least"),
        (lambda: Design(-5, 10), r"subjects must be a positive whole number, got -5"),
        (lambda: Design(10, 0), r"items must be a positive whole number, got 0"),
        (lambda: Design(10, -1), r"items must be a positive whole number, got -1"),
        (lambda: Design(2.5, 10), r"subjects must be a positive whole number, got 2.5"),
        (lambda: Design(True, 10), r"subjects must be a positive whole number, got True"),
        (lambda: Design(10, 10, trials=0), r"trials must be a positive whole number, got 0"),
        (lambda: Design(), r"give the number of subjects \(subjects=...\) or a nesting"),
        (
            lambda: p2().with_size(items=30),
            r"items \(30\) must be a multiple of 8 for counterbalancing: the Latin square "
            r"cycles through 8 cells of spkr \(2\) x prec \(2\) x load \(2\); use 24 or 32 items",
        ),
        (
            lambda: Design(
                4,
                10,
                [two("w", "a", "b", "within_subject"), two("c", "x", "y")],
                counterbalance=True,
            ),
            r"items \(10\) must be a multiple of 4 for counterbalancing: the Latin square cycles "
            r"through 2 cells of c \(2\) in each of the 2 item groups \(w \(2\)\); "
            r"use 8 or 12 items",
        ),
        (
            lambda: Design(10, 5, [two("w", "a", "b", "within_subject")]),
            r"items \(5\) must be a multiple of 2, the number of item groups of w \(2\), so "
            r"every group has the same number of items; use 4 or 6 items",
        ),
        (
            lambda: Design(25, 10, [two("age", "o", "y", "between_subject")]),
            r"subjects \(25\) must be a multiple of 2, the number of groups of age \(2\), so "
            r"every group has the same size; use 24 or 26",
        ),
        (
            lambda: Design(1, 10, [Factor("g", list("abc"), "between_subject")]),
            r"subjects \(1\) must be a multiple of 3.*; use 3$",
        ),
        (
            lambda: Design(
                nested=[("school", 3), ("class", 5)],
                factors=[two("t", "a", "b", "between_subject")],
            ),
            r"'class' units per 'school' \(5\) must be a multiple of 2, the number of groups "
            r"of t \(2\), so every group has the same size; use 4 or 6",
        ),
        (
            lambda: Design(
                nested=[("school", 3), ("class", 4)],
                factors=[Factor("t", ["a", "b"], "between_subject", at="school")],
            ),
            r"'school' units \(3\) must be a multiple of 2.*; use 2 or 4",
        ),
        (
            lambda: Factor("c", ["only"]),
            r"factor 'c' has 1 level\(s\); a factor needs at least 2 levels: add a level or "
            r"drop the factor",
        ),
        (lambda: Factor("c", []), r"factor 'c' has 0 level\(s\)"),
        (lambda: Factor("c", "ab"), r"levels must be a list of labels"),
        (lambda: Factor("c", ["a", "a"]), r"factor 'c' repeats level name\(s\) \['a'\]"),
        (lambda: Factor("c", ["a", ""]), r"factor 'c' has an empty level name"),
        (
            lambda: Factor("c", ["x", "a b", "a-b"]),
            r"levels \['x', 'a b', 'a-b'\] give clashing column names \['ca_b', 'ca_b'\]",
        ),
        (lambda: Factor("2x", ["a", "b"]), r"factor name '2x' is not a usable column name"),
        (lambda: Factor("c", ["a", "b"], varies="mixed"), r"varies='mixed' is not one of"),
        (
            lambda: Factor("c", ["a", "b"], coding="orthogonal"),
            r"coding='orthogonal' is not one of",
        ),
        (
            lambda: Factor("c", ["a", "b"], at="school"),
            r"at='school' only applies to factors that vary between subjects",
        ),
        (
            lambda: Design(4, 4, [two("c", "a", "b"), two("c", "x", "y")]),
            r"factor name\(s\) \['c'\] appear twice; give each factor its own",
        ),
        (
            lambda: Design(4, 4, [two("subj", "a", "b")]),
            r"column name\(s\) \['subj'\] would appear twice in the conditions table",
        ),
        (
            lambda: Design(4, 4, [two("c", "a", "b"), two("c_label", "x", "y")]),
            r"column name\(s\) \['c_label'\] would appear twice",
        ),
        (
            lambda: Design(4, 4, subject_col="id", item_col="id"),
            r"column name\(s\) \['id'\] would appear twice",
        ),
        (
            lambda: Design(4, 4, trials=2, covariates=[Covariate("rep")]),
            r"column name\(s\) \['rep'\] would appear twice",
        ),
        (
            lambda: Design(4, None, [two("w", "a", "b", "within_subject")]),
            r"factor 'w' varies between items but the design has no items; set items=",
        ),
        (
            lambda: Design(4, None, [two("c", "a", "b")], counterbalance=True),
            r"counterbalance=True rotates items through conditions, but the design has no items",
        ),
        (
            lambda: Design(4, 4, [two("w", "a", "b", "within_subject")], counterbalance=True),
            r"counterbalance=True needs at least one factor with varies='within'",
        ),
        (
            lambda: Design(4, 4, [Factor("t", ["a", "b"], "between_subject", at="school")]),
            r"at='school' is not a subject level of this design \(\['subj'\]\)",
        ),
        (lambda: Design(4, 4, missing=1.0), r"missing must be a fraction in \[0, 1\)"),
        (lambda: Design(4, 4, missing=-0.1), r"missing must be a fraction in \[0, 1\)"),
        (lambda: Design(1, 1, missing=0.9), r"missing=0.9 drops all 1 rows; lower missing"),
        (
            lambda: Design(10**4, 10**4),
            r"this design has 100,000,000 rows, more than the 5,000,000-row limit that keeps "
            r"simulations in memory; use fewer subjects, items, trials",
        ),
        (lambda: Design(nested=[]), r"nested is empty"),
        (lambda: Design(nested="school"), r"nested must be a list of \(name, count\) pairs"),
        (lambda: Design(nested=[("a", 2, 3)]), r"nested entry \('a', 2, 3\) must be a"),
        (lambda: Design(nested=[("a", 0)]), r"nested count of 'a' must be a positive whole"),
        (lambda: Design(nested=[("a", 2), ("a", 2)]), r"nesting level names repeat"),
        (
            lambda: Design(subjects=5, nested=[("a", 2), ("b", 2)]),
            r"subjects=5 disagrees with nested, which gives 4 b units; leave subjects out",
        ),
        (
            lambda: Design(nested=[("a", 2), ("b", 2)], subject_col="pupil"),
            r"subject_col='pupil' but the lowest nesting level is 'b'",
        ),
        (lambda: Design(4, 4, subject_col="my subj"), r"subject_col 'my subj' is not a usable"),
        (lambda: Design(4, 4, counterbalance=1), r"counterbalance must be True or False"),
        (lambda: Design(4, 4, factors=Factor("c", ["a", "b"])), r"factors must be a list"),
        (lambda: Design(4, 4, factors=[3]), r"factors must be Factor objects or dicts"),
        (
            lambda: Design(4, 4, factors=[{"name": "c", "levls": ["a", "b"]}]),
            r"unknown factor key\(s\) \['levls'\]",
        ),
        (lambda: Design(4, 4, covariates=Covariate("z")), r"covariates must be a list"),
        (lambda: Covariate("z", "gamma"), r"distribution='gamma' is not one of"),
        (lambda: Covariate("z", params=(1.0,)), r"params must be two finite numbers"),
        (lambda: Covariate("z", params=(0.0, -1.0)), r"the SD -1.0 is negative"),
        (lambda: Covariate("z", "uniform", (2, 1)), r"uniform needs low < high"),
        (lambda: Covariate("z", center="yes"), r"center must be True or False"),
        (
            lambda: Design(4, None, covariates=[Covariate("z", per="item")]),
            r"covariate 'z': per='item' is not one of \['row', 'subj', 'subject'\]",
        ),
        (lambda: Design.from_dict({"subjects": 4, "size": 3}), r"unknown design key\(s\)"),
        (lambda: Design.from_dict([4]), r"from_dict needs a dict"),
        (lambda: Design(4, None).with_size(items=4), r"this design has no items"),
        (
            lambda: Design(nested=[("a", 2), ("b", 2)]).with_size(subjects=8),
            r"this design is nested: resize it with nested=\{level: count\}",
        ),
        (
            lambda: Design(nested=[("a", 2), ("b", 2)]).with_size(nested={"c": 3}),
            r"with_size: \['c'\] are not nesting levels of this design",
        ),
        (lambda: Design(4, 4).with_size(nested={"a": 2}), r"this design is not nested"),
    ],
)
def test_design_errors(make, message):
    with pytest.raises(DesignError, match=message):
        make()


def test_helmert_and_poly_codings_are_rs_contrasts():
    from lmmcore.model_frame import contrast_matrix

    for coding in ("helmert", "poly"):
        f = Factor("dose", ["lo", "mid", "hi", "top"], coding=coding)
        np.testing.assert_allclose(f.contrasts(), contrast_matrix(coding, f.levels)[0])
    assert Factor("dose", ["lo", "mid", "hi", "top"], coding="poly").columns == (
        "dose.L",
        "dose.Q",
        "dose.C",
    )
    assert Factor("c", list("abc"), coding="helmert").columns == ("c1", "c2")
    d = Design(4, 2, [Factor("c", list("abc"), coding="helmert")])
    assert d.conditions()[["c1", "c2"]].drop_duplicates().values.tolist() == [
        [-1.0, -1.0],
        [1.0, -1.0],
        [0.0, 2.0],
    ]


@pytest.mark.parametrize("name", ["P1", "P1b", "P2", "P3", "P4", "P5"])
@pytest.mark.parametrize("kind", ["maximal", "uncorrelated", "intercepts"])
def test_proposed_formulas_build_on_their_design(name, kind):
    import lmmcore

    design = lmmcore.PRESETS[name].design
    f = design.propose_formula("y", kind)
    s = lmmcore.build_structure(f, design.conditions(1).assign(y=0.0))
    assert {b.group for b in s.blocks} <= {n for n, _ in design.hierarchy} | {design.item_col}
    if kind == "intercepts":
        assert all(b.k == 1 for b in s.blocks)


def test_conditions_units_name_each_rows_observation():
    d = Design(
        8,
        6,
        [Factor("c", ["a", "b"]), Factor("g", ["p", "q"], "between_subject")],
        trials=2,
        missing=0.25,
    )
    frame, units = d.conditions_units(seed=3)
    pd.testing.assert_frame_equal(frame, d.conditions(seed=3))
    assert set(units) == {"subject", "item", "cell", "rep"}
    assert all(len(v) == len(frame) == d.n_rows for v in units.values())
    # the units agree with the IDs, labels and repetitions of the rows that were kept
    assert frame["subj"].astype(str).tolist() == [f"subj{s + 1}" for s in units["subject"]]
    assert frame["item"].astype(str).tolist() == [f"item{i + 1}" for i in units["item"]]
    assert frame["c_label"].cat.codes.tolist() == units["cell"].tolist()
    assert (frame["rep"] - 1).tolist() == units["rep"].tolist()
