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

import re
from dataclasses import dataclass

import streamlit as st

import lmmcore

DEFAULT_SEED = 20211
SEED_KEY = "seed"
#: Largest design (rows of one simulated data set) the app builds: every action on it
#: (preview, fit, bootstrap, power) then stays within the server's memory. The library and
#: the CLI allow up to lmmcore.MAX_ROWS.
APP_MAX_ROWS = 500_000
#: Largest subjects or items count a URL may ask for.
URL_MAX_COUNT = 100_000
QUERY_NOTES_KEY = "query_notes"
#: Session key of the pilot data and its fitted spec ("Use this fit as the ground truth").
PILOT_KEY = "pilot"
#: Widgets whose values cannot be set through session state (buttons, uploads, editors).
_UNSETTABLE = re.compile(r"(_remove$|_add_|_propose$|_fit$|_upload$|_button$|_extend$|_apply$)")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>#|~$:])")


def escape_markdown(text: str) -> str:
    r"""``text`` escaped so that Streamlit shows it literally (``__import__``, ``X_i``, ``:x:``).

    Example:
        >>> escape_markdown("X_i ~ __init__ `x`")
        'X\\_i \\~ \\_\\_init\\_\\_ \\`x\\`'
    """
    return _MARKDOWN.sub(r"\\\1", str(text))


def show_error(message: object) -> None:
    """``st.error`` with the message (an exception or text) shown literally."""
    st.error(escape_markdown(str(message)))


def keep_widgets(prefix: str) -> None:
    """Keep the values of this page's widgets when a run stops before drawing them, or
    when the user visits another page.

    Streamlit forgets a widget's value when a script run does not draw it (an st.stop()
    after an error, or another page), so the next run would show its default (the
    residual SD read 0 after any error; the design builder came back empty). Call this at
    the top of the page (it puts back any value that went missing) and `snapshot_widgets`
    when the run ends, also when it stops early (keep a copy of the current ones).
    """
    ss = st.session_state
    kept = ss.setdefault(f"_kept_{prefix}", {})
    for key, value in kept.items():
        if key not in ss:
            ss[key] = value
    snapshot_widgets(prefix)


def snapshot_widgets(prefix: str) -> None:
    """Copy the current values of the widgets whose keys start with ``prefix``."""
    ss = st.session_state
    kept = ss.setdefault(f"_kept_{prefix}", {})
    for key in list(ss.keys()):
        if (
            isinstance(key, str)
            and key.startswith(prefix)
            and not _UNSETTABLE.search(key)
            and isinstance(ss[key], str | int | float | bool)
        ):
            kept[key] = ss[key]


def check_app_design(design: lmmcore.Design) -> lmmcore.Design:
    """Refuse designs above the app's size limit (a DesignError naming the size)."""
    if design.n_rows > APP_MAX_ROWS:
        raise lmmcore.DesignError(
            f"This design has {design.n_rows:,} rows; the app works on designs of at most "
            f"{APP_MAX_ROWS:,} rows. Use fewer subjects, items or trials, or run larger "
            "designs with lmmcore in Python or the command line (`lmmcore power`)."
        )
    return design


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


def parse_query(qp: dict) -> tuple[dict, str | None]:
    """``?preset=&seed=&subjects=&items=&model=`` -> (session-state updates, a note or None).

    Only known presets and whole numbers within the app's limits are used; the note says
    in one line which values were not. Nothing else in a URL is read.

    Example:
        >>> parse_query({"preset": "P2", "seed": "7", "subjects": "-5"})[0]
        {'seed': 7, 'md_preset': 'P2', 'md_query_sizes': {}}
    """
    updates: dict = {}
    notes: list[str] = []

    def _int(name: str, hi: int) -> int | None:
        raw = qp.get(name)
        if raw is None:
            return None
        text = str(raw)[:40]
        if not re.fullmatch(r"\d{1,12}", text) or not 0 < int(text) <= hi:
            notes.append(f"{name}={text!r} (a whole number from 1 to {hi:,})")
            return None
        return int(text)

    raw_seed = qp.get("seed")
    if raw_seed is not None:
        text = str(raw_seed)[:40]
        if re.fullmatch(r"\d{1,10}", text) and int(text) <= 2**32 - 1:
            updates[SEED_KEY] = int(text)
        else:
            notes.append(f"seed={text!r} (a whole number from 0 to {2**32 - 1:,})")
    preset = qp.get("preset")
    if preset is not None:
        if preset in lmmcore.PRESETS or preset == "blank":
            updates["md_preset"] = preset
        else:
            notes.append(f"preset={str(preset)[:40]!r} (one of {', '.join(lmmcore.PRESETS)})")
    sizes = {
        "md_subjects": _int("subjects", URL_MAX_COUNT),
        "md_items": _int("items", URL_MAX_COUNT),
    }
    updates["md_query_sizes"] = {k: v for k, v in sizes.items() if v}
    model = qp.get("model")
    if model is not None:
        if isinstance(model, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,8000}", model):
            updates["md_query_model"] = model  # decoded, with sizes bounded, by the page
        else:
            notes.append("model=... (not a model link lmmcore writes)")
    note = None
    if notes:
        note = (
            "The link asked for values the app cannot use, so the defaults are shown instead: "
            + "; ".join(notes)
            + "."
        )
    return updates, note


def read_query_params() -> None:
    """Once per session, before any widget exists: apply the URL's parameters.

    The Model & design page writes them, so a copied link reproduces its view; the page
    shows `parse_query`'s note about values it could not use.
    """
    ss = st.session_state
    if ss.get(QUERY_DONE_KEY):
        return
    ss[QUERY_DONE_KEY] = True
    updates, note = parse_query(st.query_params.to_dict())
    ss.update(updates)
    if note:
        ss[QUERY_NOTES_KEY] = note
