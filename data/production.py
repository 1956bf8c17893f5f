"""The production prediction log of the model in clinical use, with the lab-assay shift.

Monitoring needs a shift it can be judged on: on day `shift_day` the lab switches
to lactate assay B, which reads 1.25 × + 0.3 mmol/L of the old assay A. The
patients do not change and neither do their outcomes, but the production model,
trained on assay A, sees higher lactate and flags more of them.

Models are loaded through `mlflow.pyfunc.load_model`, so this module runs only in
the CLI demo builder, never in the Streamlit server (docs/decisions/0002).
"""

from __future__ import annotations

from datetime import date

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from data.cohort import FEATURES, LABEL, SENSITIVE, generate_icu_cohort
from data.train import tracking


def score_with_registered_model(frame: pd.DataFrame, *, tracking_uri: str, model_name: str,
                                version: int) -> tuple[np.ndarray, float]:
    """(probability of the outcome for each row, the version's logged decision threshold)."""
    with tracking(tracking_uri):
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        run_id = str(client.get_model_version(model_name, str(version)).run_id)
        threshold = float(client.get_run(run_id).data.params["decision_threshold"])
        model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
        proba = np.asarray(model.predict(frame[FEATURES].astype("float64")))
    return (proba[:, 1] if proba.ndim == 2 else proba).astype(float), threshold


def generate_production_log(*, tracking_uri: str, model_name: str = "sepsis-icu", version: int = 1, seed: int,
                            start: date, days: int = 90, shift_day: int = 60, per_day: int = 220) -> pd.DataFrame:
    """`per_day × days` admissions over `days` days from `start`, scored at admission by the
    registered version; deterministic from `seed` (admissions spread at random, so a day holds
    about `per_day`)."""
    admissions = generate_icu_cohort(per_day * days, seed=seed, start=start, days=days,
                                     lactate_assay_change_day=shift_day, id_prefix="PRD")
    score, threshold = score_with_registered_model(admissions, tracking_uri=tracking_uri, model_name=model_name,
                                                   version=version)
    return pd.DataFrame({
        "encounter_id": admissions["encounter_id"],
        "predicted_at": admissions["admitted_at"],
        **{f: admissions[f] for f in FEATURES},
        "score": score,
        "decision": score >= threshold,
        "outcome": admissions[LABEL],
        **{s: admissions[s] for s in SENSITIVE},
        "lactate_assay": admissions["lactate_assay"],
    })
