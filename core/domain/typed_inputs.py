"""Values as the model's signature declares them, and outcomes as 0/1.

Evaluation sets and production logs arrive as CSV or Parquet, so a column of
codes may be read as numbers, a flag as text and a missing value as NaN or
None. Each input is converted to its declared type (no blanket float cast: a
text category stays text), every value that cannot be is reported with its row,
and a missing value is accepted only where the signature does not mark the
column required. Missing values stay missing: they are what the model sees in
the hospital, and what the pages report (docs/decisions/0013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.domain.signature import WHOLE_NUMBER_TYPES, InputColumn

TRUE_WORDS = frozenset({"1", "1.0", "true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"0", "0.0", "false", "f", "no", "n"})
FIX_MISSING = ("fill them, evaluate complete cases only (--complete-case; the card records it), or log the model "
               "with a signature that marks the column optional (infer_signature does when the training data has "
               "missing values)")


@dataclass(frozen=True)
class Conformed:
    """The inputs in their declared types, and what could not be converted (one sentence per column)."""

    frame: pd.DataFrame
    problems: tuple[str, ...]


def _where(frame_index: int) -> str:
    return f"row {frame_index + 1} (line {frame_index + 2} of a CSV)"


@dataclass(frozen=True)
class ColumnValues:
    """One input converted to its declared type; `bad` marks values that could not be (left missing), and
    `why` says, for a row of them, what is wrong ('is not a number')."""

    values: pd.Series
    bad: pd.Series
    why: str


def _numbers(values: pd.Series, column: InputColumn) -> ColumnValues:
    coerced = pd.to_numeric(values, errors="coerce")
    infinite = np.isinf(coerced.to_numpy(dtype=float, na_value=np.nan))
    coerced = coerced.where(~infinite)
    bad = (coerced.isna() & values.notna()) | infinite
    if column.type in WHOLE_NUMBER_TYPES:
        fractional = coerced.notna() & (coerced % 1 != 0)
        if fractional.any() or bad.any():
            return ColumnValues(coerced.where(~fractional), bad | fractional,
                                f"is not a whole number (the signature declares {column.type})")
        complete = bool(coerced.notna().all())
        if column.type == "long":
            whole = coerced.astype("int64") if complete else coerced.astype("Int64")
        else:
            whole = coerced.astype("int32") if complete else coerced.astype("Int32")
        return ColumnValues(whole, bad, "")
    return ColumnValues(coerced.astype("float32" if column.type == "float" else "float64"), bad,
                        "is not a finite number")


def _flags(values: pd.Series) -> ColumnValues:
    words = values.map(lambda v: None if pd.isna(v) else str(v).strip().lower())
    bad = words.notna() & ~words.isin(TRUE_WORDS | FALSE_WORDS)
    flags = words.map(lambda w: None if w is None or (w not in TRUE_WORDS and w not in FALSE_WORDS)
                      else w in TRUE_WORDS)
    return ColumnValues(flags.astype(bool if flags.notna().all() else "boolean"), bad,
                        "is not true/false (accepted: true/false, 1/0, yes/no)")


def _text(values: pd.Series) -> ColumnValues:
    """Text as text: a code column read as numbers becomes '12', not '12.0'; missing stays None."""
    numeric = pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all())
    source = values.astype("Int64") if numeric else values
    text = source.map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return ColumnValues(text, pd.Series(False, index=values.index), "")


def _times(values: pd.Series) -> ColumnValues:
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed").dt.tz_localize(None)
    return ColumnValues(parsed, parsed.isna() & values.notna(), "is not a date and time")


def column_values(values: pd.Series, column: InputColumn) -> ColumnValues:
    """`values` in the column's declared type, row by row."""
    if column.kind == "numerical":
        return _numbers(values, column)
    if column.type == "boolean":
        return _flags(values)
    return _text(values) if column.type == "string" else _times(values)


def conform(frame: pd.DataFrame, inputs: Sequence[InputColumn]) -> Conformed:
    """Every input column (present in `frame`) converted to its declared type; other columns untouched.
    The first bad value of each column is reported with its row."""
    out, problems = frame.copy(), []
    for column in inputs:
        if column.name not in frame.columns:
            continue
        found = column_values(frame[column.name], column)
        if found.bad.any():
            i = int(np.flatnonzero(found.bad.to_numpy())[0])
            shown = frame[column.name].iloc[i]
            problems.append(f"column '{column.name}' {_where(i)} holds {str(shown)!r}, which {found.why}")
            continue
        missing = found.values.isna()
        if column.required and missing.any():
            i = int(np.flatnonzero(missing.to_numpy())[0])
            problems.append(f"column '{column.name}' has {int(missing.sum())} empty values (first at {_where(i)}), "
                            f"but the model's signature marks it required: {FIX_MISSING}")
            continue
        out[column.name] = found.values
    return Conformed(out, tuple(problems))


def label_problem(values: pd.Series, label: str, positive_class: str | None) -> str | None:
    """Why the outcome column cannot be read as 0/1, or None. A value that is not true/false among values that
    are ('2' among 0/1, 'maybe' among yes/no) is named with its first row."""
    if values.isna().any():
        i = int(np.flatnonzero(values.isna().to_numpy())[0])
        return (f"label '{label}' has {int(values.isna().sum())} empty values (first at {_where(i)}): every patient "
                "needs a known outcome")
    words = values.map(lambda v: str(v).strip())
    found = sorted(set(words))
    shown = ", ".join(found[:6]) + (" …" if len(found) > 6 else "")
    if positive_class is not None and len(found) == 2 and positive_class in found:
        return None
    flags = words.str.lower().isin(TRUE_WORDS | FALSE_WORDS)
    if flags.all():
        if len({f.lower() in TRUE_WORDS for f in found}) < 2:
            return (f"label '{label}' holds only {shown}: the evaluation set needs patients with and without "
                    "the outcome")
        return None
    if flags.any():
        i = int(np.flatnonzero(~flags.to_numpy())[0])
        return (f"label '{label}' must hold two values (0/1, true/false, or two named classes); found {shown}, and "
                f"{words.iloc[i]!r} (first at {_where(i)}) is not an outcome: correct those rows, or leave them out")
    if len(found) != 2:
        return f"label '{label}' must hold two values (0/1, true/false, or two named classes); found {shown}"
    if positive_class is None:
        return (f"label '{label}' holds {shown}: say which one is the outcome with positive_class in the use case "
                f"(e.g. positive_class: {found[-1]})")
    return f"label '{label}' holds {shown}, but the use case names the outcome {positive_class!r}"


def outcome_values(values: pd.Series, positive_class: str | None) -> np.ndarray:
    """1 where the patient had the outcome, else 0 (call `label_problem` first)."""
    words = values.map(lambda v: str(v).strip())
    if positive_class is not None and positive_class in set(words):
        return (words == positive_class).to_numpy(dtype=np.int64)
    return words.str.lower().isin(TRUE_WORDS).to_numpy(dtype=np.int64)


def missing_inputs(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """True for each row where at least one of the model's inputs is missing."""
    present = [n for n in names if n in frame.columns]
    return frame[present].isna().any(axis=1) if present else pd.Series(False, index=frame.index)
