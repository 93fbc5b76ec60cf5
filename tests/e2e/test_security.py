"""The two critical attacks through the real app, with the server's health watched throughout.

A thread asks ``/_stcore/health`` every 100 ms while each test runs; every answer must come
within 1 s (before the fix, ``I(9^9^9)`` stopped the server answering for good, and the
backtick formula with a matching CSV ran ``exec`` on the server).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT
from tests.hostile_cases import frame, security_reproduction

pytestmark = pytest.mark.e2e
REPRO = security_reproduction()


def wait_for_script(page: Page) -> None:
    page.wait_for_timeout(200)
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=120_000)


class HealthWatch:
    """Polls the health endpoint in the background; records each answer's latency."""

    def __init__(self, url: str):
        self.url = f"{url}/_stcore/health"
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=1.0) as r:
                    ok = r.status == 200 and r.read().strip() == b"ok"
                if not ok:
                    self.failures.append("not ok")
            except OSError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - t)
            self._stop.wait(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def check(self) -> None:
        assert len(self.latencies) > 5, "the watch did not run"
        assert not self.failures, self.failures[:3]
        assert max(self.latencies) < 1.0, max(self.latencies)


def pwned_files() -> list[Path]:
    return [p for p in ROOT.rglob("pwned*") if ".venv" not in p.parts]


def test_backtick_formula_with_matching_csv_is_refused_and_runs_nothing(
    page: Page, app_url: str, artifacts: Path, tmp_path: Path
):
    before = pwned_files()
    csv = tmp_path / "attack.csv"
    frame(REPRO["columns"]).to_csv(csv, index=False)
    with HealthWatch(app_url) as health:
        page.goto(f"{app_url}/your-data")
        wait_for_script(page)
        page.get_by_text("Upload a CSV").click()
        wait_for_script(page)
        page.locator("input[type=file]").set_input_files(str(csv))
        wait_for_script(page)
        box = page.get_by_role("textbox", name="Model formula (lme4 syntax)", exact=True)
        box.fill(REPRO["formula"])
        box.press("Enter")
        wait_for_script(page)
        page.get_by_role("button", name="Fit", exact=True).click()
        wait_for_script(page)
        alert = page.get_by_test_id("stAlertContentError").first
        expect(alert).to_contain_text("Unexpected character")
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_role("heading", name="Fixed effects")).to_have_count(0)
        page.screenshot(path=artifacts / "security_backtick.png")
    health.check()
    assert pwned_files() == before


def test_exponent_tower_is_refused_at_once_and_the_server_stays_up(
    page: Page, app_url: str, artifacts: Path
):
    with HealthWatch(app_url) as health:
        page.goto(f"{app_url}/model-design")
        wait_for_script(page)
        box = page.get_by_role("textbox", name="Model formula (lme4 syntax)", exact=True)
        start = time.monotonic()
        box.fill(REPRO["dos_formula"])
        box.press("Enter")
        wait_for_script(page)
        alert = page.get_by_test_id("stAlertContentError").first
        expect(alert).to_contain_text("exponent")
        refused_in = time.monotonic() - start
        # the message shows the formula literally (no Markdown ate X_i or the ^)
        expect(alert).to_contain_text("X_i + I(9^9^9)")
        page.screenshot(path=artifacts / "security_dos.png")
        # and the server still serves pages: a fresh session renders P1's preview
        page.goto(f"{app_url}/model-design")
        wait_for_script(page)
        page.locator(".js-plotly-plot").first.wait_for(state="visible")
    health.check()
    assert refused_in < 10, refused_in


def test_a_long_power_run_does_not_hold_up_the_server(page: Page, app_url: str):
    page.set_viewport_size({"width": 1280, "height": 1800})
    with HealthWatch(app_url) as health:
        page.goto(f"{app_url}/power")
        wait_for_script(page)
        page.get_by_role("button", name="Run", exact=True).click()  # P1, 5 points x 1,000
        wait_for_script(page)
        page.locator(".js-plotly-plot").first.wait_for(state="visible")
    health.check()
