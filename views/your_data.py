"""Page "Your data": pick an example data set or upload a CSV, and fit a model to it.

The fitted model is kept in ``st.session_state["fit_result"]`` (with the data in
``"fit_data"``) for the "Fit & bootstrap" page, with ``"fit_inputs"``, the inputs that made
it: the page shows a fit only while the data, formula and REML setting on screen are the
ones it was made with. Fits run on the app's worker processes (`views._jobs`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.datasets import DATASETS
from lmmcore.plots import random_effects_plot, residual_plot
from views._common import APP_MAX_ROWS, PILOT_KEY, page_header, show_error
from views._jobs import fit_on_worker

PURPOSE = (
    "Upload pilot data, fit your model to it, and use the estimates as the starting point "
    "for a power analysis."
)
FIT_KEY = "fit_result"
DATA_KEY = "fit_data"
SOURCE_EXAMPLE = "Example data set"
SOURCE_UPLOAD = "Upload a CSV"


@st.cache_data(show_spinner=False, max_entries=8)
def read_csv(raw: bytes) -> tuple[pd.DataFrame, list[str]]:
    """`lmmcore.read_csv` (cached on the bytes; the upload limit bounds each entry)."""
    return lmmcore.read_csv(raw)


def fe_table(result) -> pd.DataFrame:
    """Fixed effects: estimate, std. error, t value and Satterthwaite df (or '—')."""
    table = pd.DataFrame(
        {
            "Estimate": result.fe_params,
            "Std. Error": result.bse,
            "t value": result.fe_params / result.bse,
        }
    )
    try:
        table["df (Satterthwaite)"] = [f"{v:.1f}" for v in result.df]
    except Exception:  # not available in every lmmcore build
        table["df (Satterthwaite)"] = "—"
    return table


def summary_text(result) -> str:
    """``result.summary()``, or a short fallback where a part of it is not available."""
    try:
        return result.summary()
    except Exception:  # e.g. Satterthwaite df missing in this lmmcore build
        lines = [
            f"Linear mixed model fit by {'REML' if result.REML else 'ML'}",
            f"Formula: {result.formula}",
            f"Observations: {result.nobs}; groups: "
            + ", ".join(f"{k} {v}" for k, v in result.ngroups.items()),
            "",
            "Random effects:",
            result.variance_components.to_string(index=False),
            "",
            "Fixed effects:",
            pd.DataFrame({"Estimate": result.fe_params, "Std. Error": result.bse}).to_string(),
        ]
        if result.is_singular:
            lines.append("\nboundary (singular) fit")
        return "\n".join(lines)


def choose_data() -> tuple[pd.DataFrame | None, str, str]:
    """Data source widgets; returns (data or None, default formula, source label)."""
    source = st.radio(
        "Data source",
        [SOURCE_EXAMPLE, SOURCE_UPLOAD],
        horizontal=True,
        key="data_source",
        help="Try a data set that ships with lmmcore, or upload your own pilot data.",
    )
    if source == SOURCE_EXAMPLE:
        name = st.selectbox(
            "Example data set",
            list(DATASETS),
            key="dataset_name",
            help="Classic lme4 data sets; each comes with its usual formula.",
        )
        return lmmcore.load_dataset(name), DATASETS[name][2], f"example:{name}"
    up = st.file_uploader(
        "CSV file (one row per observation, a header row; up to 20 MB)",
        type="csv",
        help="Comma, semicolon or tab separated, UTF-8 (other encodings are read with a note).",
    )
    if up is None:
        st.info("Upload a CSV file to continue, or pick an example data set.")
        return None, "", "upload"
    try:
        data, notes = read_csv(up.getvalue())
        if len(data) > APP_MAX_ROWS:
            raise lmmcore.DataError(
                f"{up.name} has {len(data):,} rows; the app fits data of at most "
                f"{APP_MAX_ROWS:,} rows (use lmmcore in Python for more)."
            )
    except lmmcore.LmmError as e:
        show_error(f"Could not use {up.name}: {e}")
        return None, "", "upload"
    for note in notes:
        st.info(note)
    data = repair_numeric_text(data, up.name)
    return data, "", f"upload:{up.name}:{hash(up.getvalue())}"


def repair_numeric_text(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """Name columns that mix numbers and text, and offer to treat the text as missing."""
    for col, bad in lmmcore.numeric_text(data).items():
        shown = ", ".join(repr(v) for v in bad[:5]) + (" ..." if len(bad) > 5 else "")
        st.warning(
            f"Column {col!r} of {name} holds numbers and {len(bad)} text value(s) ({shown}). "
            "Used as it is, a model would refuse it; you can treat those values as missing "
            "(their rows are then left out of the fit)."
        )
        if st.checkbox(f"Treat the text in {col!r} as missing", key=f"na_{col}"):
            data = lmmcore.coerce_numeric(data, col)
    return data


def run_fit(data: pd.DataFrame, formula: str, reml: bool, source: str) -> None:
    ss = st.session_state
    for key in (FIT_KEY, DATA_KEY, "fit_inputs", "boot_result"):
        ss.pop(key, None)  # a new attempt replaces the old fit, whatever its outcome
    try:
        result, caught = fit_on_worker(formula, data, reml)
    except lmmcore.LmmError as e:
        show_error(e)
        return
    ss[FIT_KEY] = result
    ss[DATA_KEY] = data
    ss["fit_source"] = source
    ss["fit_inputs"] = (source, formula, reml)
    ss["fit_warnings"] = caught


def show_fit(result) -> None:
    for w in st.session_state.get("fit_warnings", []):
        st.warning(w)
    st.subheader("Model summary")
    st.code(summary_text(result), language=None)
    with st.expander("What am I looking at?"):
        st.markdown(
            "The summary lists how the model was fitted (REML or ML), the **random effects** "
            "(standard deviation of each varying effect across groups, and their correlation) "
            "and the **fixed effects** (the average effects). The residual SD is the noise "
            "left after both."
        )
    st.subheader("Fixed effects")
    st.dataframe(fe_table(result))
    with st.expander("What am I looking at?"):
        st.markdown(
            "Each row is one fixed effect. *Estimate* is its size in the response's units; "
            "*Std. Error* its uncertainty; *t value* = estimate / SE. Large |t| (roughly "
            "above 2) means the effect is clearly distinguishable from zero."
        )
    st.subheader("Random effects by group")
    st.plotly_chart(random_effects_plot(result), key="re_plot")
    with st.expander("What am I looking at?"):
        st.markdown(
            "Each dot is one group's predicted deviation from the average (a BLUP), sorted "
            "from lowest to highest: a 'caterpillar'. A wide spread means groups differ a "
            "lot; the dashed line is zero (an average group)."
        )
    st.subheader("Residuals")
    st.plotly_chart(residual_plot(result), key="resid_plot")
    with st.expander("What am I looking at?"):
        st.markdown(
            "Residuals (observed minus fitted) against fitted values. They should scatter "
            "evenly around zero; a funnel or a curve suggests the model misses something."
        )


def use_as_truth(result, data: pd.DataFrame, source: str) -> None:
    """'Use this fit as the ground truth': the fitted spec on the pilot's own rows becomes
    the current model (editable on Model & design; Power extends it along its units)."""
    st.subheader("Plan a study from this pilot")
    st.markdown(
        "Use the fitted values as the truth of a power analysis on the pilot's own design "
        "(its conditions, imbalance and missing rows); the Power page then extends the pilot "
        "to more subjects or items, drawing new units like the pilot's."
    )
    if not st.button("Use this fit as the ground truth", key="use_fit", type="primary"):
        return
    try:
        spec = lmmcore.ModelSpec.from_fit(result)
    except lmmcore.LmmError as e:
        show_error(e)
        return
    ss = st.session_state
    label = source.split(":")[1] if ":" in source else source
    used = [c for c in lmmcore.parse_formula(result.formula).columns if c in data.columns]
    data = data.dropna(subset=used).reset_index(drop=True)  # the rows the fit used
    ss[PILOT_KEY] = {"spec": spec, "data": data, "label": label}
    ss["md_preset"] = "pilot"
    ss.pop("md_loaded", None)
    ss["spec"], ss["design"], ss["md_error"] = spec, data, None
    st.switch_page("views/model_design.py")


st.set_page_config(page_title="Your data · lmmcore", layout="wide")
page_header("Your data", PURPOSE)
data, default_formula, source = choose_data()
if data is not None:
    st.dataframe(data.head(10))
    st.markdown(f"{len(data)} rows, {data.shape[1]} columns (first 10 rows shown).")
    if st.session_state.get("formula_source") != source:
        # a new data set: reset the formula to its default
        st.session_state["formula_source"] = source
        st.session_state["formula"] = default_formula
    formula = st.text_input(
        "Model formula (lme4 syntax)",
        key="formula",
        placeholder="response ~ fixed + (1 + fixed | group)",
        help="lme4 syntax: response ~ fixed effects + (random effects | grouping factor).",
    )
    reml = st.checkbox(
        "REML (untick for maximum likelihood)",
        value=True,
        key="reml",
        help="REML (lme4's default) gives unbiased variance estimates; ML is needed to "
        "compare models that differ in their fixed effects.",
    )
    if st.button("Fit", key="fit", type="primary"):
        if not formula.strip():
            show_error("Enter a model formula, for example y ~ x + (1 | group).")
        else:
            run_fit(data, formula, reml, source)
    inputs = (source, formula, reml)
else:
    inputs = None

result = st.session_state.get(FIT_KEY)
made_with = st.session_state.get("fit_inputs")
if result is not None and st.session_state.get("fit_source") != "simulated":
    if made_with == inputs:
        show_fit(result)
        use_as_truth(result, st.session_state[DATA_KEY], source)
    else:
        st.info(
            "The data, formula or REML setting changed since the last fit; press **Fit** to "
            "fit the model shown above."
        )
