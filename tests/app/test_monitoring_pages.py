"""The Monitoring and Alerts pages on the demo, whose build ran monitoring over the 90 days of production."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from app.wording import plain
from core.config import Settings
from core.services.alerts import open_alerts
from core.services.auth import get_user
from core.services.installation import open_store
from tests.app.test_pages import full_error_details, logged_in, page_texts


def _open(settings: Settings, role: str, page: str) -> AppTest:
    at = logged_in(settings, role)
    with full_error_details():
        at.switch_page(f"../pages/{page}").run()
    assert not at.exception, at.exception
    return at


def _shift_alert(settings: Settings):  # type: ignore[no-untyped-def]
    ng = get_user(open_store(settings), "ng")
    assert ng is not None
    return next(a for a in open_alerts(open_store(settings), ng) if a.rule == "input_drift")


def test_monitoring_page_shows_series_limits_alert_markers_and_the_shift_window(demo_env: Settings) -> None:
    at = _open(demo_env, "clinician", "monitoring.py")
    text = page_texts(at)
    assert "Monitoring last ran" in text
    assert f"Review required: {plain('sepsis-icu')} v1 is in clinical use" in text
    assert "2 window(s) still wait for outcomes" in text  # the demo holds the last 7 days of outcomes back
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(charts) >= 5
    assert any("Alert raised or still open" in spec for spec in charts)  # markers on the drift series
    window = next(s for s in at.selectbox if s.label == "Window")
    assert window.value is not None
    # The detail opens on the first window that broke a rule: the week the lab changed its lactate assay.
    assert "week of 2026-07-27" in window.format_func(window.value)
    drift = at.dataframe[0].value
    lactate = drift[drift["Column"] == "lactate"].iloc[0]
    assert lactate["Drifted"] == "yes" and lactate["Drift score"] > 0.25
    assert lactate["Mean in window"] > lactate["Mean at sign-off"]
    assert set(drift[(drift["What it is"] == "input") & (drift["Column"] != "lactate")]["Drifted"]) == {"no"}


def test_monitoring_page_renders_from_stored_results_quickly(demo_env: Settings) -> None:
    at = _open(demo_env, "clinician", "monitoring.py")  # warm: imports and caches
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    assert not at.exception, at.exception
    print(f"Monitoring page rerun: {seconds:.2f} s")  # reported, not asserted (the bench owns timings)


def test_subgroup_view_switches_attribute(demo_env: Settings) -> None:
    at = _open(demo_env, "clinical_lead", "monitoring.py")
    groups = next(s for s in at.selectbox if s.label == "Patient groups by")
    assert set(groups.options) == {"sex", "age_band", "race_ethnicity", "payer"}
    groups.select("race_ethnicity").run()
    assert not at.exception, at.exception
    assert any("Sensitivity by race_ethnicity" in c.proto.spec for c in at.get("plotly_chart"))


def test_alerts_page_shows_the_evidence_and_records_an_acknowledgement(demo_env: Settings) -> None:
    alert = _shift_alert(demo_env)
    at = logged_in(demo_env, "clinician")
    at.query_params["alert"] = alert.id
    with full_error_details():
        at.switch_page("../pages/alerts.py").run()
    assert not at.exception, at.exception
    text = page_texts(at).replace("\\", "")  # user-facing text is Markdown-escaped (app.wording.plain)
    assert "lactate shifted strongly" in text
    assert "Inputs that shifted: lactate" in text
    assert "2026-07-27" in alert.title
    next(r for r in at.radio if r.label == "Action").set_value("Acknowledge")
    at.text_area[0].input("Asked the lab which assay changed; pharmacy informed.")
    next(b for b in at.button if b.label == "Record").click().run()
    assert not at.exception, at.exception
    after = _shift_alert(demo_env)
    assert after.status == "acknowledged" and after.acknowledged_by == "ng"
    assert after.acknowledgement == "Asked the lab which assay changed; pharmacy informed."


def test_alerts_page_refuses_a_note_too_short(demo_env: Settings) -> None:
    before = _shift_alert(demo_env)
    at = _open(demo_env, "data_scientist", "alerts.py")
    next(r for r in at.radio if r.label == "Action").set_value("Resolve")
    at.text_area[0].input("ok")
    next(b for b in at.button if b.label == "Record").click().run()
    assert any("5–2,000 characters" in str(e.value) for e in at.error)
    assert _shift_alert(demo_env).status == before.status  # nothing changed


def test_auditors_see_alerts_but_cannot_act_on_them(demo_env: Settings) -> None:
    at = _open(demo_env, "auditor", "alerts.py")
    assert "lactate" in page_texts(at)
    assert "Record" not in [b.label for b in at.button]
