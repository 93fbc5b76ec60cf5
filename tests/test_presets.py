"""Each preset builds, simulates one dataset and the fit recovers its fixed effects."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lmmcore
from lmmcore.presets import PRESETS

SLOW = pytest.mark.slow  # P1b and P3 fit 4x4 / 3x3 covariances: about a minute


@pytest.mark.parametrize(
    "name",
    ["P1", pytest.param("P1b", marks=SLOW), "P2", pytest.param("P3", marks=SLOW), "P4", "P5"],
)
def test_preset_recovers_fixed_effects(name):
    p = PRESETS[name]
    data = p.spec.simulate_data(p.design, seed=20240)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits are fine here (P5, P1b)
        res = lmmcore.fit(p.spec.formula, data)
    assert list(res.fe_params.index) == list(p.spec.fixed)
    truth = np.array([p.spec.fixed[k] for k in res.fe_params.index])
    # one draw: each estimate is within 4 of its SEs of the truth unless something is
    # wrong (two-sided normal tail at 4 SE is 6e-5 per coefficient; the seed is fixed)
    z = np.abs(res.fe_params.to_numpy() - truth) / res.bse.to_numpy()
    assert np.all(z < 4), dict(zip(res.fe_params.index, z, strict=True))
