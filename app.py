"""lmmcore Streamlit app: entry page."""

import streamlit as st

import lmmcore

st.set_page_config(page_title="lmmcore", layout="wide")
st.title("lmmcore")
st.write(f"Power and design for linear mixed models (lmmcore {lmmcore.__version__}).")
