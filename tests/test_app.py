"""AppTest checks: the entry page and every page render without an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import lmmcore
from views._common import DEFAULT_SEED, PAGES, SEED_KEY

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
TIMEOUT = 30


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def test_entry_page_renders_title_intro_and_version():
    at = run_app()
    assert [t.value for t in at.title] == ["lmmcore"]
    assert any("linear mixed models" in m.value for m in at.markdown)
    assert any(lmmcore.__version__ in c.value for c in at.caption)


def test_sidebar_seed_has_default_and_survives_page_switch():
    at = run_app()
    seed = at.sidebar.number_input(key=SEED_KEY)
    assert seed.value == DEFAULT_SEED
    seed.set_value(123).run()
    at.switch_page(PAGES[0].path).run()
    assert not at.exception, at.exception
    assert at.sidebar.number_input(key=SEED_KEY).value == 123
    assert at.session_state[SEED_KEY] == 123


def test_every_page_file_is_registered():
    on_disk = {p.name for p in (ROOT / "views").glob("*.py") if not p.name.startswith("_")}
    registered = {Path(p.path).name for p in PAGES}
    assert on_disk == registered


def test_no_pages_folder():
    # A pages/ folder next to app.py switches on Streamlit's old file-based navigation,
    # which can bypass app.py (see views/_common.py). Page scripts belong in views/.
    assert not (ROOT / "pages").exists()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.url_path)
def test_page_renders_through_navigation(page):
    at = run_app()
    at.switch_page(page.path).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == [page.title]
    assert at.caption and at.caption[0].value.endswith(".")  # the purpose line comes first


def test_every_parameter_input_has_a_tooltip():
    at = run_app()
    at.switch_page("views/your_data.py").run()
    at.button(key="fit").click().run()
    at.switch_page(PAGES[0].path).run()
    at.selectbox(key="md_preset").set_value("P4").run()  # a design with covariates
    for page in PAGES:
        at.switch_page(page.path).run()
        assert not at.exception, at.exception
        for kind in (
            "number_input",
            "text_input",
            "selectbox",
            "radio",
            "checkbox",
            "multiselect",
            "slider",
        ):
            for w in getattr(at, kind):
                assert w.help, f"{page.title}: {kind} {w.label!r} has no tooltip"
