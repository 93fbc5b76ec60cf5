"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """Streamlit's caches are global to the process, so AppTest runs would share them.

    Clearing before and after each test keeps one test's cached results out of the next.
    """
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
