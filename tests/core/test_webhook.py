"""Alert webhook: real HTTP against a local server, no mocks.

The properties that matter: the receiver gets exactly the payload, and no
delivery problem (error status, refused connection, slow server, redirect)
ever raises into the monitoring run; URLs are recorded without their tokens.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.adapters.webhook import Delivery, check_webhook_url, post_json, redacted
from core.errors import ConfigurationError


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the local server answers, and what it was sent."""

    url: str = ""
    status: int = 204
    delay_s: float = 0.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # name fixed by http.server
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
            if receiver.delay_s and receiver.released.wait(receiver.delay_s):
                return  # the test is over: the client is gone, do not write to a closed socket
            self.send_response(receiver.status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # signature fixed by http.server
            pass

    return Handler


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the caller's environment must not intercept requests to 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_payload_arrives_exactly_with_headers(receiver: Receiver) -> None:
    payload = {
        "kind": "drift",
        "model": "sepsis-risk",
        "version": 3,
        "psi": 0.31,
        "features": ["lactate", "heart_rate"],
        "message": "Dérive détectée — lactate",
    }
    delivery = post_json(f"{receiver.url}/hooks/alerts", payload)

    assert delivery == Delivery(f"{receiver.url}/hooks/alerts", True, 204, None, delivery.seconds)
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert (got.method, got.path) == ("POST", "/hooks/alerts")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "ModelBoard-alerts"
    assert json.loads(got.body.decode("utf-8")) == payload
    assert "Dérive détectée".encode() in got.body  # real UTF-8, not \\u escapes


def test_datetimes_are_sent_as_text_and_nan_as_null(receiver: Receiver) -> None:
    raised = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    delivery = post_json(receiver.url, {"raised_at": raised, "auc": float("nan"), "window": [1.0, float("inf")]})

    assert delivery.ok
    assert json.loads(receiver.requests[0].body) == {"raised_at": str(raised), "auc": None, "window": [1.0, None]}


def test_any_2xx_is_ok(receiver: Receiver) -> None:
    receiver.status = 200
    assert post_json(receiver.url, {}).ok


def test_recorded_url_has_no_token_but_the_server_gets_it(receiver: Receiver) -> None:
    delivery = post_json(f"{receiver.url}/hook?token=s3cret#frag", {"a": 1})

    assert delivery.ok
    assert delivery.url == f"{receiver.url}/hook"
    assert receiver.requests[0].path == "/hook?token=s3cret"


def test_server_error_is_reported_not_raised(receiver: Receiver) -> None:
    receiver.status = 500
    delivery = post_json(f"{receiver.url}/hook?token=s3cret", {"kind": "drift"})

    assert (delivery.ok, delivery.status) == (False, 500)
    assert delivery.error is not None and "500" in delivery.error
    assert "s3cret" not in delivery.error and "s3cret" not in delivery.url


def test_client_error_is_reported_not_raised(receiver: Receiver) -> None:
    receiver.status = 404
    delivery = post_json(receiver.url, {})
    assert (delivery.ok, delivery.status) == (False, 404)


def test_closed_port_fails_fast_without_raising() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    started = time.monotonic()
    delivery = post_json(url, {"kind": "drift"}, timeout_s=5.0)
    elapsed = time.monotonic() - started

    assert (delivery.ok, delivery.status) == (False, None)
    assert delivery.error is not None and "refused" in delivery.error
    assert elapsed < 2.0 and delivery.seconds < 2.0


def test_slow_server_times_out_without_raising(receiver: Receiver) -> None:
    receiver.delay_s = 5.0
    started = time.monotonic()
    delivery = post_json(receiver.url, {"kind": "drift"}, timeout_s=0.5)
    elapsed = time.monotonic() - started

    assert (delivery.ok, delivery.status) == (False, None)
    assert delivery.error is not None and "timeout" in delivery.error.lower()
    assert 0.4 <= elapsed < 3.0


def test_same_scheme_307_is_followed_with_the_body(receiver: Receiver) -> None:
    first = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(first))
    first.status = 307
    first.extra_headers = {"Location": f"{receiver.url}/moved"}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        delivery = post_json(f"http://127.0.0.1:{server.server_address[1]}/old", {"kind": "drift"})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert (delivery.ok, delivery.status) == (True, 204)
    assert [r.path for r in receiver.requests] == ["/moved"]
    assert json.loads(receiver.requests[0].body) == {"kind": "drift"}


@pytest.mark.parametrize(
    ("status", "location"),
    [(307, "https://127.0.0.1:1/elsewhere"), (302, "/moved"), (301, "/moved"), (303, "/moved")],
    ids=["307-to-other-scheme", "302", "301", "303"],
)
def test_redirects_that_would_lose_or_leak_the_payload_are_not_followed(
    receiver: Receiver, status: int, location: str
) -> None:
    receiver.status = status
    receiver.extra_headers = {"Location": location}
    delivery = post_json(receiver.url, {"kind": "drift"})

    assert (delivery.ok, delivery.status) == (False, status)
    assert delivery.error is not None and "not followed" in delivery.error
    assert len(receiver.requests) == 1  # the redirect target was never called


def test_invalid_url_is_reported_not_raised() -> None:
    delivery = post_json("file:///etc/passwd", {"kind": "drift"})
    assert (delivery.ok, delivery.status) == (False, None)
    assert delivery.error is not None and "MODELBOARD_ALERT_WEBHOOK_URL" in delivery.error


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "http://", "", "file:///etc/passwd", "http://h:99999/"])
def test_check_webhook_url_rejects(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_webhook_url(url)
    message = str(caught.value)
    assert "MODELBOARD_ALERT_WEBHOOK_URL" in message
    assert "https://" in message  # an example of a valid value


def test_check_webhook_url_names_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="scheme 'ftp'"):
        check_webhook_url("ftp://x")
    with pytest.raises(ConfigurationError, match="no host"):
        check_webhook_url("http://")


def test_check_webhook_url_does_not_echo_the_token() -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_webhook_url("ftp://user:pw@x/a?token=s3cret")
    assert "s3cret" not in str(caught.value) and "user:pw" not in str(caught.value)


def test_check_webhook_url_accepts_and_strips() -> None:
    assert check_webhook_url("https://hooks.example.org/a?token=1") == "https://hooks.example.org/a?token=1"
    assert check_webhook_url("  http://10.0.0.5:8080/teams\n") == "http://10.0.0.5:8080/teams"


def test_redacted_drops_token_userinfo_and_fragment() -> None:
    assert redacted("https://hooks.example.org/a?token=1") == "https://hooks.example.org/a"
    assert redacted("https://user:password@hooks.example.org:8443/a/b?token=1#frag") == "https://hooks.example.org:8443/a/b"
    assert redacted("http://[::1]:9000/x?k=v") == "http://[::1]:9000/x"
    assert redacted("http://[unbalanced") == "<unparseable URL>"
