"""Page "Your data": pick an example data set or upload a CSV, and fit a model to it.

The fitted model is kept in ``st.session_state["fit_result"]`` (with the data in
``"fit_data"``) for the "Fit & bootstrap" page.
"""

from __future__ import annotations

import io
import warnings

import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.datasets import DATASETS
from lmmcore.plots import random_effects_plot, residual_plot
from views._common import page_header

PURPOSE = (
    "Upload pilot data, fit your model to it, and use the estimates as the starting point "
    "for a power analysis."
)
FIT_KEY = "fit_result"
DATA_KEY = "fit_data"
SOURCE_EXAMPLE = "Example data set"
SOURCE_UPLOAD = "Upload a CSV"


@st.cache_data(show_spinner=False)
def read_csv(raw: bytes) -> pd.DataFrame:
    """Parse uploaded CSV bytes (cached on the bytes)."""
    return pd.read_csv(io.BytesIO(raw))


def csv_problems(data: pd.DataFrame, formula: str) -> list[str]:
    """Problems with the data for this formula that the user must fix, as messages."""
    try:
        parsed = lmmcore.parse_formula(formula)
    except lmmcore.LmmError:
        return []  # fit() reports formula errors with its own message
    cols = [c for c in data.columns if c in parsed.columns]
    missing = [c for c in parsed.columns if c not in data.columns]
    out = []
    if missing:
        out.append(
            f"The formula names column(s) not in the data: {', '.join(sorted(missing))}. "
            f"The data has: {', '.join(map(str, data.columns))}."
        )
    if cols:
        na = data[cols].isna()
        n_rows = int(na.any(axis=1).sum())
        if n_rows:
            which = ", ".join(f"{c} ({int(na[c].sum())})" for c in cols if na[c].any())
            out.append(
                f"{n_rows} of {len(data)} rows have missing values in the model's columns: "
                f"{which}. Remove or fill those rows and upload the file again."
            )
    resp = parsed.response
    if resp in data.columns and not pd.api.types.is_numeric_dtype(data[resp]):
        bad = pd.to_numeric(data[resp], errors="coerce").isna() & data[resp].notna()
        example = data.loc[bad, resp].astype(str).head(3).tolist()
        out.append(
            f"The response {resp!r} must be numeric; {int(bad.sum())} value(s) are not "
            f"numbers (for example {', '.join(map(repr, example))})."
        )
    return out


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
        "Data source", [SOURCE_EXAMPLE, SOURCE_UPLOAD], horizontal=True, key="data_source"
    )
    if source == SOURCE_EXAMPLE:
        name = st.selectbox("Example data set", list(DATASETS), key="dataset_name")
        return lmmcore.load_dataset(name), DATASETS[name][2], f"example:{name}"
    up = st.file_uploader("CSV file (one row per observation, a header row)", type="csv")
    if up is None:
        st.info("Upload a CSV file to continue, or pick an example data set.")
        return None, "", "upload"
    try:
        data = read_csv(up.getvalue())
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        st.error(f"Could not read {up.name} as CSV: {e}")
        return None, "", "upload"
    if data.empty:
        st.error(f"{up.name} holds no data rows.")
        return None, "", "upload"
    return data, "", f"upload:{up.name}"


def run_fit(data: pd.DataFrame, formula: str, reml: bool, source: str) -> None:
    problems = csv_problems(data, formula)
    if problems:
        for p in problems:
            st.error(p)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with st.spinner("Fitting…"):
                result = lmmcore.fit(formula, data, REML=reml)
        except lmmcore.LmmError as e:
            st.error(str(e))
            return
    st.session_state[FIT_KEY] = result
    st.session_state[DATA_KEY] = data
    st.session_state["fit_source"] = source
    st.session_state["fit_warnings"] = [str(w.message) for w in caught]
    st.session_state.pop("boot_result", None)  # a new fit invalidates the old bootstrap


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
    )
    reml = st.checkbox("REML (untick for maximum likelihood)", value=True, key="reml")
    if st.button("Fit", key="fit", type="primary"):
        if not formula.strip():
            st.error("Enter a model formula, for example `y ~ x + (1 | group)`.")
        else:
            run_fit(data, formula, reml, source)

result = st.session_state.get(FIT_KEY)
if result is not None:
    show_fit(result)
