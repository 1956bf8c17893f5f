"""Browsing registered models: what each role may see of the MLflow registry."""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.domain.access import CLINICAL_ROLES, Permission, User, require
from core.domain.models import ModelVersionDetail, ModelVersionSummary, RegisteredModelSummary
from core.services import signoff, worklist


@dataclass(frozen=True)
class AttentionItem:
    """One line of the Home page's "needs your attention" list."""

    model: str
    version: int
    headline: str
    status_label: str
    aliases: tuple[str, ...]
    awaits_you: bool = False  # evaluated, and the viewer may sign it now (core.services.worklist)
    never_reviewed: bool = False  # in production, and no one has signed it in ModelBoard


def list_models(registry: Registry, viewer: User) -> list[RegisteredModelSummary]:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.list_models()


def list_versions(registry: Registry, viewer: User, model: str) -> list[ModelVersionSummary]:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.list_versions(model)


def version_detail(registry: Registry, viewer: User, model: str, version: int) -> ModelVersionDetail:
    require(viewer, Permission.VIEW_REGISTRY)
    return registry.get_version(model, version)


def attention_items(registry: Registry, viewer: User, store: Store | None = None) -> list[AttentionItem]:
    """What the viewer should look at first, worded for their role: the versions that wait for the viewer's own
    signature first (with the governance store; without it, clinicians see every version in review first), then
    the versions in production, saying plainly when one was never reviewed in ModelBoard."""
    require(viewer, Permission.VIEW_REGISTRY)
    waiting = {(o.model, o.version) for o in worklist.waiting_for(store, registry, viewer)} if store else None
    items = []
    for model in registry.list_models():
        for v in registry.list_versions(model.name):
            awaits = (v.name, v.version) in waiting if waiting is not None else (
                v.status == "in_review" and viewer.role in CLINICAL_ROLES)
            unsigned = store is not None and "production" in v.aliases and not any(
                s.kind == "sign_off" for s in signoff.signatures_for(store, viewer, v.name, v.version))
            label = "In clinical use, never reviewed in ModelBoard" if unsigned and v.status == "registered" \
                else v.status_label
            items.append(AttentionItem(v.name, v.version, _headline(viewer, v, awaits, unsigned), label, v.aliases,
                                       awaits, unsigned))
    return sorted(items, key=lambda i: (_rank(i), i.model, -i.version))


def _headline(viewer: User, v: ModelVersionSummary, awaits: bool, unsigned: bool) -> str:
    if unsigned:
        return f"{v.name} v{v.version} is in clinical use but never reviewed in ModelBoard: no one has signed it."
    if "production" in v.aliases:
        return f"{v.name} v{v.version} is the version in clinical use (alias 'production')."
    if awaits:
        return f"{v.name} v{v.version} waits for your review."
    if viewer.role == "data_scientist" and v.logged_by == viewer.username:
        return f"{v.name} v{v.version}, logged by you: {v.status_label.lower()}."
    return f"{v.name} v{v.version}: {v.status_label.lower()}."


def _rank(item: AttentionItem) -> int:
    if item.awaits_you:
        return 0
    if "production" in item.aliases:
        return 1
    return 2
