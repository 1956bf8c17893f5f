"""Time each page's first render in headless Chromium against a running ModelBoard.

Usage: python bench/page_render.py URL   (the server must run on the demo; `make bench` starts one)
Prints one row per role and page: seconds from the click until the page's heading is
shown and Streamlit reports the script run finished. Measured, never asserted.
"""

from __future__ import annotations

import sys
import time

from playwright.sync_api import Page, sync_playwright

ROLES = {"clinician": ("ng", "ng-icu-demo-2026"), "clinical_lead": ("patel", "patel-lead-demo-2026"),
         "data_scientist": ("lee", "lee-ds-demo-2026"),
         "auditor": ("kim", "kim-audit-demo-2026"), "admin": ("admin", "admin-demo-2026")}
PAGES = {name: name for name in ("Home", "Model registry", "Model card", "Submit", "Use cases", "Performance",
                                  "Fairness", "Explanations", "Compare", "Production log", "Audit log", "Users")}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def settled(page: Page, heading: str) -> None:
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")


def measure(page: Page, url: str, username: str, password: str) -> list[tuple[str, float]]:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    start = time.perf_counter()
    page.get_by_role("button", name="Log in").click()
    settled(page, "Home")
    rows = [("Log in → Home", time.perf_counter() - start)]
    for link, heading in PAGES.items():
        target = page.get_by_role("link", name=link, exact=True)
        if target.count() == 0 or link == "Home":
            continue
        start = time.perf_counter()
        target.click()
        settled(page, heading)
        rows.append((link, time.perf_counter() - start))
    return rows


def main(url: str) -> None:
    print(f"{'role':<15} {'page':<18} {'first render (s)':>16}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        for role, (username, password) in ROLES.items():
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            for page_name, seconds in measure(context.new_page(), url, username, password):
                print(f"{role:<15} {page_name:<18} {seconds:>16.2f}")
            context.close()
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].startswith("http"):
        sys.exit("usage: python bench/page_render.py http://127.0.0.1:8501")
    main(sys.argv[1])
