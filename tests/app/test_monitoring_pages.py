"""The Monitoring and Alerts pages on the demo, whose build ran monitoring over the 90 days of production."""

from __future__ import annotations

import json
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
    drift_chart = next(json.loads(spec) for spec in charts if "Data drift" in spec)
    markers = [t for t in drift_chart["data"] if t.get("name", "").startswith("Alert: ")]  # markers on the series
    limit = drift_chart["layout"]["shapes"][0]["y0"]
    assert markers and all(y > limit for t in markers for y in t["y"])  # on the failing side of the limit
    assert drift_chart["layout"]["xaxis"]["type"] == "date" and drift_chart["layout"]["xaxis"]["tickformat"]
    window = next(s for s in at.selectbox if s.label == "Window")
    assert window.value is not None
    # The detail opens on the first window that broke a rule: the week the lab changed its lactate assay, shown
    # with its last day inclusive.
    assert "27 Jul–2 Aug 2026" in window.format_func(window.value)
    drift = at.dataframe[0].value
    lactate = drift[drift["Input"] == "Lactate"].iloc[0]
    assert lactate["Drifted"] == "yes"
    assert float(lactate["Typical in this window"].split()[0]) > float(lactate["Typical at sign-off"].split()[0])
    assert "Lactate values are higher than at sign-off: typical value" in text.replace("\\", "")
    assert set(drift[(drift["What it is"] == "input") & (drift["Input"] != "Lactate")]["Drifted"]) == {"no"}
    next(t for t in at.toggle if t.label == "Show the statistics (for data scientists)").set_value(True).run()
    statistics = at.dataframe[1].value  # evidently's statistic, for data scientists
    assert float(statistics[statistics["Input"] == "Lactate"].iloc[0]["Value"]) > 0.25
    assert "lactate: wasserstein" in "\n".join(str(c.value) for c in at.code)


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
    assert set(groups.options) == {"Sex", "Age band", "Race and ethnicity", "Payer"}  # in words
    groups.select("race_ethnicity").run()
    assert not at.exception, at.exception
    assert any("Sensitivity by race and ethnicity" in c.proto.spec for c in at.get("plotly_chart"))


def test_alerts_page_shows_the_evidence_and_records_an_acknowledgement(demo_env: Settings) -> None:
    alert = _shift_alert(demo_env)
    at = logged_in(demo_env, "clinician")
    at.query_params["alert"] = alert.id
    with full_error_details():
        at.switch_page("../pages/alerts.py").run()
    assert not at.exception, at.exception
    text = page_texts(at).replace("\\", "")  # user-facing text is Markdown-escaped (app.wording.plain)
    assert "Lactate shifted strongly" in text
    drift = at.dataframe[1].value  # the per-input table, in words
    assert set(drift.loc[drift["Counted as drifted"] == "yes", "Input"]) >= {"Lactate"}
    assert "27 Jul–2 Aug 2026" in alert.title
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
