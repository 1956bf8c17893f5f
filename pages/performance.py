"""Performance: ModelBoard's own evaluation of a version — metrics with intervals, calibration,
decision curve, speed and robustness — in clinical words."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import state
from app.inputs_panel import inputs_table, scoring_note
from app.widgets import choose_evaluation
from app.wording import calibration_lines
from core.services.input_review import inputs_view

WORDS = {
    "auroc": ("AUROC", "Chance that a patient who developed {o} scores higher than one who did not."),
    "auprc": ("AUPRC", "Average precision across thresholds; most useful when {o} is rare."),
    "sensitivity": ("Sensitivity", "Of 100 patients who developed {o}, the model flagged {p}."),
    "specificity": ("Specificity", "Of 100 patients who did not develop {o}, the model left {p} alone."),
    "ppv": ("PPV", "Of 100 flagged patients, {p} developed {o} (depends on how common it is)."),
    "npv": ("NPV", "Of 100 patients not flagged, {p} did not develop {o}."),
    "f1": ("F1", "Balance of sensitivity and PPV."),
    "brier": ("Brier score", "Mean squared error of the predicted risk (0 is perfect)."),
}
user = state.viewer().user
st.title("Performance")
choice, evaluation = choose_evaluation(user)
result = evaluation.result
outcome = str(result.get("outcome", "the outcome"))
outcome = outcome[:1].lower() + outcome[1:]
detail = result["overall_detail"]
st.caption(f"Evaluated by ModelBoard on {result['n']:,} patients ({result['data_source']}) at threshold "
           f"{result['threshold']}; {detail['alerts_per_100']:.0f} alerts per 100 admissions; prevalence "
           f"{detail['prevalence']:.1%}.")
inputs = inputs_view(evaluation)
scoring_note(inputs)

rows = []
for key, (name, sentence) in WORDS.items():
    m = detail[key]
    value = m["value"]
    rows.append({"Metric": name, "Value": value, "95 % interval": f"{m['lo']:.3f}–{m['hi']:.3f}"
                 if m["lo"] is not None else "undefined", "Method": m["method"],
                 "In plain words": sentence.format(o=outcome, p=f"{value * 100:.0f}" if value is not None else "?")})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
             column_config={"Value": st.column_config.NumberColumn(format="%.3f")})

cal = result["calibration"]
curve = pd.DataFrame(cal["curve"])
fig = go.Figure()
fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash"}, name="perfect calibration")
fig.add_scatter(x=curve["mean_predicted"], y=curve["observed_rate"], mode="lines+markers", name="this model",
                text=curve["count"], hovertemplate="predicted %{x:.2f}, observed %{y:.2f} (n=%{text})")
fig.update_layout(title="Calibration: when the model says x %, how many develop it?",
                  xaxis_title="predicted risk", yaxis_title="observed share")
st.plotly_chart(fig, width="stretch")
for line in calibration_lines(cal, outcome):
    st.markdown(line)

dca = pd.DataFrame(result["decision_curve"])
dca = dca[dca["threshold"] <= 0.5]
fig = go.Figure()
for column, name in (("net_benefit_model", "use the model"), ("net_benefit_treat_all", "treat everyone"),
                     ("net_benefit_treat_none", "treat no one")):
    fig.add_scatter(x=dca["threshold"], y=dca[column], mode="lines", name=name)
fig.add_vline(x=result["threshold"], line_dash="dot", annotation_text="use-case threshold")
fig.update_layout(title="Decision curve: net benefit by threshold (Vickers & Elkin 2006)",
                  xaxis_title="threshold probability", yaxis_title="net benefit", yaxis={"rangemode": "tozero"})
st.plotly_chart(fig, width="stretch")
st.caption("Where the model's line is above both others, acting on it does more good than treating everyone or no one.")

latency = result["latency"]
st.markdown(f"**Speed:** one patient scored in {latency['median_ms']:.1f} ms (median), {latency['p95_ms']:.1f} ms "
            f"(95th percentile); all {latency['rows']:,} in {latency['batch_seconds']:.2f} s.")


if inputs is not None:
    inputs_table(inputs)


def effect(probe: dict[str, object] | None) -> str:
    if probe is None:
        return "not probed"
    if probe["error"]:
        return f"the model fails ({probe['error']})"
    moved = float(probe["mean_abs_score_change"])  # type: ignore[arg-type]
    return f"risk moves {moved * 100:.1f} points on average"


robust = pd.DataFrame([{"Input": r["feature"], "Set to a missing value": effect(r.get("missing")),
                        "Set to an absurd value or an unseen category": effect(r.get("out_of_range"))}
                       for r in result["robustness"]])
st.markdown("**Robustness:** what happens to the predicted risk when an input is missing, far outside the range "
            "seen, or a category the model never saw? (200 patients, one input changed at a time)")
st.dataframe(robust, hide_index=True, width="stretch")
