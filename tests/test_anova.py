"""lmmcore.anova against lme4's anova() on two nested pairs (tests/data/anova_lme4.csv).

The CSV was made by ``Rscript tests/data/make_anova_lme4.R`` (R 4.2.2, lme4 1.1-31):
``kind == "lme4"`` is ``anova(m1, m0)`` as a user calls it (REML fits refitted by lme4 at
its default tolerances), ``kind == "tight"`` the same test between ML fits converged to
tight tolerances, which is the optimum lmmcore reaches.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import DataError
from lmmcore.anova import COLUMNS
from lmmcore.errors import LmmWarning

REF = pd.read_csv(Path(__file__).parent / "data" / "anova_lme4.csv")
DATA = {"sleepstudy": "sleepstudy", "penicillin": "Penicillin"}


def lmm_table(pair: str) -> pd.DataFrame:
    ref = REF[(REF["pair"] == pair) & (REF["kind"] == "tight")].set_index("model")
    data = lmmcore.load_dataset(DATA[pair])
    reml = bool(ref["REML"].iloc[0])
    m0 = lmmcore.fit(ref.loc["m0", "formula"], data, REML=reml)
    m1 = lmmcore.fit(ref.loc["m1", "formula"], data, REML=reml)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = lmmcore.anova(m1, m0, model_names=["m1", "m0"])  # as in the R script
    refits = [str(w.message) for w in caught if issubclass(w.category, LmmWarning)]
    assert bool(refits) == reml and all("refitting model(s) with ML" in m for m in refits)
    assert table.attrs["refitted"] == (["m1", "m0"] if reml else [])
    return table


@pytest.mark.parametrize("pair", ["sleepstudy", "penicillin"])
def test_anova_matches_lme4(pair):
    table = lmm_table(pair)
    assert list(table.columns) == list(COLUMNS)
    for kind, tol in (("tight", 1e-8), ("lme4", 1e-6)):
        ref = REF[(REF["pair"] == pair) & (REF["kind"] == kind)].set_index("model")
        assert table.index.tolist() == ref.index.tolist() == ["m0", "m1"]  # ordered by npar
        assert table["npar"].tolist() == ref["npar"].tolist()
        for col in ("AIC", "BIC", "logLik", "deviance"):
            np.testing.assert_allclose(table[col], ref[col], rtol=0, atol=tol)
        assert np.isnan(table["Chisq"].iloc[0]) and pd.isna(table["Df"].iloc[0])
        assert table["Chisq"].iloc[1] == pytest.approx(ref["Chisq"].iloc[1], abs=tol)
        assert table["Df"].iloc[1] == ref["Df"].iloc[1]
        p, want = table["Pr(>Chisq)"].iloc[1], ref["Pr(>Chisq)"].iloc[1]
        assert p == pytest.approx(want, rel=1e-6)
    heading = table.attrs["heading"]
    assert heading[0] == "Models:" and heading[1].startswith("m0: ")


def test_anova_arguments():
    data = lmmcore.load_dataset("sleepstudy")
    m0 = lmmcore.fit("Reaction ~ 1 + (1 | Subject)", data, REML=False)
    m1 = lmmcore.fit("Reaction ~ Days + (1 | Subject)", data, REML=False)
    table = lmmcore.anova(m0, m1)
    assert table.index.tolist() == ["MODEL1", "MODEL2"] and table.attrs["refitted"] == []
    # same npar: both rows kept in the order given, no test (lme4: Df 0, p NA)
    same = lmmcore.anova(m1, m1, model_names=["a", "b"])
    assert same["Df"].iloc[1] == 0 and np.isnan(same["Pr(>Chisq)"].iloc[1])
    r1 = lmmcore.fit("Reaction ~ Days + (1 | Subject)", data)
    with pytest.warns(LmmWarning, match="some models fit with REML = TRUE"):
        lmmcore.anova(m0, r1, refit=False)
    with pytest.raises(TypeError, match="two or more models"):
        lmmcore.anova(m0)
    with pytest.raises(TypeError, match="two or more models"):
        lmmcore.anova(m0, "m1")
    with pytest.raises(TypeError, match="2 different names"):
        lmmcore.anova(m0, m1, model_names=["a", "a"])
    fewer = lmmcore.fit("Reaction ~ Days + (1 | Subject)", data.iloc[:170], REML=False)
    with pytest.raises(DataError, match="same rows of the same data"):
        lmmcore.anova(m1, fewer)
