"""Plotly figures of the Monitoring page: one time series per metric, with its limit and the alerted windows."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from core.domain.monitoring_policy import MonitoringPolicy

ALERT_COLOUR = "#c62828"


def _breached(windows: pd.DataFrame, rules: tuple[str, ...]) -> pd.Series:
    return windows["breaches"].map(lambda b: any(x["rule"] in rules for x in json.loads(b or "[]")))


def _figure(title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, yaxis_title=y_title, height=300, margin={"t": 40, "b": 30, "l": 50, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def _limit(fig: go.Figure, value: float | None, label: str) -> None:
    if value is not None:
        fig.add_hline(y=value, line_dash="dash", line_color=ALERT_COLOUR, annotation_text=label)


def _markers(fig: go.Figure, windows: pd.DataFrame, column: str, rules: tuple[str, ...]) -> None:
    hit = windows[_breached(windows, rules)]
    if not hit.empty:
        fig.add_scatter(x=hit["window_start"], y=hit[column], mode="markers", name="Alert raised or still open",
                        marker={"symbol": "x", "size": 13, "color": ALERT_COLOUR})


def _band(fig: go.Figure, windows: pd.DataFrame, column: str, name: str, stem: str | None = None) -> None:
    """The realised value with its 95 % interval as error bars (columns `{stem}_lo` and `{stem}_hi`)."""
    w = windows.dropna(subset=[column])
    stem = stem or column
    fig.add_scatter(x=w["window_start"], y=w[column], mode="lines+markers", name=name,
                    error_y={"type": "data", "symmetric": False, "array": w[f"{stem}_hi"] - w[column],
                             "arrayminus": w[column] - w[f"{stem}_lo"]})


def drift_figure(windows: pd.DataFrame, policy: MonitoringPolicy) -> go.Figure:
    fig = _figure("Data drift: share of inputs that drifted", "share of inputs")
    fig.add_scatter(x=windows["window_start"], y=windows["drifted_share"], mode="lines+markers", name="Drifted share")
    rule = policy.rule("drifted_feature_share")
    _limit(fig, rule.threshold if rule else None, "alert limit")
    _markers(fig, windows, "drifted_share", ("drifted_feature_share", "input_drift"))
    return fig


def score_figure(windows: pd.DataFrame, policy: MonitoringPolicy) -> go.Figure:
    fig = _figure("Score drift: population stability index of the risk scores", "PSI")
    fig.add_scatter(x=windows["window_start"], y=windows["score_psi"], mode="lines+markers", name="PSI")
    rule = policy.rule("score_psi")
    _limit(fig, rule.threshold if rule else None, "alert limit")
    _markers(fig, windows, "score_psi", ("score_psi",))
    return fig


def performance_figure(windows: pd.DataFrame, metric: str, label: str, floor: float | None) -> go.Figure:
    """Realised (with interval, once outcomes arrived) against the estimate made from the scores alone."""
    fig = _figure(label, label)
    _band(fig, windows, metric, "Realised (patients with outcomes)")
    fig.add_scatter(x=windows["window_start"], y=windows[f"est_{metric}"], mode="lines", name="Estimate from scores",
                    line={"dash": "dot"})
    _limit(fig, floor, "alert limit")
    rules = {"auroc": ("auroc_drop",), "sensitivity": ("subgroup_sensitivity",)}.get(metric, ())
    _markers(fig, windows, metric, rules)
    return fig


def calibration_figure(windows: pd.DataFrame) -> go.Figure:
    fig = _figure("Calibration: outcomes observed per outcome predicted", "observed / expected")
    _band(fig, windows, "oe_ratio", "Observed / expected (patients with outcomes)", stem="oe")
    fig.add_hline(y=1.0, line_dash="dot", line_color="#555", annotation_text="as predicted")
    return fig


def subgroup_figure(series: pd.DataFrame, minimum: float | None, attribute: str) -> go.Figure:
    fig = _figure(f"Sensitivity by {attribute} over time (of 100 patients with the outcome, how many were flagged)",
                  "sensitivity")
    for group, rows in series.groupby("subgroup"):
        fig.add_scatter(x=rows["window_start"], y=rows["sensitivity"], mode="lines+markers", name=str(group),
                        customdata=rows[["positives"]], hovertemplate="%{y:.0%} of %{customdata[0]} patients")
    _limit(fig, minimum, "use case minimum")
    fig.update_layout(height=360)
    return fig


def distribution_figure(reference: pd.Series, current: pd.Series, column: str) -> go.Figure:
    """Histograms for numbers; bars side by side for categories (text, flags), missing counted as a bar."""
    fig = _figure(f"{column}: reference (sign-off) against this window", "share of patients")
    if pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference):
        for values, name in ((reference, "At sign-off (reference)"), (current, "This window")):
            fig.add_histogram(x=values.dropna(), name=name, histnorm="probability", opacity=0.6, nbinsx=40)
        fig.update_layout(barmode="overlay")
        return fig
    for values, name in ((reference, "At sign-off (reference)"), (current, "This window")):
        shares = values.map(lambda v: "(missing)" if pd.isna(v) else str(v)).value_counts(normalize=True)
        fig.add_bar(x=shares.index, y=shares.to_numpy(), name=name)
    fig.update_layout(barmode="group", yaxis_tickformat=".0%")
    return fig


def missing_figure(series: pd.DataFrame, windows: pd.DataFrame, policy: MonitoringPolicy) -> go.Figure:
    """Each sometimes-missing input's missing share per window, its share at sign-off dotted."""
    rule = policy.rule("input_missing")
    limit = f" (alert when it rises more than {rule.threshold * 100:g} points)" if rule and rule.threshold else ""
    fig = _figure("Missing inputs: share of patients without each input" + limit, "share of patients")
    palette = plotly.colors.qualitative.Plotly
    for i, (column, rows) in enumerate(series.groupby("column_name", sort=False)):
        colour = palette[i % len(palette)]
        fig.add_scatter(x=rows["window_start"], y=rows["missing_share"], mode="lines+markers", name=str(column),
                        line={"color": colour})
        fig.add_scatter(x=rows["window_start"], y=rows["reference_missing_share"], mode="lines", line={"dash": "dot",
                        "color": colour}, name=f"{column} at sign-off")
    hit = windows[_breached(windows, ("input_missing",))]
    if not hit.empty:
        worst = series.groupby("window_start")["missing_share"].max()
        fig.add_scatter(x=hit["window_start"], y=worst.reindex(hit["window_start"]).to_numpy(), mode="markers",
                        name="Alert raised or still open", marker={"symbol": "x", "size": 13, "color": ALERT_COLOUR})
    fig.update_layout(yaxis_tickformat=".0%")
    return fig


def window_label(row: dict[str, Any], granularity: str) -> str:
    start = pd.Timestamp(row["window_start"])
    span = f"week of {start:%Y-%m-%d}" if granularity == "weekly" else f"{start:%Y-%m-%d}"
    flags = json.loads(row["breaches"] or "[]")
    return span + (f" — {len(flags)} rule(s) broken" if flags else "")
