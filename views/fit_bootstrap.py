"""Page "Fit & bootstrap": parametric bootstrap of the fit kept in session_state.

Reads ``st.session_state["fit_result"]`` (set on "Your data") and keeps the bootstrap in
``st.session_state["boot_result"]``.
"""

from __future__ import annotations

import warnings

import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.confint import on_data_scale
from lmmcore.limits import work_budget
from lmmcore.plots import bootstrap_histograms
from views._common import DEFAULT_SEED, SEED_KEY, keep_widgets, page_header, show_error
from views._jobs import Interrupts, PoolBackend, heartbeat

PURPOSE = (
    "Bootstrap the fitted model: simulate new data from it, refit, and see how well the"
    " estimates are recovered."
)
FIT_KEY = "fit_result"
BOOT_KEY = "boot_result"
MAX_B = 5000
METHODS = {
    "perc": "Percentile",
    "basic": "Basic",
    "norm": "Normal",
}


def run_bootstrap(result, B: int, seed: int) -> None:
    """bootMer on the app's worker processes, in about 20 chunks (a moving bar; Stop kills
    the workers and keeps the replicates that finished)."""
    try:
        work_budget(B * result.nobs, f"A bootstrap of {B:,} replicates")
    except lmmcore.LmmError as e:
        show_error(e)
        return
    bar = st.progress(0.0, text=f"Bootstrapping: 0 of {B} replicates")
    clock = st.empty()
    stops = Interrupts()

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Bootstrapping: {done} of {total} replicates")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmmcore.errors.LmmWarning)  # shown on the page
            boot = lmmcore.bootMer(
                result,
                B=B,
                seed=seed,
                progress=stops.wrap(progress),
                chunk_size=max(25, -(-B // 20)),
                backend=PoolBackend(stops.wrap(heartbeat(clock, "Working; press Stop to cancel"))),
            )
    except lmmcore.LmmError as e:
        show_error(e)
        return
    finally:
        bar.empty()
        clock.empty()
    st.session_state[BOOT_KEY] = boot  # after a Stop: the replicates that finished
    st.session_state["boot_seed"] = seed
    stops.reraise()


def show_bootstrap(boot, result, method: str, level: float, truth=None) -> None:
    """Intervals and histograms on the data scale: SDs and correlations of the random
    effects, sigma, fixed effects (lme4's confint(method="boot"), oldNames=FALSE)."""
    boot = on_data_scale(boot, result)
    st.markdown(
        f"{boot.B} replicates, seed {st.session_state.get('boot_seed', '?')}"
        + (" (interrupted)" if boot.interrupted else "")
        + "."
    )
    counts = boot.status_counts()
    cols = st.columns(len(counts))
    for col, (k, v) in zip(cols, counts.items(), strict=True):
        col.metric(k.capitalize(), v)
    if counts.get("failed", 0) or counts.get("singular", 0):
        st.warning(
            f"{counts.get('singular', 0)} replicate(s) gave a singular fit and "
            f"{counts.get('failed', 0)} failed; failed ones are left out of the intervals."
        )
    try:
        table = boot.ci_frame(method, level)
        ci = table.to_numpy()
    except lmmcore.LmmError as e:
        show_error(e)
        return
    st.subheader(f"{100 * level:g} % confidence intervals ({METHODS[method].lower()})")
    st.session_state["boot_ci"] = table
    st.dataframe(table.assign(original=boot.t0))
    with st.expander("What am I looking at?"):
        st.markdown(
            "Each row is one model parameter, named as lme4 names them: `sd_X|g` is the SD "
            "of term X across the levels of g, `cor_X.Y|g` the correlation of two terms, "
            "*sigma* the residual SD, then the fixed effects. "
            "*original* is the estimate from your data, the two other columns the "
            "interval's limits. **Percentile** uses the bootstrap quantiles directly, **basic** "
            "reflects them around the estimate, **normal** assumes a bell curve."
        )
    st.subheader("Bootstrap distributions")
    st.plotly_chart(bootstrap_histograms(boot, ci, truth=truth), key="boot_hist")
    with st.expander("What am I looking at?"):
        st.markdown(
            "One histogram per parameter: the estimates from the simulated data sets. The "
            "solid blue line is the estimate from your data, the dashed red lines the "
            "interval (a dotted green line: the true value, for simulated data). A narrow "
            "histogram means the parameter is well "
            "determined; a pile-up "
            "at zero for an SD means the model often cannot tell that variance apart."
        )


st.set_page_config(page_title="Fit & bootstrap · lmmcore", layout="wide")
keep_widgets("boot_")
page_header("Fit & bootstrap", PURPOSE)
result = st.session_state.get(FIT_KEY)
# true values, when the fit is of data simulated on "Model & design"
simulated = st.session_state.get("fit_source") == "simulated"
truth = st.session_state.get("truth") if simulated else None
if simulated and result is not None and "truth_params" in st.session_state:
    truth = st.session_state["truth_params"]
if result is None:
    st.info('No fitted model yet: fit one on the "Your data" page first.')
    st.page_link("views/your_data.py", label="Go to Your data", icon=":material/upload_file:")
else:
    st.markdown(f"Fitted model: `{result.formula}` ({result.nobs} observations).")
    fe = pd.DataFrame({"Estimate": result.fe_params, "Std. Error": result.bse})
    if truth:
        fe.insert(0, "True value", [truth.get(n) for n in fe.index])
    st.dataframe(fe)
    c1, c2, c3 = st.columns(3)
    B = int(
        c1.number_input(
            f"Bootstrap replicates B (at most {MAX_B})",
            min_value=2,
            max_value=MAX_B,
            value=1000,
            step=100,
            key="boot_B",
            help=f"Capped at {MAX_B} to keep the app responsive.",
        )
    )
    method = c2.selectbox(
        "CI method",
        list(METHODS),
        format_func=METHODS.get,
        key="boot_method",
        help="Percentile: the bootstrap quantiles; basic: reflected around the estimate; "
        "normal: estimate +- z x bootstrap SD (as R's boot.ci).",
    )
    level = c3.slider(
        "Confidence level",
        min_value=0.50,
        max_value=0.99,
        value=0.95,
        step=0.01,
        key="boot_level",
        help="The share of intervals that should contain the true value.",
    )
    with st.expander("What am I looking at?"):
        st.markdown(
            "A **parametric bootstrap** treats the fitted model as the truth: it simulates "
            "B new data sets from it, refits the model to each and collects the estimates. "
            "Their spread shows how precisely each parameter can be estimated with data like "
            "yours. More replicates give steadier intervals but take longer. The sidebar "
            "seed makes the run reproducible."
        )
    if st.button("Run bootstrap", key="run_boot", type="primary"):
        seed = int(st.session_state.get(SEED_KEY, DEFAULT_SEED))
        run_bootstrap(result, B, seed)
    boot = st.session_state.get(BOOT_KEY)
    if boot is not None:
        show_bootstrap(boot, result, method, float(level), truth)
