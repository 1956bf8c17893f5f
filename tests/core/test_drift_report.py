"""evidently's drift report for one window: offline-safe HTML, and the same decisions as our drift engine."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core.errors import ValidationError
from core.metrics.drift import data_drift
from core.services.drift_report import DriftReport, _external_references, drift_report

NUMERICAL = ["lactate", "heart_rate", "creatinine", "age", "resp_rate"]
CATEGORICAL = ["sex", "admission_unit"]
SHIFTED = "lactate"

# anything a browser would fetch from another host: <script src>, <link href>, CSS url() / @import
EXTERNAL = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(https?:)?//"""
                      r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(https?:)?//"""
                      r"""|url\(\s*["']?\s*(https?:)?//|@import\s+["']\s*(https?:)?//""", re.IGNORECASE)


def window(n: int, seed: int, *, shift: bool) -> pd.DataFrame:
    """Five numerical and two categorical columns; with `shift`, only lactate moves (×1.25 + 0.3)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(0.0, 1.0, n) for name in NUMERICAL})
    if shift:
        frame[SHIFTED] = frame[SHIFTED] * 1.25 + 0.3
    frame["sex"] = rng.choice(["F", "M"], n)
    frame["admission_unit"] = rng.choice(["MICU", "SICU", "CCU", "NICU"], n, p=[0.4, 0.3, 0.2, 0.1])
    frame["encounter_id"] = np.arange(n)  # not listed: must not be tested
    return frame


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return window(3_000, 1, shift=False), window(300, 2, shift=True)


@pytest.fixture(scope="module")
def report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> DriftReport:
    reference, current = frames
    return drift_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL)


def test_html_is_self_contained_and_names_the_shifted_column(report: DriftReport) -> None:
    assert EXTERNAL.search(report.html) is None
    assert report.html.lstrip().startswith("<!DOCTYPE html>")  # a whole document for Streamlit's iframe
    assert len(report.html) > 1_000_000  # evidently's UI bundle is inlined, not referenced
    assert "window.drawDashboard" in report.html
    assert f'"{SHIFTED}"' in report.html  # quoted: a bare name could also occur inside base64
    assert report.n_columns == len(NUMERICAL) + len(CATEGORICAL)  # encounter_id was left out


def test_external_reference_check_catches_cdn_tags() -> None:
    cdn = ('<script src="https://cdn.example/plotly.js"></script><link rel="stylesheet" href="//fonts.example/a.css">'
           "<style>@font-face { src: url('https://fonts.example/icons.woff2') }</style>")
    assert len(_external_references(cdn)) == 3
    inline = '<script>var ns = "http://www.w3.org/2000/svg"</script><style>src: url(data:font/ttf;base64,AAAA)</style>'
    assert _external_references(inline) == []


def test_evidently_drifted_columns_equal_our_engine(frames: tuple[pd.DataFrame, pd.DataFrame],
                                                    report: DriftReport) -> None:
    reference, current = frames
    ours = data_drift(reference, current, NUMERICAL, CATEGORICAL)
    assert set(report.drifted_columns) == set(ours.columns.loc[ours.columns["drifted"], "column"])
    assert SHIFTED in report.drifted_columns
    assert list(report.drifted_columns) == [c for c in NUMERICAL + CATEGORICAL if c in report.drifted_columns]


def test_bad_input_is_refused_with_a_fix(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    with pytest.raises(ValidationError, match=r"\['creatinine'\] are missing from the current data.*check the column"):
        drift_report(reference, current.drop(columns="creatinine"), numerical=NUMERICAL, categorical=CATEGORICAL)
    with pytest.raises(ValidationError, match=r"\['glucose'\] are missing from the reference data"):
        drift_report(reference, current, numerical=[*NUMERICAL, "glucose"], categorical=CATEGORICAL)
    with pytest.raises(ValidationError, match="the current data has no rows: pick a window"):
        drift_report(reference, current.iloc[:0], numerical=NUMERICAL, categorical=CATEGORICAL)
    with pytest.raises(ValidationError, match="'sex' in the reference data is not numeric.*declare it categorical"):
        drift_report(reference, current, numerical=["sex"], categorical=[])
    with pytest.raises(ValidationError, match="listed as both numerical and categorical"):
        drift_report(reference, current, numerical=NUMERICAL, categorical=[*CATEGORICAL, SHIFTED])
