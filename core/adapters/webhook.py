"""Optional alert notifications: POST a JSON payload to one configured webhook.

The webhook (a Teams/Slack/pager bridge inside the hospital network) is a
courtesy on top of the alerts ModelBoard already stores. A notification that
cannot be delivered must therefore never break or roll back the monitoring run
that raised the alert: `post_json` reports every network or HTTP problem as a
`Delivery` with `ok=False` instead of raising, and the caller records it.

Webhook URLs routinely carry secrets (`?token=...`, `user:password@`), so any
URL this module records or puts in a message goes through `redacted` first.

Standard library only (urllib), so the feature adds no dependency to vet.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigurationError

ENV_VAR = "MODELBOARD_ALERT_WEBHOOK_URL"
EXAMPLE_URL = "https://alerts.hospital.example/modelboard"
USER_AGENT = "ModelBoard-alerts"
ALLOWED_SCHEMES = ("http", "https")
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification attempt, safe to store and show.

    `url` is the redacted URL (no user info, query or fragment) so the record
    never leaks a token; `status` is the HTTP status when the server answered,
    None when it did not (refused, timed out, unresolvable host); `error` is a
    short readable reason when `ok` is False; `seconds` is the wall time spent.
    """

    url: str
    ok: bool
    status: int | None
    error: str | None
    seconds: float


def redacted(url: str) -> str:
    """`url` without user info, query string or fragment, which often hold tokens.

    Never raises: it is used to describe URLs that may themselves be invalid.
    Scheme, host, port and path are kept, so a record still says which
    endpoint was called.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # urlsplit refuses e.g. an unbalanced "[": keep nothing that could be a secret
        return "<unparseable URL>"
    host_and_port = parts.netloc.rpartition("@")[2]  # as written, so a bad port still shows in messages
    return urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))


def check_webhook_url(url: str) -> str:
    """Validate a configured webhook URL and return it stripped of surrounding blanks.

    Called where settings are read, so a mistyped value is reported once at
    start-up, as a `ConfigurationError` a person can act on, rather than as a
    failed delivery on every alert. Only http and https with a host are
    accepted: urllib would otherwise happily "post" to file:, ftp: or data:
    URLs. Messages show the URL redacted, because it may carry a token.
    """
    value = url.strip()
    hint = f"set {ENV_VAR} to an http(s) URL such as {EXAMPLE_URL}"
    shown = redacted(value)
    if not value:
        raise ConfigurationError(f"{ENV_VAR} is empty: {hint}, or unset it to send no notifications")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ConfigurationError(f"{ENV_VAR} contains spaces or control characters: {hint}")
    try:
        parts = urlsplit(value)
        port = parts.port  # parsing the port raises ValueError when it is out of range or not a number
    except ValueError as exc:
        raise ConfigurationError(f"{ENV_VAR}={shown!r} is not a valid URL ({exc}): {hint}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigurationError(f"{ENV_VAR}={shown!r} has {scheme}, only http and https are supported: {hint}")
    if not parts.hostname:
        raise ConfigurationError(f"{ENV_VAR}={shown!r} has no host name: {hint}")
    if port == 0:
        raise ConfigurationError(f"{ENV_VAR}={shown!r} has port 0: {hint}")
    return value


class _SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow only redirects that keep the scheme and still deliver the payload.

    urllib by default follows http -> https -> http (and even ftp) and turns a
    POST answered with 301/302/303 into a body-less GET, which would report
    success for a notification that never arrived. Here a 307/308 to the same
    scheme is re-posted with the same body; anything else is not followed and
    surfaces as an HTTPError carrying the 3xx status.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() != urlsplit(req.full_url).scheme.lower():
            return None
        if code not in (307, 308):
            return None
        return urllib.request.Request(
            newurl,
            data=req.data,
            headers=dict(req.header_items()),
            origin_req_host=req.origin_req_host,
            unverifiable=True,
            method=req.get_method(),
        )


def _json_safe(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None.

    Metrics can be NaN (an AUC on a single-class window); json.dumps would
    write the bare token NaN, which is not JSON and strict receivers reject.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _encode(payload: dict[str, Any]) -> bytes:
    """UTF-8 JSON; `default=str` so datetimes, dates, UUIDs and Paths need no conversion by callers."""
    return json.dumps(_json_safe(payload), default=str, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _describe(exc: BaseException, timeout_s: float, host: str) -> str:
    """A short reason a person can act on, without the URL (which may hold a token)."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return _describe(exc.reason, timeout_s, host)
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias since Python 3.10
        return f"timeout: no answer within {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {host}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _short(f"TLS certificate of {host} not trusted: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return _short(f"TLS error with {host}: {exc.reason or exc}")
    if isinstance(exc, http.client.RemoteDisconnected):
        return f"{host} closed the connection without answering"
    if isinstance(exc, urllib.error.URLError):
        return _short(f"cannot reach {host}: {exc.reason}")
    return _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _describe_http_error(exc: urllib.error.HTTPError) -> str:
    reason = _short(str(exc.reason)) if exc.reason else ""
    text = f"HTTP {exc.code} {reason}".rstrip()
    if 300 <= exc.code < 400:
        location = exc.headers.get("Location") if exc.headers else None
        target = f" to {redacted(location)}" if location else ""
        return f"{text}: redirect{target} not followed; configure the final URL in {ENV_VAR}"
    return text


def post_json(url: str, payload: dict[str, Any], *, timeout_s: float = 5.0) -> Delivery:
    """POST `payload` as UTF-8 JSON to `url` and report what happened; never raises for delivery problems.

    A refused connection, an unresolvable host, a timeout, a TLS failure or an
    HTTP 3xx/4xx/5xx answer all come back as `ok=False` with a short `error`,
    because the monitoring run that raised the alert must complete and commit
    regardless. An invalid URL is reported the same way (with the message
    `check_webhook_url` would give) for the same reason. Only a 2xx is ok.

    `timeout_s` bounds connecting and each wait for data, not the total: a
    server trickling bytes could take longer, which a webhook bridge does not.
    Proxies come from the usual environment variables (HTTPS_PROXY, NO_PROXY).
    """
    shown = redacted(url)
    started = time.monotonic()

    def failed(error: str, status: int | None = None) -> Delivery:
        return Delivery(shown, False, status, error, time.monotonic() - started)

    try:
        target = check_webhook_url(url)
    except ConfigurationError as exc:
        return failed(str(exc))
    try:
        body = _encode(payload)
    except (TypeError, ValueError) as exc:  # e.g. non-string dict keys that json cannot handle
        return failed(_short(f"payload is not JSON-serialisable: {exc}"))

    host = urlsplit(target).hostname or "?"
    request = urllib.request.Request(
        target,
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    opener = urllib.request.build_opener(_SameSchemeRedirects())
    try:
        with opener.open(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        try:
            return failed(_describe_http_error(exc), exc.code)
        finally:
            exc.close()  # release the connection the error response holds
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        return failed(_describe(exc, timeout_s, host))
    # urllib raises HTTPError for anything outside 2xx; check anyway so "ok" never depends on that detail.
    if 200 <= status < 300:
        return Delivery(shown, True, status, None, time.monotonic() - started)
    return failed(f"HTTP {status}", status)
