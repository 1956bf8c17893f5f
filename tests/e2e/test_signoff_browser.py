"""End to end: demo v2 is signed in the browser by a clinical lead (exceptions), two clinicians and a data
scientist, and the `production` alias in MLflow moves to v2; the auditor then verifies and exports."""

from __future__ import annotations

import io
import json
import zipfile
from hashlib import sha256

import pytest
from mlflow import MlflowClient
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from core.config import Settings
from core.services.installation import open_store
from tests.e2e.conftest import OUTPUT, log_in
from tests.e2e.test_browser import choose, settle

pytestmark = pytest.mark.browser
PASSWORDS = {"lee": "lee-ds-demo-2026", "patel": "patel-lead-demo-2026", "ng": "ng-icu-demo-2026",
             "okafor": "okafor-icu-demo-2026", "diaz": "diaz-ds-demo-2026", "kim": "kim-audit-demo-2026"}


def open_page(page: Page, server: str, username: str, link: str) -> None:
    log_in(page, server, username, PASSWORDS[username])
    page.get_by_role("link", name=link).click()
    page.get_by_role("heading", name=link).wait_for()


def form_with(page: Page, button: str) -> Locator:
    return page.locator("[data-testid='stForm']").filter(has=page.get_by_role("button", name=button, exact=True))


def sign_in_form(form: Locator, username: str, rationale: str) -> None:
    form.get_by_role("textbox", name="Rationale").fill(rationale)
    form.get_by_role("textbox", name="Username (signature)").fill(username)
    form.get_by_role("textbox", name="Password (signature)").fill(PASSWORDS[username])


def submit_v2_if_needed(page: Page, server: str, settings: Settings) -> None:
    evaluated = open_store(settings).query("SELECT 1 FROM evaluations WHERE model_name = 'sepsis-icu' AND "
                                           "model_version = 2 AND status = 'complete'")
    if evaluated:
        return
    open_page(page, server, "lee", "Submit")
    choose(page, "Registered model", "sepsis-icu")
    choose(page, "Version", "v2")
    page.get_by_role("button", name="Submit for clinical review").click()
    expect(page.get_by_text("sepsis-icu v2 is evaluated and is now in clinical review")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Log out").click()


def pick_first_option(page: Page, box: Locator) -> None:
    """Open a multiselect and pick its first remaining option (not its "Select all"); a click that lands while the
    page is still settling focuses the box without opening its list, so open it again until the list shows."""
    for attempt in range(4):
        box.click()
        option = page.get_by_role("option").filter(has_not_text="Select all").first  # one criterion at a time
        try:
            option.wait_for(timeout=5_000)
        except PlaywrightError:
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
            settle(page)
            continue
        option.click()
        page.keyboard.press("Escape")  # an open list hides the rest of the page from role queries
        settle(page)
        return


def approve(page: Page, server: str, username: str) -> None:
    open_page(page, server, username, "Sign-off")
    choose(page, "Version", "v2")
    form = form_with(page, "Sign")
    form.get_by_role("textbox", name="Meaning of your signature").fill("approved for clinical use in adult ICU")
    sign_in_form(form, username, "Reviewed the card, fairness, explanations and the comparison with v1.")
    form.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_text("Signed: ", exact=False)).to_be_visible(timeout=60_000)


def test_two_clinicians_and_a_data_scientist_sign_v2_and_production_moves(server: str, page: Page,
                                                                          browser_demo: Settings) -> None:
    client = MlflowClient(tracking_uri=browser_demo.tracking_uri)

    def aliases() -> dict[str, int]:
        return {a: int(v) for a, v in client.get_registered_model("sepsis-icu").aliases.items()}

    assert aliases()["production"] == 1
    submit_v2_if_needed(page, server, browser_demo)

    # The data scientist completes the card's last required field.
    open_page(page, server, "lee", "Model card")
    choose(page, "Version", "v2")
    page.get_by_role("textbox", name="Update schedule and correction of problems").fill(
        "Reviewed yearly; retrained when monitoring shows degradation")
    page.get_by_role("button", name="Save narrative").click()
    expect(page.get_by_text("Saved 1 changed field(s).")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Log out").click()

    # The clinical lead accepts the two failed fairness criteria in a signed statement.
    open_page(page, server, "patel", "Sign-off")
    choose(page, "Version", "v2")
    expect(page.get_by_text("Use-case criteria — not passed.", exact=False)).to_be_visible()
    form = form_with(page, "Sign the exception")
    for _ in range(2):
        pick_first_option(page, form.locator("[data-testid='stMultiSelect']"))
    page.keyboard.press("Escape")
    form.get_by_role("textbox", name="Rationale and mitigation").fill(
        "Gaps are in small intersectional groups; SpO2 bias mitigated by blood-gas confirmation protocol.")
    form.get_by_role("textbox", name="Username (signature)").fill("patel")
    form.get_by_role("textbox", name="Password (signature)").fill(PASSWORDS["patel"])
    form.get_by_role("button", name="Sign the exception").click()
    expect(page.get_by_text("Signed: Dr. Priya Patel", exact=False)).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Log out").click()

    for username, quorum in (("ng", "1 of 2 clinicians (Dr. Alice Ng)"),
                             ("okafor", "2 of 2 clinicians (Dr. Alice Ng, Dr. Chidi Okafor)")):
        approve(page, server, username)
        # the page shows itself again with the new signature counted, not the state from before it
        expect(page.get_by_text(f"Quorum not reached: {quorum}", exact=False)).to_be_visible()
        assert aliases()["production"] == 1  # quorum not reached yet
        page.get_by_role("button", name="Log out").click()
    approve(page, server, "diaz")
    expect(page.get_by_text("sepsis-icu v2 is now in production", exact=False)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Quorum reached:", exact=False)).to_be_visible()
    expect(page.get_by_text("holds the 'production' alias", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Sign", exact=True)).to_have_count(0)  # nothing left to approve
    page.screenshot(path=str(OUTPUT / "sign-off-promoted.png"))
    assert aliases() == {"production": 2, "previous": 1}
    page.get_by_role("button", name="Log out").click()

    # The auditor sees an intact chain and exports the evidence package for v2.
    open_page(page, server, "kim", "Audit log")
    expect(page.get_by_text("The audit trail is intact", exact=False)).to_be_visible()
    page.get_by_role("link", name="Version history").click()
    page.get_by_role("heading", name="Version history").wait_for()
    choose(page, "Version", "v2")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download evidence package of sepsis-icu v2").click()
    assert download.value.suggested_filename == "evidence-sepsis-icu-v2.zip"
    package = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    manifest = json.loads(package.read("manifest.json"))
    assert (manifest["model"], manifest["version"]) == ("sepsis-icu", 2), manifest
    assert {name: sha256(package.read(name)).hexdigest() for name in manifest["files"]} == manifest["files"]
    signatures = json.loads(package.read("signatures.json"))
    assert {"patel", "ng", "okafor", "diaz"} <= {s["signer"] for s in signatures}, package.read("signatures.json")
