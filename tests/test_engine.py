"""The engine: compiled kernel vs numpy reference, and the elimination order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lmmcore
import lmmcore.engine as engine_mod
from lmmcore.engine import Engine
from tests.lme4_fixtures import case_names, load_case


@pytest.mark.parametrize("case", case_names())
def test_kernel_matches_numpy_reference(case):
    fx, df, con = load_case(case)
    s = lmmcore.build_structure(fx["formula"], df, contrasts=con)
    eng = Engine(s)
    rng = np.random.default_rng(1)
    Y = s.y[:, None] + rng.normal(0, s.y.std(), (s.n, 5))
    resp = eng.responses(Y)
    th = np.abs(np.array(fx["theta"]["values"]) + rng.normal(0, 0.2, (40, s.n_theta)))
    reps = np.repeat(np.arange(5), 8)
    ref = eng.parts(th, reps, resp)
    got = eng.kernel_parts(th, reps, resp)[:3]
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-8)


def test_elimination_order_does_not_change_the_fit(monkeypatch):
    """40 subjects (2 terms each) x 50 items: the engine eliminates subjects first,
    although lme4's order puts items first; estimates and BLUPs must not depend on it."""
    p = lmmcore.PRESETS["P1"]
    data = p.spec.simulate_data(p.design.with_size(subjects=40), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = lmmcore.fit(p.spec.formula, data)
        assert fast.engine.order == [1, 0]
        monkeypatch.setattr(engine_mod, "_elimination_order", lambda s: list(range(len(s.blocks))))
        plain = lmmcore.fit(p.spec.formula, data)
    assert plain.engine.order == [0, 1]
    assert fast.objective == pytest.approx(plain.objective, abs=1e-8)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-5, atol=1e-7)
    for g in plain.random_effects:
        np.testing.assert_allclose(
            fast.random_effects[g].to_numpy(),
            plain.random_effects[g].to_numpy(),
            rtol=1e-4,
            atol=1e-6 * np.abs(plain.random_effects[g].to_numpy()).max(),
        )
    np.testing.assert_allclose(fast.fittedvalues, plain.fittedvalues, rtol=1e-6)
