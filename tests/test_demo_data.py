"""The embedded demo: deterministic, honest data, and models that really show the bias."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from sklearn.metrics import recall_score

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.services.demo import build_demo
from core.services.installation import installation_facts, open_store
from data.cohort import ASSAY_B_OFFSET, ASSAY_B_SLOPE, FEATURES, LABEL, cohort_digest, generate_icu_cohort
from data.train import tracking

START = date(2025, 1, 1)


def cohort(seed: int = 7, **kwargs: int) -> pd.DataFrame:
    return generate_icu_cohort(20_000, seed=seed, start=START, days=365, **kwargs)


def test_same_seed_same_digest_other_seed_other_digest() -> None:
    assert cohort_digest(cohort(7)) == cohort_digest(cohort(7))
    assert cohort_digest(cohort(7)) != cohort_digest(cohort(8))


def test_whole_demo_is_deterministic(demo_settings: Settings, tmp_path: Path) -> None:
    again = load_settings(env={}, home=tmp_path / "again")
    summary = build_demo(again, command_line_operator("pytest"), seed=7)
    first = {r["key"]: r["value"] for r in open_store(demo_settings).query("SELECT * FROM installation")}
    assert summary.cohort_digest == first["demo_cohort_digest"]
    assert summary.production_log_digest == first["demo_log_digest"]


def test_prevalence_is_realistic() -> None:
    assert 0.08 <= cohort()[LABEL].mean() <= 0.16


def test_pulse_oximetry_bias_is_in_the_measurements_not_the_outcome() -> None:
    df = cohort()
    error = (df["spo2"] - df["sao2_true"]).groupby(df["race_ethnicity"]).mean()
    assert error["Black"] >= 2.0
    assert abs(error["White"]) < 0.3
    low = df[df["sao2_true"] < 92]
    masked = (low["spo2"] >= 94).groupby(low["race_ethnicity"]).mean()
    assert masked["Black"] > 2 * masked["White"]  # hypoxaemia hidden more often for Black patients
    prevalence = df.groupby("race_ethnicity")[LABEL].mean()
    assert prevalence.max() - prevalence.min() < 0.03  # the outcome itself has no race term


def test_lactate_assay_change_applies_from_its_day_only() -> None:
    before = cohort(7)
    after = cohort(7, lactate_assay_change_day=200)
    day = (after["admitted_at"] - pd.Timestamp(START)).dt.days
    changed = day >= 200
    assert (after.loc[~changed, "lactate"] == before.loc[~changed, "lactate"]).all()
    expected = (ASSAY_B_SLOPE * before.loc[changed, "lactate"] + ASSAY_B_OFFSET).round(2)
    assert np.allclose(after.loc[changed, "lactate"], expected, atol=0.011)
    assert set(after.loc[changed, "lactate_assay"]) == {"B"}


def test_demo_registry_is_what_the_readme_says(demo_settings: Settings) -> None:
    client = MlflowClient(demo_settings.tracking_uri)
    assert {k: str(v) for k, v in client.get_registered_model("sepsis-icu").aliases.items()} == {"production": "1"}
    assert {k: str(v) for k, v in client.get_registered_model("readmission-30d").aliases.items()} == {"production": "1"}
    algorithms = {}
    for version in ("1", "2", "3"):
        mv = client.get_model_version("sepsis-icu", version)
        run = client.get_run(str(mv.run_id))
        algorithms[version] = (run.data.params["algorithm"], run.data.params["lactate_assay"])
        contexts = {tag.value for di in run.inputs.dataset_inputs for tag in di.tags}
        assert contexts == {"training", "evaluation"}
        assert all(di.dataset.digest for di in run.inputs.dataset_inputs)
    assert algorithms == {"1": ("logistic_regression", "A"), "2": ("gradient_boosting", "A"),
                          "3": ("gradient_boosting", "B")}


def _validation_cohort(client: MlflowClient, version: str) -> pd.DataFrame:
    """Rebuild the validation cohort and prove it is the one logged with the run (same digest)."""
    from data.train import _split

    _, validation = _split(cohort(7), LABEL, 7)
    run = client.get_run(str(client.get_model_version("sepsis-icu", version).run_id))
    [logged] = [di.dataset for di in run.inputs.dataset_inputs if di.tags[0].value == "evaluation"]
    columns = [c["name"] for c in json.loads(logged.schema)["mlflow_colspec"]]
    assert from_pandas(validation[columns], targets=LABEL).digest == logged.digest
    return validation


def test_models_load_through_pyfunc_and_miss_more_black_patients(demo_settings: Settings) -> None:
    client = MlflowClient(demo_settings.tracking_uri)
    validation = _validation_cohort(client, "1")
    with tracking(demo_settings.tracking_uri):
        model = mlflow.pyfunc.load_model("models:/sepsis-icu/1")
    score = np.asarray(model.predict(validation[FEATURES].astype("float64")))[:, 1]
    assert ((score >= 0) & (score <= 1)).all()
    run = client.get_run(str(client.get_model_version("sepsis-icu", "1").run_id))
    flagged = score >= float(run.data.params["decision_threshold"])
    recall = {group: recall_score(validation[LABEL][mask], flagged[mask.to_numpy()])
              for group, mask in ((g, validation["race_ethnicity"] == g) for g in ("Black", "White"))}
    assert recall["Black"] < recall["White"] - 0.04
    assert recall_score(validation[LABEL], flagged) == pytest.approx(run.data.metrics["val_sensitivity"])


def test_production_log_shifts_on_day_60(demo_settings: Settings) -> None:
    store = open_store(demo_settings)
    assert installation_facts(store).is_demo
    daily = store.query_df("""
        SELECT date_diff('day', DATE '2026-06-01', CAST(predicted_at AS DATE)) AS day,
               avg(CAST(json_extract(features, '$.lactate') AS DOUBLE)) AS lactate,
               avg(CAST(decision AS DOUBLE)) AS flagged, count(*) AS n
        FROM prediction_log GROUP BY 1 ORDER BY 1""")
    assert len(daily) == 90 and daily["n"].sum() == 90 * 220
    before, after = daily[daily["day"] < 60], daily[daily["day"] >= 60]
    assert after["lactate"].min() > before["lactate"].max()
    assert after["flagged"].mean() > before["flagged"].mean() + 0.03
