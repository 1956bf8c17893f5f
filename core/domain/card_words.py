"""A model card's field values as a reader sees them on the Model card page: raw names in words, long ids short.

Some card values are assembled from MLflow and the evaluation (the model's type and settings, its input names,
the scoring method, run ids and git commits, criteria that name inputs and attributes as code writes them). A
clinician reads them in words; the exact text stays one hover away, and exports keep the card as stored
(issue 14: nothing raw on screen). Settings such as `max_depth=3` stay exact, shown as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.domain.glossary import ATTRIBUTES, COMMON_INPUTS, Glossary, attribute

SETTINGS = re.compile(r"\(([^()`]*=[^()`]*)\)")  # "(learning_rate=0.1, max_depth=3)": exact, as code
CODE = re.compile(r"(`[^`]*`)")
LONG_HEX = re.compile(r"\b[0-9a-f]{13,}\b")
SNAKE = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/-])")
INTERSECTION = re.compile(r"[a-z][a-z0-9_]*(?: × [a-z][a-z0-9_]*)+")
LONE_NONE = re.compile(r"(?<![\w'])None(?![\w'])")
CODE_NAMES = frozenset({"predict_proba", "decision_function"})  # functions a data scientist recognises as such


@dataclass(frozen=True)
class ShownValue:
    """A value in words, and the value as stored when the two differ (for a tooltip)."""

    text: str
    raw: str | None = None


def card_value_in_words(value: str, glossary: Glossary, *, input_list: bool = False) -> ShownValue:
    """`value` with snake_case names in words (inputs by their clinical names, attributes by theirs), ids of 13 or
    more hex characters cut to 8, and a lone "None" in lower case. `input_list` (the card's "Input data" field)
    also names the inputs that have no underscore, e.g. "spo2 (number)" → "SpO2 (number)"."""
    text = SETTINGS.sub(lambda m: f"(`{m.group(1)}`)", value)
    parts = CODE.split(text)
    shown = "".join(part if part.startswith("`") else _words(part, glossary, input_list) for part in parts)
    return ShownValue(shown, value if shown != value else None)


def _words(text: str, glossary: Glossary, input_list: bool) -> str:
    text = LONG_HEX.sub(lambda m: f"{m.group(0)[:8]}…", text)
    text = LONE_NONE.sub("none", text)
    if input_list:
        text = re.sub(r"\b([A-Za-z][\w]*)(?= \()", lambda m: _input(m.group(1), glossary), text)
    text = INTERSECTION.sub(lambda m: attribute(m.group(0)) if all(
        p in ATTRIBUTES for p in m.group(0).split(" × ")) else m.group(0), text)
    return SNAKE.sub(lambda m: _name(m.group(0), glossary), text)


def _input(raw: str, glossary: Glossary) -> str:
    known = raw in glossary.inputs or raw.lower() in COMMON_INPUTS or "_" in raw
    return glossary.input_name(raw) if known else raw


def _name(raw: str, glossary: Glossary) -> str:
    if raw in CODE_NAMES:
        return f"`{raw}`"
    if raw in glossary.inputs or raw.lower() in COMMON_INPUTS:
        return glossary.input_name(raw)
    if raw in ATTRIBUTES:
        return attribute(raw)
    return raw.replace("_", " ")
