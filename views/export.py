"""Page "Export": download the simulated data, the spec + design, and reproducible scripts.

Uses what "Model & design" keeps in session_state: ``spec``, ``design``, ``sim_data``,
``sim_seed``.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lmmcore.export import python_script, r_script, spec_design_json
from views._common import escape_markdown, page_header

PURPOSE = (
    "Download the model, the design, simulated data, results and a script that reproduces them."
)


def data_download(col, data: pd.DataFrame) -> None:
    col.download_button(
        "Simulated data (CSV)",
        data.to_csv(index=False),
        file_name="simulated_data.csv",
        mime="text/csv",
        key="dl_csv",
    )


st.set_page_config(page_title="Export · lmmcore", layout="wide")
page_header("Export", PURPOSE)
ss = st.session_state
spec, design, data = ss.get("spec"), ss.get("design"), ss.get("sim_data")
if ss.get("md_error"):
    st.warning(
        escape_markdown(
            "The model on Model & design has an error, so there is nothing to export until "
            f"it is fixed: {ss['md_error']}"
        )
    )
    st.page_link("views/model_design.py", label="Go to Model & design", icon=":material/schema:")
elif spec is None or design is None or data is None:
    st.info('Nothing to export yet: set up a model on the "Model & design" page first.')
    st.page_link("views/model_design.py", label="Go to Model & design", icon=":material/schema:")
elif isinstance(design, pd.DataFrame):  # a pilot fit: the design is the user's own data
    seed = int(ss.get("sim_seed", 0))
    st.markdown(escape_markdown(f"Model {spec.formula} on the pilot data; seed {seed}."))
    c1, c2 = st.columns(2)
    data_download(c1, data)
    c2.download_button(
        "Spec (JSON)",
        json.dumps(spec.to_dict(), indent=2),
        file_name="lmm_spec.json",
        mime="application/json",
        key="dl_spec",
    )
    st.info(
        "The design is your pilot data, so there is no design file or script to write: with "
        "lmmcore in Python, `ModelSpec.from_dict` of this file and `lmmcore.power(spec, "
        "lmmcore.extend(pilot, along, n))` reproduce the Power page."
    )
else:
    seed = int(ss.get("sim_seed", 0))
    st.markdown(escape_markdown(f"Model {spec.formula}; {design.summary()}; seed {seed}."))
    c1, c2 = st.columns(2)
    data_download(c1, data)
    c2.download_button(
        "Spec and design (JSON)",
        spec_design_json(spec, design),
        file_name="lmm_spec.json",
        mime="application/json",
        key="dl_json",
    )
    py = python_script(spec, design, seed)
    r = r_script(spec, design, seed)
    c1.download_button(
        "Python script (lmmcore)",
        py,
        file_name="simulate_lmm.py",
        mime="text/x-python",
        key="dl_py",
    )
    c2.download_button(
        "R script (lme4 + lmerTest)", r, file_name="simulate_lmm.R", mime="text/plain", key="dl_r"
    )
    with st.expander("What am I looking at?"):
        st.markdown(
            "The **JSON** file holds the model (`spec`) and the study design (`design`); "
            "lmmcore reads it back. The **Python script** rebuilds exactly the dataset shown "
            "on Model & design (same seed) and fits it. The **R script** builds the same "
            "design and simulates with the same parameters in R, then fits it with `lmer`; R's "
            "random numbers differ, so its dataset is a different draw from the same model."
        )
    with st.expander("Python script"):
        st.code(py, language="python")
    with st.expander("R script"):
        st.code(r, language="r")
