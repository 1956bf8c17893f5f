"""Read models of what the model was given: how its scores were produced, each input as it arrived, and
who was missing which input — from the stored evaluation, never recomputed on page load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.metrics.missingness import OVERALL, missing_sentence
from core.services.submission import StoredEvaluation

TYPE_WORDS = {"double": "number", "float": "number", "long": "whole number", "integer": "whole number",
              "boolean": "true/false", "string": "text (category)", "datetime": "date and time"}
SHARE_COLUMNS = ["attribute", "group", "column", "n", "missing", "share"]


@dataclass(frozen=True)
class InputsView:
    scoring: str  # how the risks were produced, in a sentence ("" for evaluations stored before it was recorded)
    inputs_from: str  # "signature" or "input example"
    table: pd.DataFrame  # one row per input, columns in plain words
    shares: pd.DataFrame  # SHARE_COLUMNS, long form
    flagged: tuple[str, ...]  # natural-frequency sentences: flagged with the input missing vs present
    complete_case: str | None  # the sentence when the submitter chose complete cases

    @property
    def gappy(self) -> list[str]:
        """Inputs missing for at least one patient."""
        overall = self.shares[(self.shares["attribute"] == OVERALL) & (self.shares["missing"] > 0)]
        return overall.sort_values("share", ascending=False)["column"].tolist()


def _summary(entry: dict[str, Any]) -> str:
    if "min" in entry:
        return f"{entry['min']:g} to {entry['max']:g} (median {entry['median']:g})"
    top = entry.get("top") or {}
    return ", ".join(f"{k} ({v:,})" for k, v in top.items())


def _table(profile: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "Input": e["column"], "Type": TYPE_WORDS.get(e["type"], e["type"]),
        "May be missing": "no (required)" if e["required"] else "yes",
        "Missing": f"{e['missing']:,} of {e['n']:,} ({e['missing'] / max(e['n'], 1):.0%})",
        "Different values": e["distinct"], "Range, or most common values": _summary(e)} for e in profile],
        columns=["Input", "Type", "May be missing", "Missing", "Different values", "Range, or most common values"])


def _flagged(entries: list[dict[str, Any]], outcome: str) -> tuple[str, ...]:
    out = []
    for e in entries:
        gone, there = e["missing"], e["present"]
        if gone["positives"] == 0 or there["positives"] == 0:
            continue
        out.append(f"Of 100 patients who developed {outcome} and had no {e['column']}, the model flagged "
                   f"{gone['sensitivity'] * 100:.0f} (95 % CI {gone['lo'] * 100:.0f}–{gone['hi'] * 100:.0f}, "
                   f"{gone['positives']:,} patients); with {e['column']} measured, {there['sensitivity'] * 100:.0f} "
                   f"({there['lo'] * 100:.0f}–{there['hi'] * 100:.0f}, {there['positives']:,} patients).")
    return tuple(out)


def inputs_view(evaluation: StoredEvaluation) -> InputsView | None:
    """None for evaluations stored before inputs were profiled."""
    result = evaluation.result
    if "inputs" not in result:
        return None
    outcome = str(result.get("outcome", "the outcome"))
    outcome = outcome[:1].lower() + outcome[1:]
    complete = result.get("complete_case")
    sentence = None
    if complete:
        share = complete["rows_dropped"] / max(complete["rows_before"], 1)
        sentence = (f"Evaluated on complete cases only, at the submitter's request: {complete['rows_dropped']:,} of "
                    f"{complete['rows_before']:,} patients ({share:.0%}) with a missing input were left out, so "
                    "these figures do not describe them.")
    return InputsView(str(result.get("scoring", {}).get("sentence", "")), str(result.get("inputs_from", "signature")),
                      _table(result["inputs"]), pd.DataFrame(result.get("missingness") or [], columns=SHARE_COLUMNS),
                      _flagged(result.get("missing_flagged") or [], outcome), sentence)


def missing_by_group(view: InputsView, attribute: str, *, min_n: int) -> tuple[pd.DataFrame, list[str]]:
    """Missing share per group of one attribute for every gappy input (for a bar chart), and one sentence per
    input naming the groups missing it most and least."""
    rows = view.shares[(view.shares["attribute"] == attribute) & view.shares["column"].isin(view.gappy)]
    sentences = [s for c in view.gappy if (s := missing_sentence(view.shares, c, attribute, min_n=min_n))]
    return rows.assign(judged=rows["n"] >= min_n), [s[:1].upper() + s[1:] + "." for s in sentences]
