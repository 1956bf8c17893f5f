"""Widgets shared by several pages."""

from __future__ import annotations

import streamlit as st

from app import cache
from core.domain.access import User
from core.services import review
from core.services.submission import StoredEvaluation


def choose_evaluation(user: User, label: str = "Model version") -> tuple[review.EvaluatedVersion, StoredEvaluation]:
    """Pick an evaluated version; stops the page with a hint when nothing was evaluated yet."""
    evaluated = review.evaluated_versions(cache.store(), user)
    if not evaluated:
        st.info("No version has been evaluated yet. A data scientist submits one on the Submit page or with "
                "`python -m core.cli submit`.")
        st.stop()
    choice = st.selectbox(label, evaluated, format_func=lambda e: f"{e.model} v{e.version}")
    return choice, review.evaluation_of(cache.store(), user, choice.evaluation_id)
