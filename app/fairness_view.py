"""Figures and tables of the Fairness page, in the glossary's words (no Streamlit here: the page renders them).

The worst group stands out by colour, a pattern and a text label at once; every other group is muted grey, so
colour is never the only cue. Cells are text: intervals as '0.70 (0.64–0.76)', rates as '70 of 100', '—' where
a value is undefined, never 'nan'.
"""

from __future__ import annotations

import re

import pandas as pd
import plotly.graph_objects as go

from core.domain.glossary import interval, measure, number, per100, percent, words
from core.domain.palette import DASHES, HIGHLIGHT, LIGHT, MUTED, OKABE_ITO

_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def judgement(enough: object) -> str:
    return "judged" if bool(enough) else "too few patients to judge"


def _cell(row: pd.Series, stem: str) -> str:
    return interval(row.get(stem), row.get(f"{stem}_lo"), row.get(f"{stem}_hi"))


def sensitivity_figure(groups: pd.DataFrame, overall: float, worst: str | None, title: str) -> go.Figure:
    """Bars of each group's sensitivity with its interval; the worst judged group highlighted and labelled."""
    fig = go.Figure()
    judged = groups[groups["enough_patients"].astype(bool)]
    is_worst = [g == worst for g in judged["group"]]
    fig.add_bar(x=judged["group"], y=judged["sensitivity"], name="Sensitivity (judged groups)",
                marker={"color": [HIGHLIGHT if w else MUTED for w in is_worst],
                        "pattern": {"shape": ["x" if w else "" for w in is_worst], "fgopacity": 0.35}},
                text=[f"<b>lowest: {per100(v)}</b>" if w else per100(v)
                      for v, w in zip(judged["sensitivity"], is_worst, strict=True)],
                textposition="inside", insidetextanchor="start", textangle=0,
                textfont={"color": "#000000"},
                error_y={"type": "data", "symmetric": False, "color": "#424242",
                         "array": judged["sensitivity_hi"] - judged["sensitivity"],
                         "arrayminus": judged["sensitivity"] - judged["sensitivity_lo"]})
    small = groups[~groups["enough_patients"].astype(bool)]
    if not small.empty:
        fig.add_bar(x=small["group"], y=small["sensitivity"].fillna(0), name="Too few patients to judge",
                    marker={"color": LIGHT, "pattern": {"shape": "/", "fgopacity": 0.5}},
                    text=["too few to judge"] * len(small), textposition="inside", insidetextanchor="start",
                    textangle=0, textfont={"color": "#000000"})
    fig.add_hline(y=overall, line_dash="dash", line_color="#424242", annotation_text=f"all patients: {per100(overall)}",
                  annotation_position="top left")
    fig.update_layout(title=title, showlegend=True, legend={"orientation": "h", "y": -0.25},
                      uniformtext={"minsize": 10, "mode": "show"},
                      yaxis={"range": [0, 1.1], "title": "share of patients with the outcome who were flagged",
                             "tickformat": ".0%"})
    return fig


def subgroup_table(groups: pd.DataFrame) -> pd.DataFrame:
    """One row per group, every cell in words."""
    rows = []
    for _, r in groups.iterrows():
        rows.append({"Group": str(r["group"]), "Patients": f"{int(r['n']):,}",
                     "With the outcome": f"{int(r['positives']):,} ({percent(r.get('prevalence'))})",
                     "Sensitivity": _cell(r, "sensitivity"), "Specificity": _cell(r, "specificity"),
                     "PPV": _cell(r, "ppv"), "NPV": _cell(r, "npv"), "AUROC": _cell(r, "auroc"),
                     "Flagged": per100(r.get("selection_rate")), "Judged": judgement(r["enough_patients"])})
    return pd.DataFrame(rows)


def calibration_table(calibrated: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in calibrated.iterrows():
        rows.append({"Group": str(r["group"]), "Patients": f"{int(r['n']):,}",
                     "Predicted risk (mean)": percent(r.get("mean_predicted"), places=1),
                     "Observed rate": percent(r.get("observed_rate"), places=1),
                     "Observed / predicted": _cell(r, "observed_expected"),
                     "Calibration error": number(r.get("ece"), places=3),
                     "Calibration slope": _cell(r, "calibration_slope"),
                     "Calibration intercept": _cell(r, "calibration_intercept"),
                     "Judged": judgement(r["enough_patients"])})
    return pd.DataFrame(rows)


def threshold_table(groups: pd.DataFrame) -> pd.DataFrame:
    def count(value: object) -> str:
        return "—" if value is None or pd.isna(value) else f"{int(value):,}"  # type: ignore[call-overload]

    return pd.DataFrame([{
        "Group": str(r["group"]), "Patients": count(r["n"]), "Caught": count(r["tp"]), "False alarms": count(r["fp"]),
        "Missed": count(r["fn"]), "Left alone": count(r["tn"]), "Sensitivity": per100(r["sensitivity"]),
        "PPV": per100(r["ppv"]), "Alerts per 100 patients": number(r["alerts_per_100"], places=0),
        "Judged": str(r["judgement"])} for _, r in groups.iterrows()])


def column_help(columns: list[str]) -> dict[str, str]:
    """What each column means, for the table's header tooltips."""
    raw = {"Sensitivity": "sensitivity", "Specificity": "specificity", "PPV": "ppv", "NPV": "npv", "AUROC": "auroc",
           "Flagged": "selection_rate", "Observed / predicted": "observed_expected", "Calibration error": "ece",
           "Calibration slope": "calibration_slope", "Calibration intercept": "calibration_intercept",
           "Caught": "tp", "False alarms": "fp", "Missed": "fn", "Left alone": "tn"}
    intervals = {"Sensitivity", "Specificity", "PPV", "NPV", "AUROC", "Observed / predicted", "Calibration slope",
                 "Calibration intercept"}
    out = {}
    for column in columns:
        if column in raw:
            term = measure(raw[column])
            out[column] = "; ".join(p for p in (term.meaning, "95 % interval in brackets" if column in intervals
                                                 else "", f"column {raw[column]}") if p)
    return out


def methods_caption(methods: dict[str, str]) -> str:
    """'Observed / predicted: Wilson interval…; Calibration error: … scikit-learn's calibration curve …': a library
    function named in the method text is put into words, like every other name on screen."""
    return "; ".join(f"{measure(k).name}: {_SNAKE.sub(lambda m: words(m.group(0)).lower(), str(v))}"
                     for k, v in methods.items())


def calibration_figure(calibrated: pd.DataFrame, title: str) -> go.Figure:
    """Observed rate (with its interval) against the mean predicted risk, per group; small groups as open marks."""
    fig = go.Figure()
    for enough, name, symbol in ((True, "observed (95 % CI)", "circle"),
                                 (False, "observed — too few patients to judge", "circle-open")):
        part = calibrated[calibrated["enough_patients"].astype(bool) == enough]
        fig.add_scatter(x=part["group"], y=part["observed_rate"], mode="markers", name=name,
                        marker={"symbol": symbol, "size": 11, "color": OKABE_ITO[0]},
                        error_y={"type": "data", "symmetric": False,
                                 "array": part["observed_rate_hi"] - part["observed_rate"],
                                 "arrayminus": part["observed_rate"] - part["observed_rate_lo"]})
    fig.add_scatter(x=calibrated["group"], y=calibrated["mean_predicted"], mode="markers", name="predicted (mean)",
                    marker={"symbol": "diamond", "size": 11, "color": OKABE_ITO[1]})
    fig.update_layout(title=title, yaxis={"title": "share of patients", "rangemode": "tozero", "tickformat": ".0%"})
    return fig


def threshold_figure(curves: pd.DataFrame, threshold: float, title: str) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("Sensitivity", "Alerts per 100 patients"))
    for i, (name, curve) in enumerate(curves.groupby("group", sort=False)):
        overall = name == "all patients"
        style = {"color": "#000000" if overall else OKABE_ITO[i % len(OKABE_ITO)],
                 "dash": "dash" if overall else DASHES[i % len(DASHES)]}
        for row, column in ((1, "sensitivity"), (2, "alerts_per_100")):
            fig.add_scatter(x=curve["threshold"], y=curve[column], name=str(name), legendgroup=str(name),
                            line=style, showlegend=row == 1, row=row, col=1)
    fig.add_vline(x=threshold, line_dash="dot")
    fig.update_layout(title=title, xaxis2_title="threshold")
    return fig
