"""Reading the production prediction log: daily volume, alert rate and outcomes.

The raw daily view; drift, performance per window and alerts are in core/services/monitoring.py.
"""

from __future__ import annotations

import pandas as pd

from core.adapters.store import Store
from core.domain import glossary
from core.domain.access import Permission, User, require


def logged_models(store: Store, viewer: User) -> list[str]:
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return [r["model_name"] for r in store.query("SELECT DISTINCT model_name FROM prediction_log ORDER BY 1")]


def daily_summary(store: Store, viewer: User, model_name: str) -> pd.DataFrame:
    """One row per day: predictions, share flagged, mean score, and the observed
    outcome rate among encounters whose outcome has arrived."""
    require(viewer, Permission.VIEW_PRODUCTION_LOG)
    return store.query_df(
        """
        SELECT CAST(date_trunc('day', p.predicted_at) AS DATE) AS day,
               p.model_version                                   AS version,
               count(*)                                          AS predictions,
               avg(CAST(CAST(p.decision AS INTEGER) AS DOUBLE)) AS flagged_share,
               avg(p.score)                                      AS mean_score,
               avg(CAST(l.outcome AS DOUBLE))                    AS outcome_rate,
               count(l.outcome)                                  AS labelled
        FROM prediction_log p
        LEFT JOIN outcome_labels l USING (model_name, encounter_id)
        WHERE p.model_name = ?
        GROUP BY 1, 2
        ORDER BY day
        """,
        [model_name],
    )


def daily_table(daily: pd.DataFrame) -> pd.DataFrame:
    """`daily_summary` as people read it: rates as 'n of 100', the mean risk as a percentage, the outcome rate
    '—' on days whose outcomes have not arrived (never 'None'), dates without times."""
    return pd.DataFrame({
        "Day": pd.to_datetime(daily["day"]).dt.strftime("%d %b %Y"),
        "Version": daily["version"].map(lambda v: f"v{int(v)}"),
        "Patients scored": daily["predictions"].astype(int),
        glossary.measure("flagged_share").name: daily["flagged_share"].map(glossary.per100),
        glossary.measure("mean_score").name: daily["mean_score"].map(lambda v: glossary.percent(v, places=1)),
        "Developed the outcome": daily["outcome_rate"].map(glossary.per100),
        "With the outcome known": daily["labelled"].astype(int),
    })
