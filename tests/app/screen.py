"""What a rendered page puts on screen, as text, and the raw identifiers in it (issue 14: nothing raw on screen).

Reads every kind of element AppTest exposes that shows text: headings, markdown, captions, callouts, metrics,
widget labels and options, table headers and cells, and the titles, axis titles, trace names and category
labels of plotly charts. Text inside a code span (`like_this`) is deliberate: a file column or a command a data
scientist must type, and is not scanned.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

SNAKE = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/(-])")
LONG_ID = re.compile(r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{13,})\b")
NOTHING = re.compile(r"(?<![\w'])(?:None|nan|NaN|NaT|null|\{\}|\[\])(?![\w'])")
CODE_SPAN = re.compile(r"`[^`]*`")
ESCAPE = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    """Undo app.wording.plain's backslashes and drop code spans: what a reader sees as prose."""
    return ESCAPE.sub(r"\1", CODE_SPAN.sub(" ", text))


def _figure_texts(spec: dict[str, Any]) -> Iterator[str]:
    layout = spec.get("layout", {})
    for key, value in layout.items():
        if key == "title" or key.startswith(("xaxis", "yaxis")) or key == "annotations":
            yield from _titles(value)
    for trace in spec.get("data", []):
        if trace.get("name"):
            yield str(trace["name"])
        for axis in ("x", "y"):
            values = trace.get(axis)
            if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
                yield from (v for v in values if not re.match(r"^\d{4}-\d\d-\d\d", v))


def _titles(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            yield value["text"]
        if isinstance(value.get("title"), dict | str):
            yield from _titles(value["title"] if isinstance(value["title"], dict) else {"text": value["title"]})
    elif isinstance(value, list):
        for item in value:
            yield from _titles(item)


def _frame_texts(frame: pd.DataFrame) -> Iterator[str]:
    yield from (str(c) for c in frame.columns)
    for column in frame.columns:
        for cell in frame[column]:
            if cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NaT:
                yield f"None (an empty cell in column {column})"
            elif isinstance(cell, str | dict | list):
                yield str(cell) if not isinstance(cell, str) else cell


def screen_texts(at: AppTest) -> list[tuple[str, str]]:
    """(element kind, text) for everything the page shows as text."""
    found: list[tuple[str, str]] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "text"):
        found += [(kind, str(e.value)) for e in getattr(at, kind)]
    for metric in at.metric:
        found += [("metric", str(metric.label)), ("metric", str(metric.value))]
        if metric.delta:
            found.append(("metric", str(metric.delta)))
    for kind in ("selectbox", "radio", "multiselect", "select_slider"):
        for widget in getattr(at, kind):
            found.append((kind, str(widget.label)))
            found += [(kind, str(option)) for option in widget.options]
    for kind in ("checkbox", "toggle", "text_input", "text_area", "slider", "button", "expander", "tabs"):
        found += [(kind, str(getattr(e, "label", ""))) for e in getattr(at, kind)]
    for frame in list(at.dataframe) + list(at.table):
        found += [("table", text) for text in _frame_texts(frame.value)]
    for chart in at.get("plotly_chart"):
        found += [("chart", text) for text in _figure_texts(json.loads(chart.proto.spec))]
    return found


def raw_identifiers(at: AppTest) -> list[str]:
    """Every snake_case name, None/nan/{}, or long id that reaches the screen, with where it was."""
    problems = []
    for kind, text in screen_texts(at):
        seen = _unescape(text)
        for pattern in (SNAKE, LONG_ID, NOTHING):
            problems += [f"{kind}: {match.group(0)!r} in {seen[:120]!r}" for match in pattern.finditer(seen)]
    return problems
