"""End to end: a clinician sees the demo's lactate-shift alert on Home, opens its evidence, looks at the
Monitoring page, and acknowledges the alert with a note that lands in the store and the audit log."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from core.config import Settings
from core.domain.monitoring_policy import window_span
from core.services.installation import open_store
from tests.e2e.conftest import OUTPUT, log_in
from tests.e2e.test_browser import settle

pytestmark = pytest.mark.browser
NOTE = "Called the lab: assay B since 31 July. Asked data science to recalibrate lactate."


def test_clinician_opens_the_shift_alert_and_acknowledges_it(server: str, page: Page,
                                                             browser_demo: Settings) -> None:
    log_in(page, server, "okafor", "okafor-icu-demo-2026")
    expect(page.get_by_text("One of the model's inputs shifted strongly", exact=False).first).to_be_visible()
    page.get_by_role("link", name="Open the alert and its evidence").first.click()
    page.get_by_role("heading", name="Alerts", exact=True).wait_for()
    settle(page)
    expect(page.get_by_text("Lactate shifted strongly", exact=False).first).to_be_visible()
    evidence = json.loads(open_store(browser_demo).query_one(
        "SELECT evidence FROM alerts WHERE rule = 'input_drift'")["evidence"])
    window = window_span(datetime.fromisoformat(evidence["window_start"]),
                         datetime.fromisoformat(evidence["window_end"]))
    assert window == "27 Jul–2 Aug 2026"  # the demo's assay change, shown with its last day inclusive
    expect(page.get_by_text(window, exact=False).first).to_be_visible()
    page.screenshot(path=str(OUTPUT / "alert-detail-clinician.png"), full_page=True)

    form = page.locator("[data-testid='stForm']").filter(has=page.get_by_role("button", name="Record"))
    form.get_by_role("textbox").fill(NOTE)
    form.get_by_role("button", name="Record").click()
    settle(page)
    expect(page.get_by_text("Acknowledged by okafor", exact=False).first).to_be_visible(timeout=30_000)

    store = open_store(browser_demo)
    row = store.query_one("SELECT status, acknowledged_by, acknowledgement FROM alerts WHERE rule = 'input_drift'")
    assert row == {"status": "acknowledged", "acknowledged_by": "okafor", "acknowledgement": NOTE}
    audited = store.query("SELECT actor, detail FROM audit_events WHERE action = 'alert_acknowledged'")
    assert any(a["actor"] == "okafor" and NOTE in a["detail"] for a in audited)

    page.get_by_role("link", name="Monitoring", exact=True).click()
    page.get_by_role("heading", name="Monitoring").wait_for()
    settle(page)
    expect(page.get_by_text("Review required: sepsis-icu v1", exact=False)).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(OUTPUT / "monitoring-clinician.png"), full_page=True)
