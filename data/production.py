"""The production prediction log of the model in clinical use, with the lab-assay shift.

The lab switches its lactate assay on day `shift_day`: from then on the same
patients' lactate reads 1.25 × + 0.3 mmol/L, and the production model, trained
on the old assay, scores them higher. Outcomes are unchanged by the assay.
"""

from __future__ import annotations

from datetime import date

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from data.cohort import FEATURES, LABEL, SENSITIVE, generate_icu_cohort
from data.train import tracking


def generate_production_log(*, tracking_uri: str, seed: int, start: date, model_name: str = "sepsis-icu",
                            version: int = 1, days: int = 90, shift_day: int = 60,
                            per_day: int = 220) -> pd.DataFrame:
    """Admissions over `days` days scored by the registered version, deterministic from `seed`."""
    admissions = generate_icu_cohort(per_day * days, seed=seed, start=start, days=days,
                                     lactate_assay_change_day=shift_day, id_prefix="PRD")
    with tracking(tracking_uri):
        client = MlflowClient(tracking_uri)
        run_id = str(client.get_model_version(model_name, str(version)).run_id)
        threshold = float(client.get_run(run_id).data.params["decision_threshold"])
        model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
        proba = np.asarray(model.predict(admissions[FEATURES].astype("float64")))
    score = proba[:, 1] if proba.ndim == 2 else proba
    return pd.DataFrame({
        "encounter_id": admissions["encounter_id"],
        "predicted_at": admissions["admitted_at"],
        **{f: admissions[f] for f in FEATURES},
        "score": score.astype(float),
        "decision": score >= threshold,
        "outcome": admissions[LABEL],
        **{s: admissions[s] for s in SENSITIVE},
        "lactate_assay": admissions["lactate_assay"],
    })
