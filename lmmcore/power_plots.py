"""Plotly figures and small summaries for power curves (no Streamlit here).

The input is the tidy frame of `lmmcore.power_curve` (one row per design point and effect,
with ``power``, ``ci_lower``, ``ci_upper``, and one column per varied dimension such as
``subjects`` or ``items``).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"subjects": [10, 20, 40], "effect": "X", "power": [0.3, 0.7, 0.95],
    ...                    "ci_lower": [0.2, 0.6, 0.9], "ci_upper": [0.4, 0.8, 0.99]})
    >>> smallest_size(df, "X", "subjects", target=0.8).size
    40
    >>> len(power_curve_figure(df, "subjects", target=0.8).data)  # CI ribbon and line
    2
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "summarize_warnings",
    "SmallestSize",
    "axis_label",
    "disagreements",
    "diagnostics_table",
    "power_curve_figure",
    "power_heatmap_figure",
    "smallest_size",
]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
# effects differ by marker and dash as well as colour (readable in grey and for colour-blind
# readers, and where lines overlap)
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross")
_DASHES = ("solid", "dash", "dashdot", "longdash", "dot", "longdashdot", "solid")
_LABELS = {"subjects": "Number of subjects", "items": "Number of items", "trials": "Trials"}


def _power_title(df: pd.DataFrame | None) -> str:
    """The power axis's title, naming the estimate shown (see `smooth_power_table`)."""
    if df is None:
        return "Power (approximation)"
    if "estimator" in df.columns and (df["estimator"] == "conditional").any():
        return "Power (simulated, conditional Monte Carlo)"
    return "Power (share of significant simulations)"


def axis_label(dim: str) -> str:
    """The axis title of a varied dimension (pilot grouping columns: 'Number of Subject
    units'; effect values: 'True value of X')."""
    if dim.startswith("effect:"):
        return f"True value of {dim[len('effect:') :]}"
    return _LABELS.get(dim, f"Number of {dim} units")


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _effects(df: pd.DataFrame, effects: Sequence[str] | None) -> list[str]:
    names = list(dict.fromkeys(df["effect"]))
    if effects is None:
        return names
    unknown = [e for e in effects if e not in names]
    if unknown:
        raise ValueError(f"Effect(s) not in the curve: {', '.join(unknown)}.")
    return list(effects)


def power_curve_figure(
    df: pd.DataFrame | None,
    x: str = "subjects",
    target: float | None = 0.8,
    effects: Sequence[str] | None = None,
    alpha: float | None = None,
    approx: pd.DataFrame | None = None,
) -> go.Figure:
    """Power against one design dimension: a line per effect with its 95% CI ribbon.

    A dashed line marks the ``target`` power and, when given, a dotted one ``alpha`` (where a
    zero effect's rejection rate, its type I error, should lie). Traces per effect: the CI
    ribbon (named ``"<effect> 95% CI"``) and the line (named ``effect``); then the target.
    ``approx`` (the frame of `lmmcore.approx_power_curve`) adds each effect's approximate
    curve as a thin line of the same colour (named ``"<effect> (approximation)"``); with
    ``df`` None the figure shows the approximation alone.
    """
    base = df if df is not None else approx
    if base is None or x not in base.columns:
        raise ValueError(f"The curve has no column {x!r}.")
    fig = go.Figure()
    if approx is not None:
        for i, name in enumerate(_effects(approx, effects)):
            d = approx[approx["effect"] == name].sort_values(x)
            fig.add_trace(
                go.Scatter(
                    x=d[x].to_numpy(),
                    y=d["power"].to_numpy(),
                    mode="lines+markers" if df is None else "lines",
                    name=f"{name} (approximation)",
                    legendgroup=name,
                    line={
                        "color": _COLORS[i % len(_COLORS)],
                        "width": 1.5,
                        "dash": _DASHES[i % len(_DASHES)] if df is None else "dot",
                    },
                    marker={"symbol": _SYMBOLS[i % len(_SYMBOLS)], "size": 7},
                    hovertemplate=f"{name} (approximation)<br>{x} = %{{x}}<br>power = "
                    "%{y:.3f}<extra></extra>",
                )
            )
    if df is None:
        df = approx.iloc[0:0].assign(ci_lower=[], ci_upper=[])
    for i, name in enumerate(_effects(df, effects)):
        d = df[df["effect"] == name].sort_values(x)
        color = _COLORS[i % len(_COLORS)]
        xs = d[x].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([xs, xs[::-1]]),
                y=np.concatenate([d["ci_upper"].to_numpy(), d["ci_lower"].to_numpy()[::-1]]),
                fill="toself",
                mode="lines",
                fillcolor=_rgba(color, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{name} 95% CI",
                legendgroup=name,
                showlegend=False,
            )
        )
        zero = "true_value" in d.columns and bool((d["true_value"] == 0).all())
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=d["power"].to_numpy(),
                mode="lines+markers",
                name=f"{name} (type I error)" if zero else name,
                legendgroup=name,
                line={
                    "color": color,
                    "dash": "dot" if zero else _DASHES[i % len(_DASHES)],
                    "width": 2.5,
                },
                marker={"symbol": _SYMBOLS[i % len(_SYMBOLS)], "size": 9},
                customdata=np.column_stack([d["ci_lower"], d["ci_upper"]]),
                hovertemplate=(
                    f"{name}<br>{x} = %{{x}}<br>power = %{{y:.3f}}"
                    "<br>95% CI %{customdata[0]:.3f} to %{customdata[1]:.3f}<extra></extra>"
                ),
            )
        )
    if target is not None:
        fig.add_hline(
            y=target,
            line={"dash": "dash", "color": "gray"},
            annotation_text=f"target {target:.0%}",
            annotation_position="bottom right",
        )
    if alpha is not None:
        fig.add_hline(
            y=alpha,
            line={"dash": "dot", "color": "gray"},
            annotation_text=f"alpha {alpha:g}",
            annotation_position="top right",
        )
    fig.update_layout(
        title="Power curve",
        xaxis_title=axis_label(x),
        yaxis_title=_power_title(df),
        yaxis={"range": [0, 1.02]},
        legend_title_text="Effect",
        margin={"t": 50},
    )
    return fig


def power_heatmap_figure(
    df: pd.DataFrame,
    effect: str,
    x: str = "subjects",
    y: str = "items",
    target: float | None = 0.8,
) -> go.Figure:
    """Power of one effect over a 2-D grid (``x`` by ``y``), each cell labelled with its value.

    Cells whose CI lower bound exceeds ``target`` are marked with a star.
    """
    for col in (x, y):
        if col not in df.columns:
            raise ValueError(f"The curve has no column {col!r}.")
    d = df[df["effect"] == effect]
    if d.empty:
        raise ValueError(f"Effect {effect!r} is not in the curve.")
    z = d.pivot_table(index=y, columns=x, values="power").sort_index().sort_index(axis=1)
    lo = d.pivot_table(index=y, columns=x, values="ci_lower").reindex_like(z)
    text = z.map(lambda v: f"{v:.2f}")
    if target is not None:
        text = text.where(~(lo > target), text + "★")
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(),
            x=[str(v) for v in z.columns],
            y=[str(v) for v in z.index],
            text=text.to_numpy(),
            texttemplate="%{text}",
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar={"title": "Power"},
            hovertemplate=f"{x} = %{{x}}<br>{y} = %{{y}}<br>power = %{{z:.3f}}<extra></extra>",
        )
    )
    title = f"Power for {effect}"
    if target is not None:
        title += f" (★: 95% CI lower bound above {target:.0%})"
    fig.update_layout(
        title=title,
        xaxis_title=axis_label(x),
        yaxis_title=axis_label(y),
        xaxis={"type": "category"},
        yaxis={"type": "category"},
    )
    return fig


@dataclass(frozen=True)
class SmallestSize:
    """The smallest size on the curve whose power CI lower bound exceeds the target."""

    size: int | None
    reachable: bool
    message: str


def smallest_size(
    df: pd.DataFrame, effect: str, dimension: str = "subjects", target: float = 0.8
) -> SmallestSize:
    """Read the smallest ``dimension`` that reaches ``target`` off a 1-D curve.

    Uses the CI lower bound (so the answer holds despite Monte-Carlo error), as
    `lmmcore.find_sample_size` does. When no point reaches it, the message says so plainly.
    """
    d = df[df["effect"] == effect].sort_values(dimension)
    if d.empty:
        raise ValueError(f"Effect {effect!r} is not in the curve.")
    hit = d[d["ci_lower"] > target]
    what = dimension if dimension != "subjects" else "subjects"
    if not hit.empty:
        r = hit.iloc[0]
        n = int(r[dimension])
        return SmallestSize(
            n,
            True,
            f"{effect}: {n} {what} reach {target:.0%} power (power {r['power']:.3f}, "
            f"95% CI lower bound {r['ci_lower']:.3f}).",
        )
    top = d.iloc[-1]
    other = {"subjects": "items", "items": "subjects"}.get(dimension, "another dimension")
    msg = (
        f"{effect}: {target:.0%} power is not reached with up to {int(top[dimension])} "
        f"{what} (power there {top['power']:.3f}, 95% CI {top['ci_lower']:.3f} to "
        f"{top['ci_upper']:.3f})."
    )
    if top["ci_upper"] - top["ci_lower"] > 0.15:
        msg += (
            " The estimates are too imprecise to say whether power is still rising: "
            "use more simulations."
        )
    elif len(d) >= 2 and top["power"] - d.iloc[-2]["power"] < 0.02:
        msg += (
            f" Power has almost stopped rising: adding {what} cannot make up for too few "
            f"{other}. Increase the number of {other}."
        )
    else:
        msg += f" Try more {what}, or more {other}."
    return SmallestSize(None, False, msg)


def disagreements(sim: pd.DataFrame, approx: pd.DataFrame, dims: Sequence[str]) -> pd.DataFrame:
    """Points where the approximation lies outside the simulation's 95% Monte-Carlo CI,
    with a likely reason: few units (small df: the t approximation is poor there), many
    singular refits (the variances are often estimated as 0), or neither (chance, or the
    approximation's error; the simulation is the reference).

    Example:
        >>> sim = pd.DataFrame({"subjects": [10, 20], "effect": "X", "power": [0.3, 0.6],
        ...                     "ci_lower": [0.25, 0.55], "ci_upper": [0.35, 0.65],
        ...                     "n_singular": [0, 0], "n_valid": [1000, 1000]})
        >>> approx = pd.DataFrame({"subjects": [10, 20], "effect": "X", "power": [0.42, 0.6],
        ...                        "df": [6.0, 18.0]})
        >>> disagreements(sim, approx, ["subjects"])[["subjects", "reason"]].values.tolist()
        [[10, 'few units (df 6.0): the t approximation is poor with so few']]
    """
    keys = [*dims, "effect"]
    m = sim.merge(approx[[*keys, "power", "df"]], on=keys, suffixes=("", "_approx"))
    out = m[(m["power_approx"] < m["ci_lower"]) | (m["power_approx"] > m["ci_upper"])].copy()
    reasons = []
    for _, r in out.iterrows():
        singular = r.get("n_singular", 0) / max(r.get("n_valid", 1), 1)
        if r["df"] < 10:
            reasons.append(f"few units (df {r['df']:.1f}): the t approximation is poor with so few")
        elif singular > 0.2:
            reasons.append(
                f"{singular:.0%} singular refits: the variances are often estimated as 0"
            )
        else:
            reasons.append("chance or the approximation's error (the simulation is the reference)")
    out["reason"] = reasons
    return out[[*keys, "power", "ci_lower", "ci_upper", "power_approx", "reason"]].reset_index(
        drop=True
    )


DIAGNOSTIC_COLUMNS = {
    "quantity": "Quantity",
    "true_value": "True value",
    "power": "Power",
    "ci_lower": "95% CI low",
    "ci_upper": "95% CI high",
    "estimator": "Estimator",
    "power_rejections": "Share significant",
    "type1_error": "Type I error (effect set to 0)",
    "type1_ci_upper": "Type I 95% CI high",
    "mcse": "MC SE",
    "nsim": "Simulations",
    "bias": "Bias",
    "rmse": "RMSE",
    "mean_se": "Mean SE",
    "sd_estimate": "SD of estimates",
    "coverage": "CI coverage",
    "n_singular": "Singular fits",
    "n_not_converged": "Not converged",
    "n_failed": "Failed",
}


def diagnostics_table(df: pd.DataFrame, dims: Sequence[str]) -> pd.DataFrame:
    """One row per design point and effect, with readable column names.

    ``quantity`` is "type I error" for zero effects (their rejection rate should be near
    alpha) and "power" otherwise; coverage should be near 1 - alpha. Power is the
    conditional Monte-Carlo estimate where ``estimator`` says so (`smooth_power_table`),
    beside the share of significant simulations.
    """
    cols = [*dims, "effect", *(c for c in DIAGNOSTIC_COLUMNS if c in df.columns)]
    out = df[cols].rename(columns={"effect": "Effect", **DIAGNOSTIC_COLUMNS})
    return out.reset_index(drop=True)


_SINGULAR = re.compile(r"^(\d+) of (\d+) refits \((\d+)%\) were singular (.*)$", re.S)


def summarize_warnings(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """One message per kind for the warnings of several design points.

    ``pairs`` are (design point, message). The "N of M refits were singular" warnings of
    all points become one message listing each point's count; any other message says
    the points it came from (once per distinct text).

    Example:
        >>> w = "refits (53%) were singular (an SD at 0): few units."
        >>> out = summarize_warnings([("20 subjects", "530 of 1000 " + w),
        ...                     ("40 subjects", "30 of 1000 refits (3%) were singular (x)."),
        ...                     ("20 subjects", "Wald is anticonservative.")])
        >>> out[0][:72]
        'Singular refits at 2 design points (20 subjects: 530 of 1000, 53%; 40 su'
        >>> out[1]
        'At 20 subjects: Wald is anticonservative.'
    """
    singular: list[tuple[str, str, str, str]] = []
    explain = ""
    other: dict[str, list[str]] = {}
    for point, msg in pairs:
        m = _SINGULAR.match(msg)
        if m:
            singular.append((point, *m.groups()[:3]))
            explain = explain or m.group(4)
        else:
            other.setdefault(msg, [])
            if point not in other[msg]:
                other[msg].append(point)
    out = []
    if singular:
        counts = "; ".join(f"{pt}: {x} of {n}, {pc}%" for pt, x, n, pc in singular)
        k = len(singular)
        where = f"{k} design point{'s' if k > 1 else ''}"
        out.append(f"Singular refits at {where} ({counts}): {explain}")
    every = len({p for p, _ in pairs})
    for msg, points in other.items():
        out.append(msg if len(points) == every else f"At {'; '.join(points)}: {msg}")
    return out
