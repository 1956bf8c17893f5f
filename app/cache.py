"""The only st.cache_* calls: the store and registry per MODELBOARD_HOME, and
short-lived read models so a page renders from memory, not from MLflow."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.config import Settings, load_settings
from core.domain.access import User
from core.domain.glossary import Glossary
from core.domain.model_card import ModelCard
from core.domain.models import ModelVersionDetail, ModelVersionSummary, RegisteredModelSummary
from core.services import audit, catalog, model_card, monitoring, promotion, review, usecases
from core.services.drift_report import DriftReport
from core.services.installation import InstallationFacts, installation_facts, open_registry, open_store

READ_TTL_S = 30
CARD_TTL_S = 300


def settings() -> Settings:
    return load_settings()


def _installation(s: Settings) -> str:
    """What identifies an installation in cache keys: its folder and, in a hospital, its database."""
    return f"{s.home}|{s.database_url or ''}"


@st.cache_resource(show_spinner=False)
def _store(installation: str) -> Store:
    return open_store(settings())


@st.cache_resource(show_spinner=False)
def _registry(tracking_uri: str, registry_uri: str) -> Registry:
    return open_registry(settings())


def store() -> Store:
    return _store(_installation(settings()))


def revision() -> int:
    """The store's revision, read on each use: reads cached under it are dropped as soon as any process or app
    replica writes to the store (a signature, a promotion, an alert), not after their TTL."""
    return audit.store_revision(store())


def registry() -> Registry:
    s = settings()
    return _registry(s.tracking_uri, s.registry_uri)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def _facts(installation: str, revision: int) -> InstallationFacts:
    return installation_facts(store())


def facts() -> InstallationFacts:
    """Read on every rerun (the DEMO banner), so kept while the store is unchanged rather than read each time."""
    return _facts(_installation(settings()), revision())


@st.cache_data(ttl=READ_TTL_S, show_spinner="Reading the model registry…")
def _models(viewer: User, tracking_uri: str, revision: int) -> list[RegisteredModelSummary]:
    return catalog.list_models(registry(), viewer)


@st.cache_data(ttl=READ_TTL_S, show_spinner="Reading model versions…")
def _versions(viewer: User, tracking_uri: str, model: str, revision: int) -> list[ModelVersionSummary]:
    return catalog.list_versions(registry(), viewer, model)


@st.cache_data(ttl=READ_TTL_S, show_spinner="Reading the version's run…")
def _version_detail(viewer: User, tracking_uri: str, model: str, version: int,
                    revision: int) -> ModelVersionDetail:
    return catalog.version_detail(registry(), viewer, model, version)


@st.cache_data(ttl=READ_TTL_S, show_spinner="Reading the model registry…")
def _attention(viewer: User, tracking_uri: str, revision: int) -> list[catalog.AttentionItem]:
    return catalog.attention_items(registry(), viewer, store())


# The tracking URI is part of each cache key, so two installations never share reads; the store's revision, so
# that a write by another replica (a promotion moving an alias, a signature) is seen on the next rerun.
def models(viewer: User) -> list[RegisteredModelSummary]:
    return _models(viewer, settings().tracking_uri, revision())


def versions(viewer: User, model: str) -> list[ModelVersionSummary]:
    return _versions(viewer, settings().tracking_uri, model, revision())


def version_detail(viewer: User, model: str, version: int) -> ModelVersionDetail:
    return _version_detail(viewer, settings().tracking_uri, model, version, revision())


def attention(viewer: User) -> list[catalog.AttentionItem]:
    return _attention(viewer, settings().tracking_uri, revision())


# A card is assembled from MLflow (slow) and DuckDB (fast): it is reused while the DuckDB parts it depends on
# (core's card_revision) are unchanged; the TTL bounds how long an MLflow-side change (an alias) can go unseen.
# The card does not depend on who reads it, so it is shared between viewers (`_viewer` is left out of the
# cache key); card_revision, called with the real viewer first, is where each read's permission is checked.
@st.cache_data(ttl=CARD_TTL_S, show_spinner="Assembling the model card…")
def _card(_viewer: User, tracking_uri: str, model: str, version: int, revision: str) -> ModelCard:
    return model_card.build_card(store(), registry(), _viewer, model, version)


@st.cache_data(ttl=CARD_TTL_S, show_spinner="Comparing with the card of the version in production…")
def _card_changes(_viewer: User, tracking_uri: str, model: str, version: int,
                  revision: str) -> tuple[int | None, list[dict[str, str]]]:
    return model_card.changes_since_production(store(), registry(), _viewer, model, version)


def card(viewer: User, model: str, version: int) -> ModelCard:
    revision = model_card.card_revision(store(), viewer, model, version)
    return _card(viewer, settings().tracking_uri, model, version, revision)


def card_changes(viewer: User, model: str, version: int) -> tuple[int | None, list[dict[str, str]]]:
    production = registry().version_for_alias(model, "production")
    revision = "/".join(model_card.card_revision(store(), viewer, model, v) for v in {version, production or version})
    return _card_changes(viewer, settings().tracking_uri, model, version, f"{production}:{revision}")


# An evaluation's stored per-patient scores never change, so the explorer's view of them can be kept.
@st.cache_data(ttl=CARD_TTL_S, max_entries=200, show_spinner="Recounting at the new threshold…")
def _threshold_view(viewer: User, home: str, evaluation_id: str, threshold: float, min_n: int, attribute_set: str,
                    outcome: str) -> review.ThresholdView | None:
    return review.threshold_view(store(), viewer, evaluation_id, threshold=threshold, min_n=min_n,
                                 attribute_set=attribute_set, outcome=outcome)


def threshold_view(viewer: User, evaluation_id: str, *, threshold: float, min_n: int, attribute_set: str,
                   outcome: str) -> review.ThresholdView | None:
    return _threshold_view(viewer, _installation(settings()), evaluation_id, threshold, min_n, attribute_set, outcome)


# -- monitoring -------------------------------------------------------------------------------------------------------
@st.cache_data(ttl=CARD_TTL_S, show_spinner="Reading the window's predictions…", max_entries=8)
def _window_inputs(viewer: User, home: str, model: str, version: int, start: datetime,
                   end: datetime) -> monitoring.WindowComparison:
    return monitoring.window_comparison(store(), registry(), viewer, model, version, start, end)


def window_inputs(viewer: User, model: str, version: int, start: datetime,
                  end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    found = _window_inputs(viewer, _installation(settings()), model, version, start, end)
    return found.reference, found.current


@st.cache_data(ttl=CARD_TTL_S, show_spinner=False, max_entries=4)
def _evidently_report(viewer: User, home: str, model: str, version: int, start: datetime,
                      end: datetime) -> DriftReport:
    return monitoring.window_drift_report(_window_inputs(viewer, home, model, version, start, end))


def evidently_report(viewer: User, model: str, version: int, start: datetime, end: datetime) -> DriftReport:
    return _evidently_report(viewer, _installation(settings()), model, version, start, end)


def clear_reads() -> None:
    for fn in (_models, _versions, _version_detail, _attention, _card, _card_changes):
        fn.clear()


# -- governance checks ---------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Finishing any interrupted promotion…")
def _reconciled_at_start(home: str) -> list[promotion.Finding]:
    """Once per server process: finish or roll back promotions a crash left half done (ModelBoard acts as
    itself here, not as the first person who happens to open a page)."""
    return promotion.reconcile(settings(), store(), registry(), promotion.SYSTEM)


def reconcile_at_start() -> list[promotion.Finding]:
    return _reconciled_at_start(_installation(settings()))


@st.cache_data(ttl=15, show_spinner=False)
def _alias_findings(home: str, tracking_uri: str) -> list[promotion.Finding]:
    return promotion.check_aliases(settings(), store(), registry(), promotion.SYSTEM)


def alias_findings() -> list[promotion.Finding]:
    """Aliases moved outside ModelBoard, checked on page loads (at most every 15 s per server)."""
    return _alias_findings(_installation(settings()), settings().tracking_uri)


@st.cache_data(ttl=CARD_TTL_S, show_spinner="Re-checking the production models' files…")
def _artifact_findings(home: str, tracking_uri: str) -> list[promotion.Finding]:
    return promotion.verify_artifacts(store(), registry(), promotion.SYSTEM)


def artifact_findings() -> list[promotion.Finding]:
    """Locked-model check for the Home page: each production version's files against the recorded hash."""
    return _artifact_findings(_installation(settings()), settings().tracking_uri)


def clear_governance() -> None:
    for fn in (_alias_findings, _artifact_findings):
        fn.clear()


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def _glossary(viewer: User, home: str, model: str) -> Glossary:
    return usecases.glossary_for_model(store(), viewer, model)


def glossary(viewer: User, model: str) -> Glossary:
    """The vocabulary of a model's use case (input names and units), for every table and chart on its pages."""
    return _glossary(viewer, _installation(settings()), model)
