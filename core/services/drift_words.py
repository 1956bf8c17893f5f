"""Drift in clinical words: 'Lactate values are higher than at sign-off: typical value 1.38 → 1.63 mmol/L'.

evidently judges each input with a statistic (Wasserstein distance, Jensen–Shannon distance, a p-value); a
clinician needs to know which way the values moved and how far, in the input's unit. The typical value is the
median (robust to the few extreme values an ICU always has); categories are described by the one whose share
moved most; a yes/no input by the share of patients with it. The statistic stays available for data scientists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.domain.glossary import Glossary, attribute, percent, significant, statistic, with_unit


@dataclass(frozen=True)
class DriftLine:
    """One compared column of one window, in words, with evidently's statistic kept for data scientists."""

    raw: str
    name: str
    role: str  # 'input' or 'patient mix'
    drifted: bool
    sentence: str
    at_signoff: str  # typical value (or share) at sign-off
    in_window: str
    missing_at_signoff: str
    missing_in_window: str
    statistic: str  # in words, e.g. 'Distance between distributions'
    method: str  # evidently's name, e.g. 'wasserstein'
    score: float | None
    threshold: float | None


def _is_flag(values: pd.Series) -> bool:
    present = values.dropna()
    return pd.api.types.is_bool_dtype(values) or (pd.api.types.is_numeric_dtype(values) and not present.empty
                                                  and set(present.unique()) <= {0, 1})


def _number(values: pd.Series, unit: str) -> str:
    present = pd.to_numeric(values, errors="coerce").dropna()
    return with_unit(significant(float(present.median())), unit) if not present.empty else "—"


def _moved(ref: pd.Series, cur: pd.Series) -> tuple[str, float, float]:
    """The category whose share moved most between sign-off and the window, with both shares."""
    before = ref.dropna().astype(str).value_counts(normalize=True)
    after = cur.dropna().astype(str).value_counts(normalize=True)
    both = pd.concat([before, after], axis=1).fillna(0.0)
    if both.empty:
        return "—", math.nan, math.nan
    top = (both.iloc[:, 1] - both.iloc[:, 0]).abs().idxmax()
    return str(top), float(both.loc[top].iloc[0]), float(both.loc[top].iloc[1])


def _describe(name: str, unit: str, ref: pd.Series | None, cur: pd.Series | None,
              drifted: bool) -> tuple[str, str, str]:
    """(sentence, at sign-off, in window)."""
    if ref is None or cur is None or ref.dropna().empty or cur.dropna().empty:
        state = "moved away from" if drifted else "close to"
        return f"{name}: values {state} sign-off (no values to compare on one side).", "—", "—"
    if _is_flag(ref) and _is_flag(cur):
        before, after = float(ref.dropna().astype(float).mean()), float(cur.dropna().astype(float).mean())
        direction = "more" if after > before else "fewer" if after < before else "as many"
        if not drifted:
            return (f"{name}: no shift from sign-off ({percent(before)} → {percent(after)} of patients).",
                    percent(before), percent(after))
        return (f"{direction.capitalize()} patients with {name[:1].lower()}{name[1:]} than at sign-off: "
                f"{percent(before)} → {percent(after)}.", percent(before), percent(after))
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        before, after = float(ref.median()), float(cur.median())
        numbers = with_unit(f"typical value {significant(before)} → {significant(after)}", unit)
        if not drifted:
            return f"{name}: no shift from sign-off ({numbers}).", _number(ref, unit), _number(cur, unit)
        how = "are spread differently than" if significant(before) == significant(after) \
            else f"are {'higher' if after > before else 'lower'} than"
        return f"{name} values {how} at sign-off: {numbers}.", _number(ref, unit), _number(cur, unit)
    category, before, after = _moved(ref, cur)
    return (f"The mix of {name[:1].lower()}{name[1:]} {'changed' if drifted else 'is as at sign-off'}: "
            f"“{category}” {percent(before)} → {percent(after)} of patients.",
            f"“{category}” {percent(before)}", f"“{category}” {percent(after)}")


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _share(value: object) -> str:
    share = _float(value)
    return "—" if share is None else percent(share)


def drift_in_words(drift: pd.DataFrame, reference: pd.DataFrame | None, current: pd.DataFrame | None,
                   glossary: Glossary) -> list[DriftLine]:
    """One line per compared column of a window (`monitoring.feature_drift`), drifted inputs first.

    `reference`, `current`: the sign-off and window rows (`monitoring.window_comparison`), or None when the page
    has no reference data; the lines then say only whether each column drifted.
    """
    lines = []
    for _, row in drift.iterrows():
        raw, role = str(row["column_name"]), str(row["role"])
        if role == "input":
            term = glossary.input(raw)
            name, unit = term.name, term.unit
        else:
            name, unit = attribute(raw), ""
        ref = reference[raw] if reference is not None and raw in reference else None
        cur = current[raw] if current is not None and raw in current else None
        drifted = bool(row["drifted"])
        sentence, before, after = _describe(name, unit, ref, cur, drifted)
        method = str(row["stattest"])
        lines.append(DriftLine(raw, name, "input" if role == "input" else "patient mix", drifted, sentence, before,
                               after, _share(row.get("reference_missing_share")), _share(row.get("missing_share")),
                               statistic(method).name if method != "none" else "not tested (no values on one side)",
                               method, _float(row.get("score")), _float(row.get("threshold"))))
    return sorted(lines, key=lambda line: (line.role != "input", not line.drifted))


def drift_table(lines: list[DriftLine]) -> pd.DataFrame:
    """The window's columns as a clinician reads them (every cell text; '—' where nothing can be said)."""
    return pd.DataFrame([{"Input": line.name, "What it is": line.role, "Drifted": "yes" if line.drifted else "no",
                          "Typical at sign-off": line.at_signoff, "Typical in this window": line.in_window,
                          "Missing at sign-off": line.missing_at_signoff,
                          "Missing in this window": line.missing_in_window} for line in lines],
                        columns=["Input", "What it is", "Drifted", "Typical at sign-off", "Typical in this window",
                                 "Missing at sign-off", "Missing in this window"])


def statistics_table(lines: list[DriftLine]) -> pd.DataFrame:
    """evidently's statistic per column, for data scientists (behind a toggle on the page)."""
    return pd.DataFrame([{"Input": line.name, "Statistic": line.statistic,
                          "Value": "—" if line.score is None else f"{line.score:.3f}",
                          "Drift from": "—" if line.threshold is None else f"{line.threshold:g}",
                          "Drifted": "yes" if line.drifted else "no"} for line in lines],
                        columns=["Input", "Statistic", "Value", "Drift from", "Drifted"])
