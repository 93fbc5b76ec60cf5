"""Browser test of the Power page: run a tiny power curve and see the chart."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def wait_for_script(page: Page) -> None:
    page.wait_for_timeout(200)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=120_000)


def test_power_page_runs_a_tiny_curve(page: Page, app_url: str, artifacts: Path):
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.goto(f"{app_url}/power")
    wait_for_script(page)
    expect(page.get_by_role("heading", name="Power", exact=True)).to_be_visible()
    expect(page.get_by_text("using preset P1")).to_be_visible()

    nsim = page.get_by_label("Simulations per design point", exact=True)
    nsim.fill("20")
    nsim.press("Enter")
    wait_for_script(page)
    sizes = page.get_by_label("Numbers of subjects", exact=True)
    sizes.fill("10, 20, 30")
    sizes.press("Enter")
    wait_for_script(page)
    expect(page.get_by_text("3 design point(s) x 20 simulations")).to_be_visible()

    page.get_by_role("button", name="Run", exact=True).click()
    wait_for_script(page)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(state="visible")
    expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("Power curve")
    expect(page.get_by_role("heading", name="Precision and diagnostics")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=artifacts / "power.png")
