"""Plotly figures of the Monitoring page: one time series per metric, with its limit and the alerted windows.

Every chart reads the same way: dates on the time axis (a window is shown by its first day, hovered with its
inclusive span, e.g. '27 Jul–2 Aug 2026'), the Okabe–Ito colour-blind-safe palette with a marker shape and a line
style per series (colour is never the only cue), and alert markers on the failing side of the limit line (above
an upper limit, below a lower one).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go

from core.domain.monitoring_policy import MonitoringPolicy
from core.domain.monitoring_policy import window_span as core_window_span
from core.domain.palette import DASHES, MUTED, OKABE_ITO, SYMBOLS
from core.domain.palette import HIGHLIGHT as ALERT_COLOUR

LIMIT_COLOUR = "#B71C1C"
Side = Literal["above", "below"]
# Which side of its limit a rule fails on (core.services.monitoring_rules: drift, score shift and missing inputs
# fail above; AUROC and subgroup sensitivity fail below).
FAILS: dict[str, Side] = {"drifted_feature_share": "above", "input_drift": "above", "score_psi": "above",
                          "input_missing": "above", "auroc_drop": "below", "subgroup_sensitivity": "below"}
RULE_WORDS = {"drifted_feature_share": "many inputs drifted", "input_drift": "one input shifted strongly",
              "score_psi": "the risk scores shifted", "auroc_drop": "AUROC fell below its floor",
              "subgroup_sensitivity": "a patient group fell below the minimum sensitivity",
              "input_missing": "an input is missing more often"}


def window_span(start: Any, end: Any) -> str:
    """A window by its dates, last day inclusive: core's one convention (monitoring_policy.window_span), here
    for pandas timestamps and a window whose end is not known (one day)."""
    first = pd.Timestamp(start).to_pydatetime()
    last = pd.Timestamp(end).to_pydatetime() if end is not None and not pd.isna(end) else first + timedelta(days=1)
    return core_window_span(first, last)


def window_label(row: dict[str, Any], granularity: str = "") -> str:
    flags = json.loads(row["breaches"] or "[]")
    return window_span(row["window_start"], row.get("window_end")) + (
        f" — {len(flags)} rule(s) broken" if flags else "")


def _spans(windows: pd.DataFrame) -> list[str]:
    ends = windows["window_end"] if "window_end" in windows else [None] * len(windows)
    return [window_span(s, e) for s, e in zip(windows["window_start"], ends, strict=True)]


def _breaches(windows: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The windows that broke `rule`, with the breach's value and limit."""
    rows = []
    for _, w in windows.iterrows():
        for b in json.loads(w["breaches"] or "[]"):
            if b["rule"] == rule:
                rows.append({"window_start": w["window_start"], "window_end": w.get("window_end"),
                             "value": b.get("value"), "threshold": b.get("limit", b.get("threshold"))})
    return pd.DataFrame(rows, columns=["window_start", "window_end", "value", "threshold"])


def _figure(title: str, y_title: str, *, percent: bool = False) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, yaxis_title=y_title, height=320, margin={"t": 40, "b": 30, "l": 50, "r": 10},
                      legend={"orientation": "h", "y": -0.3}, hovermode="closest")
    fig.update_xaxes(type="date", tickformat="%-d %b %Y", hoverformat="%-d %b %Y")
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def _limit(fig: go.Figure, value: float | None, label: str) -> None:
    if value is not None:
        fig.add_hline(y=value, line_dash="dash", line_color=LIMIT_COLOUR, annotation_text=label)


def _markers(fig: go.Figure, windows: pd.DataFrame, series: str | None, rule: str, limit: float | None,
             symbol: str = "x") -> None:
    """One marker per window that broke `rule`, at the series' value (or, without a series, the breach's own
    value) when that lies beyond the limit, else just beyond the limit line: the marker says 'this window
    failed', and failing is above (or below) the line."""
    hit = _breaches(windows, rule)
    if hit.empty:
        return
    values = (windows.set_index("window_start")[series].reindex(hit["window_start"]) if series is not None
              else pd.to_numeric(hit["value"], errors="coerce")).to_numpy(dtype=float)
    side = FAILS.get(rule, "above")
    if limit is not None:
        nudge = 0.02 * max(abs(limit), 0.05)
        values = [(max(v, limit + nudge) if side == "above" else min(v, limit - nudge)) if v == v
                  else limit + (nudge if side == "above" else -nudge) for v in values]
    fig.add_scatter(x=hit["window_start"], y=values, mode="markers", name=f"Alert: {RULE_WORDS.get(rule, rule)}",
                    marker={"symbol": symbol, "size": 14, "color": ALERT_COLOUR, "line": {"width": 2}},
                    customdata=[[window_span(s, e)] for s, e in zip(hit["window_start"], hit["window_end"],
                                                                     strict=True)],
                    hovertemplate="%{customdata[0]}: alert raised<extra></extra>")


def _line(fig: go.Figure, windows: pd.DataFrame, column: str, name: str, i: int = 0, **kwargs: Any) -> None:
    fig.add_scatter(x=windows["window_start"], y=windows[column], mode="lines+markers", name=name,
                    line={"color": OKABE_ITO[i % len(OKABE_ITO)], "dash": DASHES[i % len(DASHES)]},
                    marker={"symbol": SYMBOLS[i % len(SYMBOLS)]}, customdata=[[s] for s in _spans(windows)],
                    hovertemplate="%{customdata[0]}: %{y:.3~g}<extra>" + name + "</extra>", **kwargs)


def drift_figure(windows: pd.DataFrame, policy: MonitoringPolicy) -> go.Figure:
    fig = _figure("Data drift: share of inputs that drifted", "share of inputs", percent=True)
    _line(fig, windows, "drifted_share", "Share of inputs that drifted")
    rule = policy.rule("drifted_feature_share")
    limit = rule.threshold if rule else None
    _limit(fig, limit, "alert limit")
    _markers(fig, windows, "drifted_share", "drifted_feature_share", limit)
    _markers(fig, windows, "drifted_share", "input_drift", limit if limit is not None else 0.0,
             symbol="star-triangle-up")
    return fig


def score_figure(windows: pd.DataFrame, policy: MonitoringPolicy) -> go.Figure:
    fig = _figure("Risk scores: how far their distribution moved from sign-off", "shift in the distribution")
    _line(fig, windows, "score_psi", "Shift of the risk scores")
    rule = policy.rule("score_psi")
    limit = rule.threshold if rule else None
    _limit(fig, limit, "alert limit")
    _markers(fig, windows, "score_psi", "score_psi", limit)
    return fig


def performance_figure(windows: pd.DataFrame, metric: str, label: str, floor: float | None) -> go.Figure:
    """Realised (with interval, once outcomes arrived) against the estimate made from the scores alone."""
    fig = _figure(label, label)
    _band(fig, windows, metric, "Realised (patients with outcomes)")
    fig.add_scatter(x=windows["window_start"], y=windows[f"est_{metric}"], mode="lines+markers",
                    name="Estimate from scores", line={"dash": "dot", "color": OKABE_ITO[1]},
                    marker={"symbol": "diamond-open"}, customdata=[[s] for s in _spans(windows)],
                    hovertemplate="%{customdata[0]}: %{y:.2f}<extra>estimate</extra>")
    _limit(fig, floor, "alert limit")
    if metric == "auroc":
        _markers(fig, windows, metric, "auroc_drop", floor)
    return fig


def _band(fig: go.Figure, windows: pd.DataFrame, column: str, name: str, stem: str | None = None) -> None:
    """The realised value with its 95 % interval as error bars (columns `{stem}_lo` and `{stem}_hi`)."""
    w = windows.dropna(subset=[column])
    stem = stem or column
    fig.add_scatter(x=w["window_start"], y=w[column], mode="lines+markers", name=name,
                    line={"color": OKABE_ITO[0]}, marker={"symbol": "circle"},
                    customdata=[[s] for s in _spans(w)], hovertemplate="%{customdata[0]}: %{y:.2f}<extra></extra>",
                    error_y={"type": "data", "symmetric": False, "array": w[f"{stem}_hi"] - w[column],
                             "arrayminus": w[column] - w[f"{stem}_lo"]})


def calibration_figure(windows: pd.DataFrame) -> go.Figure:
    fig = _figure("Calibration: outcomes observed per outcome predicted", "observed / expected")
    _band(fig, windows, "oe_ratio", "Observed / expected (patients with outcomes)", stem="oe")
    fig.add_hline(y=1.0, line_dash="dot", line_color="#555", annotation_text="as predicted")
    return fig


def subgroup_figure(series: pd.DataFrame, minimum: float | None, attribute: str, worst: str | None,
                    windows: pd.DataFrame | None = None) -> go.Figure:
    """Each group's sensitivity per window; the worst group in colour and labelled, the others grey, each with its
    own line style and marker; alerted windows marked below the minimum."""
    fig = _figure(f"Sensitivity by {attribute} over time (of 100 patients with the outcome, how many were flagged)",
                  "sensitivity", percent=True)
    for i, (group, rows) in enumerate(series.groupby("subgroup", sort=True)):
        strong = str(group) == worst
        fig.add_scatter(x=rows["window_start"], y=rows["sensitivity"], mode="lines+markers",
                        name=f"{group} (lowest)" if strong else str(group),
                        line={"color": ALERT_COLOUR if strong else MUTED, "width": 3 if strong else 1.5,
                              "dash": "solid" if strong else DASHES[(i + 1) % len(DASHES)]},
                        marker={"symbol": SYMBOLS[i % len(SYMBOLS)], "size": 9 if strong else 6},
                        customdata=rows[["positives"]], hovertemplate=f"{group}: " + "%{y:.0%} of %{customdata[0]} "
                        "patients with the outcome<extra></extra>")
    _limit(fig, minimum, "use case minimum")
    if windows is not None:
        _markers(fig, windows, None, "subgroup_sensitivity", minimum)
    fig.update_layout(height=380)
    return fig


def distribution_figure(reference: pd.Series, current: pd.Series, name: str) -> go.Figure:
    """Histograms for numbers; bars side by side for categories (text, flags), missing counted as a bar."""
    fig = go.Figure()
    fig.update_layout(title=f"{name}: at sign-off against this window", yaxis_title="share of patients", height=320,
                      margin={"t": 40, "b": 30, "l": 50, "r": 10}, legend={"orientation": "h", "y": -0.3})
    styles = (("At sign-off (reference)", OKABE_ITO[0], ""), ("This window", OKABE_ITO[1], "/"))
    if pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference):
        for values, (label, colour, pattern) in zip((reference, current), styles, strict=True):
            fig.add_histogram(x=values.dropna(), name=label, histnorm="probability", opacity=0.6, nbinsx=40,
                              marker={"color": colour, "pattern": {"shape": pattern}})
        fig.update_layout(barmode="overlay", xaxis_title=name, yaxis_tickformat=".0%")
        return fig
    for values, (label, colour, pattern) in zip((reference, current), styles, strict=True):
        shares = values.map(lambda v: "(missing)" if pd.isna(v) else str(v)).value_counts(normalize=True)
        fig.add_bar(x=shares.index, y=shares.to_numpy(), name=label, marker={"color": colour,
                                                                            "pattern": {"shape": pattern}})
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    return fig


def missing_figure(series: pd.DataFrame, windows: pd.DataFrame, policy: MonitoringPolicy,
                   names: dict[str, str] | None = None) -> go.Figure:
    """Each sometimes-missing input's missing share per window, its share at sign-off dotted."""
    rule = policy.rule("input_missing")
    limit = f" (alert when it rises more than {rule.threshold * 100:g} points)" if rule and rule.threshold else ""
    fig = _figure("Missing inputs: share of patients without each input" + limit, "share of patients", percent=True)
    for i, (column, rows) in enumerate(series.groupby("column_name", sort=False)):
        colour, symbol = OKABE_ITO[i % len(OKABE_ITO)], SYMBOLS[i % len(SYMBOLS)]
        name = (names or {}).get(str(column), str(column))
        fig.add_scatter(x=rows["window_start"], y=rows["missing_share"], mode="lines+markers", name=name,
                        line={"color": colour}, marker={"symbol": symbol})
        fig.add_scatter(x=rows["window_start"], y=rows["reference_missing_share"], mode="lines",
                        line={"dash": "dot", "color": colour}, name=f"{name} at sign-off")
    hit = _breaches(windows, "input_missing")
    if not hit.empty:
        worst = series.groupby("window_start")["missing_share"].max()
        fig.add_scatter(x=hit["window_start"], y=worst.reindex(hit["window_start"]).to_numpy(), mode="markers",
                        name=f"Alert: {RULE_WORDS['input_missing']}",
                        marker={"symbol": "x", "size": 14, "color": ALERT_COLOUR})
    return fig
