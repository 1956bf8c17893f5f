"""Monitoring: how the model in use behaves window by window against what was signed off."""

import streamlit as st

from app import cache, state
from app.monitoring_charts import (
    calibration_figure,
    distribution_figure,
    drift_figure,
    missing_figure,
    performance_figure,
    score_figure,
    subgroup_figure,
    window_label,
    window_span,
)
from app.wording import plain
from core.domain import glossary
from core.domain.monitoring_policy import auroc_floor
from core.services import findings, monitoring
from core.services.drift_words import drift_in_words, drift_table, statistics_table
from core.services.monitoring_reference import stored_reference

user = state.viewer().user
st.title("Monitoring")
run = monitoring.last_run(cache.store(), user)
if run is None:
    st.info("Monitoring has never run. Schedule `python -m core.cli monitor` (e.g. every 15 minutes from cron).")
    st.stop()
summary = run["summary"]
st.caption(f"Monitoring last ran {run['finished_at']:%Y-%m-%d %H:%M} UTC: {summary.get('windows', 0)} window(s) "
           f"computed, {summary.get('alerts_raised', 0)} new alert(s).")
versions = monitoring.monitored_versions(cache.store(), user)
if not versions:
    st.info("No production predictions have been monitored yet.")
    st.stop()
model, version = st.selectbox("Model version", versions, format_func=lambda mv: f"{mv[0]} v{mv[1]}")
if monitoring.review_required(cache.store(), cache.registry(), user, model, version):
    st.warning(f"Review required: {plain(model)} v{version} is in clinical use and a critical alert on it is "
               "open. See the Alerts page.", icon=":material/emergency:")
reference = stored_reference(cache.store(), model, version)
policy = monitoring.version_policy(cache.store(), user, model)
windows = monitoring.window_series(cache.store(), user, model, version)
if reference is not None:
    st.caption(f"Compared with {reference.rows:,} patients from {reference.source}; at sign-off AUROC "
               f"{reference.auroc:.2f} and sensitivity {reference.sensitivity:.0%}. Windows: {policy.window}.")

st.subheader("Over time")
left, right = st.columns(2)
left.plotly_chart(drift_figure(windows, policy), width="stretch")
left.caption("Share of the model's inputs whose distribution moved away from the sign-off data "
             "(evidently's tests). An orange × marks a window with too many drifted inputs; a star, a window in "
             "which one input shifted strongly. Markers sit on the failing side of the limit.")
right.plotly_chart(score_figure(windows, policy), width="stretch")
right.caption("How far the risk scores' distribution moved. Above 0.1 is a small shift, above 0.2 a large one.")
auroc_rule = policy.rule("auroc_drop")
floor = (auroc_floor(reference.auroc, auroc_rule.threshold) if reference and auroc_rule and auroc_rule.threshold
         else None)
left.plotly_chart(performance_figure(windows, "auroc", "AUROC", floor), width="stretch")
left.caption("Chance that a patient who developed the outcome scored higher than one who did not. The dotted line is "
             "an estimate from the scores alone (it assumes they are still calibrated); bars are the realised value "
             "with its 95 % interval once outcomes arrived.")
right.plotly_chart(performance_figure(windows, "sensitivity", "Sensitivity", None), width="stretch")
right.caption("Of 100 patients who developed the outcome, how many the model flagged: estimate (dotted) and "
              "realised (with interval).")
left.plotly_chart(performance_figure(windows, "ppv", "PPV", None), width="stretch")
left.caption("Of 100 patients the model flagged, how many developed the outcome (estimate dotted, realised with "
             "interval). It falls when the model flags more patients who will not develop the outcome.")
right.plotly_chart(calibration_figure(windows), width="stretch")
right.caption("Above 1: more patients developed the outcome than the scores predicted (risk under-estimated); "
              "below 1: over-estimated. An assay change that raises the scores pushes it below 1.")
missing = monitoring.missing_series(cache.store(), user, model, version)
if not missing.empty:
    st.plotly_chart(missing_figure(missing, windows, policy, {c: cache.glossary(user, model).input_name(c)
                                                              for c in missing["column_name"].unique()}),
                    width="stretch")
    st.caption("A rise means more patients reach the model without that input (a changed EHR build, interface or "
               "order set); the model still scores them, with less to go on.")
unlabelled = windows[windows["labelled"] < windows["predictions"]]
if not unlabelled.empty:
    st.info(f"{len(unlabelled)} window(s) still wait for outcomes: their performance is the estimate only.",
            icon=":material/schedule:")

st.subheader("Fairness over time")
attributes = sorted(monitoring.subgroup_attributes(cache.store(), user, model, version))
if attributes:
    found = findings.monitoring_review(cache.store(), user, model, version)
    st.markdown(f"**From {found.basis}:** {plain(found.headline)}")
    if found.also_below_sentence():
        st.markdown(plain(str(found.also_below_sentence())))
    attribute = st.selectbox("Patient groups by", attributes, format_func=glossary.attribute,
                             index=attributes.index(found.attribute) if found.attribute in attributes else 0)
    sensitivity_rule = policy.rule("subgroup_sensitivity")
    series = monitoring.subgroup_series(cache.store(), user, model, version, attribute)
    worst = found.finding.worst.group if found.finding and found.attribute == attribute \
        else findings.lowest_group(findings.pooled_windows(series, attribute), attribute, 0)
    st.plotly_chart(subgroup_figure(series, sensitivity_rule.threshold if sensitivity_rule else None,
                                    glossary.attribute(attribute).lower(), worst, windows), width="stretch")

st.subheader("One window in detail")
rows = windows.to_dict(orient="records")
default = next((i for i, r in enumerate(rows) if r["breaches"] != "[]"), len(rows) - 1)
chosen = st.selectbox("Window", range(len(rows)), index=default,
                      format_func=lambda i: window_label(rows[i], policy.window))
window = rows[chosen]
drift = monitoring.feature_drift(cache.store(), user, model, version, window["window_start"])
words = cache.glossary(user, model)
ref_frame, current = cache.window_inputs(user, model, version, window["window_start"], window["window_end"]) \
    if reference is not None else (None, None)
lines = drift_in_words(drift, ref_frame, current, words)
st.write(f"{window_span(window['window_start'], window['window_end'])}: {window['predictions']:,} predictions, "
         f"{window['labelled']:,} with outcomes. {int(window['n_drifted'] or 0)} of {int(window['n_features'] or 0)} "
         f"inputs drifted; mean predicted risk {window['mean_score']:.1%}; flagged "
         f"{window['flagged_share'] * 100:.0f} of every 100 patients.")
for line in (line for line in lines if line.drifted):
    st.warning(plain(line.sentence), icon=":material/trending_up:")
st.dataframe(drift_table(lines), hide_index=True, width="stretch", column_config={
    "Typical at sign-off": st.column_config.TextColumn(help="Median for measurements; share of patients for "
                                                            "yes/no inputs; the category whose share moved most")})
if st.toggle("Show the statistics (for data scientists)"):
    st.dataframe(statistics_table(lines), hide_index=True, width="stretch")
    st.code("\n".join(f"{x.raw}: {x.method} = {'—' if x.score is None else f'{x.score:.4f}'} (drift from "
                      f"{'—' if x.threshold is None else x.threshold})" for x in lines), language=None)
    st.caption("Distances (Wasserstein, Jensen–Shannon): higher means further apart; p-values (K-S, chi-square): "
               "lower means drift. Computed by evidently.")
inputs = [line.raw for line in lines if line.role == "input"]
if ref_frame is not None and current is not None and inputs:
    column = st.selectbox("Compare the distribution of", inputs, format_func=lambda c: words.input(c).with_unit())
    st.plotly_chart(distribution_figure(ref_frame[column], current[column], words.input(column).with_unit()),
                    width="stretch")
    if st.button("Build evidently's detailed report for this window", icon=":material/analytics:"):
        with st.spinner("evidently is building the report (a few seconds)…"):
            report = cache.evidently_report(user, model, version, window["window_start"], window["window_end"])
        st.caption(f"evidently found {len(report.drifted_columns)} of {report.n_columns} columns drifted: "
                   f"{plain(', '.join(words.input_name(c) for c in report.drifted_columns)) or 'none'}.")
        # A download, not embedded: the report holds column names and values from the data, and HTML shown inside
        # the app would run with the app's origin and session. Opened as a file, it has neither.
        st.download_button("Download the report (HTML; open it in a browser)", report.html,
                           file_name=f"evidently-{model}-v{version}-{str(window['window_start'])[:10]}.html",
                           mime="text/html", on_click="ignore", icon=":material/download:")
