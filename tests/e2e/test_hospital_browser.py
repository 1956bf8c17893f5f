"""A data scientist submits two models logged the ordinary way through the Submit page, in a real browser.

Both are the hospital's own (tests/hospital.py), on data with missing values, a text category and skewed
groups: a scikit-learn pipeline logged with MLflow's defaults (its pyfunc predict returns decisions) as an
MLflow run, and a custom pyfunc model saved to a folder and uploaded as a zip. What the pages then show is
checked, and the stored numbers are checked against scikit-learn on the same rows of the uploaded file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from playwright.sync_api import Page, expect
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.config import Settings
from core.services.installation import open_store
from data.train import tracking
from tests.e2e.conftest import OUTPUT, REPO, log_in
from tests.e2e.test_browser import choose, settle
from tests.hospital import COMPLETE_NUMBERS, LABEL, MIXED, NUMBERS, RiskWrapper, as_extract, log_run, ward_cohort
from tests.hospital import use_case as ward_use_case

pytestmark = pytest.mark.browser


def upload(page: Page, label: str, path: Path) -> None:
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text=label)
    uploader.locator("input[type='file']").set_input_files(str(path))
    expect(uploader.get_by_text(path.name)).to_be_visible(timeout=30_000)  # the upload, on a loaded machine
    settle(page)


def submitted_auroc(settings: Settings, model: str) -> float:
    row = open_store(settings).query_one("SELECT result FROM evaluations WHERE model_name = ? AND status = 'complete'",
                                         [model])
    return float(json.loads(row["result"])["overall"]["auroc"])


def test_two_ordinary_models_through_the_submit_page(server: str, page: Page, browser_demo: Settings,
                                                     tmp_path: Path) -> None:
    use_case = tmp_path / "ward.yaml"
    use_case.write_text(ward_use_case("ward-deterioration", ["ward-pipeline", "ward-packaged"]))
    imported = subprocess.run([sys.executable, "-m", "core.cli", "usecase", "import", str(use_case), "--home",
                               str(browser_demo.home)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert imported.returncode == 0, imported.stderr
    train = as_extract(ward_cohort(3_000, seed=21), tmp_path / "train.csv")
    evaluation_path = tmp_path / "ward-evaluation.csv"
    evaluation = as_extract(ward_cohort(2_000, seed=22), evaluation_path)
    client = MlflowClient(browser_demo.tracking_uri)
    for name in ("ward-pipeline", "ward-packaged"):
        client.create_registered_model(name)

    prepare = ColumnTransformer([("numbers", "passthrough", NUMBERS + ["on_oxygen"]),
                                 ("source", OneHotEncoder(handle_unknown="ignore"), ["admission_source"])])
    pipeline = Pipeline([("prepare", prepare), ("model", HistGradientBoostingClassifier(random_state=0))])
    pipeline.fit(train[MIXED], train[LABEL])
    run_id = log_run(browser_demo.tracking_uri, "ward-pipeline", browser_demo.artifact_root, lambda: (
        mlflow.sklearn.log_model(pipeline, name="model", serialization_format="cloudpickle",
                                 signature=mlflow.models.infer_signature(train[MIXED],
                                                                         pipeline.predict_proba(train[MIXED])))))
    simple = LogisticRegression(max_iter=1000).fit(train[COMPLETE_NUMBERS], train[LABEL])
    with tracking(browser_demo.tracking_uri):
        mlflow.pyfunc.save_model(str(tmp_path / "packaged"), python_model=RiskWrapper(simple, COMPLETE_NUMBERS),
                                 input_example=train[COMPLETE_NUMBERS].head(5))
    archive = tmp_path / "ward-packaged.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in (tmp_path / "packaged").rglob("*"):
            bundle.write(path, Path("packaged") / path.relative_to(tmp_path / "packaged"))

    log_in(page, server, "lee", "lee-ds-demo-2026")
    page.get_by_role("link", name="Submit").click()
    page.get_by_role("heading", name="Submit").wait_for()
    choose(page, "Registered model", "ward-pipeline")
    page.get_by_text("An MLflow run not registered yet").click()
    settle(page)
    page.get_by_role("textbox", name="MLflow run ID").fill(run_id)
    page.get_by_role("textbox", name="MLflow run ID").press("Enter")
    upload(page, "Evaluation file", evaluation_path)
    page.get_by_role("button", name="Submit for clinical review").click()
    expect(page.get_by_text("ward-pipeline v1 is evaluated and is now in clinical review")).to_be_visible(
        timeout=180_000)

    choose(page, "Registered model", "ward-packaged")
    page.get_by_text("A packaged MLflow model (.zip)").click()
    settle(page)
    upload(page, "Packaged model", archive)
    upload(page, "Evaluation file", evaluation_path)
    page.get_by_role("button", name="Submit for clinical review").click()
    expect(page.get_by_text("ward-packaged v1 is evaluated and is now in clinical review")).to_be_visible(
        timeout=180_000)

    y = evaluation[LABEL]
    assert submitted_auroc(browser_demo, "ward-pipeline") == pytest.approx(
        roc_auc_score(y, pipeline.predict_proba(evaluation[MIXED])[:, 1]), abs=1e-9)
    assert submitted_auroc(browser_demo, "ward-packaged") == pytest.approx(
        roc_auc_score(y, simple.predict_proba(evaluation[COMPLETE_NUMBERS])[:, 1]), abs=1e-9)

    page.get_by_role("link", name="Performance").click()
    page.get_by_role("heading", name="Performance").wait_for()
    choose(page, "Model version", "ward-pipeline v1")
    expect(page.get_by_text("standard prediction gives only a yes/no decision", exact=False)).to_be_visible()
    page.get_by_text("Show the method (for data scientists)").click()  # the method, in a data scientist's terms
    expect(page.get_by_text("from the model's own predict_proba", exact=False)).to_be_visible()
    expect(page.get_by_text("MLflow's pyfunc predict returns decisions", exact=False)).to_be_visible()
    page.screenshot(path=str(OUTPUT / "performance-ordinary-pipeline.png"))
    page.get_by_role("link", name="Fairness").click()
    page.get_by_role("heading", name="Fairness").wait_for()
    choose(page, "Model version", "ward-pipeline v1")
    choose(page, "Compare groups by", "Ethnicity")
    shares = evaluation["lactate"].isna().groupby(evaluation["ethnicity"]).mean()
    expect(page.get_by_text(f"Lactate is missing for {shares['South Asian']:.0%} of South Asian patients",
                            exact=False)).to_be_visible()
    page.screenshot(path=str(OUTPUT / "fairness-missing-lactate.png"))

