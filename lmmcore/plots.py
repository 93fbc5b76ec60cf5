"""Plotly figure builders for the app (pure Plotly; no Streamlit here).

Example:
    >>> import lmmcore
    >>> from lmmcore.plots import residual_plot
    >>> r = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
    >>> len(residual_plot(r).data)
    1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CI_COLOR = "#d62728"
EST_COLOR = "#1f77b4"
TRUTH_COLOR = "#2ca02c"


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def _axis_ref(i: int) -> tuple[str, str]:
    """Plotly's axis reference names for the i-th (0-based) subplot."""
    suffix = "" if i == 0 else str(i + 1)
    return f"x{suffix}", f"y{suffix} domain"


def bootstrap_histograms(
    boot: Any,
    ci: np.ndarray,
    names: Sequence[str] | None = None,
    truth: Mapping[str, float] | Sequence[float] | None = None,
) -> go.Figure:
    """One histogram per bootstrap statistic, with its CI, original estimate and truth.

    Args:
        boot: a ``BootResult`` (uses ``estimates``, ``names``, ``t0``, ``valid``).
        ci: (p, 2) array of [lower, upper], as ``boot.ci(...)``.
        names: the statistics to show (default: all of ``boot.names``).
        truth: optional true values, by name (mapping) or in ``boot.names`` order.

    Each subplot holds one histogram trace; the CI limits are dashed red vertical lines,
    the original estimate a solid blue line and the true value (if given) a dotted green
    line. The lines are layout shapes (``shape.name`` = ``"ci_lower"``, ``"ci_upper"``,
    ``"estimate"`` or ``"truth"``).
    """
    all_names = list(boot.names)
    ci = np.asarray(ci, dtype=float)
    if ci.shape != (len(all_names), 2):
        raise ValueError(f"ci must have shape ({len(all_names)}, 2), got {ci.shape}.")
    show = list(names) if names is not None else all_names
    unknown = [n for n in show if n not in all_names]
    if unknown:
        raise ValueError(f"Unknown statistic(s): {', '.join(unknown)}.")
    if truth is None:
        truth_map: dict[str, float] = {}
    elif isinstance(truth, Mapping):
        truth_map = {k: float(v) for k, v in truth.items()}
    else:
        truth_map = dict(zip(all_names, map(float, truth), strict=True))

    valid = np.asarray(getattr(boot, "valid", np.ones(len(boot.estimates), dtype=bool)))
    est = np.asarray(boot.estimates, dtype=float)[valid]
    rows, cols = _grid(len(show))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=show)
    for i, name in enumerate(show):
        j = all_names.index(name)
        r, c = divmod(i, cols)
        fig.add_trace(
            go.Histogram(
                x=est[:, j], name=name, showlegend=False, marker_color="#9ecae1", opacity=0.9
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(title_text=f"{name} (bootstrap estimate)", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="replicates", row=r + 1, col=c + 1)
        xref, yref = _axis_ref(i)
        lines = [
            ("ci_lower", ci[j, 0], CI_COLOR, "dash"),
            ("ci_upper", ci[j, 1], CI_COLOR, "dash"),
            ("estimate", float(boot.t0[j]), EST_COLOR, "solid"),
        ]
        if name in truth_map:
            lines.append(("truth", truth_map[name], TRUTH_COLOR, "dot"))
        for label, x, color, dash in lines:
            if not np.isfinite(x):
                continue
            fig.add_shape(
                type="line",
                name=label,
                x0=x,
                x1=x,
                y0=0,
                y1=1,
                xref=xref,
                yref=yref,
                line=dict(color=color, dash=dash, width=2),
            )
    # A legend for the line types (shapes have none): invisible dummy traces.
    legend = [("CI limits", CI_COLOR, "dash"), ("original estimate", EST_COLOR, "solid")]
    if truth_map:
        legend.append(("true value", TRUTH_COLOR, "dot"))
    for label, color, dash in legend:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=label,
                line=dict(color=color, dash=dash),
                showlegend=True,
            )
        )
    fig.update_layout(
        title="Bootstrap distributions",
        height=max(300, 260 * rows),
        bargap=0.05,
        legend=dict(orientation="h", y=-0.08),
    )
    return fig


def random_effects_plot(result: Any) -> go.Figure:
    """Caterpillar plot: each grouping factor's BLUPs per level, sorted, one panel per term."""
    panels: list[tuple[str, str, Any]] = []
    for group, df in result.random_effects.items():
        for term in df.columns:
            panels.append((group, term, df[term]))
    rows, cols = _grid(len(panels), max_cols=2)
    titles = [f"{g}: {t}" for g, t, _ in panels]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or None)
    for i, (group, term, s) in enumerate(panels):
        s = s.sort_values()
        r, c = divmod(i, cols)
        fig.add_trace(
            go.Scatter(
                x=s.to_numpy(dtype=float),
                y=[str(v) for v in s.index],
                mode="markers",
                name=f"{group}: {term}",
                showlegend=False,
                marker=dict(color=EST_COLOR, size=7),
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(title_text=f"predicted deviation ({term})", row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"{group} level", row=r + 1, col=c + 1)
        xref, yref = _axis_ref(i)
        fig.add_shape(
            type="line",
            name="zero",
            x0=0,
            x1=0,
            y0=0,
            y1=1,
            xref=xref,
            yref=yref,
            line=dict(color="grey", dash="dash"),
        )
    nlev = max((len(p[2]) for p in panels), default=1)
    fig.update_layout(
        title="Random effects (BLUPs) by level",
        height=max(300, min(1400, rows * (120 + 14 * nlev))),
    )
    return fig


def residual_plot(result: Any) -> go.Figure:
    """Residuals against fitted values, with a zero line."""
    fitted = np.asarray(result.fittedvalues, dtype=float)
    resid = np.asarray(result.resid, dtype=float)
    fig = go.Figure(
        go.Scatter(
            x=fitted,
            y=resid,
            mode="markers",
            name="residuals",
            marker=dict(color=EST_COLOR, size=6, opacity=0.7),
        )
    )
    fig.add_hline(y=0, line=dict(color="grey", dash="dash"))
    fig.update_layout(
        title="Residuals vs fitted", xaxis_title="Fitted value", yaxis_title="Residual"
    )
    return fig


# ------------------------------------------------------------------ simulated data


def condition_labels(data: Any, factor_names: Sequence[str]) -> Any | None:
    """Each row's condition: its factors' labels joined by " / " (None without factors).

    Uses the ``{name}_label`` columns a `Design` adds; the data are not changed.
    """
    labels = [f"{n}_label" for n in factor_names if f"{n}_label" in data.columns]
    if not labels:
        return None
    if len(labels) == 1:
        return data[labels[0]].rename("condition")
    return data[labels].astype(str).agg(" / ".join, axis=1).rename("condition")


def with_unit(label: str, unit: str = "") -> str:
    """An axis title with its unit: ``"RT (ms)"``.

    Example:
        >>> with_unit("RT", "ms"), with_unit("RT")
        ('RT (ms)', 'RT')
    """
    return f"{label} ({unit})" if unit else label


def spaghetti_plot(
    data: Any, response: str, x: str | None, subject: str, max_subjects: int = 60, unit: str = ""
) -> go.Figure:
    """Responses by condition: one thin line per subject (its cell means) and the grand means.

    ``x`` is a categorical column (conditions) or a numeric one (then each subject gets its
    least-squares line); None plots each subject's mean response. At most ``max_subjects``
    subject lines are drawn (the first ones); the means use every subject. ``unit`` is the
    response's unit, for the axis title.
    """
    fig = go.Figure()
    subjects = list(dict.fromkeys(data[subject].astype(str)))[:max_subjects]
    keep = data[subject].astype(str).isin(subjects)
    if x is None:
        m = data.groupby(subject, observed=True)[response].mean()
        fig.add_trace(go.Box(y=m.to_numpy(dtype=float), name="subject means", boxpoints="all"))
        fig.update_layout(title=f"{response}: subject means", yaxis_title=with_unit(response, unit))
        return fig
    numeric = np.issubdtype(np.asarray(data[x]).dtype, np.number) and data[x].nunique() > 10
    if numeric:
        xs = np.linspace(float(data[x].min()), float(data[x].max()), 2)
        for s, d in data[keep].groupby(subject, observed=True):
            if len(d) < 2:
                continue
            b, a = np.polyfit(d[x].to_numpy(float), d[response].to_numpy(float), 1)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=a + b * xs,
                    mode="lines",
                    name=str(s),
                    showlegend=False,
                    line=dict(color="rgba(31,119,180,0.35)", width=1),
                )
            )
        b, a = np.polyfit(data[x].to_numpy(float), data[response].to_numpy(float), 1)
        fig.add_trace(
            go.Scatter(
                x=xs, y=a + b * xs, mode="lines", name="all data", line=dict(color="black", width=4)
            )
        )
    else:
        cell = data[keep].groupby([subject, x], observed=True)[response].mean().reset_index()
        for s, d in cell.groupby(subject, observed=True):
            fig.add_trace(
                go.Scatter(
                    x=d[x].astype(str),
                    y=d[response],
                    mode="lines+markers",
                    name=str(s),
                    showlegend=False,
                    line=dict(color="rgba(31,119,180,0.35)", width=1),
                    marker=dict(size=4),
                )
            )
        grand = data.groupby(x, observed=True)[response].mean()
        fig.add_trace(
            go.Scatter(
                x=[str(v) for v in grand.index],
                y=grand.to_numpy(dtype=float),
                mode="lines+markers",
                name="condition means",
                line=dict(color="black", width=4),
                marker=dict(size=10),
            )
        )
    fig.update_layout(
        title=f"{response} by {x}: one line per {subject}",
        xaxis_title=x,
        yaxis_title=with_unit(response, unit),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def group_means_plot(data: Any, response: str, groups: Sequence[str], unit: str = "") -> go.Figure:
    """Histograms of the mean response per level of each grouping column (one panel each)."""
    groups = [g for g in groups if g in data.columns]
    rows, cols = _grid(len(groups), max_cols=2)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=[f"mean {response} per {g}" for g in groups] or None
    )
    for i, g in enumerate(groups):
        m = data.groupby(g, observed=True)[response].mean()
        r, c = divmod(i, cols)
        fig.add_trace(
            go.Histogram(x=m.to_numpy(dtype=float), name=g, showlegend=False),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(title_text=with_unit(f"mean {response}", unit), row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=f"number of {g} levels", row=r + 1, col=c + 1)
    fig.update_layout(title="Per-group means", height=max(300, 300 * rows), bargap=0.05)
    return fig


def drawn_effects_plot(effects: Mapping[str, Any], unit: str = "") -> go.Figure:
    """The random effects drawn for one simulated dataset, one panel per grouping factor.

    A factor with one term gets a histogram of it; with two or more terms, a scatter of
    the first term (usually the intercept) against the second (a slope). Axis titles carry
    the response's ``unit``.
    """
    groups = list(effects)
    titles = []
    for g in groups:
        cols_ = list(effects[g].columns)
        titles.append(f"{g}: {cols_[0]} vs {cols_[1]}" if len(cols_) > 1 else f"{g}: {cols_[0]}")
    rows, cols = _grid(len(groups), max_cols=2)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or None)
    for i, g in enumerate(groups):
        df = effects[g]
        r, c = divmod(i, cols)
        if df.shape[1] > 1:
            trace = go.Scatter(
                x=df.iloc[:, 0].to_numpy(dtype=float),
                y=df.iloc[:, 1].to_numpy(dtype=float),
                mode="markers",
                name=g,
                showlegend=False,
                text=[str(v) for v in df.index],
                marker=dict(color=EST_COLOR, size=6, opacity=0.7),
            )
            fig.add_trace(trace, row=r + 1, col=c + 1)
            fig.update_xaxes(title_text=with_unit(str(df.columns[0]), unit), row=r + 1, col=c + 1)
            fig.update_yaxes(title_text=with_unit(str(df.columns[1]), unit), row=r + 1, col=c + 1)
        else:
            fig.add_trace(
                go.Histogram(x=df.iloc[:, 0].to_numpy(dtype=float), name=g, showlegend=False),
                row=r + 1,
                col=c + 1,
            )
            fig.update_xaxes(title_text=with_unit(str(df.columns[0]), unit), row=r + 1, col=c + 1)
            fig.update_yaxes(title_text=f"number of {g} levels", row=r + 1, col=c + 1)
    fig.update_layout(title="Drawn random effects", height=max(320, 320 * rows), bargap=0.05)
    return fig
