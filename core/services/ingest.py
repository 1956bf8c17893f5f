"""Taking production predictions and, later, their outcomes into the governance store.

A file is checked as a whole first (columns the model's signature needs, no
direct identifiers); then each row is either added, recognised as already
present (the same row sent again adds nothing) or quarantined with its reason
— a row whose key (model, version, encounter) is stored with other values
included, both values kept — never silently dropped. A row is also quarantined when it cannot be a real
prediction of that version: made before the version was registered (unless the file is declared a backfill
of history from before ModelBoard), more than a few minutes in the future, or with an input that is not a
finite number or lies outside the plausibility limits its use case declares. A missing input is not bad
input: the row is kept and the missing values counted. The rows, the quarantine, the file record and the
audit row are written in one transaction: a failure half-way leaves nothing.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.adapters.crash_points import crash_point
from core.adapters.files import file_sha256
from core.adapters.registry import Registry
from core.adapters.store import Cursor, Store
from core.config import Settings
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.identifiers import find_identifiers
from core.domain.signature import InputColumn
from core.domain.typed_inputs import column_values
from core.errors import NotFound, ValidationError
from core.services.audit import record_event
from core.services.evaluation_data import read_table
from core.services.usecases import list_use_cases, use_case_for_model

KEY, WHEN, SCORE, DECISION, OUTCOME = "encounter_id", "predicted_at", "score", "decision", "outcome"
CLOCK_SKEW = timedelta(minutes=5)  # a scoring system's clock may run a little ahead of ours; more is an error
TRUE_WORDS, FALSE_WORDS = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


@dataclass(frozen=True)
class IngestReport:
    """What happened to every row of a file, in counts a person can check against the file."""

    source: str
    sha256: str
    rows: int
    added: int
    already_present: int
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    missing_inputs: dict[str, int] = field(default_factory=dict)  # input → accepted rows where it is missing

    @property
    def sentence(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in self.reasons.items())
        gaps = ", ".join(f"{column} in {n}" for column, n in self.missing_inputs.items())
        return (f"{self.source}: {self.rows} rows — {self.added} added, {self.already_present} already present, "
                f"{self.quarantined} quarantined" + (f" ({why})" if why else "") + "."
                + (f" Kept with missing inputs (not an error): {gaps}." if gaps else ""))



def _flag(reasons: pd.Series, mask: pd.Series | np.ndarray, reason: str) -> None:
    """Give `reason` to the rows in `mask` that have no reason yet (the first problem of a row is kept)."""
    reasons[np.asarray(mask) & reasons.isna().to_numpy()] = reason


def _timestamps(values: pd.Series) -> pd.Series:
    """Naive UTC times; ISO 8601 in any precision or offset (one file may mix them), else whatever pandas can
    read per value. Unreadable values are NaT, and their rows quarantined."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    retry = parsed.isna() & values.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(values[retry].astype(str), errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_localize(None)


def _booleans(values: pd.Series) -> pd.Series:
    words = values.astype(str).str.strip().str.lower()
    return words.map(lambda w: True if w in TRUE_WORDS else False if w in FALSE_WORDS else None)


CONTROL_BYTES, NUL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"), b"\x00"


def _read(settings: Settings, path: Path, what: str) -> pd.DataFrame:
    """The file as a table, refused whole when it holds no rows, a control byte (a NUL cuts a CSV value short
    without an error) or a column name twice (pandas would rename the second 'score' to 'score.1')."""
    frame = read_table(path, max_bytes=settings.max_upload_mb * 1_000_000)
    refused = f"{what} {path.name} refused, nothing was ingested"
    if path.suffix.lower() != ".parquet":
        with path.open("rb") as raw:
            for number, line in enumerate(raw, start=1):
                found = CONTROL_BYTES.search(line)
                if found:
                    byte = "NUL" if found.group() == NUL else f"0x{found.group()[0]:02x}"
                    raise ValidationError(f"{refused}: line {number} holds the control byte {byte} at character "
                                          f"{found.start() + 1}; export the file again as plain text")
        with path.open(encoding="utf-8-sig") as text:
            names = next(csv.reader([text.readline()]), [])
        twice = sorted({n.strip() for n in names if [m.strip() for m in names].count(n.strip()) > 1})
        if twice:
            raise ValidationError(f"{refused}: the header names {', '.join(repr(n) for n in twice)} more than once; "
                                  "each column must be named once")
    if frame.empty:
        raise ValidationError(f"{refused}: it has a header but no rows")
    return frame


def _refuse_file(frame: pd.DataFrame, needed: list[str], deidentified: bool, what: str) -> None:
    problems = []
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        problems.append(f"columns {', '.join(missing)} are missing (the file needs {', '.join(needed)})")
    findings = find_identifiers(frame)
    if findings and not deidentified:
        problems.append("; ".join(f.message() for f in findings) + ": remove direct identifiers, or declare the "
                        "data de-identified (--deidentified), which is recorded in the audit log")
    if problems:
        raise ValidationError(f"{what} refused, nothing was ingested: " + "; ".join(problems))


@dataclass(frozen=True)
class RowRules:
    """What a row of one file is checked against besides its types: when the version was registered (None: a
    declared backfill, not checked) and the use case's plausibility limits of numeric inputs."""

    registered_at: datetime | None
    plausible_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _out_of_range(reasons: pd.Series, details: pd.Series, name: str, values: pd.Series,
                  limits: tuple[float, float]) -> None:
    """Quarantine values outside a plausibility limit; the reason counted names the column and the limits, the
    one stored with the row (`details`) adds its value. A missing value is not out of range."""
    low, high = limits
    numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
    outside = (numbers.notna() & ((numbers < low) | (numbers > high))).fillna(False).to_numpy(dtype=bool)
    first = outside & reasons.isna().to_numpy()
    _flag(reasons, outside, f"input '{name}' is outside its plausible range {low:g} to {high:g} (use case)")
    details[first] = [f"value {v:g}" for v in numbers[first]]


def _prediction_reasons(frame: pd.DataFrame, inputs: list[InputColumn],
                        rules: RowRules) -> tuple[pd.Series, pd.Series, pd.Series, pd.DataFrame]:
    """Why each row is refused (None: accepted), what the quarantine adds to that reason for a row (its value),
    the encounter keys, and the inputs in their declared types. A missing input is a reason only where the
    model's signature requires the column."""
    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    details = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    keys = frame[KEY].astype("string").str.strip()
    _flag(reasons, keys.isna() | (keys == ""), "encounter key is empty")
    when = _timestamps(frame[WHEN])
    _flag(reasons, when.isna(), "timestamp is not a date and time")
    _flag(reasons, when > utc_now() + CLOCK_SKEW, f"timestamp is in the future (more than "
                                                  f"{CLOCK_SKEW.total_seconds() / 60:g} minutes after ingest)")
    if rules.registered_at is not None:
        _flag(reasons, when < rules.registered_at, "timestamp is before the version was registered "
              f"({rules.registered_at:%Y-%m-%d %H:%M:%S} UTC; a file of earlier history is ingested with --backfill)")
    score = pd.to_numeric(frame[SCORE], errors="coerce")
    _flag(reasons, score.isna() | (score < 0) | (score > 1), "score is not a probability between 0 and 1")
    _flag(reasons, _booleans(frame[DECISION]).isna(), "decision is not true/false (1/0)")
    typed = {}
    for column in inputs:
        found = column_values(frame[column.name], column)
        _flag(reasons, found.bad, f"input '{column.name}' {found.why}")
        if column.required:
            _flag(reasons, found.values.isna(), f"input '{column.name}' is empty, but the model's signature "
                                               "requires it")
        if column.name in rules.plausible_ranges and column.kind == "numerical":
            _out_of_range(reasons, details, column.name, found.values, rules.plausible_ranges[column.name])
        typed[column.name] = found.values
    _flag(reasons, keys.duplicated(keep="first") & keys.notna(), "encounter appears more than once in this file")
    return reasons, details, keys, pd.DataFrame(typed, index=frame.index)


def _as_json(row: dict[Any, Any]) -> str:
    """One row's inputs as stored: numbers, text and flags as JSON has them; missing as null."""
    return json.dumps({k: None if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v))
                       else v.isoformat() if isinstance(v, pd.Timestamp) else v.item() if isinstance(v, np.generic)
                       else v for k, v in row.items()})


def ingest_predictions(settings: Settings, store: Store, registry: Registry, actor: User, *, model: str,
                       version: int, path: Path, deidentified: bool = False, backfill: bool = False) -> IngestReport:
    """Add a file of production predictions of `model` v`version` (CSV or Parquet). With `backfill` the file
    is declared history from before the version was registered (a model that ran before ModelBoard), so
    earlier timestamps are accepted; the declaration is audited."""
    require(actor, Permission.SUBMIT_MODELS)
    registered_at = registry.get_version(model, version).summary.created_at  # NotFound for an unknown version
    inputs = registry.model_inputs(model, version)
    frame = _read(settings, path, "prediction file")
    _refuse_file(frame, [KEY, WHEN, SCORE, DECISION, *(c.name for c in inputs if c.required)], deidentified,
                 f"prediction file {path.name}")
    # An optional input may be left out (MLflow's meaning of optional): it is stored as missing for every row,
    # so the window's missing share shows it — a dropped EHR field is what monitoring must see.
    frame = frame.assign(**{c.name: None for c in inputs if c.name not in frame.columns})
    try:
        use_case = use_case_for_model(store, actor, model)
        sensitive = [c for c in use_case.sensitive_attributes if c in frame.columns]
        ranges = use_case.plausible_ranges
    except NotFound:
        sensitive, ranges = [], {}
    rules = RowRules(None if backfill else registered_at, ranges)
    reasons, details, keys, typed = _prediction_reasons(frame, inputs, rules)
    good = frame[reasons.isna()]
    gaps = typed[reasons.isna()].isna().sum()
    rows = pd.DataFrame({
        "model_name": model, "model_version": version, "encounter_id": keys[reasons.isna()].astype(str),
        "predicted_at": _timestamps(good[WHEN]),
        "score": pd.to_numeric(good[SCORE]).astype(float), "decision": _booleans(good[DECISION]).astype(bool),
        "features": [_as_json(r) for r in typed[reasons.isna()].astype(object).to_dict(orient="records")],
        "attributes": ([json.dumps(r) for r in good[sensitive].astype(str).to_dict(orient="records")]
                       if sensitive else None),  # a file without the attribute columns: none recorded
        "ingested_at": utc_now()})
    digest = file_sha256(path)
    crash_point("ingest:read")
    with store.transaction() as cur:
        cur.register("incoming_predictions", rows)
        stored = _stored_rows(cur)
        same = stored["same"].astype(bool)
        conflicting = rows.index[rows["encounter_id"].isin(stored.loc[~same, "encounter_id"])]
        _flag(reasons, frame.index.isin(conflicting), CONFLICT)
        cur.register("new_predictions", rows[~rows["encounter_id"].isin(stored["encounter_id"])])
        cur.execute("INSERT INTO prediction_log SELECT * FROM new_predictions")
        was = stored.loc[~same].set_index("encounter_id").drop(columns="same")
        stored_values = {int(i): _plain(was.loc[rows.at[i, "encounter_id"]].to_dict()) for i in conflicting}
        report = _finish(cur, actor, path, digest, "predictions", model, version, frame, reasons, int(same.sum()),
                         stored_values, details=details, extra={"backfill": True} if backfill else {},
                         missing={str(k): int(v) for k, v in gaps.items() if v})
        crash_point("ingest:before-commit")
    return report


CONFLICT = "conflicts with the stored row (same model, version and encounter; different values)"


def _stored_rows(cur: Cursor) -> pd.DataFrame:
    """The stored rows with the keys of incoming ones, and whether each is the same row sent again (idempotent)
    or a different one under the same key (a corrected score, say), which is quarantined with both values."""
    stored: pd.DataFrame = cur.execute(
        "SELECT i.encounter_id, p.predicted_at, p.score, p.decision, CAST(p.features AS VARCHAR) AS features, "
        "CAST(p.attributes AS VARCHAR) AS attributes, (i.predicted_at = p.predicted_at AND i.score = p.score "
        "AND i.decision = p.decision AND CAST(i.features AS VARCHAR) = CAST(p.features AS VARCHAR) "
        "AND CAST(i.attributes AS VARCHAR) IS NOT DISTINCT FROM CAST(p.attributes AS VARCHAR)) AS same "
        "FROM incoming_predictions i JOIN prediction_log p USING (model_name, model_version, encounter_id)").df()
    return stored


def _plain(values: dict[Any, Any]) -> dict[str, Any]:
    """A stored row as the quarantine shows it next to the incoming one: JSON text as objects, times as ISO."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("features", "attributes") and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif isinstance(value, np.generic):
            value = value.item()
        out[str(key)] = value
    return out


def _count(cur: Cursor, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _finish(cur: Cursor, actor: User, path: Path, digest: str, kind: str, model: str | None, version: int | None,
            frame: pd.DataFrame, reasons: pd.Series, already: int, stored: dict[int, dict[str, Any]] | None = None,
            *, details: pd.Series | None = None, extra: dict[str, Any] | None = None,
            missing: dict[str, int] | None = None) -> IngestReport:
    """Quarantine the refused rows (a row that conflicts with a stored one keeps the stored values beside its
    own, under "stored"; a reason with `details` for the row keeps them too), record the file and audit it, in
    the caller's transaction."""
    bad = reasons.notna()
    now = utc_now()
    stored = stored or {}
    raw = [json.dumps(_finite(r) | ({"stored": stored[i]} if i in stored else {}), default=str)
           for i, r in zip(frame.index[bad], frame[bad].to_dict(orient="records"), strict=True)]
    said = reasons[bad].astype(str)
    if details is not None:
        said = said.where(details[bad].isna(), said + " (" + details[bad].astype(str) + ")")
    quarantine = pd.DataFrame({
        "file_sha256": digest, "kind": kind, "row_number": np.flatnonzero(bad.to_numpy()) + 1,
        "model_name": model, "reason": said.to_numpy(), "raw": raw, "quarantined_at": now})
    cur.register("incoming_quarantine", quarantine)
    cur.execute("INSERT INTO quarantine SELECT * FROM incoming_quarantine ON CONFLICT DO NOTHING")
    counts = {str(k): int(v) for k, v in reasons[bad].value_counts().items()}
    added = len(frame) - int(bad.sum()) - already
    report = IngestReport(path.name, digest, len(frame), added, already, int(bad.sum()), counts, missing or {})
    cur.execute("INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [digest, kind, path.name, model, version, len(frame), added, already, int(bad.sum()),
                 actor.username, now])
    record_event(cur, actor=actor.username, action=f"{kind}_ingested", model=model, version=version,
                 detail={"file": path.name, "sha256": digest, "rows": len(frame), "added": added,
                         "already_present": already, "quarantined": int(bad.sum()), "reasons": counts,
                         **({"missing_inputs": missing} if missing else {}), **(extra or {})})
    return report


def _finite(row: dict[Any, Any]) -> dict[Any, Any]:
    """A row as JSON can hold it: an infinite number (or 1e400, which a CSV reader makes infinite) as text."""
    return {k: str(v) if isinstance(v, float) and np.isinf(v) else v for k, v in row.items()}


def _outcomes(store: Store, actor: User, frame: pd.DataFrame) -> pd.Series:
    """True/False per row: 0/1 and true/false words, or two named classes of which one is the positive class a
    use case names (of the file's models when it names them). Anything else is None (quarantined)."""
    outcome = _booleans(frame[OUTCOME])
    words = frame[OUTCOME].astype("string").str.strip()
    named = outcome.isna() & words.notna()
    if not named.any():
        return outcome
    models = set(frame["model_name"].dropna().astype(str)) if "model_name" in frame else None
    positives = {u.positive_class for u in list_use_cases(store, actor)
                 if u.positive_class is not None and (models is None or models & set(u.models))}
    values = set(words[named])
    if len(values) == 2 and len(values & positives) == 1:
        outcome = outcome.mask(named, words.isin(positives))
    return outcome


def ingest_labels(settings: Settings, store: Store, actor: User, *, path: Path) -> IngestReport:
    """Add outcomes that arrived after the predictions (encounter_id, outcome[, model_name][, labelled_at])."""
    require(actor, Permission.SUBMIT_MODELS)
    frame = _read(settings, path, "label file")
    _refuse_file(frame, [KEY, OUTCOME], False, f"label file {path.name}")
    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    keys = frame[KEY].astype("string").str.strip()
    _flag(reasons, keys.isna() | (keys == ""), "encounter key is empty")
    outcome = _outcomes(store, actor, frame)
    _flag(reasons, outcome.isna(), "outcome is not 0/1, true/false, or the use case's two named classes")
    _flag(reasons, keys.duplicated(keep="first") & keys.notna(), "encounter appears more than once in this file")
    labelled = (_timestamps(frame["labelled_at"])
                if "labelled_at" in frame else pd.Series(utc_now(), index=frame.index))
    _flag(reasons, labelled.isna(), "labelled_at is not a date and time")
    candidates = pd.DataFrame({"row": frame.index, KEY: keys.astype(str), "outcome": outcome.astype("Int64"),
                               "labelled_at": labelled, "wanted_model": frame.get("model_name")})
    digest = file_sha256(path)
    with store.transaction() as cur:
        cur.register("candidate_labels", candidates[reasons.isna().to_numpy()])
        matched = cur.execute(
            "SELECT c.row, p.model_name, CAST(c.outcome AS INTEGER) AS outcome, c.labelled_at, l.outcome AS known "
            "FROM candidate_labels c JOIN (SELECT DISTINCT model_name, encounter_id FROM prediction_log) p "
            "ON p.encounter_id = c.encounter_id "
            "AND (c.wanted_model IS NULL OR p.model_name = c.wanted_model) "
            "LEFT JOIN outcome_labels l ON l.model_name = p.model_name AND l.encounter_id = c.encounter_id").df()
        _flag(reasons, frame.index.isin(candidates["row"][reasons.isna().to_numpy()])
              & ~frame.index.isin(matched["row"]), "no prediction with this encounter key")
        conflict = matched["known"].notna() & (matched["known"] != matched["outcome"])
        _flag(reasons, frame.index.isin(matched.loc[conflict, "row"]), "outcome differs from the one already recorded")
        fresh = matched[matched["known"].isna() & matched["row"].isin(frame.index[reasons.isna()])]
        fresh = fresh.assign(encounter_id=keys[fresh["row"]].astype(str).to_numpy())
        cur.register("fresh_labels", fresh)
        cur.execute("INSERT INTO outcome_labels SELECT model_name, encounter_id, outcome, labelled_at "
                    "FROM fresh_labels ON CONFLICT DO NOTHING")
        already = int((matched["known"].notna() & ~conflict).sum())
        return _finish(cur, actor, path, digest, "labels", None, None, frame, reasons, already)
