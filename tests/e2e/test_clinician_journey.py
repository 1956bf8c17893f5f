"""A clinician's journey in the browser (issue 14): Home says "v2 waits for your review" and the link opens Sign-off
on v2; Fairness opens on its finding; back on Sign-off the form says that two gates fail and what an approval will
do, and the approval is signed with the acknowledgement, which is stored with the signature. A screenshot of each
step is saved under the test's temporary folder (kept by pytest as the CI artifact)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.config import Settings
from core.services.installation import open_store
from tests.e2e.test_browser import settle
from tests.e2e.test_signoff_browser import PASSWORDS, form_with, sign_in_form, submit_v2_if_needed

pytestmark = pytest.mark.browser
# The Fairness headline names the worst group first; adjust here if its wording changes.
FAIRNESS_HEADLINE = re.compile(r"Black patients.*flagged less often|flagged less often.*Black patients")


def shot(page: Page, folder: Path, name: str) -> None:
    settle(page)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_a_clinician_follows_home_to_v2_reads_fairness_and_signs_knowingly(server: str, page: Page,
                                                                          browser_demo: Settings,
                                                                          tmp_path: Path) -> None:
    submit_v2_if_needed(page, server, browser_demo)
    store = open_store(browser_demo)
    if store.query("SELECT 1 FROM signatures WHERE signer = 'ng' AND model_name = 'sepsis-icu' AND model_version = 2"):
        pytest.fail("Dr Ng already signed sepsis-icu v2 in this browser demo: this journey must run before "
                    "test_signoff_browser.py (pytest runs the files in name order)")

    # Home: what waits for her, as a link that carries the version
    page.goto(server)
    page.get_by_role("textbox", name="Username").fill("ng")
    page.get_by_role("textbox", name="Password").fill(PASSWORDS["ng"])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Home").wait_for()
    link = page.get_by_role("link", name="sepsis-icu v2 waits for your review")
    expect(link).to_be_visible()
    shot(page, tmp_path, "1-home")
    link.click()
    page.get_by_role("heading", name="Sign-off").wait_for()
    expect(page.get_by_role("combobox", name="Version")).to_have_value("v2 — awaits your review")
    assert "version=2" in page.url and "model=sepsis-icu" in page.url
    shot(page, tmp_path, "2-sign-off-from-home")

    # Fairness: the headline, the finding first
    page.get_by_role("link", name="Fairness").click()
    page.get_by_role("heading", name="Fairness").wait_for()
    settle(page)
    headline = page.get_by_text(FAIRNESS_HEADLINE).first
    expect(headline).to_be_visible()
    shot(page, tmp_path, "3-fairness")

    # Sign-off from the sidebar: still v2, the gates and what the approval will do next to the button
    page.get_by_role("link", name="Sign-off").click()
    page.get_by_role("heading", name="Sign-off").wait_for()
    expect(page.get_by_role("combobox", name="Version")).to_have_value("v2 — awaits your review")
    form = form_with(page, "Sign")
    expect(form.get_by_text("Gates failing:", exact=False)).to_be_visible()
    expect(form.get_by_text("production will not change until the 2 failing gates are resolved",
                            exact=False)).to_be_visible()
    sign_in_form(form, "ng", "Reviewed the fairness gap for Black patients and the card; approving knowingly.")
    form.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("approving anyway needs your acknowledgement", exact=False)).to_be_visible()
    shot(page, tmp_path, "4-refused-without-acknowledgement")
    assert not store.query("SELECT 1 FROM signatures WHERE signer = 'ng' AND model_version = 2")

    form = form_with(page, "Sign")
    form.get_by_text("I have read that 2 gates fail", exact=False).click()
    form.get_by_role("textbox", name="Password (signature)").fill(PASSWORDS["ng"])
    form.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("approved knowing that 2 gates failed", exact=False).first).to_be_visible(timeout=60_000)
    shot(page, tmp_path, "5-signed")
    (row,) = store.query("SELECT acknowledged_gates FROM signatures WHERE signer = 'ng' AND model_name = 'sepsis-icu' "
                         "AND model_version = 2")
    assert json.loads(row["acknowledged_gates"]) == ["Use-case criteria", "Model card complete"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "1-home.png", "2-sign-off-from-home.png", "3-fairness.png", "4-refused-without-acknowledgement.png",
        "5-signed.png"]
