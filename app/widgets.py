"""Widgets shared by several pages: the version pickers, which open where core's worklist rule says
(the version awaiting this person's action, else the one in production); ?model=…&version=… wins."""

from __future__ import annotations

import streamlit as st

from app import cache
from core.domain.access import User
from core.services import review, worklist
from core.services.submission import StoredEvaluation


def _asked() -> tuple[str | None, int | None]:
    """The model and version a link asked for (Home's "v2 waits for your review" carries both)."""
    model, version = st.query_params.get("model"), st.query_params.get("version")
    return model, int(version) if version and version.isdigit() else None


def choose_version(user: User, *, model_key: str, version_key: str, model_label: str = "Registered model",
                   version_label: str = "Version") -> tuple[str, worklist.VersionOption]:
    """A model and one of its versions, labelled in words ("v2 — awaits your review"), opening where core's
    worklist rule says unless a link asked for a version; stops the page when no model is registered. The widgets
    are driven through their session-state keys, so a link's choice or the default for a newly chosen model is
    applied once and the reader can then change it."""
    models = [m.name for m in cache.models(user)]
    if not models:
        st.info("No registered models yet.")
        st.stop()
    asked_model, asked_version = _asked()
    if asked_model not in models:
        asked_model, asked_version = None, None
    state = st.session_state
    link = (asked_model, asked_version)
    fresh_link = asked_model is not None and state.get(f"{version_key}-link") != link
    if fresh_link:
        state[f"{version_key}-link"] = link
        state[model_key] = asked_model
    if state.get(model_key) not in models:
        state[model_key] = _first_awaiting(user, models) or ("sepsis-icu" if "sepsis-icu" in models else models[0])
    left, right = st.columns(2)
    model = left.selectbox(model_label, models, key=model_key)
    menu = worklist.version_menu(cache.store(), cache.registry(), user, model,
                                 asked=asked_version if model == asked_model else None)
    labels = {o.version: o.label for o in menu.options}
    if fresh_link or state.get(f"{version_key}-of") != model or state.get(version_key) not in labels:
        state[f"{version_key}-of"] = model  # the version shown belongs to this model: a new model opens on its default
        state[version_key] = menu.default.version
    version = right.selectbox(version_label, list(labels), format_func=labels.__getitem__, key=version_key)
    return model, menu.option(int(version))


def _first_awaiting(user: User, models: list[str]) -> str | None:
    waiting = [o.model for o in worklist.waiting_for(cache.store(), cache.registry(), user)]
    return next((m for m in models if m in waiting), None)


def choose_evaluation(user: User, label: str = "Model version") -> tuple[review.EvaluatedVersion, StoredEvaluation]:
    """Pick an evaluated version, opening on the one awaiting this person's action, else the one in production,
    else the newest evaluated; stops the page with a hint when nothing was evaluated yet."""
    asked_model, asked_version = _asked()
    menu = worklist.evaluation_menu(cache.store(), cache.registry(), user, model=asked_model, version=asked_version)
    if not menu.evaluations:
        st.info("No version has been evaluated yet. A data scientist submits one on the Submit page or with "
                "`python -m core.cli submit`.")
        st.stop()
    choice = st.selectbox(label, menu.evaluations, index=menu.index, format_func=lambda e: f"{e.model} v{e.version}")
    return choice, review.evaluation_of(cache.store(), user, choice.evaluation_id)
