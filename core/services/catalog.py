"""Browsing registered models: what each role may see of the MLflow registry."""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.registry import Registry
from core.domain.access import CLINICAL_ROLES, Permission, User, require
from core.domain.models import ModelVersionDetail, ModelVersionSummary, RegisteredModelSummary


@dataclass(frozen=True)
class AttentionItem:
    """One line of the Home page's "needs your attention" list."""

    model: str
    version: int
    headline: str
    status_label: str
    aliases: tuple[str, ...]


def list_models(registry: Registry, viewer: User) -> list[RegisteredModelSummary]:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.list_models()


def list_versions(registry: Registry, viewer: User, model: str) -> list[ModelVersionSummary]:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.list_versions(model)


def version_detail(registry: Registry, viewer: User, model: str, version: int) -> ModelVersionDetail:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.get_version(model, version)


def attention_items(registry: Registry, viewer: User) -> list[AttentionItem]:
    """What the viewer should look at first, worded for their role.

    Until review and monitoring land, every version is listed with its alias and
    status; clinicians see versions in review first, data scientists their own.
    """
    require(viewer, Permission.VIEW_REGISTRY)
    items = []
    for model in registry.list_models():
        for v in registry.list_versions(model.name):
            items.append(AttentionItem(v.name, v.version, _headline(viewer, v), v.status_label, v.aliases))
    return sorted(items, key=lambda i: (_rank(viewer, i), i.model, -i.version))


def _headline(viewer: User, v: ModelVersionSummary) -> str:
    if "production" in v.aliases:
        return f"{v.name} v{v.version} is the version in clinical use (alias 'production')."
    if v.status == "in_review" and viewer.role in CLINICAL_ROLES:
        return f"{v.name} v{v.version} waits for your review."
    if viewer.role == "data_scientist" and v.logged_by == viewer.username:
        return f"{v.name} v{v.version}, logged by you: {v.status_label.lower()}."
    return f"{v.name} v{v.version}: {v.status_label.lower()}."


def _rank(viewer: User, item: AttentionItem) -> int:
    if item.status_label.startswith("In clinical review") and viewer.role in CLINICAL_ROLES:
        return 0
    if "production" in item.aliases:
        return 1
    return 2
