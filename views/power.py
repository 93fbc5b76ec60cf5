"""Page "Power": power by simulation over numbers of subjects and/or items.

Reads the model and design from ``st.session_state["spec"]``/``["design"]`` (set on the
"Model & design" page), falling back to preset P1. Each design point is computed by the
cached `power_point` (plain hashable arguments); the finished curve is kept in
``st.session_state["power_curve_df"]`` and the run's settings in ``["power_run"]``.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import re
import warnings
from collections.abc import Callable

import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.limits import MAX_WORK, work_budget
from lmmcore.power_plots import (
    diagnostics_table,
    power_curve_figure,
    power_heatmap_figure,
    smallest_size,
)
from views._common import check_app_design, page_header, show_error
from views._jobs import PoolBackend, heartbeat

PURPOSE = (
    "Estimate power by simulation across numbers of subjects and items, and draw the power curve."
)
CURVE_KEY = "power_curve_df"
RUN_KEY = "power_run"
WARN_KEY = "power_warnings"
DEFAULT_PRESET = "P1"
DEFAULT_NSIM = 1000
EXTRA_NSIM = 1000
#: Largest number of simulated observations in one action: nsim x (rows summed over points).
MAX_SIMULATED_ROWS = MAX_WORK
TEST_LABELS = {
    "satterthwaite": "Satterthwaite t test (recommended)",
    "wald": "Wald z test (fast; anticonservative with few subjects/items)",
    "kr": "Kenward-Roger t test (slower)",
    "lrt": "Likelihood-ratio test (slower: one extra fit per effect)",
}
VARY_OPTIONS = ("subjects", "items", "subjects and items")


# ----------------------------------------------------------------------------- computing


def parse_sizes(text: str, what: str) -> list[int]:
    """Parse "10, 20, 40" into sorted distinct positive integers; ValueError with a message."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ValueError(f"Enter at least one number of {what}, for example 10, 20, 40.")
    out = []
    for p in parts:
        if not re.fullmatch(r"\d+", p) or int(p) < 1:
            raise ValueError(
                f"{p!r} is not a whole number of {what} >= 1. Enter whole numbers separated "
                "by commas, for example 10, 20, 40."
            )
        out.append(int(p))
    return sorted(set(out))


def _spec_json(spec: lmmcore.ModelSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


def _design_json(design: lmmcore.Design) -> str:
    return json.dumps(design.to_dict(), sort_keys=True)


@st.cache_data(show_spinner=False, max_entries=500)
def power_point(
    spec_json: str,
    design_json: str,
    point: tuple[tuple[str, int], ...],
    nsim: int,
    test: str,
    alpha: float,
    seed: int,
    effects: tuple[str, ...],
    _progress: Callable[[int, int], None] | None = None,
    _tick: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Power at one design point: (the `PowerResult.table` with the sizes and ``nsim`` as
    columns, the warnings raised). The same call as one point of `lmmcore.power_curve`;
    its simulations run on the app's worker processes (``_progress`` and ``_tick`` report
    from this thread and are not part of the cache key; entries are a few kB each)."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    design = lmmcore.Design.from_dict(json.loads(design_json)).with_size(**dict(point))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lmmcore.power(
            spec,
            design,
            nsim=nsim,
            alpha=alpha,
            test=test,
            effects=list(effects) or None,
            seed=seed,
            backend=PoolBackend(_tick),
            progress=_progress,
        )
    table = res.table.reset_index()
    for dim, value in reversed(point):
        table.insert(0, dim, value)
    table["nsim"] = res.nsim
    msgs = list(dict.fromkeys(str(w.message) for w in caught))
    return table, msgs


def _outside_cache(update: Callable[..., None]) -> Callable[..., None]:
    """Wrap a progress update so that it runs in the caller's context.

    Streamlit records st.* calls made while a cached function runs and replays them on
    cache hits; running the update in a context copied before the call keeps it out of
    that record (the bar is the caller's, and is emptied after the run).
    """
    ctx = contextvars.copy_context()
    return lambda *args: ctx.run(update, *args)


def design_points(vary: dict[str, list[int]]) -> list[tuple[tuple[str, int], ...]]:
    """All combinations of the sizes in ``vary`` (the order of `lmmcore.power_curve`)."""
    dims = list(vary)
    return [tuple(zip(dims, vals, strict=True)) for vals in itertools.product(*vary.values())]


def simulated_rows(design: lmmcore.Design, points, nsim: int, what: str = "This run") -> int:
    """nsim x the rows of all design points, checked against the app's budget (the same
    check for a first run, a heatmap and "add more simulations"); raises a DesignError for
    a bad size and a DataError over budget."""
    for p in points:
        check_app_design(design.with_size(**dict(p)))
    rows = nsim * sum(design.with_size(**dict(p)).n_rows for p in points)
    return work_budget(rows, what)


def run_curve(settings: dict, bar) -> None:
    """Compute every design point, updating ``bar``; finished points are kept on interrupt."""
    points = settings["points"]
    frames: list[pd.DataFrame] = []
    msgs: list[str] = []
    n = len(points)
    clock = st.empty()
    try:
        for i, point in enumerate(points):
            label = ", ".join(f"{v} {d}" for d, v in point)
            bar.progress(i / n, text=f"Design point {i + 1} of {n}: {label}")

            def within(done: int, total: int, i=i, label=label) -> None:
                bar.progress(
                    (i + done / total) / n,
                    text=f"Design point {i + 1} of {n}: {label} ({done}/{total} simulations)",
                )

            table, w = power_point(
                settings["spec_json"],
                settings["design_json"],
                point,
                settings["nsim"],
                settings["test"],
                settings["alpha"],
                settings["seed"],
                settings["effects"],
                _progress=_outside_cache(within),
                _tick=_outside_cache(heartbeat(clock, "Working; press Stop to cancel")),
            )
            frames.append(table)
            msgs.extend(w)
        bar.progress(1.0, text="Done")
    finally:
        if frames:
            st.session_state[CURVE_KEY] = pd.concat(frames, ignore_index=True)
            st.session_state[RUN_KEY] = {**settings, "complete": len(frames) == n}
            st.session_state[WARN_KEY] = list(dict.fromkeys(msgs))
        bar.empty()
        clock.empty()


# ----------------------------------------------------------------------------- page


def current_model() -> tuple[lmmcore.ModelSpec, lmmcore.Design, bool]:
    """The spec and design from the Model & design page, or preset P1 (third value True)."""
    spec = st.session_state.get("spec")
    design = st.session_state.get("design")
    if isinstance(spec, dict):
        spec = lmmcore.ModelSpec.from_dict(spec)
    if isinstance(design, dict):
        design = lmmcore.Design.from_dict(design)
    if isinstance(spec, lmmcore.ModelSpec) and isinstance(design, lmmcore.Design):
        return spec, design, False
    p = lmmcore.PRESETS[DEFAULT_PRESET]
    return p.spec, p.design, True


def explain(title: str, text: str) -> None:
    with st.expander(f"What am I looking at? ({title})"):
        st.markdown(text)


def settings_form(spec, design) -> dict | None:
    """The widgets; returns the run's settings, or None (after an st.error) if invalid."""
    names = list(spec.fixed)
    default_effects = [n for n in names if n != "(Intercept)"] or names
    c1, c2 = st.columns(2)
    with c1:
        effects = st.multiselect(
            "Effects to test", names, default=default_effects, key="power_effects"
        )
        test = st.selectbox(
            "Test",
            list(TEST_LABELS),
            format_func=TEST_LABELS.get,
            key="power_test",
        )
        vary_what = st.radio("Vary", VARY_OPTIONS, horizontal=True, key="power_vary")
        sub_text = st.text_input(
            "Numbers of subjects",
            "20, 40, 60, 80, 100",
            key="power_subjects",
            disabled=vary_what == "items",
            help="Whole numbers separated by commas.",
        )
        item_text = st.text_input(
            "Numbers of items",
            "10, 20, 40, 80",
            key="power_items",
            disabled=vary_what == "subjects",
            help="Whole numbers separated by commas.",
        )
    with c2:
        nsim = int(
            st.number_input(
                "Simulations per design point",
                min_value=10,
                max_value=20_000,
                value=DEFAULT_NSIM,
                step=100,
                key="power_nsim",
                help="Published guidance: at least 1,000 for a stable power estimate.",
            )
        )
        alpha = float(
            st.number_input(
                "Significance level (alpha)",
                min_value=0.001,
                max_value=0.5,
                value=0.05,
                step=0.01,
                format="%.3f",
                key="power_alpha",
            )
        )
        target = float(
            st.number_input(
                "Target power",
                min_value=0.05,
                max_value=0.99,
                value=0.8,
                step=0.05,
                key="power_target",
            )
        )
    if not effects:
        st.error("Pick at least one effect to test.")
        return None
    vary: dict[str, list[int]] = {}
    try:
        if vary_what in ("subjects", "subjects and items"):
            vary["subjects"] = parse_sizes(sub_text, "subjects")
        if vary_what in ("items", "subjects and items"):
            vary["items"] = parse_sizes(item_text, "items")
    except ValueError as exc:
        st.error(str(exc))
        return None
    points = design_points(vary)
    try:
        rows = simulated_rows(design, points, nsim)
    except lmmcore.LmmError as exc:
        show_error(exc)
        return None
    st.caption(
        f"{len(points)} design point(s) x {nsim:,} simulations = {rows:,} simulated "
        f"observations (cap: {MAX_SIMULATED_ROWS:,})."
    )
    if test in ("kr", "lrt"):
        st.info(f"{TEST_LABELS[test]}: expect this run to take several times longer.")
    return {
        "spec_json": _spec_json(spec),
        "design_json": _design_json(design),
        "dims": list(vary),
        "points": points,
        "nsim": nsim,
        "test": test,
        "alpha": alpha,
        "target": target,
        "seed": int(st.session_state.get("seed", 20211)),
        "effects": tuple(effects),
    }


def show_results(target: float) -> None:
    df: pd.DataFrame | None = st.session_state.get(CURVE_KEY)
    run: dict | None = st.session_state.get(RUN_KEY)
    if df is None or run is None:
        st.info("Choose the settings and press **Run** to compute the power curve.")
        return
    dims = run["dims"]
    if not run.get("complete", True):
        st.warning("The last run was interrupted: showing the design points that finished.")
    for msg in st.session_state.get(WARN_KEY, []):
        st.warning(msg)
    effects = list(dict.fromkeys(df["effect"]))

    st.subheader("Results")
    if len(dims) == 1:
        zero = bool((df["true_value"] == 0).any())
        fig = power_curve_figure(df, dims[0], target=target, alpha=run["alpha"] if zero else None)
        st.plotly_chart(fig, key="power_curve_chart")
        explain(
            "power curve",
            "Each point is the share of simulated studies in which the effect was "
            "significant. The shaded band is its 95% Monte-Carlo confidence interval: with "
            "more simulations it gets narrower. The dashed line is the target power.",
        )
    else:
        effect = st.selectbox("Effect shown", effects, key="power_heatmap_effect")
        fig = power_heatmap_figure(df, effect, "subjects", "items", target=target)
        st.plotly_chart(fig, key="power_heatmap_chart")
        explain(
            "heatmap",
            "Each cell is the power for one combination of subjects and items. Moving right "
            "adds subjects, moving up adds items. A star marks cells where even the lower end "
            "of the 95% Monte-Carlo CI is above the target.",
        )

    st.subheader("Smallest size that reaches the target")
    if len(dims) == 1:
        for e in effects:
            if bool((df.loc[df["effect"] == e, "true_value"] == 0).all()):
                continue  # a zero effect's rate is its type I error, not power
            res = smallest_size(df, e, dims[0], target)
            (st.success if res.reachable else st.warning)(res.message)
    else:
        d = df[df["effect"] == st.session_state.get("power_heatmap_effect", effects[0])]
        for items, g in d.groupby("items"):
            res = smallest_size(g, g["effect"].iloc[0], "subjects", target)
            (st.success if res.reachable else st.warning)(f"With {items} items: {res.message}")
    explain(
        "smallest size",
        "The smallest size on the curve whose power is above the target even at the lower "
        "end of its 95% CI. If none is, adding more of that dimension may not help: with "
        "few items, for example, item-to-item variability limits power however many "
        "subjects you test.",
    )

    st.subheader("Precision and diagnostics")
    st.dataframe(diagnostics_table(df, dims), hide_index=True, key="power_diagnostics")
    explain(
        "diagnostics",
        "**MC SE** is the Monte-Carlo standard error of the rejection rate: the power value "
        "is uncertain by about ±2 MC SE. For a zero true effect the rejection rate is the "
        "**type I error**, which should be close to alpha. **Bias** and **RMSE** describe "
        "the estimates; **CI coverage** should be close to 1 - alpha. Singular or failed "
        "fits mean the model is hard to estimate at that size.",
    )
    extend_controls(df, run)


def extend_controls(df: pd.DataFrame, run: dict) -> None:
    """Add simulations to one design point (same seed streams: equal to extending it)."""
    dims = run["dims"]
    points = [tuple((d, int(r[d])) for d in dims) for _, r in df[dims].drop_duplicates().iterrows()]
    labels = {", ".join(f"{v} {d}" for d, v in p): p for p in points}
    c1, c2 = st.columns([2, 1])
    with c1:
        label = st.selectbox("Design point to refine", list(labels), key="power_extend_point")
    point = labels[label]
    mask = pd.Series(True, index=df.index)
    for d, v in point:
        mask &= df[d] == v
    current = int(df.loc[mask, "nsim"].iloc[0])
    with c2:
        st.write("")
        clicked = st.button(f"Add {EXTRA_NSIM:,} more simulations", key="power_extend")
    st.caption(
        f"{label}: {current:,} simulations so far. The extra ones continue the same random "
        "streams, so the result equals one longer run."
    )
    if not clicked:
        return
    try:  # the same budget as a first run, for the whole (longer) point
        simulated_rows(
            lmmcore.Design.from_dict(json.loads(run["design_json"])),
            [point],
            current + EXTRA_NSIM,
            f"Adding {EXTRA_NSIM:,} simulations at {label}",
        )
    except lmmcore.LmmError as exc:
        show_error(exc)
        return
    bar = st.progress(0.0, text=f"{label}: adding {EXTRA_NSIM:,} simulations")
    clock = st.empty()
    try:
        table, w = power_point(
            run["spec_json"],
            run["design_json"],
            point,
            current + EXTRA_NSIM,
            run["test"],
            run["alpha"],
            run["seed"],
            run["effects"],
            _progress=_outside_cache(
                lambda done, total: bar.progress(done / total, text=f"{done}/{total}")
            ),
            _tick=_outside_cache(heartbeat(clock, "Working; press Stop to cancel")),
        )
    finally:
        bar.empty()
        clock.empty()
    rest = df.loc[~mask]
    new = pd.concat([rest, table], ignore_index=True).sort_values([*dims], kind="stable")
    st.session_state[CURVE_KEY] = new.reset_index(drop=True)
    st.session_state[WARN_KEY] = list(dict.fromkeys([*st.session_state.get(WARN_KEY, []), *w]))
    st.rerun()


def main() -> None:
    page_header("Power", PURPOSE)
    spec, design, fallback = current_model()
    if fallback:
        st.info(
            f"No model from the **Model & design** page yet: using preset {DEFAULT_PRESET} "
            f"({lmmcore.PRESETS[DEFAULT_PRESET].title})."
        )
    st.caption(f"Model: `{spec.formula}`. Design: {design.summary().splitlines()[0]}")
    explain(
        "this page",
        "We simulate many studies from your model, fit each one, and count how often the "
        "effect is significant: that share is the **power**. Doing this for several numbers "
        "of subjects (or items) gives the power curve.",
    )
    try:
        settings = settings_form(spec, design)
        if st.button("Run", type="primary", key="power_run_button", disabled=settings is None):
            bar = st.progress(0.0, text="Starting")
            run_curve(settings, bar)
        target = float(st.session_state.get("power_target", 0.8))
        show_results(target)
    except lmmcore.LmmError as exc:
        show_error(exc)


if __name__ == "__main__":
    main()
