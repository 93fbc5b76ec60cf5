"""Bad data gets typed errors; dropped rows, columns and singular fits get warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import ConvergenceWarning, DataError, DataWarning, FormulaError, SingularFitWarning


@pytest.fixture
def df():
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat(np.arange(12), 10)
    x = np.tile(np.linspace(-1, 1, 10), 12)
    y = 1 + 0.5 * x + rng.normal(0, 1, 12)[g] + rng.normal(0, 0.5, n)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "lab": "a"})


def test_non_numeric_response(df):
    with pytest.raises(DataError, match="must be numeric"):
        lmmcore.fit("g ~ x + (1 | lab)", df.assign(lab=np.arange(len(df)) % 3))


def test_one_level_grouping_factor(df):
    with pytest.raises(DataError, match="only 1 level"):
        lmmcore.fit("y ~ x + (1 | lab)", df)


def test_more_random_effects_than_observations(df):
    with pytest.raises(DataError, match="levels for 120 observations"):
        lmmcore.fit("y ~ x + (1 | id)", df.assign(id=np.arange(len(df))))
    small = df.iloc[:24]
    with pytest.raises(DataError, match="not identifiable"):
        lmmcore.fit("y ~ x + (1 + x | id)", small.assign(id=np.arange(24) // 2))


def test_empty_data(df):
    with pytest.raises(DataError, match="no rows"):
        lmmcore.fit("y ~ x + (1 | g)", df.iloc[:0])


def test_no_random_term(df):
    with pytest.raises(FormulaError, match="no random-effects term"):
        lmmcore.fit("y ~ x", df)


def test_unknown_column(df):
    with pytest.raises(FormulaError, match="'z'"):
        lmmcore.fit("y ~ z + (1 | g)", df)


def test_missing_values_are_dropped_with_a_count(df):
    d = df.copy()
    d.loc[[0, 5, 7], "y"] = np.nan
    with pytest.warns(DataWarning, match="Dropped 3 of 120 rows"):
        r = lmmcore.fit("y ~ x + (1 | g)", d)
    assert r.nobs == 117


def test_rank_deficient_columns_are_dropped_and_named(df):
    with pytest.warns(DataWarning, match="x2"):
        r = lmmcore.fit("y ~ x + x2 + (1 | g)", df.assign(x2=2 * df.x))
    assert r.fe_names == ["(Intercept)", "x"]


def test_singular_fit_warns():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(10), 6)
    d = pd.DataFrame({"y": rng.normal(size=60), "g": g})
    with pytest.warns(SingularFitWarning):
        r = lmmcore.fit("y ~ 1 + (1 | g)", d)
    assert r.is_singular


@pytest.mark.parametrize(
    "optimizer, patched", [("newton", "newton_fit"), ("bobyqa", "minimize_theta")]
)
def test_non_convergence_warns(df, monkeypatch, optimizer, patched):
    import dataclasses
    import importlib

    fitmod = importlib.import_module("lmmcore.fit")
    real = getattr(fitmod, patched)

    def stopped(*a, **k):
        return dataclasses.replace(real(*a, **k), message="NLOPT_MAXEVAL_REACHED", converged=False)

    monkeypatch.setattr(fitmod, patched, stopped)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        r = lmmcore.fit("y ~ x + (1 | g)", df, optimizer=optimizer)
    assert not r.converged


def test_summary_reads_like_lme4():
    r = lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))
    text = r.summary()
    assert "REML criterion at convergence: 1743.6" in text
    assert "Random effects:" in text and "Residual" in text
    assert "Number of obs: 180, groups:  Subject, 18" in text
    assert "Fixed effects:" in text and "(Intercept)" in text and "Days" in text
    assert "24.74" in text and "5.922" in text and "25.59" in text
    assert "Correlation of Fixed Effects:" in text
