"""lmmcore.power_plots: Plotly builders and curve summaries (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcore.power_plots import (
    diagnostics_table,
    power_curve_figure,
    power_heatmap_figure,
    smallest_size,
)


def curve(powers, lows, highs, sizes=(10, 20, 40, 80), effect="X", truth=50.0):
    return pd.DataFrame(
        {
            "subjects": list(sizes),
            "effect": effect,
            "true_value": truth,
            "quantity": "power" if truth else "type I error",
            "power": powers,
            "ci_lower": lows,
            "ci_upper": highs,
            "mcse": 0.01,
            "nsim": 1000,
            "bias": 0.1,
            "rmse": 2.0,
            "coverage": 0.95,
            "n_singular": 0,
            "n_not_converged": 0,
            "n_failed": 0,
        }
    )


RISING = curve([0.2, 0.5, 0.82, 0.97], [0.17, 0.47, 0.79, 0.96], [0.23, 0.53, 0.85, 0.98])


def test_curve_figure_has_ribbon_line_and_target():
    fig = power_curve_figure(RISING, "subjects", target=0.8)
    ribbon, line = fig.data
    assert ribbon.fill == "toself" and ribbon.mode == "lines" and ribbon.name == "X 95% CI"
    np.testing.assert_allclose(ribbon.y, [0.23, 0.53, 0.85, 0.98, 0.96, 0.79, 0.47, 0.17])
    assert list(ribbon.x) == [10, 20, 40, 80, 80, 40, 20, 10]
    assert line.name == "X"
    np.testing.assert_allclose(line.y, RISING["power"])
    shapes = fig.layout.shapes
    assert len(shapes) == 1 and shapes[0].y0 == 0.8
    assert fig.layout.xaxis.title.text == "Number of subjects"
    # the power axis names the estimate drawn (smooth_power_table's estimator column)
    assert fig.layout.yaxis.title.text == "Power (share of significant simulations)"
    smooth = power_curve_figure(RISING.assign(estimator="conditional"), "subjects")
    assert smooth.layout.yaxis.title.text == "Power (simulated, conditional Monte Carlo)"


def test_curve_figure_multiple_effects_and_alpha_line():
    zero = curve([0.05] * 4, [0.04] * 4, [0.07] * 4, effect="Z", truth=0.0)
    df = pd.concat([RISING, zero])
    fig = power_curve_figure(df, "subjects", target=0.8, alpha=0.05)
    assert [t.name for t in fig.data] == ["X 95% CI", "X", "Z 95% CI", "Z (type I error)"]
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.05, 0.8]
    only = power_curve_figure(df, "subjects", target=None, effects=["Z"])
    assert len(only.data) == 2 and not only.layout.shapes
    with pytest.raises(ValueError, match="not in the curve"):
        power_curve_figure(df, effects=["W"])
    with pytest.raises(ValueError, match="no column"):
        power_curve_figure(df, "items")


def test_heatmap_grid_and_stars():
    rows = []
    for s in (10, 20):
        for i in (5, 10, 20):
            p = min(0.99, s * i / 250)
            rows.append(
                {
                    "subjects": s,
                    "items": i,
                    "effect": "X",
                    "power": p,
                    "ci_lower": p - 0.03,
                    "ci_upper": p + 0.03,
                }
            )
    df = pd.DataFrame(rows)
    fig = power_heatmap_figure(df, "X", target=0.8)
    (hm,) = fig.data
    assert hm.type == "heatmap"
    assert list(hm.x) == ["10", "20"] and list(hm.y) == ["5", "10", "20"]
    np.testing.assert_allclose(hm.z[2], [0.8, 0.99])
    assert hm.text[2][1].endswith("★") and not hm.text[2][0].endswith("★")  # 0.77 < 0.8
    with pytest.raises(ValueError):
        power_heatmap_figure(df, "Y")


def test_smallest_size_uses_ci_lower_bound():
    r = smallest_size(RISING, "X", "subjects", 0.8)
    assert r.reachable and r.size == 80  # 40 has power 0.82 but CI lower bound 0.79
    assert "80 subjects" in r.message
    assert smallest_size(RISING, "X", "subjects", 0.4).size == 20


def test_smallest_size_plateau_says_add_items():
    flat = curve([0.5, 0.6, 0.62, 0.63], [0.47, 0.57, 0.59, 0.6], [0.53, 0.63, 0.65, 0.66])
    r = smallest_size(flat, "X", "subjects", 0.8)
    assert not r.reachable and r.size is None
    assert "not reached with up to 80 subjects" in r.message
    assert "Increase the number of items" in r.message
    vague = curve([0.3, 0.4, 0.4, 0.4], [0.1, 0.2, 0.2, 0.2], [0.5, 0.6, 0.6, 0.6])
    assert "too imprecise" in smallest_size(vague, "X", "subjects", 0.8).message


def test_diagnostics_table_columns():
    t = diagnostics_table(RISING, ["subjects"])
    assert list(t.columns[:3]) == ["subjects", "Effect", "Quantity"]
    for col in ("MC SE", "Bias", "CI coverage", "Singular fits", "Failed", "Simulations"):
        assert col in t.columns
    assert len(t) == 4


def test_effects_differ_by_marker_and_dash_as_well_as_colour():
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "subjects": [10, 20],
                    "effect": e,
                    "power": [0.3, 0.6],
                    "ci_lower": [0.2, 0.5],
                    "ci_upper": [0.4, 0.7],
                }
            )
            for e in "ABC"
        ]
    )
    lines = [
        t for t in power_curve_figure(df, "subjects", target=None).data if t.mode == "lines+markers"
    ]
    assert len({t.marker.symbol for t in lines}) == 3
    assert len({t.line.dash for t in lines}) == 3
    assert len({t.line.color for t in lines}) == 3


def test_warnings_of_many_points_become_one_per_kind():
    from lmmcore.power_plots import summarize_warnings

    tail = "were singular (a random-effect SD estimated as 0): consider more units."
    pairs = [
        ("20 subjects", f"530 of 1000 refits (53%) {tail}"),
        ("40 subjects", f"256 of 1000 refits (26%) {tail}"),
        ("20 subjects", "The Wald z test is anticonservative."),
        ("40 subjects", "The Wald z test is anticonservative."),
        ("40 subjects", "3 of 1000 replicates failed."),
    ]
    out = summarize_warnings(pairs)
    assert out == [
        "Singular refits at 2 design points (20 subjects: 530 of 1000, 53%; 40 subjects: "
        "256 of 1000, 26%): (a random-effect SD estimated as 0): consider more units.",
        "The Wald z test is anticonservative.",  # at every point: said once, unlabelled
        "At 40 subjects: 3 of 1000 replicates failed.",
    ]
    assert summarize_warnings([]) == []
