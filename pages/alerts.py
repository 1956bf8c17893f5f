"""Alerts: every alert ModelBoard raised, the evidence behind one, and acknowledging or resolving it."""

import pandas as pd
import streamlit as st

from app import cache, state
from app.navigation import page_file
from app.wording import plain
from core.domain.access import Permission, can
from core.errors import ModelBoardError
from core.services.alerts import acknowledge, all_alerts, resolve

user = state.viewer().user
st.title("Alerts")
st.caption("Raised by monitoring and by ModelBoard's governance checks. One alert stays open per rule and model "
           "version until a person resolves it; acknowledging says you have seen it and what you are doing.")

STATUSES = {"Not resolved": ("open", "acknowledged"), "Open": ("open",), "Acknowledged": ("acknowledged",),
            "Resolved": ("resolved",), "All": ("open", "acknowledged", "resolved")}
show = st.radio("Show", list(STATUSES), horizontal=True)
alerts = [a for a in all_alerts(cache.store(), user) if a.status in STATUSES[show]]
if not alerts:
    st.success("No alert to show.", icon=":material/check_circle:")
    st.stop()
st.dataframe(pd.DataFrame({
    "Severity": [a.severity for a in alerts], "Alert": [a.title for a in alerts],
    "Status": [a.status for a in alerts], "Raised (UTC)": [a.raised_at for a in alerts]}),
    hide_index=True, width="stretch")

asked = st.query_params.get("alert")
ids = [a.id for a in alerts]
chosen = st.selectbox("Open the alert", ids, index=ids.index(asked) if asked in ids else 0,
                      format_func=lambda i: next(f"{a.severity.capitalize()}: {a.title}" for a in alerts if a.id == i))
alert = next(a for a in alerts if a.id == chosen)

with st.container(border=True):
    icon = ":material/error:" if alert.severity == "critical" else ":material/warning:"
    st.markdown(f"{icon} **{plain(alert.title)}**")  # bold, not a heading: a heading ends at the first line
    st.write(plain(alert.message))
    st.caption(f"{alert.severity.capitalize()} · {alert.status} · raised {alert.raised_at:%Y-%m-%d %H:%M} UTC "
               f"by rule `{alert.rule}` on {plain(alert.model)}"
               + (f" v{alert.version}" if alert.version is not None else ""))
    evidence = alert.evidence
    if "window_start" in evidence:
        c1, c2, c3 = st.columns(3)
        c1.metric("Window", str(evidence["window_start"])[:10])
        c1.caption(f"to {str(evidence['window_end'])[:10]}; {evidence.get('predictions', 0):,} predictions, "
                   f"{evidence.get('labelled', 0):,} with outcomes.")
        c2.metric("Measured", f"{float(evidence['value']):.3g}")
        c2.caption(f"Alert limit {evidence['threshold']}.")
        c3.metric("Flagged per 100 patients", f"{float(evidence['flagged_share']) * 100:.0f}",
                  delta=f"{(float(evidence['flagged_share']) - float(evidence['reference_flagged_share'])) * 100:+.0f}"
                        " since sign-off", delta_color="off")
        c3.caption(f"Mean predicted risk {float(evidence['mean_score']):.1%} (at sign-off "
                   f"{float(evidence['reference_mean_score']):.1%}).")
        drift = pd.DataFrame(evidence.get("drift", []))
        if not drift.empty:
            st.markdown("**Drift of each column in that window**")
            st.dataframe(drift.rename(columns={"column": "Column", "score": "Drift score", "threshold": "Drift from",
                                               "drifted": "Drifted"}), hide_index=True, width="stretch")
        st.caption(f"Reference: {plain(str(evidence.get('reference', 'the sign-off data')))}.")
        st.page_link(page_file("monitoring.py"), label="See this model on the Monitoring page",
                     icon=":material/monitoring:")
    else:
        st.json(evidence, expanded=False)
    if alert.acknowledged_by:
        st.info(f"Acknowledged by {alert.acknowledged_by}: {plain(alert.acknowledgement or '')}",
                icon=":material/done:")
    if alert.resolved_by:
        st.success(f"Resolved by {alert.resolved_by}: {plain(alert.resolution or '')}", icon=":material/task_alt:")

if can(user, Permission.HANDLE_ALERTS) and alert.status != "resolved":
    actions = (["Acknowledge"] if alert.status == "open" else []) + ["Resolve"]
    with st.form(f"handle-{alert.id}"):
        action = st.radio("Action", actions, horizontal=True)
        note = st.text_area("What are you doing about it? (recorded in the audit log)", max_chars=2000)
        if st.form_submit_button("Record"):
            try:
                (acknowledge if action == "Acknowledge" else resolve)(cache.store(), user, alert.id, note)
            except ModelBoardError as exc:
                st.error(str(exc), icon=":material/error:")
            else:
                st.toast(f"Alert {action.lower()}d.", icon=":material/done:")
                st.rerun()
