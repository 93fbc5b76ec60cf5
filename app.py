"""lmmcore Streamlit app: the entry point.

Builds the sidebar (navigation and the shared seed input), then runs the selected page.
Run with ``make run`` (``streamlit run app.py``).
"""

from __future__ import annotations

import streamlit as st

import lmmcore
from views._common import PAGES, read_query_params, sidebar_seed

INTRO = (
    "lmmcore plans studies that will be analysed with linear mixed models. "
    "Specify a model in lme4 syntax (for example `RT ~ 1 + X + (1 + X | subj) + (1 | item)`) "
    "and a design (subjects, items, which factors vary within or between them), "
    "simulate data from it, fit the model, bootstrap its estimates, and find the power "
    "to detect an effect as the numbers of subjects and items change. "
    "You can also start from your own pilot data."
)


def home() -> None:
    """The landing page: what the tool does, where to start, which version is running."""
    st.set_page_config(page_title="Home · lmmcore", layout="wide")
    st.title("lmmcore")
    st.markdown(INTRO)
    st.subheader("Start here")
    st.page_link(
        "views/model_design.py",
        label="Describe your study: design, formula, true values",
        icon=":material/schema:",
    )
    st.page_link(
        "views/your_data.py", label="Or start from pilot data", icon=":material/upload_file:"
    )
    st.markdown(
        "Then open **Power** for the power curve and the smallest size that reaches your "
        "target, **Fit & bootstrap** to see how well one simulated study recovers the truth, "
        "and **Export** for the data, the JSON the command line reads, and R/Python scripts."
    )
    st.caption(f"lmmcore version {lmmcore.__version__}")


@st.cache_resource(show_spinner="Preparing the fitter (first start only: compiling its kernel)...")
def _warm_up() -> bool:
    lmmcore.warm_up()
    return True


st.set_page_config(page_title="lmmcore", layout="wide")
_warm_up()
page = st.navigation(
    [st.Page(home, title="Home", icon=":material/home:", default=True)]
    + [st.Page(p.path, title=p.title, url_path=p.url_path, icon=p.icon) for p in PAGES]
)
read_query_params()
sidebar_seed()
page.run()
