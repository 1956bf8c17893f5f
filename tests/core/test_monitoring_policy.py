"""The use case's `monitoring` section: defaults, overrides, problems naming the setting, the store round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.adapters.store import Store
from core.domain.access import User
from core.domain.monitoring_policy import AlertRule, MonitoringPolicy, parse_monitoring
from core.domain.usecase import parse_use_case
from core.errors import NotFound, ValidationError
from core.services.usecases import export_yaml, get_use_case, import_use_case

DEMO_YAML = Path(__file__).resolve().parents[2] / "data" / "usecases" / "sepsis-icu-adult.yaml"
BETWEEN = "threshold must be a number between 0 and 1"
DEFAULTS = {  # as documented for the monitoring section
    "drifted_feature_share": (0.30, "warning"),
    "input_drift": (0.25, "warning"),
    "score_psi": (0.20, "critical"),
    "auroc_drop": (0.05, "critical"),
    "subgroup_sensitivity": (None, "critical"),
    "input_missing": (0.10, "warning"),
}


def _parse(raw: Any) -> tuple[MonitoringPolicy, list[str]]:
    problems: list[str] = []
    return parse_monitoring(raw, problems), problems


def _as_dict(policy: MonitoringPolicy) -> dict[str, tuple[float | None, str]]:
    return {r.name: (r.threshold, r.severity) for r in policy.rules}


# --- parsing -----------------------------------------------------------------------------------------------------

def test_no_section_takes_the_defaults() -> None:
    policy, problems = _parse(None)
    assert problems == []
    assert policy.window == "daily"
    assert _as_dict(policy) == DEFAULTS
    assert (policy.min_window_predictions, policy.min_subgroup_positives) == (50, 20)
    assert _parse({})[0] == policy


def test_overriding_one_rule_keeps_the_other_defaults() -> None:
    policy, problems = _parse({"window": "weekly", "rules": {"score_psi": {"threshold": 0.1, "severity": "warning"}},
                               "min_window_predictions": 200})
    assert problems == []
    assert (policy.window, policy.min_window_predictions, policy.min_subgroup_positives) == ("weekly", 200, 20)
    assert _as_dict(policy) == DEFAULTS | {"score_psi": (0.1, "warning")}
    only_severity, _ = _parse({"rules": {"auroc_drop": {"severity": "info"}}})
    assert only_severity.rule("auroc_drop") == AlertRule("auroc_drop", 0.05, "info")


def test_off_switches_a_rule_off() -> None:
    policy, problems = _parse({"rules": {"input_drift": {"off": True}, "score_psi": {"off": False}}})
    assert problems == []
    assert policy.rule("input_drift") is None
    assert _as_dict(policy) == {k: v for k, v in DEFAULTS.items() if k != "input_drift"}


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"window": "hourly"}, "monitoring.window must be daily or weekly, not 'hourly'"),
    ({"rules": {"sepsis_rate": {"threshold": 0.1}}}, "monitoring.rules.sepsis_rate is not a rule"),
    ({"rules": {"score_psi": {"threshold": 1.5}}}, f"monitoring.rules.score_psi.{BETWEEN}, not 1.5"),
    ({"rules": {"score_psi": {"threshold": 0}}}, f"monitoring.rules.score_psi.{BETWEEN}, not 0"),
    ({"rules": {"auroc_drop": {"threshold": -0.05}}}, f"monitoring.rules.auroc_drop.{BETWEEN}, not -0.05"),
    ({"rules": {"auroc_drop": {"threshold": "high"}}}, f"monitoring.rules.auroc_drop.{BETWEEN}, not 'high'"),
    ({"rules": {"auroc_drop": {"threshold": True}}}, f"monitoring.rules.auroc_drop.{BETWEEN}, not True"),
    ({"rules": {"input_drift": {"severity": "urgent"}}},
     "monitoring.rules.input_drift.severity must be one of critical, warning, info, not 'urgent'"),
    ({"alert_email": "icu@example.org"}, "monitoring.alert_email is not a known setting"),
    ({"rules": {"score_psi": {"limit": 0.2}}}, "monitoring.rules.score_psi has unknown keys ['limit']"),
    ({"rules": {"score_psi": 0.2}}, "monitoring.rules.score_psi must be a mapping"),
    ({"rules": ["score_psi"]}, "monitoring.rules must map a rule name"),
    ({"min_window_predictions": 0}, "monitoring.min_window_predictions must be a whole number"),
    ("weekly", "monitoring must be a mapping"),
])
def test_each_problem_names_the_setting(raw: Any, fragment: str) -> None:
    policy, problems = _parse(raw)
    assert len(problems) == 1
    assert fragment in problems[0]
    # what was wrong falls back to its default; the rest of the policy is still the default one
    assert policy == MonitoringPolicy()


def test_every_problem_is_listed_at_once() -> None:
    _, problems = _parse({"window": "monthly", "colour": "red",
                          "rules": {"score_psi": {"threshold": 2, "severity": "loud"}, "nope": {}}})
    assert len(problems) == 5
    for fragment in ("monitoring.window", "monitoring.colour", "monitoring.rules.score_psi.threshold",
                     "monitoring.rules.score_psi.severity", "monitoring.rules.nope"):
        assert any(fragment in p for p in problems), fragment


# --- the subgroup rule's limit comes from the criteria -----------------------------------------------------------

def test_minimum_sensitivity_fills_the_subgroup_rule() -> None:
    filled = MonitoringPolicy().with_minimum_sensitivity(0.8)
    assert filled.rule("subgroup_sensitivity") == AlertRule("subgroup_sensitivity", 0.8, "critical")
    assert _as_dict(filled) == DEFAULTS | {"subgroup_sensitivity": (0.8, "critical")}


def test_an_explicit_subgroup_threshold_is_kept() -> None:
    policy, _ = _parse({"rules": {"subgroup_sensitivity": {"threshold": 0.7}}})
    assert policy.with_minimum_sensitivity(0.8).rule("subgroup_sensitivity").threshold == 0.7


def test_without_a_minimum_the_subgroup_rule_is_dropped() -> None:
    policy = MonitoringPolicy().with_minimum_sensitivity(None)
    assert policy.rule("subgroup_sensitivity") is None
    assert _as_dict(policy) == {k: v for k, v in DEFAULTS.items() if k != "subgroup_sensitivity"}


# --- through the store -------------------------------------------------------------------------------------------

def test_the_demo_policy_round_trips_through_the_store(store: Store, operator: User) -> None:
    text = DEMO_YAML.read_text()
    expected = parse_use_case(yaml.safe_load(text)).monitoring
    assert expected.window == "weekly"
    assert expected.rule("input_drift") == AlertRule("input_drift", 0.25, "critical")
    assert expected.rule("subgroup_sensitivity") == AlertRule("subgroup_sensitivity", None, "critical")

    imported, created = import_use_case(store, operator, text)
    assert (imported.version, created) == (1, True)
    stored = get_use_case(store, operator, "sepsis-icu-adult")
    assert stored.monitoring == expected
    assert stored.monitoring.with_minimum_sensitivity(stored.criteria.min_sensitivity).rule(
        "subgroup_sensitivity").threshold == 0.80

    again, created = import_use_case(store, operator, text)
    assert (again.version, created) == (1, False)

    exported = export_yaml(store, operator, "sepsis-icu-adult")
    assert yaml.safe_load(exported)["monitoring"]["window"] == "weekly"
    reimported, created = import_use_case(store, operator, exported)
    assert (reimported.version, created) == (1, False)
    assert reimported.monitoring == expected


def test_a_rule_switched_off_stays_off_after_export(store: Store, operator: User) -> None:
    document = yaml.safe_load(DEMO_YAML.read_text())
    document["monitoring"]["rules"]["score_psi"] = {"off": True}
    imported, _ = import_use_case(store, operator, yaml.safe_dump(document))
    assert imported.monitoring.rule("score_psi") is None
    assert get_use_case(store, operator, "sepsis-icu-adult").monitoring == imported.monitoring

    reimported, created = import_use_case(store, operator, export_yaml(store, operator, "sepsis-icu-adult"))
    assert created is False
    assert reimported.monitoring.rule("score_psi") is None


def test_an_invalid_section_is_refused_and_nothing_is_stored(store: Store, operator: User) -> None:
    document = yaml.safe_load(DEMO_YAML.read_text())
    document["monitoring"] = {"window": "hourly", "rules": {"score_psi": {"threshold": 1.2}}}
    with pytest.raises(ValidationError) as info:
        import_use_case(store, operator, yaml.safe_dump(document))
    message = str(info.value)
    assert "use case not accepted" in message
    assert "monitoring.window must be daily or weekly, not 'hourly'" in message
    assert "monitoring.rules.score_psi.threshold must be a number between 0 and 1, not 1.2" in message
    with pytest.raises(NotFound):
        get_use_case(store, operator, "sepsis-icu-adult")
