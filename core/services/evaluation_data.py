"""Reading and checking an evaluation set before anything runs.

Every problem is found and reported at once, in words that say what to fix;
nothing is written anywhere until the data has passed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.domain.identifiers import IdentifierFinding, find_identifiers
from core.domain.signature import InputColumn
from core.domain.typed_inputs import conform, label_problem, missing_inputs, outcome_values
from core.errors import ValidationError

_CSV_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass(frozen=True)
class EvaluationData:
    frame: pd.DataFrame
    source: str
    digest: str
    identifiers: tuple[IdentifierFinding, ...]
    complete_case: CompleteCase | None = None


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


@dataclass(frozen=True)
class CompleteCase:
    """A complete-case evaluation, chosen by the submitter: who was left out for a missing input."""

    rows_before: int
    rows_dropped: int
    dropped_by_group: dict[str, dict[str, float]]  # attribute → group → share of that group left out

    def sentence(self) -> str:
        share = self.rows_dropped / self.rows_before if self.rows_before else 0.0
        return (f"complete cases only: {self.rows_dropped:,} of {self.rows_before:,} patients ({share:.0%}) with a "
                "missing input were left out at the submitter's request")


def _complete_cases(frame: pd.DataFrame, inputs: Sequence[InputColumn],
                    sensitive: tuple[str, ...]) -> tuple[pd.DataFrame, CompleteCase]:
    dropped = missing_inputs(frame, [c.name for c in inputs])
    by_group = {a: {str(g): float(v) for g, v in dropped.groupby(frame[a].astype(str)).mean().items()}
                for a in sensitive if a in frame.columns}
    kept = frame[~dropped.to_numpy()].reset_index(drop=True)
    return kept, CompleteCase(len(frame), int(dropped.sum()), by_group)


def check_evaluation_data(frame: pd.DataFrame, *, inputs: Sequence[InputColumn], label: str,
                          sensitive: tuple[str, ...], deidentified: bool, source: str,
                          positive_class: str | None = None, complete_case: bool = False) -> EvaluationData:
    """All problems at once: missing columns, values that are not of the signature's types (or missing where
    it requires them), an outcome that is not two classes, absent sensitive columns, and direct identifiers
    unless declared de-identified. Returns the inputs in their declared types and the outcome as 0/1."""
    problems = []
    missing = [c.name for c in inputs if c.name not in frame.columns]
    if missing:
        problems.append(f"columns {', '.join(missing)} are missing: the model's signature needs them")
    chosen: CompleteCase | None = None
    if complete_case and not missing:
        frame, chosen = _complete_cases(frame, inputs, sensitive)
    digest = frame_digest(frame)  # of the patients evaluated: a complete-case run is not the full run
    conformed = conform(frame, inputs)
    problems += conformed.problems
    if label not in frame.columns:
        problems.append(f"label column '{label}' is missing: name the outcome column with --label")
    else:
        problem = label_problem(frame[label], label, positive_class)
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
        problems.append("the evaluation data has no rows" + (" with every input present" if chosen else ""))
    if problems:
        raise ValidationError("evaluation data refused: " + "; ".join(problems))
    typed = conformed.frame.assign(**{label: outcome_values(frame[label], positive_class)})
    return EvaluationData(typed, source, digest, findings, chosen)


def frame_digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
