"""predict() and new data, scale() before na.omit, and BLUP indices: against lme4.

tests/data/predict_scale_lme4.json was made by tests/data/make_predict_scale_lme4.R
(lme4 1.1-31, tight nloptwrap tolerances).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import DataError

FX = json.loads((Path(__file__).parent / "data" / "predict_scale_lme4.json").read_text())
SLEEP = lmmcore.load_dataset("sleepstudy")


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_scale_uses_every_row_with_the_variable_as_r_does(method):
    ref = FX["scale_na"][method]
    data = SLEEP.copy()
    data.loc[FX["missing_rows"], "Reaction"] = np.nan
    with pytest.warns(lmmcore.DataWarning, match="Dropped 18 of 180 rows"):
        res = lmmcore.fit(
            "log(Reaction) ~ scale(Days) + (1 | Subject)", data, REML=method == "reml"
        )
    assert res.nobs == ref["nobs"] == 162
    assert abs(res.objective - ref["objective"]) < 1e-6
    np.testing.assert_allclose(res.fe_params, list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(res.sigma, ref["sigma"], rtol=1e-5)
    # what lmmcore did before: scale over the complete rows only -- a different model
    kept = data.dropna()
    after = lmmcore.fit(
        "log(Reaction) ~ I((Days - m) / s) + (1 | Subject)",
        kept.assign(m=kept.Days.mean(), s=kept.Days.std()),
        REML=method == "reml",
    )
    assert abs(after.fe_params.iloc[0] - ref["fixef"]["(Intercept)"]) > 1e-4


def test_predict_new_data_with_new_levels_equals_lme4():
    ref = FX["predict"]
    res = lmmcore.fit(ref["formula"], SLEEP)
    assert abs(res.objective - ref["objective"]) < 1e-6
    new = pd.DataFrame(ref["newdata"])
    np.testing.assert_allclose(res.predict(new), ref["full"], rtol=1e-6)
    np.testing.assert_allclose(res.predict(new, re_form="~0"), ref["population"], rtol=1e-9)
    np.testing.assert_allclose(res.predict(), ref["fitted"], rtol=1e-6)
    np.testing.assert_allclose(res.predict(), res.fittedvalues)


def test_new_data_problems():
    res = lmmcore.fit("Reaction ~ Days + (1 | Subject)", SLEEP)
    out = res.predict(pd.DataFrame({"Days": [1.0, np.nan], "Subject": ["308", "308"]}))
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(lmmcore.FormulaError, match="no column 'Days'"):
        res.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(ValueError, match="re_form"):
        res.predict(re_form="~(1|Subject)")
    f = SLEEP.assign(g=np.where(SLEEP.Days < 5, "early", "late"))
    res2 = lmmcore.fit("Reaction ~ g + (1 | Subject)", f)
    with pytest.raises(DataError, match="level\\(s\\) 'middle' that the fitted data did not"):
        res2.predict(pd.DataFrame({"g": ["middle"], "Subject": ["308"]}))


def test_random_effects_keep_the_datas_own_level_type():
    data = SLEEP.assign(Subject=SLEEP["Subject"].astype(str).astype(int))
    re = lmmcore.fit("Reaction ~ Days + (1 | Subject)", data).random_effects["Subject"]
    assert re.index.dtype.kind == "i"
    assert re.loc[308, "(Intercept)"] == pytest.approx(re.iloc[0, 0])
