"""Models logged every common way, on a hospital's own data, submitted through the CLI — every number checked.

The installation here is not the demo: a fresh governance store and MLflow store, use cases of the
hospital's own, a ward cohort with missing values, text categories, flags and skewed groups
(tests/hospital.py), and binary classifiers fitted and logged with the plain MLflow API in each way data
scientists do. For every one, the evaluation ModelBoard stores must equal scikit-learn and fairlearn
computed directly from the fitted estimator on the same rows of the same file, to 1e-9.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from core.config import Settings, load_settings
from core.domain.access import command_line_operator
from core.errors import ModelBoardError
from core.services.installation import open_registry, open_store
from core.services.submission import StoredEvaluation, SubmissionRequest, submit_version
from core.services.usecases import import_use_case
from tests.hospital import (
    COMPLETE_NUMBERS,
    LABEL,
    MIXED,
    NAMED_LABEL,
    NUMBERS,
    POSITIVE,
    SENSITIVE,
    DecisionWrapper,
    RiskWrapper,
    as_extract,
    log_run,
    use_case,
    ward_cohort,
)

REPO = Path(__file__).resolve().parents[2]
THRESHOLD = 0.2
TOLERANCE = 1e-9
CASES = ("sklearn-default", "sklearn-predict-proba", "sklearn-column-transformer", "custom-pyfunc",
         "input-example-no-signature", "xgboost", "lightgbm")


@dataclass(frozen=True)
class Hospital:
    settings: Settings
    train: pd.DataFrame
    evaluation: pd.DataFrame
    eval_path: Path


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Hospital:
    folder = tmp_path_factory.mktemp("hospital")
    settings = load_settings(env={}, home=folder / "home")
    store = open_store(settings)
    operator = command_line_operator("pytest")
    models = [f"ward-{case}" for case in CASES] + ["ward-refused", "ward-no-missing", "ward-disagrees"]
    criteria = "criteria: {min_auroc: 0.6, min_subgroup_n: 100}\n"
    import_use_case(store, operator, use_case("ward-deterioration", models, threshold=THRESHOLD, extra=criteria))
    import_use_case(store, operator, use_case("ward-deterioration-named", ["ward-named-classes"], label=NAMED_LABEL,
                                              threshold=THRESHOLD, extra=criteria + f"positive_class: {POSITIVE}\n"))
    train = as_extract(ward_cohort(3_000, seed=1), folder / "train.csv")
    eval_path = folder / "evaluation.csv"
    evaluation = as_extract(ward_cohort(2_500, seed=2), eval_path)
    return Hospital(settings, train, evaluation, eval_path)


def submit(h: Hospital, model: str, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core.cli", "submit", "--model", model, "--run", run_id,
                           "--eval-data", str(h.eval_path), "--home", str(h.settings.home), "--json", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def stored_scores(h: Hospital, evaluation_id: str) -> np.ndarray:
    rows = open_store(h.settings).query_df("SELECT score FROM evaluation_rows WHERE evaluation_id = ? "
                                           "ORDER BY row_index", [evaluation_id])
    return rows["score"].to_numpy(float)


def _log(h: Hospital, case: str, fit_and_log: Callable[[], Any]) -> tuple[str, Any]:
    fitted: dict[str, Any] = {}

    def inside_run() -> None:
        fitted["model"] = fit_and_log()

    run_id = log_run(h.settings.tracking_uri, "ward-deterioration", h.settings.artifact_root, inside_run)
    return run_id, fitted["model"]


def fit_case(h: Hospital, case: str) -> tuple[str, Any, list[str]]:
    """Fit and log one model the way the case says; return (run id, the fitted estimator, its inputs)."""
    y = h.train[LABEL]

    def numbers_with_gaps() -> Any:
        X = h.train[NUMBERS]
        model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
        trusted = ["numpy.dtype"]  # what MLflow's own error asks for when a SimpleImputer is saved with skops
        example = X.head(20)
        assert example["lactate"].isna().any()
        if case == "sklearn-default":  # as MLflow's docs show it: MLflow infers the signature from the example
            mlflow.sklearn.log_model(model, name="model", input_example=example, skops_trusted_types=trusted)
        else:  # no signature at all: ModelBoard reads the columns from the input example
            mlflow.sklearn.log_model(model, name="model", input_example=example, signature=False,
                                     skops_trusted_types=trusted)
        return model

    def forest() -> Any:
        X = h.train[NUMBERS]
        model = RandomForestClassifier(n_estimators=60, min_samples_leaf=20, random_state=0).fit(X, y)
        signature = mlflow.models.infer_signature(X, model.predict_proba(X))
        mlflow.sklearn.log_model(model, name="model", signature=signature, pyfunc_predict_fn="predict_proba",
                                 skops_trusted_types=["sklearn.tree._tree.Tree"])
        return model

    def column_transformer() -> Any:
        X = h.train[MIXED]
        prepare = ColumnTransformer([("numbers", "passthrough", NUMBERS + ["on_oxygen"]),
                                     ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
        model = Pipeline([("prepare", prepare), ("model", HistGradientBoostingClassifier(random_state=0))]).fit(X, y)
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                 signature=mlflow.models.infer_signature(X, model.predict_proba(X)))
        return model

    def custom() -> Any:  # its own pyfunc around a pipeline that takes the text column and missing values
        X = h.train[MIXED]
        prepare = ColumnTransformer([("numbers", SimpleImputer(), NUMBERS + ["on_oxygen"]),
                                     ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
        model = make_pipeline(prepare, LogisticRegression(max_iter=1000)).fit(X, y)
        mlflow.pyfunc.log_model(name="model", python_model=RiskWrapper(model, MIXED), input_example=X.head(20))
        return model

    def boosted(flavor: str) -> Any:
        import lightgbm
        import xgboost

        X = h.train[NUMBERS]
        if flavor == "xgboost":
            model = xgboost.XGBClassifier(n_estimators=80, max_depth=3).fit(X, y)
            mlflow.xgboost.log_model(model, name="model", input_example=X.head(20))
        else:
            model = lightgbm.LGBMClassifier(n_estimators=80, verbose=-1).fit(X, y)
            mlflow.lightgbm.log_model(model, name="model", input_example=X.head(20))
        return model

    builders: dict[str, Callable[[], Any]] = {
        "sklearn-default": numbers_with_gaps, "input-example-no-signature": numbers_with_gaps,
        "sklearn-predict-proba": forest,
        "sklearn-column-transformer": column_transformer, "custom-pyfunc": custom,
        "xgboost": lambda: boosted("xgboost"), "lightgbm": lambda: boosted("lightgbm")}
    run_id, model = _log(h, case, builders[case])
    inputs = MIXED if case in ("sklearn-column-transformer", "custom-pyfunc") else NUMBERS
    return run_id, model, inputs


def check_against_references(h: Hospital, result: dict[str, Any], scores: np.ndarray, expected: np.ndarray,
                             y: np.ndarray) -> None:
    """ModelBoard's stored evaluation against scikit-learn and fairlearn on the same rows."""
    assert np.allclose(scores, expected, rtol=0, atol=1e-12)
    flagged = expected >= THRESHOLD
    overall = result["overall"]
    assert overall["auroc"] == pytest.approx(roc_auc_score(y, expected), abs=TOLERANCE)
    assert overall["sensitivity"] == pytest.approx(recall_score(y, flagged), abs=TOLERANCE)
    assert overall["specificity"] == pytest.approx(recall_score(y, flagged, pos_label=0), abs=TOLERANCE)
    assert overall["ppv"] == pytest.approx(precision_score(y, flagged), abs=TOLERANCE)
    assert overall["brier"] == pytest.approx(brier_score_loss(y, expected), abs=TOLERANCE)
    for attribute in SENSITIVE:
        groups = h.evaluation[attribute].astype(str)
        decisions = MetricFrame(metrics={"sensitivity": recall_score, "ppv": precision_score}, y_true=y,
                                y_pred=flagged, sensitive_features=groups)
        ranking = MetricFrame(metrics=roc_auc_score, y_true=y, y_pred=expected, sensitive_features=groups)
        stored = result["subgroups"][attribute]
        for group in groups.unique():
            mine = stored[group]
            if y[groups == group].min() == y[groups == group].max():
                continue  # a group with one outcome only: AUROC and sensitivity are undefined, never 0
            assert mine["sensitivity"] == pytest.approx(decisions.by_group.loc[group, "sensitivity"], abs=TOLERANCE)
            assert mine["ppv"] == pytest.approx(decisions.by_group.loc[group, "ppv"], abs=TOLERANCE)
            assert mine["auroc"] == pytest.approx(ranking.by_group.loc[group], abs=TOLERANCE)


@dataclass(frozen=True)
class Submitted:
    model: Any
    inputs: list[str]
    evaluation_id: str
    result: dict[str, Any]  # as stored


@pytest.fixture(scope="module")
def submitted(hospital: Hospital) -> Callable[[str], Submitted]:
    """Each case fitted, logged and submitted through the CLI once per module."""
    done: dict[str, Submitted] = {}

    def get(case: str) -> Submitted:
        if case not in done:
            run_id, model, inputs = fit_case(hospital, case)
            finished = submit(hospital, f"ward-{case}", run_id)
            assert finished.returncode in (0, 3), finished.stderr[-2000:]
            evaluation_id = json.loads(finished.stdout)["evaluation_id"]
            stored = json.loads(open_store(hospital.settings).query_one(
                "SELECT result FROM evaluations WHERE id = ?", [evaluation_id])["result"])
            done[case] = Submitted(model, inputs, evaluation_id, stored)
        return done[case]

    return get


@pytest.mark.parametrize("case", CASES)
def test_every_common_way_of_logging_gives_the_models_own_numbers(hospital: Hospital, case: str,
                                                                  submitted: Callable[[str], Submitted]) -> None:
    found = submitted(case)
    model, inputs, stored = found.model, found.inputs, found.result
    # float64, as ModelBoard stores them: xgboost returns float32, and sklearn's Brier score in float32 is off by 1e-9
    expected = model.predict_proba(hospital.evaluation[inputs])[:, 1].astype(np.float64)
    check_against_references(hospital, stored, stored_scores(hospital, found.evaluation_id), expected,
                             hospital.evaluation[LABEL].to_numpy())
    how = stored["scoring"]["how"]
    assert how == ("pyfunc_risk" if case == "custom-pyfunc" else "predict_proba"), stored["scoring"]
    if case in ("sklearn-default", "input-example-no-signature", "xgboost", "lightgbm"):
        assert "decisions" in stored["scoring"]["sentence"]  # what pyfunc would have given, and was not used
    assert stored["inputs_from"] == ("input example" if case == "input-example-no-signature" else "signature")
    explained = stored["explanations"]
    assert explained["features"] == inputs  # SHAP per original input, not per one-hot column
    for patient in explained["patients"]:  # each patient's contributions add up to the model's own risk
        total = explained["base_value"] + sum(patient["shap"].values())
        risk = 1 / (1 + np.exp(-total)) if explained["units"] == "log-odds" else total
        assert risk == pytest.approx(patient["score"], abs=1e-6), (case, explained["method"])
    assert explained["method"].startswith("permutation") == (case == "custom-pyfunc")


def test_named_classes_use_the_positive_class_the_use_case_names(hospital: Hospital) -> None:
    """Labels 'deteriorated'/'stable': the outcome is scikit-learn's first class here, not its last."""
    X, y = hospital.train[MIXED], hospital.train[NAMED_LABEL]
    prepare = ColumnTransformer([("numbers", "passthrough", NUMBERS + ["on_oxygen"]),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
    model = Pipeline([("prepare", prepare), ("model", HistGradientBoostingClassifier(random_state=0))])

    def fit_and_log() -> Any:
        model.fit(X, y)
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                 signature=mlflow.models.infer_signature(X, model.predict_proba(X)))
        return model

    run_id, _ = _log(hospital, "named", fit_and_log)
    found = submit_here(hospital, "ward-named-classes", run_id)
    assert list(model.classes_) == [POSITIVE, "stable"] and found.result["scoring"]["positive_class"] == POSITIVE
    expected = model.predict_proba(hospital.evaluation[MIXED])[:, 0]
    y_true = (hospital.evaluation[NAMED_LABEL] == POSITIVE).to_numpy(int)
    check_against_references(hospital, found.result, stored_scores(hospital, found.id), expected, y_true)


def submit_here(h: Hospital, model: str, run_id: str, *, complete_case: bool = False) -> StoredEvaluation:
    """The same submission in this process (the worker is still its own process): what the CLI prints is
    tested by the logging matrix above, and this saves each test the CLI's imports."""
    return submit_version(h.settings, open_store(h.settings), open_registry(h.settings), command_line_operator("t"),
                          SubmissionRequest(model, 0, eval_data=h.eval_path, run_id=run_id,
                                            complete_case=complete_case))


def refusal(h: Hospital, model: str, run_id: str) -> str:
    with pytest.raises(ModelBoardError) as info:
        submit_here(h, model, run_id)
    return str(info.value)


def versions_of(h: Hospital, model: str) -> int:
    try:
        return len(MlflowClient(h.settings.tracking_uri).search_model_versions(f"name='{model}'"))
    except mlflow.exceptions.MlflowException:
        return 0


@pytest.mark.parametrize("kind", ["pyfunc returns decisions", "no predict_proba"])
def test_decisions_are_refused_with_how_to_log_the_model(hospital: Hospital, kind: str) -> None:
    X, y = hospital.train[COMPLETE_NUMBERS], hospital.train[LABEL]

    def fit_and_log() -> Any:
        if kind == "pyfunc returns decisions":
            model = LogisticRegression(max_iter=1000).fit(X, y)
            mlflow.pyfunc.log_model(name="model", python_model=DecisionWrapper(model, COMPLETE_NUMBERS),
                                    input_example=X.head(5))
        else:  # a linear SVM has no predict_proba, and MLflow's default predict gives its decisions
            model = make_pipeline(StandardScaler(), LinearSVC()).fit(X, y)
            mlflow.sklearn.log_model(model, name="model", input_example=X.head(5))
        return model

    run_id, _ = _log(hospital, kind, fit_and_log)
    if kind == "pyfunc returns decisions":  # as the data scientist's CI sees it: one line, exit 1
        done = submit(hospital, "ward-refused", run_id)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        message = done.stderr
    else:
        message = refusal(hospital, "ward-refused", run_id)
    assert "returned decisions (only the values 0 and 1), not risks" in message
    assert "pyfunc_predict_fn='predict_proba'" in message
    assert versions_of(hospital, "ward-refused") == 0  # the registration was undone


def test_a_signature_from_complete_rows_refuses_missing_values_before_anything_runs(hospital: Hospital) -> None:
    """An input example without gaps makes MLflow mark every column required: the evaluation set's missing
    lactate is refused with the three ways out, and nothing is registered."""
    X, y = hospital.train[NUMBERS], hospital.train[LABEL]

    def fit_and_log() -> Any:
        model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)).fit(X, y)
        mlflow.sklearn.log_model(model, name="model", input_example=X.dropna().head(5),
                                 skops_trusted_types=["numpy.dtype"])
        return model

    run_id, _ = _log(hospital, "required", fit_and_log)
    message = refusal(hospital, "ward-refused", run_id)
    missing = int(hospital.evaluation["lactate"].isna().sum())
    assert f"column 'lactate' has {missing} empty values" in message
    assert "--complete-case" in message and "marks the column optional" in message
    assert versions_of(hospital, "ward-refused") == 0


def test_an_output_that_disagrees_with_the_signature_is_refused(hospital: Hospital) -> None:
    X, y = hospital.train[COMPLETE_NUMBERS], hospital.train[LABEL]

    def fit_and_log() -> Any:
        model = LogisticRegression(max_iter=1000).fit(X, y)
        mlflow.pyfunc.log_model(name="model", python_model=RiskWrapper(model, COMPLETE_NUMBERS),
                                signature=mlflow.models.infer_signature(X, model.predict(X)))
        return model

    run_id, _ = _log(hospital, "disagrees", fit_and_log)
    message = refusal(hospital, "ward-disagrees", run_id)
    assert "declares" in message and "will not guess" in message


def test_a_model_that_cannot_take_missing_values_names_them_and_complete_cases_work(hospital: Hospital) -> None:
    """The signature lets lactate be missing (inferred from data with gaps), but the model cannot take it."""
    complete = hospital.train.dropna(subset=NUMBERS)
    model = LogisticRegression(max_iter=1000)

    def fit_and_log() -> Any:
        model.fit(complete[NUMBERS], complete[LABEL])
        X = hospital.train[NUMBERS]
        mlflow.sklearn.log_model(model, name="model", signature=mlflow.models.infer_signature(X, model.predict_proba(
            X.fillna(0))))
        return model

    run_id, _ = _log(hospital, "no-missing", fit_and_log)
    message = refusal(hospital, "ward-no-missing", run_id)
    missing = int(hospital.evaluation["lactate"].isna().sum())
    assert f"'lactate' ({missing:,} of {len(hospital.evaluation):,}" in message and "--complete-case" in message
    assert versions_of(hospital, "ward-no-missing") == 0

    done = submit(hospital, "ward-no-missing", run_id, "--complete-case")
    assert done.returncode in (0, 3), done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["complete_case"]["rows_dropped"] == missing
    kept = hospital.evaluation.dropna(subset=NUMBERS)
    stored = json.loads(open_store(hospital.settings).query_one(
        "SELECT result FROM evaluations WHERE id = ?", [result["evaluation_id"]])["result"])
    assert stored["n"] == len(kept)
    by_group = result["complete_case"]["dropped_by_group"]["ethnicity"]
    shares = hospital.evaluation["lactate"].isna().groupby(hospital.evaluation["ethnicity"]).mean()
    assert by_group == pytest.approx(shares.to_dict(), abs=1e-12)
    expected = model.predict_proba(kept[NUMBERS])[:, 1]
    y = kept[LABEL].to_numpy()
    assert stored["overall"]["auroc"] == pytest.approx(roc_auc_score(y, expected), abs=TOLERANCE)
    assert stored["overall"]["sensitivity"] == pytest.approx(recall_score(y, expected >= THRESHOLD), abs=TOLERANCE)


def test_missing_shares_equal_pandas(hospital: Hospital, submitted: Callable[[str], Submitted]) -> None:
    """Overall and per group, from the column-transformer case's stored evaluation."""
    shares = pd.DataFrame(submitted("sklearn-column-transformer").result["missingness"])
    frame = hospital.evaluation
    for column in ("lactate", "admission_source"):
        overall = shares[(shares["attribute"] == "overall") & (shares["column"] == column)].iloc[0]
        assert overall["share"] == pytest.approx(frame[column].isna().mean(), abs=1e-12)
        for attribute in SENSITIVE:
            expected = frame[column].isna().groupby(frame[attribute].astype(str)).mean()
            mine = shares[(shares["attribute"] == attribute) & (shares["column"] == column)].set_index("group")
            assert mine["share"].to_dict() == pytest.approx(expected.to_dict(), abs=1e-12)
    south_asian = shares[(shares["attribute"] == "ethnicity") & (shares["column"] == "lactate")].set_index("group")
    assert south_asian.loc["South Asian", "share"] > south_asian.loc["White British", "share"] + 0.1


def test_the_card_says_how_risks_were_produced_and_who_was_missing_inputs(hospital: Hospital,
                                                                           submitted: Callable[[str], Submitted]
                                                                           ) -> None:
    from core.services.model_card import build_card

    submitted("sklearn-column-transformer")
    card = build_card(open_store(hospital.settings), open_registry(hospital.settings), command_line_operator("t"),
                      "ward-sklearn-column-transformer", 1)
    values = card.values
    assert values["scoring"].startswith("Risk = the probability of class '1' from the model's own predict_proba")
    assert "lactate (number, may be missing)" in values["inputs"] and "on_oxygen (true/false)" in values["inputs"]
    frame = hospital.evaluation
    lactate = int(frame["lactate"].isna().sum())
    assert values["missing_inputs"].startswith(f"Lactate missing for {lactate:,} of {len(frame):,} patients")
    by_group = frame["lactate"].isna().groupby(frame["ethnicity"]).mean()
    assert f"lactate is missing for {by_group['South Asian']:.0%} of South Asian patients" in values["missing_inputs"]
