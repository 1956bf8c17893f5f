"""Reading and checking an evaluation set before anything runs.

Every problem is found and reported at once, in words that say what to fix;
nothing is written anywhere until the data has passed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.domain.identifiers import IdentifierFinding, find_identifiers
from core.errors import ValidationError

NUMERIC_TYPES = {"double", "float", "long", "integer"}
_CSV_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass(frozen=True)
class EvaluationData:
    frame: pd.DataFrame
    source: str
    digest: str
    identifiers: tuple[IdentifierFinding, ...]


def read_table(path: Path, *, max_bytes: int) -> pd.DataFrame:
    """CSV or Parquet, refusing files over the size limit and naming where parsing failed."""
    if not path.is_file():
        raise ValidationError(f"{path} is not a file: give the path of a CSV or Parquet file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValidationError(f"{path.name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
                              "sample the evaluation set or raise MODELBOARD_MAX_UPLOAD_MB")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
            raise ValidationError(f"{path.name} is not a readable Parquet file ({exc})") from None
    if suffix in (".csv", ".txt"):
        try:
            return pd.read_csv(path)
        except pd.errors.ParserError as exc:
            found = _CSV_FIELDS.search(str(exc))
            if found:
                expected, line, saw = found.groups()
                raise ValidationError(f"{path.name} does not parse: line {line} has {saw} fields where the header "
                                      f"has {expected} (check for an unquoted comma)") from None
            raise ValidationError(f"{path.name} does not parse as CSV: {exc}") from None
        except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise ValidationError(f"{path.name} is empty or not a text CSV file ({exc})") from None
    raise ValidationError(f"{path.name}: only .csv and .parquet evaluation files are accepted")


def _numeric_problem(frame: pd.DataFrame, column: str) -> str | None:
    values = frame[column]
    if values.isna().any():
        first = int(values.isna().to_numpy().argmax())
        return (f"column '{column}' has {int(values.isna().sum())} empty values (first at data row {first + 1}, "
                f"line {first + 2} of a CSV): the model needs every input; fill or drop those rows")
    if values.dtype.kind in "biuf":
        return None
    coerced = pd.to_numeric(values, errors="coerce")
    bad = coerced.isna() & values.notna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        return (f"column '{column}' row {first + 1} (line {first + 2} of a CSV) holds {str(values.iloc[first])!r}, "
                "which is not a number")
    return None


def _label_problem(frame: pd.DataFrame, label: str) -> str | None:
    values = frame[label]
    if values.isna().any():
        return f"label '{label}' has {int(values.isna().sum())} empty values: every patient needs a known outcome"
    found = sorted({str(v) for v in values.unique()})
    if not set(found) <= {"0", "1", "True", "False", "0.0", "1.0"}:
        shown = ", ".join(found[:6]) + (" …" if len(found) > 6 else "")
        return f"label '{label}' must hold only 0 and 1 (outcome absent/present); found {shown}"
    if len(found) < 2:
        return f"label '{label}' holds only {found[0]}: the evaluation set needs patients with and without the outcome"
    return None


def check_evaluation_data(frame: pd.DataFrame, *, inputs: list[tuple[str, str]], label: str,
                          sensitive: tuple[str, ...], deidentified: bool, source: str) -> EvaluationData:
    """All problems at once: missing columns, non-numeric inputs, a non-binary label,
    absent sensitive columns, and direct identifiers unless declared de-identified."""
    problems = []
    missing = [name for name, _ in inputs if name not in frame.columns]
    if missing:
        problems.append(f"columns {', '.join(missing)} are missing: the model's signature needs them")
    for name, kind in inputs:
        if name in frame.columns and kind in NUMERIC_TYPES:
            problem = _numeric_problem(frame, name)
            if problem:
                problems.append(problem)
    if label not in frame.columns:
        problems.append(f"label column '{label}' is missing: name the outcome column with --label")
    else:
        problem = _label_problem(frame, label)
        if problem:
            problems.append(problem)
    absent = [c for c in sensitive if c not in frame.columns]
    if absent:
        problems.append(f"sensitive attribute columns {', '.join(absent)} are missing from the evaluation data")
    findings = tuple(find_identifiers(frame))
    if findings and not deidentified:
        problems.append("; ".join(f.message() for f in findings) + ": remove direct identifiers, or declare the "
                        "data de-identified (--deidentified), which is recorded in the audit log")
    if len(frame) == 0:
        problems.append("the evaluation data has no rows")
    if problems:
        raise ValidationError("evaluation data refused: " + "; ".join(problems))
    return EvaluationData(frame, source, frame_digest(frame), findings)


def frame_digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
