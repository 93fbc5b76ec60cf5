"""Code written for interlace keeps running: fit's arguments and the result's names."""

from __future__ import annotations

import numpy as np
import pytest

import lmmcore
from lmmcore import FormulaError


@pytest.fixture(scope="module")
def sleep_data():
    return lmmcore.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def sleep(sleep_data):
    return lmmcore.fit("Reaction ~ Days + (Days | Subject)", sleep_data)


def test_groups_string_is_one_column(sleep_data):
    ref = lmmcore.fit("Reaction ~ Days + (1 | Subject)", sleep_data)
    for groups in ("Subject", ["Subject"], ("Subject",)):
        got = lmmcore.fit("Reaction ~ Days", sleep_data, groups=groups)
        assert got.formula == "Reaction ~ Days + (1 | Subject)"
        assert got.objective == pytest.approx(ref.objective, abs=1e-9)
    with pytest.raises(FormulaError, match="column name or a list of column names"):
        lmmcore.fit("Reaction ~ Days", sleep_data, groups=3)


def test_reml_must_be_a_bool_and_method_is_an_alias(sleep_data):
    f = "Reaction ~ Days + (1 | Subject)"
    reml, ml = lmmcore.fit(f, sleep_data), lmmcore.fit(f, sleep_data, REML=False)
    assert reml.REML and not ml.REML and ml.objective != reml.objective
    assert lmmcore.fit(f, sleep_data, method="ML").objective == ml.objective
    assert lmmcore.fit(f, sleep_data, method="REML").objective == reml.objective
    assert lmmcore.fit(f, sleep_data, REML=np.bool_(False), method="ML").objective == ml.objective
    for bad in ("GLS", "ML", 1, 0, [True]):
        with pytest.raises(TypeError, match=r"REML must be True .* or False"):
            lmmcore.fit(f, sleep_data, REML=bad)
    with pytest.raises(TypeError, match="method must be 'REML' or 'ML'"):
        lmmcore.fit(f, sleep_data, method="GLS")
    with pytest.raises(TypeError, match="contradicts"):
        lmmcore.fit(f, sleep_data, REML=True, method="ML")


def test_interlace_result_names(sleep):
    assert sleep.fe_bse.equals(sleep.bse)
    assert sleep.fe_pvalues.equals(sleep.pvalues)
    np.testing.assert_array_equal(sleep.fe_cov, sleep.vcov.to_numpy())
    assert isinstance(sleep.fe_cov, np.ndarray) and sleep.fe_cov.shape == (2, 2)
    assert sleep.fe_conf_int.equals(sleep.conf_int())
    assert sleep.method == "REML" and list(sleep.fe_params.index) == ["(Intercept)", "Days"]


def test_is_singular_with_a_tolerance(sleep):
    # lme4: isSingular(lmer(Yield ~ 1 + (1 | Batch), Dyestuff2)) is TRUE (theta = 0)
    with pytest.warns(lmmcore.SingularFitWarning):
        singular = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff2"))
    assert singular.isSingular() and lmmcore.isSingular(singular)
    assert not sleep.isSingular() and not lmmcore.isSingular(sleep)
    smallest = float(sleep.theta[sleep.structure.theta_lower == 0].min())
    assert lmmcore.isSingular(sleep, tol=smallest * 1.01)
    assert not sleep.isSingular(tol=smallest * 0.99)
