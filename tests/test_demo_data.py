"""The embedded demo's data: deterministic, honest, and with models that really show the bias."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset, Run
from mlflow.pyfunc import PyFuncModel
from sklearn.metrics import recall_score

from core.config import Settings
from core.services.installation import installation_facts, open_store
from data import cohort as cohort_module
from data.cohort import (
    ASSAY_B_OFFSET,
    ASSAY_B_SLOPE,
    FEATURES,
    LABEL,
    READMISSION_LABEL,
    SENSITIVE,
    cohort_digest,
    generate_icu_cohort,
    generate_readmission_cohort,
)
from data.production import generate_production_log
from data.train import HIST_TRUSTED_TYPES, TREE_TRUSTED_TYPES, LoggedVersion, _split, log_demo_models, tracking

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
START = date(2025, 1, 1)


def cohort(seed: int = 7, n: int = 20_000, lactate_assay_change_day: int | None = None) -> pd.DataFrame:
    """The demo's derivation-period cohort (core/services/demo.py builds it with these arguments)."""
    return generate_icu_cohort(n, seed=seed, start=START, days=365, lactate_assay_change_day=lactate_assay_change_day)


def logged_datasets(run: Run) -> dict[str, Dataset]:
    """The run's dataset inputs by context ("training", "evaluation")."""
    assert run.inputs is not None
    return {di.tags[0].value: di.dataset for di in run.inputs.dataset_inputs}


def logged_columns(dataset: Dataset) -> list[str]:
    return [c["name"] for c in json.loads(str(dataset.schema))["mlflow_colspec"]]


@dataclass(frozen=True)
class SmallRegistry:
    uri: str
    logged: list[LoggedVersion]


def build_small_registry(folder: Path, seed: int = 11) -> SmallRegistry:
    uri = f"sqlite:///{folder}/mlflow.db"
    logged = log_demo_models(
        tracking_uri=uri, artifact_root=folder / "artifacts", seed=seed, git_commit="0" * 40,
        cohort=cohort(seed, n=3_000),
        post_change_cohort=generate_icu_cohort(1_500, seed=seed + 1, start=date(2026, 1, 1), days=60,
                                               lactate_assay_change_day=0, id_prefix="ENCB"),
        readmission_cohort=generate_readmission_cohort(1_500, seed=seed + 2, start=START, days=365),
        charted_cohort=generate_icu_cohort(3_000, seed=seed, start=START, days=365, charted=True),
    )
    return SmallRegistry(uri, logged)


@pytest.fixture(scope="module")
def small_registry(tmp_path_factory: pytest.TempPathFactory) -> SmallRegistry:
    return build_small_registry(tmp_path_factory.mktemp("small-registry"))


def test_same_seed_same_digest_other_seed_other_digest() -> None:
    assert cohort_digest(cohort(7)) == cohort_digest(cohort(7))
    assert cohort_digest(cohort(7)) != cohort_digest(cohort(8))
    assert cohort_digest(generate_readmission_cohort(500, seed=1, start=START, days=30)) == cohort_digest(
        generate_readmission_cohort(500, seed=1, start=START, days=30))


def test_prevalence_is_realistic() -> None:
    assert 0.10 <= cohort()[LABEL].mean() <= 0.14
    assert 0.12 <= generate_readmission_cohort(8_000, seed=9, start=START, days=365)[READMISSION_LABEL].mean() <= 0.18


def test_pulse_oximetry_bias_is_in_the_measurements_not_the_outcome() -> None:
    df = cohort()
    error = (df["spo2"] - df["sao2_true"]).groupby(df["race_ethnicity"]).mean()
    assert error["Black"] >= 2.0
    assert abs(error["White"]) < 0.3
    occult = ((df["sao2_true"] < 88) & (df["spo2"] >= 92)).groupby(df["race_ethnicity"]).mean()
    assert occult["Black"] > occult["White"]  # hypoxaemia hidden by the oximeter more often for Black patients
    hypoxaemic = df[df["sao2_true"] < 88]
    masked = (hypoxaemic["spo2"] >= 92).groupby(hypoxaemic["race_ethnicity"]).mean()
    assert masked["Black"] > masked["White"] + 0.1
    prevalence = df.groupby("race_ethnicity")[LABEL].mean()
    assert prevalence.max() - prevalence.min() < 0.03  # the outcome itself has no race term


def test_lactate_assay_change_applies_from_its_day_only() -> None:
    before = cohort(7)
    after = cohort(7, lactate_assay_change_day=200)
    changed = ((after["admitted_at"] - pd.Timestamp(START)).dt.days >= 200).to_numpy()
    assert 0 < changed.sum() < len(after)
    unchanged_columns = [c for c in after.columns if c not in ("lactate", "lactate_assay")]
    pd.testing.assert_frame_equal(after[unchanged_columns], before[unchanged_columns])  # same patients
    assert (after.loc[~changed, "lactate"] == before.loc[~changed, "lactate"]).all()
    expected = ASSAY_B_SLOPE * before.loc[changed, "lactate"] + ASSAY_B_OFFSET
    assert np.allclose(after.loc[changed, "lactate"], expected, atol=0.011)  # both are rounded to 0.01
    assert set(after.loc[changed, "lactate_assay"]) == {"B"} and set(after.loc[~changed, "lactate_assay"]) == {"A"}


def test_log_demo_models_registers_every_version_with_production_on_v1(small_registry: SmallRegistry) -> None:
    client = MlflowClient(small_registry.uri)
    assert [(v.model_name, v.version) for v in small_registry.logged] == [
        ("sepsis-icu", 1), ("sepsis-icu", 2), ("sepsis-icu", 3), ("readmission-30d", 1), ("sepsis-icu-charted", 1)]
    assert "production" not in client.get_registered_model("sepsis-icu-charted").aliases  # a candidate
    for name in ("sepsis-icu", "readmission-30d"):
        registered = client.get_registered_model(name)
        assert {k: str(v) for k, v in registered.aliases.items()} == {"production": "1"}
        assert registered.description
    for logged in small_registry.logged:
        mv = client.get_model_version(logged.model_name, str(logged.version))
        run = client.get_run(str(mv.run_id))
        assert mv.description and run.data.tags["mlflow.user"] == "lee"
        assert run.data.tags["mlflow.source.git.commit"] == "0" * 40 and run.data.tags["modelboard.demo"] == "true"
        assert 0 < float(run.data.params["decision_threshold"]) < 1
        inputs = logged_datasets(run)
        assert set(inputs) == {"training", "evaluation"} and all(d.digest for d in inputs.values())
        assert not any("sao2_true" in logged_columns(d) for d in inputs.values())
        assert set(SENSITIVE) <= set(logged_columns(inputs["evaluation"]))


def test_every_version_loads_back_through_pyfunc_with_its_trusted_types(small_registry: SmallRegistry) -> None:
    patients = cohort(5, n=200)
    charted = generate_icu_cohort(200, seed=5, start=START, days=30, charted=True)
    discharges = generate_readmission_cohort(200, seed=5, start=START, days=30)
    expected_types = {"gradient_boosting": TREE_TRUSTED_TYPES, "hist_gradient_boosting": HIST_TRUSTED_TYPES}
    with tracking(small_registry.uri):
        for logged in small_registry.logged:
            uri = f"models:/{logged.model_name}/{logged.version}"
            trusted = mlflow.models.get_model_info(uri).flavors["sklearn"]["skops_trusted_types"]
            assert trusted == expected_types.get(logged.algorithm, [])
            model = mlflow.pyfunc.load_model(uri)
            frame = {"sepsis-icu": patients, "sepsis-icu-charted": charted}.get(logged.model_name, discharges)
            inputs = [spec.name for spec in model.metadata.get_input_schema().inputs]
            typed = frame[inputs].astype({c: "float64" for c in inputs if c != "admission_source"})
            proba = np.asarray(model.predict(typed))
            if logged.model_name == "sepsis-icu-charted":  # logged without pyfunc_predict_fn: predict gives classes
                assert proba.shape == (200,) and set(np.unique(proba)) <= {0, 1}
                proba = mlflow.sklearn.load_model(uri).predict_proba(typed)
            assert proba.shape == (200, 2) and ((proba >= 0) & (proba <= 1)).all()
            assert np.allclose(proba.sum(axis=1), 1.0)


def test_the_charted_cohort_is_the_same_patients_with_lactate_missing_more_for_black_patients() -> None:
    plain, charted = cohort(7, n=20_000), generate_icu_cohort(20_000, seed=7, start=START, days=365, charted=True)
    assert plain.drop(columns="lactate").equals(charted.drop(columns=["lactate", "admission_source"]))
    measured = charted["lactate"].notna()
    assert (charted.loc[measured, "lactate"] == plain.loc[measured, "lactate"]).all()
    missing = charted["lactate"].isna().groupby(charted["race_ethnicity"]).mean()
    assert missing["Black"] > missing["White"] + 0.15  # the disparity the demo's Fairness page shows
    assert set(charted["admission_source"]) == {"emergency department", "ward", "operating theatre",
                                                "other hospital"}


def test_training_and_production_log_are_deterministic_and_shift_on_their_day(
        small_registry: SmallRegistry, tmp_path: Path) -> None:
    again = build_small_registry(tmp_path)
    assert [v.validation_auroc for v in again.logged] == [v.validation_auroc for v in small_registry.logged]
    logs = [generate_production_log(tracking_uri=r.uri, seed=3, start=date(2026, 6, 1), per_day=40)
            for r in (small_registry, again)]
    assert cohort_digest(logs[0]) == cohort_digest(logs[1])
    log = logs[0]
    assert len(log) == 90 * 40 and log["encounter_id"].is_unique
    assert {"encounter_id", "predicted_at", "score", "decision", "outcome", *FEATURES, *SENSITIVE} <= set(log)
    after = ((log["predicted_at"] - pd.Timestamp("2026-06-01")).dt.days >= 60).to_numpy()
    assert set(log.loc[after, "lactate_assay"]) == {"B"} and set(log.loc[~after, "lactate_assay"]) == {"A"}
    # The same patients had the lab never changed assay: same outcomes, higher scores only from day 60.
    unchanged = generate_production_log(tracking_uri=small_registry.uri, seed=3, start=date(2026, 6, 1), per_day=40,
                                        shift_day=90)
    assert (unchanged["outcome"] == log["outcome"]).all()
    assert (log.loc[~after, "score"] == unchanged.loc[~after, "score"]).all()
    assert (log.loc[after, "score"] > unchanged.loc[after, "score"]).all()
    assert log.loc[after, "decision"].sum() > unchanged.loc[after, "decision"].sum()


def test_tracking_puts_back_the_process_wide_uris(tmp_path: Path) -> None:
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    with tracking(f"sqlite:///{tmp_path}/other.db"):
        assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path}/other.db"
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before


def _validation_cohort(client: MlflowClient, version: str) -> pd.DataFrame:
    """Rebuild the full-size validation cohort and prove it is the one logged with the run (same digest)."""
    _, validation = _split(cohort(7), LABEL, 7)
    run = client.get_run(str(client.get_model_version("sepsis-icu", version).run_id))
    logged = logged_datasets(run)["evaluation"]
    assert from_pandas(validation[logged_columns(logged)], targets=LABEL).digest == logged.digest
    return validation


def _sensitivity_by_race(model: PyFuncModel, threshold: float, frame: pd.DataFrame) -> dict[str, float]:
    flagged = np.asarray(model.predict(frame[FEATURES].astype("float64")))[:, 1] >= threshold
    return {group: float(recall_score(frame[LABEL][mask], flagged[mask.to_numpy()]))
            for group, mask in ((g, frame["race_ethnicity"] == g) for g in ("Black", "White"))}


def test_demo_v1_misses_more_black_patients_because_of_the_oximeter(demo_settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(demo_settings.tracking_uri)
    validation = _validation_cohort(client, "1")
    with tracking(demo_settings.tracking_uri):
        model = mlflow.pyfunc.load_model("models:/sepsis-icu/1")
    run = client.get_run(str(client.get_model_version("sepsis-icu", "1").run_id))
    threshold = float(run.data.params["decision_threshold"])
    recall = _sensitivity_by_race(model, threshold, validation)
    assert recall["Black"] < recall["White"] - 0.08
    flagged = np.asarray(model.predict(validation[FEATURES].astype("float64")))[:, 1] >= threshold
    assert recall_score(validation[LABEL], flagged) == pytest.approx(run.data.metrics["val_sensitivity"])
    # The same patients measured by an unbiased oximeter: the gap closes, so the oximeter caused it.
    monkeypatch.setattr(cohort_module, "OXIMETER_BIAS", dict.fromkeys(cohort_module.OXIMETER_BIAS, 0.0))
    _, unbiased = _split(cohort(7), LABEL, 7)
    fair = _sensitivity_by_race(model, threshold, unbiased)
    assert fair["Black"] > recall["Black"] + 0.08 and abs(fair["Black"] - fair["White"]) < 0.05


def test_demo_registry_is_what_the_readme_says(demo_settings: Settings) -> None:
    client = MlflowClient(demo_settings.tracking_uri)
    algorithms = {}
    for version in ("1", "2", "3"):
        run = client.get_run(str(client.get_model_version("sepsis-icu", version).run_id))
        algorithms[version] = (run.data.params["algorithm"], run.data.params["lactate_assay"])
    assert algorithms == {"1": ("logistic_regression", "A"), "2": ("gradient_boosting", "A"),
                          "3": ("gradient_boosting", "B")}


def test_demo_production_log_shifts_on_day_60(demo_settings: Settings) -> None:
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
