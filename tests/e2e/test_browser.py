"""Browser smoke test: the app loads, and every page opens from the sidebar."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from views._common import PAGES

pytestmark = pytest.mark.e2e


def wait_for_script(page: Page) -> None:
    """Wait for the current script run to finish, using the attributes Streamlit sets.

    The short pause lets a rerun that an action just triggered flip the state to running.
    A run can take a while: the first fit on a fresh checkout compiles the numba kernel.
    """
    page.wait_for_timeout(200)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=60_000)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=120_000)


def expect_no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_deep_link_goes_through_app_py(page: Page, app_url: str):
    # First in this file so that it is the server's first session: that is when a stray
    # pages/ folder would make Streamlit run views' files directly, without app.py.
    last = PAGES[-1]
    page.goto(f"{app_url}/{last.url_path}")
    wait_for_script(page)
    expect(page.get_by_role("heading", name=last.title, exact=True)).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stSidebarNavLink")).to_have_count(len(PAGES) + 1)
    expect(sidebar.get_by_label("Random seed", exact=True)).to_be_visible()
    expect_no_exception(page)


def test_navigate_every_page(page: Page, app_url: str, artifacts: Path):
    page.goto(app_url)
    wait_for_script(page)
    expect(page.get_by_role("heading", name="lmmcore", exact=True)).to_be_visible()
    expect(page.get_by_text("linear mixed models").first).to_be_visible()
    expect_no_exception(page)
    page.screenshot(path=artifacts / "00_home.png")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stSidebarNavLink")).to_have_count(len(PAGES) + 1)
    seed = sidebar.get_by_label("Random seed", exact=True)
    seed.fill("123")
    seed.press("Enter")
    wait_for_script(page)

    for i, p in enumerate(PAGES, start=1):
        sidebar.get_by_role("link", name=re.compile(re.escape(p.title) + "$")).click()
        expect(page).to_have_url(re.compile(rf"/{p.url_path}(\?.*)?$"))
        wait_for_script(page)
        expect(page.get_by_role("heading", name=p.title, exact=True)).to_be_visible()
        expect_no_exception(page)
        expect(seed).to_have_value("123")  # the shared sidebar seed survives page switches
        page.screenshot(path=artifacts / f"{i:02d}_{p.url_path}.png")


def test_fit_example_data_in_browser(page: Page, app_url: str, artifacts: Path):
    page.goto(f"{app_url}/your-data")
    wait_for_script(page)
    page.get_by_role("button", name="Fit", exact=True).click()
    wait_for_script(page)
    expect(page.get_by_role("heading", name="Fixed effects")).to_be_visible()
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    expect_no_exception(page)
    page.screenshot(path=artifacts / "fit_your_data.png")
    # the fit carries over to Fit & bootstrap: run a small bootstrap and see its histograms
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("link", name=re.compile("Fit & bootstrap$")).click()
    wait_for_script(page)
    page.get_by_role("button", name="Run bootstrap").click()
    wait_for_script(page)
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    expect(page.get_by_role("heading", name="Bootstrap distributions")).to_be_visible()
    expect_no_exception(page)
    page.screenshot(path=artifacts / "fit_bootstrap.png", full_page=False)


def test_model_design_preset_preview_and_download(page: Page, app_url: str, artifacts: Path):
    page.goto(f"{app_url}/model-design")
    wait_for_script(page)
    expect(page.get_by_role("heading", name="Model & design", exact=True)).to_be_visible()
    # on a fresh server the first click can land before the widget listens: retry it
    option = page.get_by_role("option", name=re.compile("^P2:"))
    for _ in range(3):
        page.get_by_test_id("stSelectbox").first.click()
        try:
            option.wait_for(state="visible", timeout=10_000)
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    option.click()
    wait_for_script(page)
    expect(
        page.get_by_role("textbox", name="Model formula (lme4 syntax)", exact=True)
    ).to_have_value("rt_trunc ~ 1 + spkr + prec + load + (1 | subj) + (1 + prec | item)")
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    expect_no_exception(page)
    expect(page).to_have_url(re.compile(r"preset=P2"))
    page.set_viewport_size({"width": 1280, "height": 2400})
    page.screenshot(path=artifacts / "model_design_P2.png")
    page.locator(".js-plotly-plot").first.screenshot(path=artifacts / "model_design_spaghetti.png")
    page.set_viewport_size({"width": 1280, "height": 900})

    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("link", name=re.compile("Export$")).click()
    wait_for_script(page)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Spec and design (JSON)").click()
    path = artifacts / "lmm_spec.json"
    dl.value.save_as(path)
    import json

    import lmmcore

    d = json.loads(path.read_text())
    assert lmmcore.ModelSpec.from_dict(d["spec"]) == lmmcore.PRESETS["P2"].spec
    assert lmmcore.Design.from_dict(d["design"]) == lmmcore.PRESETS["P2"].design
    page.screenshot(path=artifacts / "export.png")
