"""Page "Power": power by simulation over numbers of subjects and/or items, or over more
units of your pilot data.

Reads the model and design from ``st.session_state["spec"]``/``["design"]`` (set on the
"Model & design" page, or by "Use this fit as the ground truth" on "Your data", where the
design is the pilot's data), falling back to preset P1 when neither page was visited. Each
design point is computed by the cached `power_point` (plain hashable arguments), whose
simulations run on the app's worker processes. The finished curve is kept in
``st.session_state["power_curve_df"]`` with the settings that made it in ``["power_run"]``;
it is shown as current only while the settings on screen are the same.
"""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import json
import math
import re
import warnings
from collections.abc import Callable

import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.limits import MAX_WORK, work_budget
from lmmcore.power_plots import (
    diagnostics_table,
    disagreements,
    power_curve_figure,
    power_heatmap_figure,
    smallest_size,
    summarize_warnings,
)
from views._common import (
    APP_MAX_ROWS,
    check_app_design,
    escape_markdown,
    keep_widgets,
    page_header,
    show_error,
    snapshot_widgets,
)
from views._jobs import PoolBackend, heartbeat

PURPOSE = (
    "Estimate power by simulation across numbers of subjects and items, and draw the power curve."
)
CURVE_KEY = "power_curve_df"
RUN_KEY = "power_run"
WARN_KEY = "power_warnings"
SEARCH_KEY = "power_search"
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
TEST_HELP = (
    "Satterthwaite: the t test lmerTest reports, with degrees of freedom from the design; "
    "Wald: a z test that ignores the uncertainty of the variances (too many false positives "
    "with few subjects or items); Kenward-Roger: a corrected t test (pbkrtest), slower; "
    "likelihood ratio: compares ML fits with and without the effect."
)
#: The settings that decide a curve: results for other values of any of them are stale.
RESULT_KEYS = ("spec_json", "design_json", "points", "nsim", "test", "alpha", "seed", "effects")
EFFECT_SIZE = "effect size"
_CHANGED = {
    "spec_json": "the model",
    "design_json": "the design",
    "points": "the design sizes",
    "nsim": "the number of simulations",
    "test": "the test",
    "alpha": "alpha",
    "seed": "the seed",
    "effects": "the effects tested",
}


# ----------------------------------------------------------------------------- computing


def parse_sizes(text: str, what: str) -> list[int]:
    """Parse "10, 20, 40" into sorted distinct positive integers; ValueError with a message."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ValueError(f"Enter at least one number of {what}, for example 10, 20, 40.")
    out = []
    for p in parts:
        if not re.fullmatch(r"\d{1,9}", p) or int(p) < 1:
            raise ValueError(
                f"{p!r} is not a whole number of {what} >= 1. Enter whole numbers separated "
                "by commas, for example 10, 20, 40."
            )
        out.append(int(p))
    return sorted(set(out))


def parse_values(text: str) -> list[float]:
    """Parse "0, 20, 40" into distinct numbers (true values), in order; ValueError."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ValueError("Enter at least one true value, for example 0, 20, 40.")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a number; enter numbers such as 0, 20, 40.") from None
        if not math.isfinite(v) or abs(v) > 1e12:
            raise ValueError(f"{p!r} is not a usable true value.")
        out.append(v)
    return sorted(set(out))


def _spec_json(spec: lmmcore.ModelSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


def _design_json(design) -> str:
    """A Design as JSON; pilot data by a fingerprint of its contents (the data travel
    beside it, unhashed)."""
    if isinstance(design, pd.DataFrame):
        digest = hashlib.sha256(pd.util.hash_pandas_object(design, index=False).values).hexdigest()
        return f"pilot:{digest}"
    return json.dumps(design.to_dict(), sort_keys=True)


def dimensions(design) -> list[str]:
    """What a curve can vary: subjects and items, the levels of a nested design, or the
    grouping columns of pilot data."""
    if isinstance(design, pd.DataFrame):
        spec = st.session_state.get("spec")
        groups = list(spec.random) if spec is not None else []
        return [g for g in groups if g in design.columns]
    if design.nested is not None:
        dims = [n for n, _ in design.nested]
    else:
        dims = ["subjects"]
    return dims + (["items"] if design.items is not None else [])


EFFECT = "effect:"


def at_point(spec: lmmcore.ModelSpec, point) -> lmmcore.ModelSpec:
    """The spec at a point of a sensitivity curve (``effect:NAME`` sets a true value)."""
    fixed = {d[len(EFFECT) :]: float(v) for d, v in point if d.startswith(EFFECT)}
    if not fixed:
        return spec
    return lmmcore.ModelSpec.from_dict({**spec.to_dict(), "fixed": {**spec.fixed, **fixed}})


def resize(design, point: tuple[tuple[str, int], ...]):
    """The design (or pilot data, by `lmmcore.extend`) at one design point."""
    sizes = {d: v for d, v in point if not d.startswith(EFFECT)}
    if isinstance(design, pd.DataFrame):
        data = design
        for along, n in sizes.items():
            data = lmmcore.extend(data, along, n)
        if len(data) > APP_MAX_ROWS:
            raise lmmcore.DataError(
                f"The extended pilot has {len(data):,} rows; the app works on at most "
                f"{APP_MAX_ROWS:,}."
            )
        return data
    items = sizes.pop("items", None)
    if design.nested is not None:
        return check_app_design(design.with_size(items=items, nested=sizes or None))
    return check_app_design(design.with_size(subjects=sizes.get("subjects"), items=items))


def n_rows(design) -> int:
    return len(design) if isinstance(design, pd.DataFrame) else design.n_rows


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
    largest: tuple[tuple[str, int], ...] = (),
    _pilot: pd.DataFrame | None = None,
    _progress: Callable[[int, int], None] | None = None,
    _tick: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Power at one design point: (the `PowerResult.table` with the sizes and ``nsim`` as
    columns, the warnings raised). The same call as one point of `lmmcore.power_curve`;
    its simulations run on the app's worker processes (``_progress`` and ``_tick`` report
    from this thread and are not part of the cache key, nor is the pilot data, which
    ``design_json`` fingerprints; entries are a few kB each)."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    base = (
        _pilot
        if design_json.startswith("pilot:")
        else lmmcore.Design.from_dict(json.loads(design_json))
    )
    design = resize(base, point)
    # common random numbers: every point of a curve takes its draws from the largest design
    big = resize(base, largest) if largest and isinstance(base, lmmcore.Design) else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lmmcore.power(
            at_point(spec, point),
            design,
            draws_from=big,
            nsim=nsim,
            alpha=alpha,
            test=test,
            effects=list(effects) or None,
            seed=seed,
            backend=PoolBackend(_tick),
            progress=_progress,
        )
    table = lmmcore.smooth_power_table(res.table).reset_index()
    for dim, value in reversed(point):
        table.insert(0, dim, value)
    table["nsim"] = res.nsim
    msgs = list(dict.fromkeys(str(w.message) for w in caught))
    return table, msgs


@st.cache_data(show_spinner=False, max_entries=200)
def approx_curve(
    spec_json: str,
    design_json: str,
    vary_json: str,
    test: str,
    alpha: float,
    effects: tuple[str, ...],
    seed: int,
    _pilot: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`lmmcore.approx_power_curve` over the same points (milliseconds a point; the LRT has
    no approximation, so it shows Satterthwaite's)."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    base = (
        _pilot
        if design_json.startswith("pilot:")
        else lmmcore.Design.from_dict(json.loads(design_json))
    )
    return lmmcore.approx_power_curve(
        spec,
        base,
        json.loads(vary_json),
        test="satterthwaite" if test == "lrt" else test,
        alpha=alpha,
        effects=list(effects),
        seed=seed,
    )


def show_approximation(approx: pd.DataFrame, dims: list[str], target: float, key: str) -> None:
    """The approximate curve (or map) alone: updated on every change, no button."""
    if len(dims) == 1:
        fig = power_curve_figure(None, dims[0], target=target, approx=approx)
        fig.update_layout(title="Approximate power (from the expected information)")
        st.plotly_chart(fig, key=key)
    else:
        effect = st.selectbox(
            "Effect shown",
            list(dict.fromkeys(approx["effect"])),
            key="power_approx_effect",
            help="The map shows one effect at a time.",
        )
        full = approx.assign(ci_lower=approx["power"], ci_upper=approx["power"])
        fig = power_heatmap_figure(full, effect, dims[0], dims[1], target=target)
        fig.update_layout(title=f"Approximate power for {effect} (★: above {target:.0%})")
        st.plotly_chart(fig, key=key)
    explain(
        "approximation",
        "Computed in milliseconds from the expected information at the true values (the "
        "standard error and the Satterthwaite degrees of freedom the design implies, then "
        "the noncentral t), without simulating. It updates with every input. Press **Run** "
        "to check it by simulation: the simulated curve is then drawn over it, with its "
        "Monte-Carlo band.",
    )


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


def simulated_rows(design, points, nsim: int, what: str = "This run") -> int:
    """nsim x the rows of all design points, checked against the app's budget (the same
    check for a first run, a heatmap, "add more simulations" and a sample-size search);
    raises a DesignError for a bad size and a DataError over budget."""
    rows = nsim * sum(n_rows(resize(design, p)) for p in points)
    return work_budget(rows, what)


def compute_point(settings: dict, point, nsim: int, progress, clock) -> tuple:
    """`power_point` for a run's settings, with progress and a Stop-able clock."""
    return power_point(
        settings["spec_json"],
        settings["design_json"],
        point,
        nsim,
        settings["test"],
        settings["alpha"],
        settings["seed"],
        settings["effects"],
        settings.get("largest", ()),
        _pilot=settings.get("pilot"),
        _progress=_outside_cache(progress),
        _tick=_outside_cache(heartbeat(clock, "Working; press Stop to cancel")),
    )


def run_curve(settings: dict, bar) -> None:
    """Compute every design point, updating ``bar``; finished points are kept on interrupt."""
    points = settings["points"]
    frames: list[pd.DataFrame] = []
    msgs: list[tuple[str, str]] = []  # (design point, warning)
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

            table, w = compute_point(settings, point, settings["nsim"], within, clock)
            frames.append(table)
            msgs.extend((label, m) for m in w)
        bar.progress(1.0, text="Done")
    finally:
        if frames:
            st.session_state[CURVE_KEY] = pd.concat(frames, ignore_index=True)
            st.session_state[RUN_KEY] = {**settings, "complete": len(frames) == n}
            st.session_state[WARN_KEY] = list(dict.fromkeys(msgs))
            st.session_state.pop(SEARCH_KEY, None)
        bar.empty()
        clock.empty()


# ----------------------------------------------------------------------------- page


def current_model():
    """(spec, design or pilot data, fallback) from the other pages, or preset P1 with
    fallback True; None (after a warning) when the Model & design page has an error."""
    ss = st.session_state
    if ss.get("md_error"):
        st.warning(
            escape_markdown(
                "The model on Model & design has an error, so there is nothing to compute "
                f"until it is fixed: {ss['md_error']}"
            )
        )
        st.page_link(
            "views/model_design.py", label="Go to Model & design", icon=":material/schema:"
        )
        return None
    spec = ss.get("spec")
    design = ss.get("design")
    if isinstance(spec, dict):
        spec = lmmcore.ModelSpec.from_dict(spec)
    if isinstance(design, dict):
        design = lmmcore.Design.from_dict(design)
    if isinstance(spec, lmmcore.ModelSpec) and isinstance(design, lmmcore.Design | pd.DataFrame):
        return spec, design, False
    p = lmmcore.PRESETS[DEFAULT_PRESET]
    return p.spec, p.design, True


def explain(title: str, text: str) -> None:
    with st.expander(f"What am I looking at? ({title})"):
        st.markdown(text)


def _default_sizes(design, dim: str) -> str:
    if dim == "subjects":
        return "20, 40, 60, 80, 100"
    if dim == "items":
        return "10, 20, 40, 80"
    if isinstance(design, pd.DataFrame):
        n = len(lmmcore.pilot.units(design, dim))
    else:
        n = dict(design.nested or ())[dim]
    return ", ".join(str(n * k) for k in (1, 2, 3, 4))


def settings_form(spec, design) -> dict | None:
    """The widgets; returns the run's settings, or None (after an st.error) if invalid."""
    names = list(spec.fixed)
    default_effects = [n for n in names if n != "(Intercept)"] or names
    dims = dimensions(design)
    options = [*dims, *([f"{dims[0]} and {dims[1]}"] if len(dims) > 1 else []), EFFECT_SIZE]
    c1, c2 = st.columns(2)
    with c1:
        effects = st.multiselect(
            "Effects to test",
            names,
            default=default_effects,
            key="power_effects",
            help="Each simulated study tests every effect chosen here.",
        )
        test = st.selectbox(
            "Test",
            list(TEST_LABELS),
            format_func=TEST_LABELS.get,
            key="power_test",
            help=TEST_HELP,
        )
        if not dims:
            st.error("The model has no grouping factor to vary.")
            return None
        vary_what = st.radio(
            "Vary",
            options,
            horizontal=True,
            key="power_vary",
            help="Which sizes the curve runs over (two give a heatmap), or the true value "
            "of one effect at the current design (a sensitivity curve).",
        )
        chosen = [
            d
            for d in dims
            if vary_what == d or vary_what.startswith(f"{d} and") or vary_what.endswith(f"and {d}")
        ]
        texts = {}
        for d in dims:
            texts[d] = st.text_input(
                f"Numbers of {d}",
                _default_sizes(design, d),
                key=f"power_{d}",
                disabled=d not in chosen,
                help="Whole numbers separated by commas."
                + (
                    " New units are copies of the pilot's (lmmcore.extend)."
                    if isinstance(design, pd.DataFrame)
                    else ""
                ),
            )
        sized = [n for n in names if n != "(Intercept)"] or names
        sens = st.selectbox(
            "Effect whose true value varies",
            sized,
            key="power_sens_effect",
            disabled=vary_what != EFFECT_SIZE,
            help="A sensitivity curve: power against this effect's true value, the design "
            "as it is.",
        )
        true = float(spec.fixed.get(sens, 0.0))
        sens_text = st.text_input(
            "True values",
            ", ".join(f"{true * f:g}" for f in (0, 0.5, 1, 1.5, 2)),
            key=f"power_sens_values_{sens}",
            disabled=vary_what != EFFECT_SIZE,
            help="Numbers separated by commas, in the response's units; 0 gives the type I error.",
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
                help="Published guidance: at least 1,000 for a stable power estimate (its "
                "Monte-Carlo SE is then about 0.016).",
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
                help="The false-positive rate each test allows.",
            )
        )
        st.number_input(
            "Target power",
            min_value=0.05,
            max_value=0.99,
            value=0.8,
            step=0.05,
            key="power_target",
            help="The power you want; 0.8 is the common convention.",
        )
    if not effects:
        st.error("Pick at least one effect to test.")
        return None
    vary: dict[str, list] = {}
    try:
        for d in chosen:
            vary[d] = parse_sizes(texts[d], d)
        if vary_what == EFFECT_SIZE:
            vary[EFFECT + sens] = parse_values(sens_text)
    except ValueError as exc:
        show_error(exc)
        return None
    points = design_points(vary)
    sizes = {d: max(v) for d, v in vary.items() if not d.startswith(EFFECT)}
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
        "pilot": design if isinstance(design, pd.DataFrame) else None,
        "dims": list(vary),
        "points": points,
        "nsim": nsim,
        "test": test,
        "alpha": alpha,
        "seed": int(st.session_state.get("seed", 20211)),
        "effects": tuple(effects),
        "largest": tuple(sizes.items()) if not isinstance(design, pd.DataFrame) else (),
        "vary_json": json.dumps(vary),
    }


def changed(run: dict, settings: dict | None) -> list[str]:
    """What differs between the settings of a shown result and those on screen."""
    if settings is None:
        return ["the inputs (they have an error)"]
    return [_CHANGED[k] for k in RESULT_KEYS if run.get(k) != settings.get(k)]


def show_results(
    target: float, settings: dict | None, spec, design, approx: pd.DataFrame | None
) -> None:
    df: pd.DataFrame | None = st.session_state.get(CURVE_KEY)
    run: dict | None = st.session_state.get(RUN_KEY)
    shown_alone = False
    if (
        approx is not None
        and settings is not None
        and (df is None or run is None or changed(run, settings))
    ):
        st.subheader("Approximate power")
        show_approximation(approx, settings["dims"], target, "power_approx_chart")
        shown_alone = True
    if df is None or run is None:
        st.info(
            "Press **Run** to compute the power by simulation"
            + (" and draw it over the approximation." if shown_alone else ".")
        )
        return
    stale = changed(run, settings)
    if stale:
        st.warning(
            "The last results were computed for other inputs (" + ", ".join(stale) + " changed "
            "since), so they are not shown as current. Press **Run** to compute the power for "
            "the inputs above."
        )
        with st.expander("Show the results for the previous inputs"):
            st.caption("These belong to the previous inputs, not to the ones above.")
            st.dataframe(diagnostics_table(df, run["dims"]), hide_index=True)
        return
    dims = run["dims"]
    if not run.get("complete", True):
        st.warning("The last run was interrupted: showing the design points that finished.")
    for msg in summarize_warnings(st.session_state.get(WARN_KEY, [])):
        st.warning(escape_markdown(msg))
    effects = list(dict.fromkeys(df["effect"]))

    st.subheader("Results")
    if len(dims) == 1:
        zero = bool((df["true_value"] == 0).any())
        fig = power_curve_figure(
            df, dims[0], target=target, alpha=run["alpha"] if zero else None, approx=approx
        )
        st.plotly_chart(fig, key="power_curve_chart")
        explain(
            "power curve",
            "Each point is the power estimated from the simulated studies: the average over "
            "them of the chance that the test is significant given each study's variance "
            "estimates (conditional Monte Carlo). It estimates the same power as the share "
            "of significant studies (in the table below) with a much smaller Monte-Carlo "
            "error. The shaded band is its 95% Monte-Carlo confidence interval: with more "
            "simulations it gets narrower. The thin dotted lines are the approximation; the "
            "dashed line is the target power.",
        )
        if approx is not None:
            off = disagreements(df, approx, dims)
            if off.empty:
                st.caption(
                    "The approximation lies inside the simulation's 95% Monte-Carlo CI at every "
                    "point."
                )
            else:
                st.warning(
                    f"At {len(off)} point(s) the approximation lies outside the simulation's "
                    "95% Monte-Carlo CI; trust the simulation there. Why, point by point:"
                )
                st.dataframe(off, hide_index=True, key="power_disagreements")
    else:
        effect = st.selectbox("Effect shown", effects, key="power_heatmap_effect")
        fig = power_heatmap_figure(df, effect, dims[0], dims[1], target=target)
        st.plotly_chart(fig, key="power_heatmap_chart")
        explain(
            "heatmap",
            "Each cell is the power for one combination of the two sizes. A star marks cells "
            "where even the lower end of the 95% Monte-Carlo CI is above the target.",
        )

    if not dims[0].startswith(EFFECT):
        smallest_section(df, run, spec, design, target, dims, effects)
    st.subheader("Precision and diagnostics")
    st.dataframe(diagnostics_table(df, dims), hide_index=True, key="power_diagnostics")
    explain(
        "diagnostics",
        "**MC SE** is the Monte-Carlo standard error of the power: the power value is "
        "uncertain by about ±2 MC SE. **Share significant** is the plain share of simulated "
        "studies with p < alpha (what simr reports); it estimates the same power, less "
        "precisely. For a zero true effect the power is the "
        "**type I error**, which should be close to alpha; beside every power, the **type I "
        "error** column is the same test on the same simulated studies with that effect set "
        "to 0 (no extra simulations: the null data are the same draws minus the effect). "
        "**Bias** and **RMSE** describe the estimates; **CI coverage** should be close to "
        "1 - alpha. Singular or failed fits mean the model is hard to estimate at that size.",
    )
    extend_controls(df, run)


def smallest_section(df, run, spec, design, target, dims, effects) -> None:
    st.subheader("Smallest size that reaches the target")
    if len(dims) == 1:
        for e in effects:
            if bool((df.loc[df["effect"] == e, "true_value"] == 0).all()):
                continue  # a zero effect's rate is its type I error, not power
            res = smallest_size(df, e, dims[0], target)
            (st.success if res.reachable else st.warning)(escape_markdown(res.message))
        search_controls(df, run, spec, design, target)
    else:
        d = df[df["effect"] == st.session_state.get("power_heatmap_effect", effects[0])]
        for other, g in d.groupby(dims[1]):
            res = smallest_size(g, g["effect"].iloc[0], dims[0], target)
            (st.success if res.reachable else st.warning)(
                escape_markdown(f"With {other} {dims[1]}: {res.message}")
            )
    explain(
        "smallest size",
        "The smallest size on the curve whose power is above the target even at the lower "
        "end of its 95% CI. If none is, adding more of that dimension may not help: with "
        "few items, for example, item-to-item variability limits power however many "
        "subjects you test. 'Search' looks between and beyond the curve's points.",
    )


def search_controls(df: pd.DataFrame, run: dict, spec, design, target: float) -> None:
    """`lmmcore.find_sample_size`: bisection between and beyond the curve's sizes."""
    dim = run["dims"][0]
    effects = [
        e
        for e in dict.fromkeys(df["effect"])
        if not bool((df.loc[df["effect"] == e, "true_value"] == 0).all())
    ]
    if not effects:
        return
    c1, c2, c3 = st.columns([2, 2, 1])
    effect = c1.selectbox("Effect to size", effects, key="power_search_effect")
    top = int(df[dim].max())
    upper = int(
        c2.number_input(
            f"Search {dim} up to",
            min_value=2,
            max_value=100_000,
            value=max(2 * top, 4),
            step=10,
            key="power_search_upper",
            help="The largest size the search may try (bisection on the same seed streams).",
        )
    )
    c3.write("")
    key = (
        run["spec_json"],
        run["design_json"],
        run["nsim"],
        run["test"],
        run["alpha"],
        run["seed"],
        effect,
        dim,
        upper,
        target,
    )
    if c3.button("Search", key="power_search_button"):
        lower = max(2, int(df[dim].min()) // 2)
        evaluations = math.ceil(math.log2(max(2, upper - lower + 1))) + 1
        try:
            work_budget(
                run["nsim"] * evaluations * n_rows(resize(design, ((dim, upper),))),
                f"A search up to {upper:,} {dim}",
            )
        except lmmcore.LmmError as exc:
            show_error(exc)
            return
        clock = st.empty()
        try:
            with st.spinner(f"Searching {lower}-{upper} {dim}…"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = lmmcore.find_sample_size(
                    spec,
                    design,
                    effect,
                    target=target,
                    dimension=dim,
                    lower=lower,
                    upper=upper,
                    nsim=run["nsim"],
                    test=run["test"],
                    alpha=run["alpha"],
                    seed=run["seed"],
                    backend=PoolBackend(heartbeat(clock, "Searching; press Stop to cancel")),
                )
        except lmmcore.LmmError as exc:
            show_error(exc)
            return
        finally:
            clock.empty()
        st.session_state[SEARCH_KEY] = (key, res)
    found = st.session_state.get(SEARCH_KEY)
    if found is not None and found[0] == key:
        res = found[1]
        (st.success if res.reachable else st.warning)(escape_markdown(res.message))


def extend_controls(df: pd.DataFrame, run: dict) -> None:
    """Add simulations to one design point (same seed streams: equal to extending it)."""
    dims = run["dims"]
    points = [
        tuple((d, r[d] if d.startswith(EFFECT) else int(r[d])) for d in dims)
        for _, r in df[dims].drop_duplicates().iterrows()
    ]
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
    design = run.get("pilot")
    if design is None:
        design = lmmcore.Design.from_dict(json.loads(run["design_json"]))
    try:  # the same budget as a first run, for the whole (longer) point
        simulated_rows(
            design, [point], current + EXTRA_NSIM, f"Adding {EXTRA_NSIM:,} simulations at {label}"
        )
    except lmmcore.LmmError as exc:
        show_error(exc)
        return
    bar = st.progress(0.0, text=f"{label}: adding {EXTRA_NSIM:,} simulations")
    clock = st.empty()
    try:
        table, w = compute_point(
            run,
            point,
            current + EXTRA_NSIM,
            lambda done, total: bar.progress(done / total, text=f"{done}/{total}"),
            clock,
        )
    finally:
        bar.empty()
        clock.empty()
    rest = df.loc[~mask]
    new = pd.concat([rest, table], ignore_index=True).sort_values([*dims], kind="stable")
    st.session_state[CURVE_KEY] = new.reset_index(drop=True)
    # this point's warnings are those of its longer run now
    kept = [(pt, m) for pt, m in st.session_state.get(WARN_KEY, []) if pt != label]
    st.session_state[WARN_KEY] = kept + [(label, m) for m in dict.fromkeys(w)]
    st.rerun()


def main() -> None:
    st.set_page_config(page_title="Power · lmmcore", layout="wide")
    keep_widgets("power_")  # the settings survive a visit to another page
    page_header("Power", PURPOSE)
    model = current_model()
    if model is None:
        return
    spec, design, fallback = model
    if fallback:
        st.info(
            f"No model from the **Model & design** page yet: using preset {DEFAULT_PRESET} "
            f"({lmmcore.PRESETS[DEFAULT_PRESET].title})."
        )
    if isinstance(design, pd.DataFrame):
        what = f"pilot data, {len(design):,} rows"
    else:
        what = design.summary().splitlines()[0]
    st.caption(escape_markdown(f"Model: {spec.formula}. Design: {what}."))
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
        approx = None
        if settings is not None:
            try:
                approx = approx_curve(
                    settings["spec_json"],
                    settings["design_json"],
                    settings["vary_json"],
                    settings["test"],
                    settings["alpha"],
                    settings["effects"],
                    settings["seed"],
                    _pilot=settings.get("pilot"),
                )
            except lmmcore.LmmError as exc:
                st.caption(escape_markdown(f"No approximation for this model: {exc}"))
        show_results(target, settings, spec, design, approx)
    except lmmcore.LmmError as exc:
        show_error(exc)


def run_page() -> None:
    try:
        main()
    finally:  # also after st.stop(): the values on screen survive other pages
        snapshot_widgets("power_")


if __name__ == "__main__":
    run_page()
