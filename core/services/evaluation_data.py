"""Reading and checking an evaluation set before anything runs.

Every problem is found and reported at once, in words that say what to fix;
nothing is written anywhere until the data has passed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    """CSV or Parquet, refusing files over the size limit and naming where parsing failed.

    A CSV file must be UTF-8 (a byte-order mark and CRLF line ends are fine) without control characters other
    than tab, CR and LF: pandas cuts a value short at a NUL byte, which once turned one group into two. Column
    names must be unique (pandas would silently rename a copy to 'name.1')."""
    if not path.is_file():
        raise ValidationError(f"{path} is not a file: give the path of a CSV or Parquet file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValidationError(f"{path.name} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
                              "sample the evaluation set or raise MODELBOARD_MAX_UPLOAD_MB")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
    elif suffix in (".csv", ".txt"):
        frame = _read_csv(path)
    else:
        raise ValidationError(f"{path.name}: only .csv and .parquet evaluation files are accepted (save a "
                              "spreadsheet as 'CSV UTF-8', or write the frame with to_csv or to_parquet)")
    _refuse_copies([str(c) for c in frame.columns], path.name)
    return frame


def _refuse_copies(names: list[str], file_name: str) -> None:
    copies = sorted({n for n in names if names.count(n) > 1})
    if copies:
        raise ValidationError(f"{file_name}: column {', '.join(map(repr, copies))} appears more than once in the "
                              "header: rename or remove the copies, so that it is clear which one to use")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
        raise ValidationError(f"{path.name} is not a readable Parquet file ({exc})") from None
    for column in frame.select_dtypes(include="object").columns:
        text = frame[column].map(lambda v: v if isinstance(v, str) else "")
        bad = text.str.contains(_CONTROL)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            char = _CONTROL.search(text.iloc[i])
            raise ValidationError(f"{path.name} row {i + 1}, column '{column}': the value {text.iloc[i]!r} holds "
                                  f"{_control_name(char.group() if char else '')}; {_CONTROL_FIX}")
    return frame


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_FIX = ("remove control characters from the data (only tab, CR and LF are allowed): they usually come from "
                "a damaged copy or a binary field exported as text")
_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_NOT_CSV = {b"PAR1": "a Parquet file: name it .parquet", b"PK\x03\x04": "a zip archive or an Excel workbook: "
            "unzip it, or save the sheet as 'CSV UTF-8'", b"\xd0\xcf\x11\xe0": "an Excel workbook: save the sheet "
            "as 'CSV UTF-8'", b"\x1f\x8b": "gzip-compressed: decompress it first"}


def _control_name(char: str) -> str:
    return "a NUL byte (\\x00)" if char == "\x00" else f"the control character {char!r} (U+{ord(char or ' '):04X})"


def _read_csv(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    name = path.name
    if not raw:
        raise ValidationError(f"{name} is empty (0 bytes): export the evaluation set again, with a header line "
                              "and one line per patient")
    text = _utf8_text(raw, name)
    _refuse_control_characters(text, name)
    if not text.strip():
        raise ValidationError(f"{name} holds only blank lines: export the evaluation set again, with a header line "
                              "and one line per patient")
    _refuse_copies(next(csv.reader(io.StringIO(text.lstrip("\r\n"))), []), name)  # pandas renames a copy 'x.1'
    try:
        return pd.read_csv(io.BytesIO(raw.removeprefix(codecs.BOM_UTF8)), encoding="utf-8")
    except pd.errors.ParserError as exc:
        found, unclosed = _CSV_FIELDS.search(str(exc)), _EOF_IN_QUOTE.search(str(exc))
        if found:
            expected, line, saw = found.groups()
            raise ValidationError(f"{name} does not parse: line {line} has {saw} fields where the header "
                                  f"has {expected} (check for an unquoted comma)") from None
        if unclosed:
            raise ValidationError(f"{name} does not parse: the quote (\") opened on line {int(unclosed.group(1)) + 1} "
                                  "is never closed, so the rest of the file reads as one value: close the quote, or "
                                  "double a quote that is part of a value (\"\")") from None
        raise ValidationError(f"{name} does not parse as CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{name} has no header line: export the evaluation set again, with a header line "
                              "and one line per patient") from None


def _line_and_column(data: bytes | str, offset: int) -> tuple[int, int]:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1, offset - (data.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]


def _utf8_text(raw: bytes, name: str) -> str:
    """The file as text, or a refusal that says which encoding it seems to be in and how to save it as UTF-8."""
    for magic, what in _NOT_CSV.items():
        if raw.startswith(magic):
            raise ValidationError(f"{name} is not a CSV text file but {what}")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError(f"{name} is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8: save it "
                              "as 'CSV UTF-8', or convert it with `iconv -f UTF-16 -t UTF-8`")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _line_and_column(raw, exc.start)
        raise ValidationError(f"{name} is not UTF-8 text: line {line}, byte {column} is 0x{raw[exc.start]:02x}, "
                              "which UTF-8 does not allow (Latin-1 or Windows-1252 text, e.g. an accented letter "
                              "saved by Excel as plain 'CSV', does this): save it as 'CSV UTF-8', or convert it "
                              "with `iconv -f WINDOWS-1252 -t UTF-8`") from None


def _refuse_control_characters(text: str, name: str) -> None:
    found = _CONTROL.search(text)
    if found is None:
        return
    if text.count("\x00") * 4 > len(text):
        raise ValidationError(f"{name} looks like UTF-16 text (every other byte is NUL), not UTF-8: save it as "
                              "'CSV UTF-8', or convert it with `iconv -f UTF-16LE -t UTF-8`")
    line, position = _line_and_column(text, found.start())
    lines = text.splitlines()
    header = next(csv.reader(lines[:1]), [])
    fields = next(csv.reader(lines[line - 1:line]), [])
    named = next((j for j, f in enumerate(fields) if _CONTROL.search(f)), None)
    column = f", column '{header[named]}'" if named is not None and named < len(header) and line > 1 else ""
    raise ValidationError(f"{name} line {line}{column} (character {position}) holds "
                          f"{_control_name(found.group())}; {_CONTROL_FIX}")


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
    unless declared de-identified, a sensitive attribute with fewer than two groups. Returns the inputs in their
    declared types and the outcome as 0/1. Columns the model does not take are kept and passed along untouched:
    an export carries more than a model needs (encounter ids, other attributes), and they are harmless once
    checked for direct identifiers."""
    if len(frame) == 0:
        raise ValidationError(f"evaluation data refused ({source}): it has column names but no rows below them: "
                              "export the patients' rows too, one line per patient")
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
        problems.append(f"label column '{label}' is missing: add the outcome column '{label}' (the use case's "
                        "label), or name the column that holds the outcome with --label")
    else:
        problem = label_problem(frame[label], label, positive_class)
        if problem:
            problems.append(problem)
    absent = [c for c in sensitive if c not in frame.columns]
    if absent:
        problems.append(f"sensitive attribute columns {', '.join(absent)} are missing from the evaluation data: "
                        "add them (the use case compares the model's performance across their groups), or name the "
                        "columns that hold them with --sensitive")
    problems += [_one_group(frame[a], a) for a in sensitive if a in frame.columns and frame[a].nunique() < 2]
    findings = tuple(find_identifiers(frame))
    if findings and not deidentified:
        problems.append("; ".join(f.message() for f in findings) + ": remove direct identifiers, or declare the "
                        "data de-identified (--deidentified), which is recorded in the audit log")
    if len(frame) == 0:
        problems.append("the evaluation data has no rows" + (" with every input present" if chosen else ""))
    if problems:
        raise ValidationError(f"evaluation data refused ({source}): " + "; ".join(problems))
    typed = conformed.frame.assign(**{label: outcome_values(frame[label], positive_class)})
    return EvaluationData(typed, source, digest, findings, chosen)


def _one_group(values: pd.Series, attribute: str) -> str:
    groups = values.dropna().unique()
    held = f"one group only ({str(groups[0])!r})" if len(groups) else "no values at all"
    return (f"sensitive attribute '{attribute}' holds {held}: its groups cannot be compared; include patients of "
            "every group (a filter on the export may have dropped the others)")


def frame_digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
