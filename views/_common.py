"""Shared UI helpers for the app's pages (widgets only; no statistics here).

The page scripts live in ``views/``, not ``pages/``: Streamlit still treats a ``pages/``
folder next to ``app.py`` as an old-style multipage app, and the first session after the
server starts, when opened on a URL such as ``/power``, then runs that file directly,
skipping ``app.py`` and its ``st.navigation`` (the sidebar lists every file and no seed).

Example:
    >>> from views._common import PAGES
    >>> [p.title for p in PAGES][:2]
    ['Model & design', 'Fit & bootstrap']
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

DEFAULT_SEED = 20211
SEED_KEY = "seed"


@dataclass(frozen=True)
class PageDef:
    """One page of the app: its script (relative to app.py), sidebar title and URL path."""

    path: str
    title: str
    url_path: str
    icon: str


# The order here is the order in the sidebar, and the order of the user's workflow.
PAGES: tuple[PageDef, ...] = (
    PageDef("views/model_design.py", "Model & design", "model-design", ":material/schema:"),
    PageDef("views/fit_bootstrap.py", "Fit & bootstrap", "fit-bootstrap", ":material/functions:"),
    PageDef("views/power.py", "Power", "power", ":material/show_chart:"),
    PageDef("views/your_data.py", "Your data", "your-data", ":material/upload_file:"),
    PageDef("views/export.py", "Export", "export", ":material/download:"),
)


def sidebar_seed() -> int:
    """Draw the sidebar seed input (shared by every page) and return its value.

    The value lives in ``st.session_state["seed"]``, so it survives page switches.
    """
    return int(
        st.sidebar.number_input(
            "Random seed",
            min_value=0,
            max_value=2**32 - 1,
            value=DEFAULT_SEED,
            step=1,
            key=SEED_KEY,
            help="Seeds every simulation and bootstrap, so results can be reproduced.",
        )
    )


def page_header(title: str, purpose: str) -> None:
    """Title and one-sentence purpose at the top of a page."""
    st.title(title)
    st.caption(purpose)


QUERY_DONE_KEY = "_query_params_read"


def read_query_params() -> None:
    """Once per session, before any widget exists: apply ``?preset=&seed=&subjects=&items=``.

    The Model & design page writes these parameters, so a copied link reproduces its view.
    Values that don't parse are ignored.
    """
    ss = st.session_state
    if ss.get(QUERY_DONE_KEY):
        return
    ss[QUERY_DONE_KEY] = True
    qp = st.query_params

    def _int(name: str) -> int | None:
        try:
            v = int(qp.get(name, ""))
        except ValueError:
            return None
        return v if v >= 0 else None

    seed = _int("seed")
    if seed is not None and seed <= 2**32 - 1:
        ss[SEED_KEY] = seed
    preset = qp.get("preset")
    if preset:
        ss["md_preset"] = preset  # the page ignores names it does not know
        sizes = {"md_subjects": _int("subjects"), "md_items": _int("items")}
        ss["md_query_sizes"] = {k: v for k, v in sizes.items() if v}
