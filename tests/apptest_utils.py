"""Helpers for the AppTest suites."""

from __future__ import annotations

import re


def unescape(text: str) -> str:
    """Undo `views._common.escape_markdown` (messages are shown literally, escaped)."""
    return re.sub(r"\\(.)", r"\1", text)


def errors(at) -> list[str]:
    """The texts of the st.error elements on the page, as the user reads them."""
    return [unescape(e.value) for e in at.error]
