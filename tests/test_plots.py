"""Plotly figure builders: the expected traces and shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.plots import (
    bootstrap_histograms,
    condition_labels,
    drawn_effects_plot,
    group_means_plot,
    random_effects_plot,
    residual_plot,
    spaghetti_plot,
)


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


# ------------------------------------------------------------------ simulated-data panels


@pytest.fixture(scope="module")
def p1_sim():
    p = lmmcore.PRESETS["P1"]
    design = p.design.with_size(subjects=12, items=10)
    data = design.conditions(3)
    y, eff = p.spec.simulate(data, 1, 3, return_effects=True)
    return data.assign(RT=y[:, 0]), eff


def test_condition_labels(p1_sim):
    data, _ = p1_sim
    lab = condition_labels(data, ["X_i"])
    assert lab.name == "condition" and set(lab.astype(str)) == {"ingroup", "outgroup"}
    assert "condition" not in data.columns
    assert condition_labels(data, []) is None
    two = condition_labels(data.assign(Z_label="z"), ["X_i", "Z"])
    assert set(two) == {"ingroup / z", "outgroup / z"}


def test_spaghetti_plot_one_line_per_subject_plus_means(p1_sim):
    data, _ = p1_sim
    df = data.assign(condition=condition_labels(data, ["X_i"]))
    fig = spaghetti_plot(df, "RT", "condition", "subj_id")
    assert len(fig.data) == 12 + 1
    means = df.groupby("condition", observed=True)["RT"].mean().to_numpy()
    np.testing.assert_allclose(fig.data[-1].y, means)
    assert len(spaghetti_plot(df, "RT", "condition", "subj_id", max_subjects=5).data) == 6


def test_spaghetti_plot_numeric_x_and_none():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"s": np.repeat(["a", "b", "c"], 20), "x": rng.normal(size=60)})
    df["y"] = 2 * df["x"] + rng.normal(size=60)
    fig = spaghetti_plot(df, "y", "x", "s")
    assert len(fig.data) == 4 and fig.data[-1].name == "all data"
    box = spaghetti_plot(df, "y", None, "s")
    assert len(box.data) == 1 and len(box.data[0].y) == 3


def test_group_means_plot(p1_sim):
    data, _ = p1_sim
    fig = group_means_plot(data, "RT", ["subj_id", "item_id", "nope"])
    assert [len(t.x) for t in fig.data] == [12, 10]
    np.testing.assert_allclose(
        fig.data[0].x, data.groupby("subj_id", observed=True)["RT"].mean().to_numpy()
    )


def test_drawn_effects_plot_scatter_and_histogram(p1_sim):
    _, eff = p1_sim
    fig = drawn_effects_plot(eff)
    types = {t.name: t.type for t in fig.data}
    assert types == {"item_id": "histogram", "subj_id": "scatter"}
    sc = next(t for t in fig.data if t.name == "subj_id")
    np.testing.assert_allclose(sc.x, eff["subj_id"]["(Intercept)"])
    np.testing.assert_allclose(sc.y, eff["subj_id"]["X_i"])


def test_every_figure_has_axis_titles():
    import lmmcore
    from lmmcore import plots, power_plots

    sleep = lmmcore.load_dataset("sleepstudy")
    fit = lmmcore.fit("Reaction ~ Days + (Days | Subject)", sleep)
    boot = lmmcore.bootMer(fit, B=10, seed=1)
    curve = pd.DataFrame(
        {
            "subjects": [10, 20] * 2,
            "items": [5, 5, 10, 10],
            "effect": "X",
            "power": [0.3, 0.6, 0.4, 0.7],
            "ci_lower": [0.2, 0.5, 0.3, 0.6],
            "ci_upper": [0.4, 0.7, 0.5, 0.8],
        }
    )
    p1 = lmmcore.PRESETS["P1"]
    data = p1.spec.simulate_data(p1.design.with_size(subjects=6), 1)
    _, effects = p1.spec.simulate(data, 1, 1, return_effects=True)
    figures = {
        "bootstrap": plots.bootstrap_histograms(boot, boot.ci()),
        "random effects": plots.random_effects_plot(fit),
        "residuals": plots.residual_plot(fit),
        "spaghetti": plots.spaghetti_plot(
            data.assign(c=data["X_i_label"]), "RT", "c", "subj_id", unit="ms"
        ),
        "group means": plots.group_means_plot(data, "RT", ["subj_id", "item_id"], unit="ms"),
        "drawn effects": plots.drawn_effects_plot(effects, unit="ms"),
        "power curve": power_plots.power_curve_figure(curve[curve["items"] == 5], "subjects"),
        "heatmap": power_plots.power_heatmap_figure(curve, "X"),
    }
    for what, fig in figures.items():
        layout = fig.to_dict()["layout"]
        axes = [a for a in layout if a.startswith(("xaxis", "yaxis"))]
        assert axes, what
        for a in axes:
            title = (layout[a].get("title") or {}).get("text")
            assert title, f"{what}: {a} has no title"
    assert "RT (ms)" in str(figures["spaghetti"].layout.yaxis.title.text)
    assert "(ms)" in str(figures["group means"].layout.xaxis.title.text)
