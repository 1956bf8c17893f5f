"""Fairness and Monitoring open on the finding: the attribute and group the model fails most, in words."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from app.fairness_view import HIGHLIGHT, MUTED
from core.config import Settings
from core.domain.access import command_line_operator
from core.services import findings
from core.services.installation import open_store
from core.services.submission import StoredEvaluation
from tests.app.screen import raw_identifiers
from tests.app.test_pages import clinician_on_v2, full_error_details, logged_in, page_texts


def _box(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(s for s in at.selectbox if s.label == label)


def _bars(at: AppTest) -> dict[str, str]:
    """Group → bar colour of the judged groups in the sensitivity chart."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = next(t for t in spec["data"] if t.get("name") == "Sensitivity (judged groups)")
    return dict(zip(bars["x"], bars["marker"]["color"], strict=True)) | {"_text": " ".join(bars["text"])}


def test_fairness_opens_on_black_patients_with_the_headline_and_the_cause(demo_env: Settings,
                                                                          evaluated_v2: StoredEvaluation) -> None:
    with full_error_details():
        at = clinician_on_v2(demo_env, "fairness")
    assert not at.exception, at.exception
    assert _box(at, "Compare groups by").value == "race_ethnicity"
    assert _box(at, "Compare groups by").format_func("race_ethnicity") == "Race and ethnicity"
    headline = str(at.warning[-1].value).replace("\\", "")
    black = evaluated_v2.result["subgroups"]["race_ethnicity"]["Black"]["sensitivity"]
    white = evaluated_v2.result["subgroups"]["race_ethnicity"]["White"]["sensitivity"]
    assert headline.startswith("Black patients who developed sepsis within 48 hours of ICU admission are flagged "
                               f"less often than White patients: {black * 100:.0f} of 100 vs {white * 100:.0f} of 100")
    colours = _bars(at)
    assert colours.pop("Black") == HIGHLIGHT and set(v for k, v in colours.items() if k != "_text") == {MUTED}
    assert f"lowest: {black * 100:.0f} of 100" in colours["_text"]
    text = page_texts(at).replace("\\", "")
    assert "A cause is documented on the model card, under **Known risks and limitations**" in text
    link = at.get("page_link")[0].proto
    assert link.page == "model_card" and "model=sepsis-icu" in link.query_string \
        and "version=2" in link.query_string
    assert "lowest: Hispanic patients aged 18-44" in text  # the failed criterion names the group in words
    assert raw_identifiers(at) == []


def test_fairness_other_attributes_are_one_click_away_and_stay_in_words(demo_env: Settings,
                                                                        evaluated_v2: StoredEvaluation) -> None:
    at = clinician_on_v2(demo_env, "fairness")
    for chosen in ("sex", "age_band", "age_band × race_ethnicity"):
        _box(at, "Compare groups by").select(chosen).run()
        assert not at.exception, at.exception
        assert raw_identifiers(at) == [], chosen
    colours = _bars(at)  # on an intersection, its own lowest judged group is highlighted
    lowest = min((g["sensitivity"], g["group"]) for g in evaluated_v2.result["subgroup_table"]
                  if g["attribute_set"] == "age_band × race_ethnicity" and g["enough_patients"]
                  and g["n"] >= 100 and g["sensitivity"] is not None)
    assert colours[lowest[1]] == HIGHLIGHT
    assert "Black patients" in str(at.warning[-1].value)  # the headline still leads with the finding


def test_monitoring_fairness_over_time_opens_on_the_finding(demo_env: Settings) -> None:
    at = logged_in(demo_env, "clinician")
    with full_error_details():
        at.switch_page("../pages/monitoring.py").run()
    assert not at.exception, at.exception
    expected = findings.monitoring_review(open_store(demo_env), command_line_operator("pytest"), "sepsis-icu", 1)
    assert expected.finding is not None
    groups = _box(at, "Patient groups by")
    assert groups.value == expected.attribute
    assert f"From {expected.basis}:" in page_texts(at)  # v1 has no evaluation: the monitored windows, pooled
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "over time" in c.proto.spec)
    assert f"{expected.finding.worst.group} (lowest)" in [t.get("name") for t in spec["data"]]
    assert raw_identifiers(at) == []
    groups.select("race_ethnicity" if expected.attribute != "race_ethnicity" else "sex").run()
    next(t for t in at.toggle if t.label == "Show the statistics (for data scientists)").set_value(True).run()
    assert not at.exception, at.exception
    assert raw_identifiers(at) == []
