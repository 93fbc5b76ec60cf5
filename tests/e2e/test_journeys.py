"""A new user's two journeys in a real browser: their own design, and pilot data.

Own design: build it (a within and a between factor), propose the formula, preview, power
curve, smallest size, export the JSON, and get the same model back through the link and
through uploading the file. Pilot: upload a CSV, fit, use the fit as the truth, power over
more subjects. Screenshots go to tests/e2e/artifacts (the README's come from here), one of
them at 800 px wide; click-to-result times are printed (pytest -s shows them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import lmmcore
from lmmcore.export import read_spec_design

pytestmark = pytest.mark.e2e


def wait_for_script(page: Page, timeout: int = 180_000) -> None:
    page.wait_for_timeout(250)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)


def no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def choose(page: Page, label: str, option: str | re.Pattern, nth: int = 0) -> None:
    """Pick an option of the nth selectbox with this label."""
    page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True)).nth(
        nth
    ).click()
    page.get_by_role("option", name=option).first.click()
    wait_for_script(page)


def field(page: Page, label: str, nth: int = 0):
    """The text or number input with this label (not its tooltip's help button)."""
    return page.locator(f'input[aria-label="{label}"], textarea[aria-label="{label}"]').nth(nth)


def fill(page: Page, label: str, value: str, nth: int = 0) -> None:
    box = field(page, label, nth)
    box.fill(value)
    box.press("Enter")
    wait_for_script(page)


def sidebar_to(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebar").get_by_role(
        "link", name=re.compile(re.escape(title) + "$")
    ).click()
    wait_for_script(page)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def build_own_design(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/model-design")
    wait_for_script(page)
    choose(page, "Start from", re.compile("your own design"))
    page.get_by_role("button", name="Add a factor").click()
    wait_for_script(page)
    fill(page, "Name", "group", nth=1)
    fill(page, "Levels", "ctrl, drug", nth=1)
    choose(page, "Varies", "between subjects, within items", nth=1)
    fill(page, "Subjects", "24")
    fill(page, "Items", "16")
    choose(page, "Propose a formula from the design", re.compile("^maximal \\("))
    page.get_by_role("button", name="Use it").click()
    wait_for_script(page)
    expect(field(page, "Model formula (lme4 syntax)")).to_have_value(
        "y ~ cond * group + (1 + cond | subj) + (1 + cond * group | item)"
    )
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    no_exception(page)


def test_own_design_journey(page: Page, app_url: str, artifacts: Path, browser):
    page.set_viewport_size({"width": 1280, "height": 2600})
    t0 = time.monotonic()
    build_own_design(page, app_url)
    print(f"\nown design built and previewed: {time.monotonic() - t0:.1f} s")
    expect(page.get_by_text("24 subj x 16 item")).to_be_visible()
    page.screenshot(path=artifacts / "own_design.png")
    link = page.url
    assert "model=" in link

    expect(page).to_have_title("Model & design · lmmcore")
    sidebar_to(page, "Power")
    expect(page).to_have_title("Power · lmmcore")
    fill(page, "Simulations per design point", "200")
    fill(page, "Numbers of subjects", "8, 16, 24")
    t = time.monotonic()
    page.get_by_role("button", name="Run", exact=True).click()
    wait_for_script(page)
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    print(f"power curve, 3 points x 200 simulations, click to chart: {time.monotonic() - t:.1f} s")
    expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("Power curve")
    fill(page, "Search subjects up to", "64")
    t = time.monotonic()
    page.get_by_test_id("stBaseButton-secondary").filter(has_text="Search").click()
    wait_for_script(page)
    message = page.get_by_test_id("stAlertContainer").filter(has_text=re.compile("subjects"))
    expect(message.first).to_be_visible()
    print(f"sample-size search up to 64 subjects, click to answer: {time.monotonic() - t:.1f} s")
    no_exception(page)
    page.screenshot(path=artifacts / "own_power.png")

    sidebar_to(page, "Export")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Spec and design (JSON)").click()
    spec_file = artifacts / "own_design.json"
    dl.value.save_as(spec_file)
    spec, design = read_spec_design(spec_file.read_bytes())
    assert spec.formula == "y ~ cond * group + (1 + cond | subj) + (1 + cond * group | item)"
    assert [f.name for f in design.factors] == ["cond", "group"]
    assert (design.subjects, design.items) == (24, 16)
    page.screenshot(path=artifacts / "own_export.png")

    # the link reproduces the model in a new session
    other = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    other.goto(link)
    wait_for_script(other)
    expect(field(other, "Model formula (lme4 syntax)")).to_have_value(spec.formula)
    expect(other.get_by_text("24 subj x 16 item")).to_be_visible()
    no_exception(other)
    # and so does uploading the file in yet another session
    third = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    third.goto(f"{app_url}/model-design")
    wait_for_script(third)
    third.get_by_text("Load a model and design").click()
    third.locator("input[type=file]").first.set_input_files(str(spec_file))
    wait_for_script(third)
    expect(field(third, "Model formula (lme4 syntax)")).to_have_value(spec.formula)
    expect(third.get_by_text("24 subj x 16 item")).to_be_visible()
    no_exception(third)


def test_pilot_journey(page: Page, app_url: str, artifacts: Path, tmp_path: Path):
    page.set_viewport_size({"width": 1280, "height": 2200})
    sleep = lmmcore.load_dataset("sleepstudy").astype({"Days": object})
    sleep.loc[7, "Days"] = "-"  # one cell typed as a dash
    csv = tmp_path / "pilot.csv"
    sleep.to_csv(csv, sep=";", index=False)  # a European spreadsheet's CSV
    page.goto(f"{app_url}/your-data")
    wait_for_script(page)
    page.get_by_text("Upload a CSV").click()
    wait_for_script(page)
    page.locator("input[type=file]").set_input_files(str(csv))
    wait_for_script(page)
    expect(page.get_by_text("Read with ';' between values.")).to_be_visible()
    expect(
        page.get_by_text("Column 'Days' of pilot.csv holds numbers and 1 text value")
    ).to_be_visible()
    page.get_by_text("Treat the text in 'Days' as missing").click()
    wait_for_script(page)
    fill(page, "Model formula (lme4 syntax)", "Reaction ~ Days + (Days | Subject)")
    t = time.monotonic()
    page.get_by_role("button", name="Fit", exact=True).click()
    wait_for_script(page)
    expect(page.get_by_role("heading", name="Fixed effects")).to_be_visible()
    print(f"\npilot fit, click to summary: {time.monotonic() - t:.1f} s")
    expect(page.get_by_text("Dropped 1 of 180 rows with missing values")).to_be_visible()
    page.screenshot(path=artifacts / "pilot_fit.png")
    page.get_by_role("button", name="Use this fit as the ground truth").click()
    wait_for_script(page)
    expect(page.get_by_role("heading", name="Model & design", exact=True)).to_be_visible()
    expect(page.get_by_text("Pilot data", exact=True)).to_be_visible()
    no_exception(page)

    sidebar_to(page, "Power")
    fill(page, "Simulations per design point", "200")
    fill(page, "Numbers of Subject", "12, 18, 36")
    t = time.monotonic()
    page.get_by_role("button", name="Run", exact=True).click()
    wait_for_script(page)
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    print(f"pilot power curve, 3 points x 200, click to chart: {time.monotonic() - t:.1f} s")
    no_exception(page)
    page.screenshot(path=artifacts / "power_pilot.png")


def test_model_design_at_800px(page: Page, app_url: str, artifacts: Path):
    page.set_viewport_size({"width": 800, "height": 2400})
    page.goto(f"{app_url}/model-design?preset=P3")
    wait_for_script(page)
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    no_exception(page)
    page.screenshot(path=artifacts / "model_design_800px.png")
    # every editor has room for its values: no grid collapses to nothing
    grids = page.get_by_test_id("stDataFrame").all()
    assert len(grids) >= 4
    for grid in grids:
        box = grid.bounding_box()
        assert box is not None and box["width"] > 300, box


def curve_y(page: Page) -> list[float]:
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    return page.evaluate(
        "() => Array.from(document.querySelector('.js-plotly-plot')._fullData[0].y)"
    )


def test_approximation_is_live_and_simulation_overlays_it(
    page: Page, app_url: str, artifacts: Path
):
    page.set_viewport_size({"width": 1280, "height": 2200})
    page.goto(f"{app_url}/model-design?preset=P1")
    wait_for_script(page)
    sidebar_to(page, "Power")
    fill(page, "Simulations per design point", "300")
    before = curve_y(page)  # the approximate curve, drawn before any Run
    sidebar_to(page, "Model & design")
    t = time.monotonic()
    fill(page, "Items", "100")  # no button: the approximation follows
    expect(page.get_by_text("Approximate power at this design")).to_be_visible()
    print(f"\napproximation after changing the items: {time.monotonic() - t:.1f} s")
    sidebar_to(page, "Power")
    after = curve_y(page)
    assert after != before and min(a - b for a, b in zip(after, before, strict=True)) > 0
    t = time.monotonic()
    page.get_by_role("button", name="Run", exact=True).click()
    wait_for_script(page)
    expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("Power curve")
    print(
        f"simulated P1 curve (5 points x 300) over the approximation: {time.monotonic() - t:.1f} s"
    )
    names = page.evaluate("() => document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert "X_i (approximation)" in names and "X_i 95% CI" in names and "X_i" in names
    no_exception(page)
    page.screenshot(path=artifacts / "power_overlay.png")
