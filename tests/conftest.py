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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "pool: runs the app's jobs on real worker processes (not inline)"
    )


@pytest.fixture(autouse=True)
def _inline_app_jobs(request, monkeypatch):
    """AppTest runs jobs in the test's thread (no worker processes to start), except in
    tests marked ``pool``, which check the real worker pool."""
    if request.node.get_closest_marker("pool") is None:
        monkeypatch.setenv("LMMCORE_INLINE_JOBS", "1")
