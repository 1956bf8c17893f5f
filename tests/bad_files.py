"""Malformed evaluation files, made in code (no binary fixtures in git), and a small installation to submit them to.

Every case starts from one clean ward extract (tests/hospital.py) written as pandas writes CSV, and breaks it the
way files really break: cut short, exported in the wrong encoding, edited by hand, filtered, padded. Each case says
what ModelBoard must answer: `expect` holds fragments of the one-line refusal, or is empty for a file that is
accepted and must give the same data as the clean one (`same_data`).

Extra columns are accepted: an export carries more than a model takes (encounter ids, other attributes), and
the model is given only its signature's inputs. An extra column is refused only where it does harm, which is
when it looks like a direct identifier (a medical record number here) and the data is not declared de-identified.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from core.config import Settings, load_settings
from core.domain.access import User, command_line_operator
from core.services.auth import add_user
from core.services.installation import open_registry, open_store
from core.services.promotion import record_first_aliases
from core.services.submission import StoredEvaluation, SubmissionRequest, submit_version
from core.services.usecases import import_use_case
from data.train import tracking
from tests.hospital import COMPLETE_NUMBERS, LABEL, as_extract, log_run, use_case, ward_cohort

MODEL = "ward-bad-files"
ROW = 7  # the data row the cell-level cases edit: line 8 of the file
LINE = ROW + 1
LIMIT_MB = 1  # MODELBOARD_MAX_UPLOAD_MB for the oversize case
SCIENTIST, PASSWORD = "lee", "a long enough password"


@dataclass(frozen=True)
class Installation:
    """A fresh store and MLflow registry with one use case and one model (v1) logged the plain MLflow way."""

    settings: Settings
    clean: bytes  # the evaluation extract as pandas writes it
    scientist: User


def install(folder: Path) -> Installation:
    settings = load_settings(env={}, home=folder / "home")
    store = open_store(settings)
    operator = command_line_operator("pytest")
    import_use_case(store, operator, use_case("ward-bad-files", [MODEL],
                                              extra="criteria: {min_auroc: 0.5, min_subgroup_n: 100}\n"))
    scientist = add_user(store, operator, username=SCIENTIST, full_name="Dr. Lee", role="data_scientist",
                         password=PASSWORD)
    train = as_extract(ward_cohort(1_500, seed=1), folder / "train.csv")
    X, y = train[COMPLETE_NUMBERS], train[LABEL]
    logged: dict[str, str] = {}

    def fit_and_log() -> None:
        model = LogisticRegression(max_iter=1000).fit(X, y)
        # pip_requirements given: inferring them starts a subprocess that imports the model (~15 s here)
        info = mlflow.sklearn.log_model(model, name="model", pyfunc_predict_fn="predict_proba",
                                        signature=infer_signature(X, model.predict_proba(X)),
                                        pip_requirements=["scikit-learn"])
        logged["uri"] = info.model_uri

    log_run(settings.tracking_uri, "ward-bad-files", settings.artifact_root, fit_and_log)
    with tracking(settings.tracking_uri):
        mlflow.register_model(logged["uri"], MODEL)
    record_first_aliases(settings, store, open_registry(settings), MODEL)  # as ModelBoard does for a new model
    clean = ward_cohort(400, seed=2).to_csv(index=False).encode()
    return Installation(settings, clean, scientist)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[bytes], bytes]
    expect: tuple[str, ...] = ()  # fragments of the refusal; empty: accepted
    file_name: str = "evaluation.csv"
    env: dict[str, str] = field(default_factory=dict)
    same_data: bool = False  # accepted with the very data of the clean file (same digest, same evaluation)

    @property
    def refused(self) -> bool:
        return bool(self.expect)


def submit_clean(installation: Installation, folder: Path) -> StoredEvaluation:
    """The clean file submitted once, through the real worker: what the accepted variants must reuse."""
    path = folder / "evaluation.csv"
    path.write_bytes(installation.clean)
    settings = installation.settings
    return submit_version(settings, open_store(settings), open_registry(settings), command_line_operator("pytest"),
                          SubmissionRequest(MODEL, 1, eval_data=path))


def _lines(clean: bytes) -> list[str]:
    return clean.decode().split("\n")


def _with_cell(value: str, column: str, row: int = ROW) -> Callable[[bytes], bytes]:
    """The clean file with one cell replaced (the ward extract has no quoted values, so a split is exact)."""
    def make(clean: bytes) -> bytes:
        lines = _lines(clean)
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return "\n".join(lines).encode()
    return make


def _latin1_cell(clean: bytes) -> bytes:
    return _with_cell("Métis", "ethnicity")(clean).decode().encode("latin-1")


def _frame(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[bytes], bytes]:
    return lambda clean: change(pd.read_csv(io.BytesIO(clean))).to_csv(index=False).encode()


def _renamed_header(old: str, new: str) -> Callable[[bytes], bytes]:
    def make(clean: bytes) -> bytes:
        lines = _lines(clean)
        lines[0] = ",".join(new if c == old else c for c in lines[0].split(","))
        return "\n".join(lines).encode()
    return make


def _oversize(clean: bytes) -> bytes:
    lines = _lines(clean)
    body = "\n".join(line for line in lines[1:] if line)
    copies = int(2.6 * LIMIT_MB * 1_000_000 / len(body)) + 1
    return "\n".join([lines[0], *[body] * copies, ""]).encode()


def _as_parquet(clean: bytes) -> bytes:
    out = io.BytesIO()
    pd.read_csv(io.BytesIO(clean)).to_parquet(out, index=False)
    return out.getvalue()


def _parquet_with_nul(clean: bytes) -> bytes:
    frame = pd.read_csv(io.BytesIO(clean))
    frame.loc[ROW - 1, "ethnicity"] = "South\x00 Asian"  # set in the frame: pandas' CSV reader would cut it short
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _labels(positive: str, negative: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda f: f.assign(**{LABEL: np.where(f[LABEL] == 1, positive, negative)})


def _mrn(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(mrn=[f"{i:08d}" for i in range(len(frame))])


NOT_FINITE = (f"column 'heart_rate' row {ROW} (line {LINE} of a CSV) holds '", "which is not a finite number")
CASES = [
    Case("empty", lambda clean: b"", ("evaluation.csv is empty (0 bytes)",)),
    Case("header-only", lambda clean: _lines(clean)[0].encode() + b"\n", ("has column names but no rows",)),
    Case("unterminated-quote", _with_cell('"emergency', "admission_source"),
         (f'evaluation.csv does not parse: the quote (") opened on line {LINE} is never closed',)),
    Case("nul-byte", _with_cell("South\x00 Asian", "ethnicity"),
         (f"evaluation.csv line {LINE}, column 'ethnicity' (character", "holds a NUL byte")),
    Case("control-soh", _with_cell("emer\x01gency", "admission_source"),
         (f"evaluation.csv line {LINE}, column 'admission_source'", "control character '\\x01'")),
    Case("control-escape", _with_cell("\x1b[31melective", "admission_source"),
         (f"evaluation.csv line {LINE}, column 'admission_source'", "control character '\\x1b'")),
    Case("nul-byte-in-parquet", _parquet_with_nul,
         (f"evaluation.parquet row {ROW}, column 'ethnicity': the value 'South\\x00 Asian' holds a NUL byte",),
         file_name="evaluation.parquet"),
    Case("utf-16", lambda clean: clean.decode().encode("utf-16"), ("evaluation.csv is UTF-16 text",)),
    Case("utf-16-without-bom", lambda clean: clean.decode().encode("utf-16-le"),
         ("evaluation.csv looks like UTF-16 text",)),
    Case("latin-1", _latin1_cell, (f"evaluation.csv is not UTF-8 text: line {LINE}, byte", "is 0xe9",
                                   "save it as 'CSV UTF-8'")),
    Case("parquet-named-csv", _as_parquet, ("evaluation.csv is not a CSV text file but a Parquet file",)),
    Case("byte-order-mark", lambda clean: codecs.BOM_UTF8 + clean, same_data=True),
    Case("crlf", lambda clean: clean.replace(b"\n", b"\r\n"), same_data=True),
    Case("byte-order-mark-and-crlf", lambda clean: codecs.BOM_UTF8 + clean.replace(b"\n", b"\r\n"),
         same_data=True),
    Case("duplicated-column", _renamed_header("resp_rate", "heart_rate"),
         ("evaluation.csv: column 'heart_rate' appears more than once in the header",)),
    Case("extra-columns", _frame(lambda f: f.assign(ward=np.where(f.index % 2, "5B", "7A"), news2=f.index % 9))),
    Case("extra-identifier-column", _frame(_mrn), ("column 'mrn' looks like a medical record number",)),
    Case("missing-input", _frame(lambda f: f.drop(columns="spo2")),
         ("evaluation data refused (file", "columns spo2 are missing: the model's signature needs them")),
    Case("missing-label", _frame(lambda f: f.drop(columns=LABEL)), (f"label column '{LABEL}' is missing",)),
    Case("missing-sensitive", _frame(lambda f: f.drop(columns="ethnicity")),
         ("sensitive attribute columns ethnicity are missing",)),
    Case("text-in-number", _with_cell("high", "heart_rate"), (*NOT_FINITE[:1], "high'", NOT_FINITE[1])),
    Case("inf", _with_cell("inf", "heart_rate"), NOT_FINITE),
    Case("minus-inf", _with_cell("-inf", "heart_rate"), NOT_FINITE),
    Case("1e400", _with_cell("1e400", "heart_rate"), NOT_FINITE),
    Case("label-2", _with_cell("2", LABEL), (f"'2' (first at row {ROW} (line {LINE} of a CSV)) is not an outcome",)),
    Case("label-yes-maybe", _frame(_labels("yes", "maybe")), ("'maybe' (first at row", "is not an outcome")),
    Case("label-maybe-among-yes-no", lambda clean: _with_cell("maybe", LABEL)(_frame(_labels("yes", "no"))(clean)),
         (f"'maybe' (first at row {ROW} (line {LINE} of a CSV)) is not an outcome",)),
    Case("one-sensitive-group", _frame(lambda f: f.assign(sex="female")),
         ("sensitive attribute 'sex' holds one group only ('female')",)),
    Case("oversize", _oversize, (f"over the {LIMIT_MB} MB limit: sample the evaluation set or raise "
                                 "MODELBOARD_MAX_UPLOAD_MB",), env={"MODELBOARD_MAX_UPLOAD_MB": str(LIMIT_MB)}),
    Case("wrong-extension", lambda clean: clean, ("evaluation.xlsx: only .csv and .parquet evaluation files",),
         file_name="evaluation.xlsx"),
]
REFUSED = [c for c in CASES if c.refused]
ACCEPTED = [c for c in CASES if not c.refused]


def write(case: Case, clean: bytes, folder: Path) -> Path:
    """The case's file in `folder`, under its own sub-folder (the file name is part of what is checked)."""
    path = folder / case.name / case.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.make(clean))
    return path


def written(settings: Settings) -> dict[str, object]:
    """Everything a submission could write: rows in the governance store, MLflow versions, files kept on disk."""
    store = open_store(settings)
    files = {kind: sorted(str(p.relative_to(settings.home)) for p in (settings.home / kind).rglob("*"))
             if (settings.home / kind).exists() else [] for kind in ("evaluations", "uploads")}
    versions = MlflowClient(settings.tracking_uri).search_model_versions(f"name = '{MODEL}'")
    return {"evaluations": store.query("SELECT count(*) AS n FROM evaluations")[0]["n"],
            "evaluation_rows": store.query("SELECT count(*) AS n FROM evaluation_rows")[0]["n"],
            "audit_events": store.query("SELECT count(*) AS n FROM audit_events")[0]["n"],
            "versions": sorted((v.version, tuple(sorted(v.tags.items()))) for v in versions), **files}
