"""End to end in headless Chromium against `streamlit run` on the embedded demo."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from core.config import Settings
from core.services.installation import open_store
from tests.e2e.conftest import OUTPUT, REPO, app_env, log_in

pytestmark = pytest.mark.browser


def test_clinician_sees_sepsis_v1_in_production(server: str, page: Page) -> None:
    log_in(page, server, "ng", "ng-icu-demo-2026")
    expect(page.get_by_text("DEMO", exact=False).first).to_be_visible()
    line = page.get_by_text("sepsis-icu v1 is in clinical use but never reviewed in ModelBoard")
    expect(line).to_be_visible()
    line.locator("xpath=ancestor::div[@data-testid='stHorizontalBlock'][1]").get_by_role("link", name="Open").click()
    page.get_by_role("heading", name="Model registry").wait_for()
    expect(page.get_by_role("heading", name="sepsis-icu v1 — in clinical use (alias 'production')")).to_be_visible()
    expect(page.get_by_text("alias production → version 1")).to_be_visible()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(OUTPUT / "registry-clinician.png"))
    # The clinician has no Users or Audit log page.
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)


def run_cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=app_env(settings), timeout=120)


def test_cli_writes_while_the_app_is_serving(server: str, page: Page, browser_demo: Settings) -> None:
    """The app keeps serving logins (which write audit rows) while CLI commands write to the same store."""
    new_users = [f"nurse{i}" for i in range(4)]

    def add(name: str) -> subprocess.CompletedProcess[str]:
        return run_cli(browser_demo, "users", "add", "--username", name, "--full-name", f"Nurse {name}",
                       "--role", "clinician", stdin="night-shift-password\n")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(add, new_users)
        for _ in range(2):  # the browser logs in and browses while the CLI writes
            log_in(page, server, "admin", "admin-demo-2026")
            page.get_by_role("link", name="Users").click()
            page.get_by_role("heading", name="Users").wait_for()
            page.get_by_role("button", name="Log out").click()
            page.get_by_role("button", name="Log in").wait_for()
        outcomes = list(results)
    assert [r.returncode for r in outcomes] == [0] * len(new_users), [r.stderr for r in outcomes]
    log_in(page, server, new_users[-1], "night-shift-password")
    expect(page.get_by_text(f"Welcome, Nurse {new_users[-1]}")).to_be_visible()
    listed = run_cli(browser_demo, "users", "list", "--json")
    assert listed.returncode == 0 and all(name in listed.stdout for name in new_users)


def test_auditor_exports_the_audit_log_and_the_export_is_audited(server: str, page: Page,
                                                                  browser_demo: Settings) -> None:
    log_in(page, server, "kim", "kim-audit-demo-2026")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as CSV").click()
    csv = download.value.path().read_text()
    assert csv.splitlines()[0] == "id,occurred_at,actor,action,target,model_name,model_version,detail"
    assert "login_succeeded" in csv
    # Only ModelBoard's audited button exports: the table's own CSV button is switched off (strict locator above).
    # The click's callback runs in the server's rerun, which may finish after the download itself.
    store = open_store(browser_demo)
    expect(page.get_by_role("button", name="Download as CSV")).to_be_enabled()
    for _ in range(100):
        if {"actor": "kim"} in store.query("SELECT actor FROM audit_events WHERE action = 'exported'"):
            break
        page.wait_for_timeout(100)
    assert {"actor": "kim"} in store.query("SELECT actor FROM audit_events WHERE action = 'exported'")


def settle(page: Page) -> None:
    """Wait until Streamlit has finished re-running the script after an interaction.

    A rerun may not have begun when this is called, and Streamlit shows its status widget only after a
    delay; while a run is going, the previous run's elements are marked data-stale="true" (a changed
    widget can then be on screen twice). So: give the rerun a moment to begin, then wait for both to clear."""
    page.wait_for_timeout(250)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
                           " && !document.querySelector('[data-stale=\"true\"]')")


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option in a Streamlit selectbox identified by its label; "v2" also picks a version labelled in
    words, "v2 — awaits your review"."""
    label_text = page.locator("[data-testid='stWidgetLabel']").get_by_text(label, exact=True)
    box = page.locator("[data-testid='stSelectbox']").filter(has=label_text)
    for attempt in range(3):  # a rerun still in flight can close the list just opened, or show two boxes
        settle(page)
        expect(box).to_have_count(1, timeout=30_000)
        try:
            box.click()
            page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}( — .*)?$")).click(timeout=5_000)
            break
        except PlaywrightError:
            if attempt == 2:
                raise
    settle(page)


def test_data_scientist_submits_v2_and_clinician_sees_the_gap(server: str, page: Page) -> None:
    log_in(page, server, "lee", "lee-ds-demo-2026")
    page.get_by_role("link", name="Submit").click()
    page.get_by_role("heading", name="Submit").wait_for()
    choose(page, "Registered model", "sepsis-icu")
    choose(page, "Version", "v2")
    page.get_by_role("button", name="Submit for clinical review").click()
    expect(page.get_by_text("sepsis-icu v2 is evaluated and is now in clinical review")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Log out").click()

    log_in(page, server, "ng", "ng-icu-demo-2026")
    expect(page.get_by_text("sepsis-icu v2 waits for your review.")).to_be_visible()
    page.get_by_role("link", name="Model card").click()
    page.get_by_role("heading", name="Model card").wait_for()
    choose(page, "Registered model", "sepsis-icu")
    choose(page, "Version", "v2")
    page.get_by_role("heading", name="Model facts").wait_for()
    expect(page.get_by_text("Required fields still empty:", exact=False)).to_be_visible()
    expect(page.get_by_text("Evaluated by ModelBoard on", exact=False).first).to_be_visible()
    page.screenshot(path=str(OUTPUT / "model-card-clinician.png"))

    page.get_by_role("link", name="Fairness").click()
    page.get_by_role("heading", name="Fairness").wait_for()
    choose(page, "Model version", "sepsis-icu v2")
    # The page opens on the finding: race and ethnicity, Black patients flagged less often (no choice needed).
    expect(page.get_by_text("Black patients who developed sepsis within 48 hours of ICU admission are flagged less "
                            "often than White patients", exact=False).first).to_be_visible()
    expect(page.get_by_role("combobox", name="Compare groups by")).to_have_value("Race and ethnicity")
    flagged = {}
    for group in ("Black", "White"):
        sentence = page.get_by_text(f"Of 100 {group} patients who developed sepsis within 48 hours of ICU admission, "
                                    "the model flagged")
        expect(sentence).to_be_visible()
        flagged[group] = int(sentence.inner_text().rstrip(".").split()[-1])
    assert flagged["Black"] < flagged["White"], flagged  # the oximeter's bias, seen by the clinician
    expect(page.get_by_text("Gap in sensitivity between groups", exact=False).first).to_be_visible()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(OUTPUT / "fairness-clinician.png"))

    page.get_by_role("link", name="Explanations").click()
    page.get_by_role("heading", name="Explanations").wait_for()
    choose(page, "Model version", "sepsis-icu v2")
    expect(page.get_by_text("The strongest driver is Oxygen saturation by pulse oximetry (SpO2)")).to_be_visible()
    page.locator(".js-plotly-plot").nth(3).wait_for()
    page.screenshot(path=str(OUTPUT / "explanations-clinician.png"))
