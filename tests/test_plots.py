"""Plotly figure builders: the expected traces and shapes."""

from __future__ import annotations

import numpy as np
import pytest

import lmmcore
from lmmcore.plots import bootstrap_histograms, random_effects_plot, residual_plot


@pytest.fixture(scope="module")
def sleep_fit():
    return lmmcore.fit("Reaction ~ Days + (Days | Subject)", lmmcore.load_dataset("sleepstudy"))


@pytest.fixture(scope="module")
def boot(sleep_fit):
    return lmmcore.bootMer(sleep_fit, B=20, seed=1)


def _shapes(fig, name):
    return [s for s in fig.layout.shapes if s.name == name]


def test_bootstrap_histograms_one_panel_per_statistic(boot):
    ci = boot.ci("perc", 0.9)
    fig = bootstrap_histograms(boot, ci)
    hists = [t for t in fig.data if t.type == "histogram"]
    p = len(boot.names)
    assert len(hists) == p
    np.testing.assert_allclose(hists[0].x, boot.estimates[boot.valid][:, 0])
    assert [a.text for a in fig.layout.annotations] == boot.names
    lo, hi, est = _shapes(fig, "ci_lower"), _shapes(fig, "ci_upper"), _shapes(fig, "estimate")
    assert len(lo) == len(hi) == len(est) == p
    np.testing.assert_allclose([s.x0 for s in lo], ci[:, 0])
    np.testing.assert_allclose([s.x0 for s in hi], ci[:, 1])
    np.testing.assert_allclose([s.x0 for s in est], boot.t0)
    assert not _shapes(fig, "truth")
    # each line sits on its own subplot's x axis
    assert [s.xref for s in est][:2] == ["x", "x2"]


def test_bootstrap_histograms_subset_and_truth(boot):
    ci = boot.ci("norm", 0.95)
    fig = bootstrap_histograms(boot, ci, names=["Days", "sigma"], truth={"Days": 10.0})
    assert len([t for t in fig.data if t.type == "histogram"]) == 2
    truth = _shapes(fig, "truth")
    assert len(truth) == 1 and truth[0].x0 == 10.0 and truth[0].xref == "x"
    assert "true value" in [t.name for t in fig.data]
    with pytest.raises(ValueError, match="Unknown statistic"):
        bootstrap_histograms(boot, ci, names=["nope"])
    with pytest.raises(ValueError, match="shape"):
        bootstrap_histograms(boot, ci[:1])


def test_random_effects_plot_one_panel_per_term(sleep_fit):
    fig = random_effects_plot(sleep_fit)
    re = sleep_fit.random_effects["Subject"]
    assert len(fig.data) == re.shape[1] == 2
    assert [a.text for a in fig.layout.annotations] == ["Subject: (Intercept)", "Subject: Days"]
    xs = np.asarray(fig.data[0].x)
    assert len(xs) == 18 and np.all(np.diff(xs) >= 0)  # sorted caterpillar
    np.testing.assert_allclose(np.sort(re["(Intercept)"].to_numpy()), xs)
    assert len(_shapes(fig, "zero")) == 2


def test_random_effects_plot_crossed_groups():
    r = lmmcore.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", lmmcore.load_dataset("Penicillin"))
    fig = random_effects_plot(r)
    assert len(fig.data) == 2
    assert sorted(len(t.x) for t in fig.data) == [6, 24]


def test_residual_plot(sleep_fit):
    fig = residual_plot(sleep_fit)
    assert len(fig.data) == 1
    np.testing.assert_allclose(fig.data[0].y, sleep_fit.resid)
    np.testing.assert_allclose(fig.data[0].x, sleep_fit.fittedvalues)
    assert len(fig.layout.shapes) == 1
