"""evidently's own data-drift report for one monitoring window, as a standalone HTML file the Monitoring page offers
as a download (never embedded in the app: its column names and categories come from the data).

Why both this and `core.metrics.drift`: the window's drift decisions come from our engine (fast at any
size, docs/decisions/0010-drift-engine.md); this report is the drill-down a reviewer opens for one window,
with evidently's per-column distributions and test results, so it is run only on demand and only on one
window. `drifted_columns` is read from the same report so the page can show that both agree.

Offline: the app has no internet, so the HTML must not load anything from a CDN. evidently 0.7.23 already
does not: `Snapshot.get_html_str` → `core/metric_types.py render_widgets` →
`legacy/utils/dashboard.py file_html_template`, whose `TemplateParams` default to `embed_lib=True` and
`embed_font=True`, inlines its whole UI bundle (`evidently/nbextension/static/index.js`, ~3.5 MB: React,
MUI, Plotly) in a `<script>` and the Material Icons font (`material-ui-icons.woff2`) as a base64 data URL;
`include_js_files` is empty, so there is no `<script src>` or `<link href>` at all. The http(s) strings left
in the bundle are XML namespaces, error-message links and Plotly's `topojsonURL` (used only by geo maps,
which this report has none of). We ask for `as_iframe=False`, the standalone document: `as_iframe=True`
wraps it in an escaped `<iframe srcdoc>` plus a resize script, which inside Streamlit's own component
iframe (`streamlit.components.v1.html(report.html, height=..., scrolling=True)`) would only nest frames.
Because a future evidently could change that, `drift_report` checks the HTML and refuses to return one that
references an external script, stylesheet or font (`_external_references`). Checked once by hand: the
HTML loaded in headless Chromium with every network request blocked made no request and no script error,
and drew the summary, table and icons.

Cost (measured, 2 cores): 220 current vs 4,000 reference rows, 10 numerical + 4 categorical columns take
~1.7-2.2 s per call once evidently is loaded (almost all `Report.run`; the HTML, ~4.4 MB, ~0.2 s; `.dict()`
and the offline check under 0.1 s). The first call in a process takes ~7 s, ~5 s of it importing evidently,
hence the lazy import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelBoardError, ValidationError

VALUE_DRIFT = "ValueDrift"  # the suffix of evidently's per-column metric type, "evidently:metric_v2:ValueDrift"

# A tag or CSS rule that makes the browser fetch from another host: <script src>, <link href>, url(), @import.
_EXTERNAL = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+["']\s*(?:https?:)?//""",
    re.IGNORECASE)


@dataclass(frozen=True)
class DriftReport:
    """evidently's HTML for one window and the columns its per-column tests failed, in the order listed."""

    html: str
    drifted_columns: tuple[str, ...]
    n_columns: int


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, numerical: list[str], categorical: list[str],
                 drift_share: float = 0.5) -> DriftReport:
    """Run evidently 0.7's `Report([DataDriftPreset])` with its tests on the listed columns of one window.

    Only the listed columns are passed: evidently would otherwise infer and test every other column (ids,
    timestamps). Inputs are checked first, so a bad request fails in milliseconds, before evidently loads.
    """
    _validate(reference, current, numerical, categorical, drift_share)
    listed = [*numerical, *categorical]

    from evidently import DataDefinition, Dataset, Report  # slow to import: only when a report is asked for
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(numerical), categorical_columns=list(categorical))
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    snapshot = report.run(  # current first, reference second: evidently's order
        Dataset.from_pandas(current[listed], data_definition=definition),
        Dataset.from_pandas(reference[listed], data_definition=definition))
    html = str(snapshot.get_html_str(as_iframe=False))
    external = _external_references(html)
    if external:
        raise ModelBoardError(f"evidently's drift report now loads {external[:3]} from the internet, which the "
                              "offline app cannot reach: pin evidently==0.7.23 or inline those files in "
                              "core/services/drift_report.py")
    tested, drifted = _column_results(snapshot.dict())
    return DriftReport(html, tuple(c for c in listed if c in drifted), len(tested))


def _validate(reference: pd.DataFrame, current: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str],
              drift_share: float) -> None:
    """Name every problem the way a user fixes it; evidently's own errors for these are obscure or silent."""
    listed = [*numerical, *categorical]
    if not listed:
        raise ValidationError("no columns to compare: list at least one numerical or categorical column")
    both = sorted(set(numerical) & set(categorical))
    if both:
        raise ValidationError(f"columns {both} are listed as both numerical and categorical: list each once")
    repeated = sorted({c for c in listed if listed.count(c) > 1})
    if repeated:
        raise ValidationError(f"columns {repeated} are listed more than once: list each once")
    if not 0 < drift_share <= 1:
        raise ValidationError(f"drift_share must be a share of columns in (0, 1], not {drift_share}")
    for side, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise ValidationError(f"the {side} data has no rows: pick a window (or reference) that contains data")
        missing = [c for c in listed if c not in frame.columns]
        if missing:
            raise ValidationError(f"columns {missing} are missing from the {side} data: check the column names or "
                                  "remove them from the feature list")
        for column in numerical:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                raise ValidationError(f"column '{column}' in the {side} data is not numeric ({frame[column].dtype}):"
                                      " declare it categorical")
        empty = [c for c in listed if not _has_values(frame[c], numerical=c in numerical)]
        if empty:
            raise ValidationError(f"columns {empty} have no values in the {side} data (all missing): drop them "
                                  "from the feature list or pick another window")


def _has_values(values: pd.Series, *, numerical: bool) -> bool:
    """evidently drops NaN (and ±inf in numerical columns) before testing: a column of only those cannot be tested."""
    if numerical:
        return bool(np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)).any())
    return bool(values.notna().any())


def _column_results(snapshot: dict[str, Any]) -> tuple[list[str], set[str]]:
    """Columns evidently tested and those whose "Value Drift" test failed, from the snapshot's `.dict()`.

    Each test names its metric by id; a ValueDrift metric's config names its column. The test status is
    evidently's decision (its method's threshold and direction), so nothing is re-derived here.
    """
    column_of = {m["id"]: m["config"]["column"] for m in snapshot["metrics"]
                 if str(m["config"]["type"]).endswith(VALUE_DRIFT)}
    drifted = {column_of[t["metric_config"]["metric_id"]] for t in snapshot["tests"]
               if t["metric_config"]["metric_id"] in column_of and t["status"] == "FAIL"}
    return list(column_of.values()), drifted


def _external_references(html: str) -> list[str]:
    """The first characters of each tag or CSS rule in `html` that would fetch from another host."""
    return [html[m.start():m.start() + 120] for m in _EXTERNAL.finditer(html)]
