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
