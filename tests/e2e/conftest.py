"""A real `streamlit run` server on a free loopback port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from core.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
OUTPUT = REPO / "test-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # As in `make run`: the server process may not deserialize models; only the worker it starts may.
    return env | {"MODELBOARD_HOME": str(settings.home), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                  "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


@pytest.fixture(scope="session")
def browser_demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo of the browser tests' own, so what they submit is really evaluated by the worker the server
    starts, not found already evaluated by the in-process tests that share the session demo."""
    from core.domain.access import command_line_operator
    from core.services.demo import build_demo

    settings = load_settings(env={}, home=tmp_path_factory.mktemp("browser-demo") / "home")
    build_demo(settings, command_line_operator("pytest"), seed=7)
    return settings


@pytest.fixture(scope="session")
def server(browser_demo: Settings) -> Iterator[str]:
    port = free_port()
    OUTPUT.mkdir(exist_ok=True)
    log = (OUTPUT / "streamlit-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=app_env(browser_demo), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start; see {OUTPUT / 'streamlit-server.log'}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt-get")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 2200})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Home").wait_for()
