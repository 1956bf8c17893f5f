"""Time each page's first render in headless Chromium against a running ModelBoard.

Usage: python bench/page_render.py URL   (the server must run on the demo; `make bench` starts one)
Prints one row per role and page: seconds from the click until the page's heading is
shown and Streamlit reports the script run finished, on the first visit (the browser also
loads plotly and the like) and on a second round through the same pages. Measured, never
asserted.
"""

from __future__ import annotations

import sys
import time

from playwright.sync_api import Page, sync_playwright

ROLES = {"clinician": ("ng", "ng-icu-demo-2026"), "clinical_lead": ("patel", "patel-lead-demo-2026"),
         "data_scientist": ("lee", "lee-ds-demo-2026"),
         "auditor": ("kim", "kim-audit-demo-2026"), "admin": ("admin", "admin-demo-2026")}
PAGES = {name: name for name in ("Home", "Model registry", "Model card", "Submit", "Use cases", "Performance",
                                  "Fairness", "Explanations", "Compare", "Sign-off", "Production log", "Monitoring",
                                  "Alerts", "Audit log", "Version history", "Users")}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def settled(page: Page, heading: str) -> None:
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")


def visit_all(page: Page) -> dict[str, float]:
    """Click every page the role can see, in order; seconds until each has settled."""
    seconds = {}
    for link, heading in PAGES.items():
        target = page.get_by_role("link", name=link, exact=True)
        if target.count() == 0 or link == "Home":
            continue
        start = time.perf_counter()
        target.click()
        settled(page, heading)
        seconds[link] = time.perf_counter() - start
    return seconds


def measure(page: Page, url: str, username: str, password: str) -> list[tuple[str, float, float]]:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    start = time.perf_counter()
    page.get_by_role("button", name="Log in").click()
    settled(page, "Home")
    login = time.perf_counter() - start
    first, again = visit_all(page), visit_all(page)
    return [("Log in → Home", login, float("nan"))] + [(name, first[name], again[name]) for name in first]


def main(url: str) -> None:
    print(f"{'role':<15} {'page':<18} {'first visit (s)':>15} {'second visit (s)':>16}")
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        for role, (username, password) in ROLES.items():
            context = browser.new_context(viewport={"width": 1400, "height": 1600})
            for page_name, first, again in measure(context.new_page(), url, username, password):
                rows.append((first, again))
                print(f"{role:<15} {page_name:<18} {first:>15.2f} {again:>16.2f}")
            context.close()
        browser.close()
    firsts = sorted(r[0] for r in rows)
    agains = sorted(r[1] for r in rows if r[1] == r[1])
    print(f"median first visit {firsts[len(firsts) // 2]:.2f} s, {sum(f < 1 for f in firsts)}/{len(firsts)} under 1 s; "
          f"median second visit {agains[len(agains) // 2]:.2f} s, {sum(a < 1 for a in agains)}/{len(agains)} under 1 s")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].startswith("http"):
        sys.exit("usage: python bench/page_render.py http://127.0.0.1:8501")
    main(sys.argv[1])
