"""Alerts, Audit log, Production log, Users, Use cases, Registry and Submit on the demo: nothing raw on screen,
alerts that agree with themselves, and an events-per-day chart with dates and distinct colours."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from core.config import Settings
from core.domain import glossary as g
from core.domain.monitoring_policy import window_span
from core.services.alerts import open_alerts
from core.services.auth import get_user
from core.services.installation import open_store
from core.services.monitoring import version_policy
from tests.app.screen import raw_identifiers
from tests.app.test_monitoring_pages import _open
from tests.app.test_pages import full_error_details, logged_in, page_texts


@pytest.mark.parametrize("role", ["clinician", "auditor"])
def test_alerts_page_agrees_with_itself_and_shows_nothing_raw(demo_env: Settings, role: str) -> None:
    store = open_store(demo_env)
    viewer = get_user(store, "kim")
    assert viewer is not None
    alert = next(a for a in open_alerts(store, viewer) if a.rule == "input_drift")
    rule = version_policy(store, viewer, alert.model).rule("input_drift")
    assert rule is not None and rule.threshold is not None
    at = logged_in(demo_env, role)
    at.query_params["alert"] = alert.id
    with full_error_details():
        at.switch_page("../pages/alerts.py").run()
    assert not at.exception, at.exception
    assert raw_identifiers(at) == []
    metrics = {m.label: m.value for m in at.metric}
    # one limit: the use case's rule, as the monitoring run stored it and as the page shows it
    assert alert.evidence["limit"] == rule.threshold
    assert metrics["Alert limit"] == g.number(rule.threshold)
    # one window: the title of a new alert and the detail both show the last day inclusive
    span = window_span(datetime.fromisoformat(alert.evidence["window_start"]),
                       datetime.fromisoformat(alert.evidence["window_end"]))
    assert span in alert.title and metrics["Window (last day included)"] == span
    text = page_texts(at).replace("\\", "")
    assert "to 2026-08-03" not in text  # the exclusive end never reaches the screen
    assert "Suggested next step" in text and "laboratory" in text and "lactate assay" in text
    shown = at.dataframe[1].value
    assert "Lactate" in set(shown["Input"]) and "lactate" not in set(shown["Input"])


def test_audit_log_chart_has_a_date_axis_and_distinct_colours(demo_env: Settings) -> None:
    at = _open(demo_env, "auditor", "access_log.py")
    assert raw_identifiers(at) == []
    spec = json.loads(next(c for c in at.get("plotly_chart") if "Events per day" in c.proto.spec).proto.spec)
    xaxis = spec["layout"]["xaxis"]
    assert xaxis["type"] == "date" and "%H" not in xaxis["tickformat"] and "%d" in xaxis["tickformat"]
    assert xaxis["dtick"] in (86_400_000, 7 * 86_400_000)
    colours = [t["marker"]["color"] for t in spec["data"]]
    assert len(colours) == len(set(colours)) > 1
    names = [t["name"] for t in spec["data"]]
    assert all("_" not in n for n in names)
    table = at.dataframe[0].value
    assert not table["Details"].str.contains(r"None|\{\}", regex=True).any()
    assert not table["Details"].str.contains(r"[0-9a-f]{13,}", regex=True).any()


@pytest.mark.parametrize(("role", "page"), [
    ("clinician", "production.py"), ("auditor", "production.py"), ("admin", "users.py"),
    ("clinician", "use_cases.py"), ("admin", "use_cases.py"), ("clinician", "registry.py"),
    ("data_scientist", "registry.py"), ("data_scientist", "submit.py"), ("admin", "submit.py")])
def test_remaining_pages_show_nothing_raw(demo_env: Settings, role: str, page: str) -> None:
    at = _open(demo_env, role, page)
    assert raw_identifiers(at) == []


def test_users_page_says_never_for_an_account_never_used(demo_env: Settings) -> None:
    at = _open(demo_env, "admin", "users.py")
    last = at.dataframe[0].value["Last login (UTC)"]
    assert "never" in set(last) and last.notna().all()


def test_alerts_and_the_monitoring_charts_show_one_window_convention() -> None:
    """The Monitoring page (app.monitoring_charts) and the Alerts page (core) label a window identically."""
    from datetime import timedelta

    from app.monitoring_charts import window_span as on_charts

    starts = [datetime(2025, 12, 1) + timedelta(days=i) for i in range(0, 120, 3)]
    for start in starts:
        for days in (1, 7, 14):
            assert window_span(start, start + timedelta(days=days)) == on_charts(start, start + timedelta(days=days))
