"""Use cases in and out: YAML import (a new version when anything changed), export, lookup."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

import yaml

from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.glossary import Glossary, glossary_for
from core.domain.monitoring_policy import AlertRule, MonitoringPolicy
from core.domain.policy import PromotionPolicy
from core.domain.signoff import SignerRequirement
from core.domain.usecase import PerformanceCriteria, UseCase, parse_use_case, to_document
from core.errors import NotFound, ValidationError
from core.services.audit import record_event


def parse_yaml(text: str) -> UseCase:
    """Parse and check a use-case YAML text; syntax errors name the line and column."""
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(f"the use-case file is not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"the use-case file is not valid YAML: {exc}") from None
    return parse_use_case(raw)


def _from_row(row: dict[str, Any]) -> UseCase:
    data = json.loads(row["definition"])
    criteria = PerformanceCriteria(**data.pop("criteria"))
    data["models"] = tuple(data["models"])
    data["sensitive_attributes"] = tuple(data["sensitive_attributes"])
    data["plausible_ranges"] = {k: (float(v[0]), float(v[1])) for k, v in data.get("plausible_ranges", {}).items()}
    stored_policy = data.pop("promotion", None)  # use cases stored before policies existed take the defaults
    policy = PromotionPolicy() if stored_policy is None else PromotionPolicy(
        signers=tuple(SignerRequirement(**r) for r in stored_policy["signers"]),
        signoff_valid_days=int(stored_policy["signoff_valid_days"]),
        require_complete_card=bool(stored_policy["require_complete_card"]),
        exception_roles=tuple(stored_policy["exception_roles"]))
    stored_monitoring = data.pop("monitoring", None)  # likewise for use cases stored before monitoring rules
    monitoring = MonitoringPolicy() if stored_monitoring is None else MonitoringPolicy(
        window=stored_monitoring["window"], rules=tuple(AlertRule(**r) for r in stored_monitoring["rules"]),
        min_window_predictions=int(stored_monitoring["min_window_predictions"]),
        min_subgroup_positives=int(stored_monitoring["min_subgroup_positives"]))
    return UseCase(criteria=criteria, promotion=policy, monitoring=monitoring,
                   **data | {"version": int(row["version"])})


def _definition(use_case: UseCase) -> str:
    data = asdict(replace(use_case, version=0))
    data.pop("version")
    if data["positive_class"] is None:  # left out, so use cases stored before it existed compare equal
        data.pop("positive_class")
    if not data["plausible_ranges"]:  # likewise for use cases stored before plausibility limits existed
        data.pop("plausible_ranges")
    return json.dumps(data, sort_keys=True)


def import_use_case(store: Store, actor: User, text: str) -> tuple[UseCase, bool]:
    """Store the use case as a new version if it differs from the latest; return it and
    whether a new version was created."""
    require(actor, Permission.MANAGE_USE_CASES)
    use_case = parse_yaml(text)
    definition = _definition(use_case)
    with store.transaction() as cur:
        latest = cur.execute(
            "SELECT version, definition FROM use_cases WHERE name = ? ORDER BY version DESC LIMIT 1",
            [use_case.name]).fetchone()
        if latest and json.loads(latest[1]) == json.loads(definition):
            return replace(use_case, version=int(latest[0])), False
        version = int(latest[0]) + 1 if latest else 1
        cur.execute("INSERT INTO use_cases VALUES (?, ?, ?, ?, ?)",
                    [use_case.name, version, definition, actor.username, utc_now()])
        record_event(cur, actor=actor.username, action="use_case_imported", target=f"{use_case.name} v{version}",
                     detail={"models": list(use_case.models), "threshold": use_case.threshold})
    return replace(use_case, version=version), True


def get_use_case(store: Store, viewer: User, name: str, version: int | None = None) -> UseCase:
    require(viewer, Permission.VIEW_REGISTRY)
    row = store.query_one(
        "SELECT * FROM use_cases WHERE name = ? AND (? IS NULL OR version = ?) ORDER BY version DESC LIMIT 1",
        [name, version, version])
    if row is None:
        raise NotFound(f"no use case named {name!r}" + (f" with version {version}" if version else ""))
    return _from_row(row)


def list_use_cases(store: Store, viewer: User) -> list[UseCase]:
    """The latest version of every use case."""
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query("""
        SELECT * FROM use_cases u
        WHERE version = (SELECT max(version) FROM use_cases v WHERE v.name = u.name) ORDER BY name""")
    return [_from_row(r) for r in rows]


def use_case_for_model(store: Store, viewer: User, model: str) -> UseCase:
    """The use case that governs a registered model (latest version)."""
    for use_case in list_use_cases(store, viewer):
        if model in use_case.models:
            return use_case
    raise NotFound(f"no use case governs model {model!r}: an administrator imports one with "
                   "`python -m core.cli usecase import FILE.yaml`")


def export_yaml(store: Store, viewer: User, name: str, version: int | None = None) -> str:
    return yaml.safe_dump(to_document(get_use_case(store, viewer, name, version)), sort_keys=False,
                          allow_unicode=True)


def use_case_history(store: Store, viewer: User, name: str) -> list[dict[str, Any]]:
    """Every version of a use case, newest first: who imported it, when, and what it required."""
    require(viewer, Permission.VIEW_REGISTRY)
    rows = store.query("SELECT * FROM use_cases WHERE name = ? ORDER BY version DESC", [name])
    if not rows:
        raise NotFound(f"no use case named {name!r}")
    out = []
    for row in rows:
        use_case = _from_row(row)
        out.append({"version": use_case.version, "imported_by": row["imported_by"],
                    "imported_at": row["imported_at"], "threshold": use_case.threshold,
                    "models": ", ".join(use_case.models), "criteria": " ".join(use_case.plain_criteria())})
    return out


def glossary_for_model(store: Store, viewer: User, model: str) -> Glossary:
    """The words pages use for a model's inputs: its use case's `inputs`, else the common clinical names."""
    try:
        return glossary_for(use_case_for_model(store, viewer, model).inputs)
    except NotFound:
        return glossary_for()
