"""CSV for people to open in a spreadsheet: a text cell that a spreadsheet would run as a formula is neutralised.

A reviewer's rationale, a run name or an actor typed as `=HYPERLINK("http://…")` must reach Excel as text, not as
a formula that fetches or computes something when the auditor opens the export (CSV injection, OWASP). Cells that
start with `=`, `+`, `-`, `@`, a tab or a carriage return get a leading apostrophe; numbers stay numbers.
"""

from __future__ import annotations

import pandas as pd

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_csv(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV (RFC 4180 line ends) with every text cell neutralised."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")  # RFC 4180: a CR inside a cell is quoted
