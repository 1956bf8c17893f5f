"""Alerts that agree with themselves: one limit per rule, one window convention, a next step per rule kind.

The alerts here are raised by the real rule functions (core.services.monitoring_rules.judge) on windows whose
figures come from the real metric functions, then read back through the Alerts page's core view."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.domain import glossary as g
from core.domain.monitoring_policy import (
    DEFAULT_RULES,
    NEXT_STEPS,
    RULE_NAMES,
    RULE_TITLES,
    MonitoringPolicy,
    auroc_floor,
    next_step,
    subgroup_floor,
    window_span,
)
from core.metrics.monitoring import estimated_performance, realised_performance
from core.services import promotion
from core.services.alerts import GOVERNANCE_RULES, Alert, describe
from core.services.monitoring_reference import Reference
from core.services.monitoring_rules import Breach, judge
from core.services.monitoring_window import DRIFT_COLUMNS, WindowFigures

START = datetime(2026, 3, 2)
FALLBACK = next_step("a rule nobody wrote")


def test_every_monitoring_rule_kind_has_its_own_next_step_and_title() -> None:
    kinds = {r.name for r in DEFAULT_RULES} | set(RULE_NAMES)
    assert kinds, "the policy module lists its rule kinds"
    for kind in kinds:
        assert kind in NEXT_STEPS and kind in RULE_TITLES
        step = next_step(kind, "Lactate", raw_subject="lactate")
        assert step != FALLBACK and "{" not in step and "_" not in step


def test_every_governance_rule_has_a_next_step() -> None:
    raised = {v for k, v in vars(promotion).items() if k.endswith("_RULE") and isinstance(v, str)}
    assert raised and raised <= set(GOVERNANCE_RULES)
    assert all(step and step != FALLBACK for _, step in GOVERNANCE_RULES.values())


def test_a_laboratory_input_sends_the_reader_to_the_laboratory() -> None:
    step = next_step("input_drift", "Lactate", raw_subject="lactate")
    assert "laboratory" in step and "lactate assay" in step and "suspending" in step
    assert "laboratory" not in next_step("input_drift", "Heart rate", raw_subject="heart_rate")


@pytest.mark.parametrize("days", [1, 7, 14, 30])
def test_a_window_label_shows_its_days_inclusive(days: int) -> None:
    for start in (date(2026, 3, 2), date(2026, 2, 25), date(2025, 12, 29)):
        end = start + timedelta(days=days)  # stored exclusive
        label = window_span(datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time()))
        assert ":" not in label and "00" not in label.replace("2026", "").replace("2025", "")
        first, last = _parse_span(label)
        assert first == start and last == end - timedelta(days=1)
        assert (last - first).days + 1 == days
    assert window_span(START, START + timedelta(days=7)) == "2–8 Mar 2026"


def _parse_span(label: str) -> tuple[date, date]:
    if "–" not in label:
        d = datetime.strptime(label, "%d %b %Y").date()
        return d, d
    left, right = (p.strip() for p in label.split("–"))
    last = datetime.strptime(right, "%d %b %Y").date()
    parts = left.split()
    fmt = {1: "%d", 2: "%d %b", 3: "%d %b %Y"}[len(parts)]
    first = datetime.strptime(left, fmt).date()
    return first.replace(year=int(parts[2]) if len(parts) == 3 else last.year,
                         month=first.month if len(parts) > 1 else last.month), last


# ---- alerts raised by the real rules ----------------------------------------------------------------------------

def _drift(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"role": "input", "kind": "num", "stattest": "wasserstein", "score": 0.05, "threshold": 0.1,
            "drifted": False, "reference_mean": 1.0, "current_mean": 1.0, "reference_missing_share": 0.0,
            "missing_share": 0.0}
    return pd.DataFrame([base | r for r in rows])[DRIFT_COLUMNS]


def _figures(*, drift: pd.DataFrame, y: np.ndarray, s: np.ndarray, subgroups: pd.DataFrame | None = None,
             days: int = 7) -> WindowFigures:
    flagged = s >= 0.5
    drifted = drift[(drift["role"] == "input") & drift["drifted"]]
    return WindowFigures(START, START + timedelta(days=days), len(s), len(y), drift,
                         int((drift["role"] == "input").sum()), len(drifted), 0.01, float(s.mean()),
                         float(flagged.mean()), estimated_performance(s, flagged), realised_performance(y, s, flagged),
                         subgroups if subgroups is not None else pd.DataFrame(
                             columns=["attribute", "subgroup", "n", "positives", "sensitivity", "sensitivity_lo",
                                      "sensitivity_hi", "est_sensitivity", "reference_sensitivity"]),
                         float(s.mean()), float(flagged.mean()))


def _reference(auroc: float) -> Reference:
    return Reference("sepsis-icu", 1, "the sign-off data", None, 1000, 0.5, auroc, 0.8, 0.3, Path("/nonexistent"),
                     "0" * 64)


def _alert(b: Breach) -> Alert:
    return Alert("a" * 32, b.rule, b.model, b.version, b.severity_level, "open", b.title, b.message, b.evidence,
                 datetime(2026, 3, 10))


def _data(n: int, auc_noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.3, n)
    s = np.clip(0.5 * y + rng.normal(0.25, auc_noise, n), 0, 1)
    return y, s


def test_input_drift_shows_the_use_case_limit_the_rule_used() -> None:
    policy = MonitoringPolicy()
    rule = policy.rule("input_drift")
    assert rule is not None and rule.threshold is not None
    y, s = _data(400, 0.05)
    drift = _drift([{"column": "lactate", "score": 0.35, "drifted": True, "reference_mean": 1.38,
                     "current_mean": 1.63}, {"column": "heart_rate"}])
    found = {b.rule: b for b in judge(policy, _reference(0.9), _figures(drift=drift, y=y, s=s),
                                      model="sepsis-icu", version=1)}
    breach = found["input_drift"]
    assert breach.evidence["limit"] == rule.threshold == breach.threshold
    view = describe(_alert(breach), g.glossary_for({"lactate": ("Lactate", "mmol/L")}))
    assert view.limit == g.number(rule.threshold) and view.measured == g.number(0.35)
    assert f"alert above {g.number(rule.threshold)}" in view.finding
    # the stored facts are means, and said as means (Monitoring's "typical value" is the median)
    assert "Mean value 1.38 mmol/L at sign-off, 1.63 mmol/L in this window" in view.finding
    assert view.window == "2–8 Mar 2026" and "2–8 Mar 2026" in breach.title
    assert "laboratory" in view.next_step and "lactate" in view.next_step
    assert [r["Input"] for r in view.evidence] == ["Lactate", "Heart rate"]
    assert all("None" not in v and "nan" not in v for r in view.evidence for v in r.values())


def test_auroc_drop_shows_the_floor_it_was_judged_against() -> None:
    policy = MonitoringPolicy()
    rule = policy.rule("auroc_drop")
    assert rule is not None and rule.threshold is not None
    y, s = _data(1500, 0.6, seed=3)  # a model that barely ranks: its AUROC is far below 0.90
    window = _figures(drift=_drift([{"column": "lactate"}]), y=y, s=s)
    assert window.realised is not None
    assert window.realised.auroc.value == pytest.approx(roc_auc_score(y, s))
    found = {b.rule: b for b in judge(policy, _reference(0.90), window, model="sepsis-icu", version=1)}
    breach = found["auroc_drop"]
    floor = auroc_floor(0.90, rule.threshold)
    assert breach.evidence["limit"] == pytest.approx(floor) and breach.limit == pytest.approx(floor)
    assert breach.as_json()["limit"] == pytest.approx(floor)
    assert window.realised.auroc.hi < floor  # the marker belongs below the limit line
    view = describe(_alert(breach), g.glossary_for())
    assert view.limit == g.number(floor)
    assert view.limit in view.finding and g.number(rule.threshold) in view.finding


@pytest.mark.parametrize("at_signoff", [0.90, 0.70])
def test_subgroup_sensitivity_shows_the_floor_this_group_was_held_to(at_signoff: float) -> None:
    minimum = 0.80
    policy = MonitoringPolicy().with_minimum_sensitivity(minimum)
    y, s = _data(400, 0.05)
    groups = pd.DataFrame([{"attribute": "race_ethnicity", "subgroup": "Black", "n": 300, "positives": 200,
                            "sensitivity": 0.40, "sensitivity_lo": 0.33, "sensitivity_hi": 0.47,
                            "est_sensitivity": 0.8, "reference_sensitivity": at_signoff}])
    found = {b.rule: b for b in judge(policy, _reference(0.5), _figures(drift=_drift([{"column": "lactate"}]),
                                                                      y=y, s=s, subgroups=groups),
                                      model="sepsis-icu", version=1)}
    breach = found["subgroup_sensitivity"]
    floor = subgroup_floor(minimum, at_signoff)
    assert floor == (minimum if at_signoff >= minimum else at_signoff - 0.05)
    assert breach.evidence["limit"] == pytest.approx(floor)
    view = describe(_alert(breach), g.glossary_for())
    assert view.limit == g.per100(floor) and view.measured == g.per100(0.40)
    assert "race and ethnicity Black" in view.finding and "race_ethnicity" not in view.finding
    assert ("minus 5" in view.finding) == (at_signoff < minimum)


def test_an_alert_stored_before_the_limit_was_recorded_reads_the_same() -> None:
    """The demo's stored alerts keep their title; the detail takes the window and the limit from the evidence."""
    evidence = {"window_start": "2026-07-27T00:00:00", "window_end": "2026-08-03T00:00:00", "value": 0.351,
                "threshold": 0.25, "predictions": 1530, "labelled": 1530, "flagged_share": 0.45,
                "reference_flagged_share": 0.42, "mean_score": 0.114, "reference_mean_score": 0.112,
                "drift": [{"column": "lactate", "score": 0.351, "threshold": 0.1, "drifted": True,
                           "reference_missing_share": None, "missing_share": None},
                          {"column": "age_band", "score": 0.01, "threshold": 0.1, "drifted": False,
                           "reference_missing_share": None, "missing_share": None}]}
    title = "One of the model's inputs shifted strongly (sepsis-icu v1, 2026-07-27 to 2026-08-02)"
    view = describe(Alert("b" * 32, "input_drift", "sepsis-icu", 1, "critical", "open", title, "lactate shifted",
                          evidence, datetime(2026, 8, 3)), g.glossary_for())
    assert view.title == title and view.window == "27 Jul–2 Aug 2026"
    assert view.limit == "0.25" and view.measured == "0.35"
    assert [r["Input"] for r in view.evidence] == ["Lactate", "Age band"]
    assert view.evidence[0]["Missing now"] == "—"
    assert not any(math.isnan(float(v)) for r in view.evidence for v in [r["Drift distance"]] if v != "—")
