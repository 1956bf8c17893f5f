"""Alerts: every alert ModelBoard raised, the evidence behind one, and acknowledging or resolving it."""

import pandas as pd
import streamlit as st

from app import cache, state
from app.navigation import page_file
from app.wording import plain
from core.domain.access import Permission, can
from core.errors import ModelBoardError
from core.services.alerts import SEVERITY_WORDS, STATUS_WORDS, acknowledge, all_alerts, describe, resolve

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
    "Severity": [SEVERITY_WORDS.get(a.severity, a.severity) for a in alerts], "Alert": [a.title for a in alerts],
    "Status": [STATUS_WORDS.get(a.status, a.status) for a in alerts],
    "Raised (UTC)": [f"{a.raised_at.day} {a.raised_at:%b %Y %H:%M}" for a in alerts]}),
    hide_index=True, width="stretch")

asked = st.query_params.get("alert")
ids = [a.id for a in alerts]
chosen = st.selectbox("Open the alert", ids, index=ids.index(asked) if asked in ids else 0,
                      format_func=lambda i: next(f"{SEVERITY_WORDS.get(a.severity, a.severity)}: {a.title}"
                                                 for a in alerts if a.id == i))
alert = next(a for a in alerts if a.id == chosen)
view = describe(alert, cache.glossary(user, alert.model))

with st.container(border=True):
    icon = ":material/error:" if alert.severity == "critical" else ":material/warning:"
    st.markdown(f"{icon} **{plain(view.title)}**")  # bold, not a heading: a heading ends at the first line
    where = f"{plain(alert.model)}" + (f" v{alert.version}" if alert.version is not None else "")
    st.caption(f"{view.severity} · {view.status} · {plain(view.kind)} · {where}"
               + (f" · window {view.window}" if view.window else "")
               + f" · raised {alert.raised_at.day} {alert.raised_at:%b %Y %H:%M} UTC")
    st.write(plain(view.finding))
    if view.measured:
        c1, c2, c3 = st.columns(3)
        c1.metric("Window (last day included)", view.window or "—")
        c2.metric(view.measured_label, view.measured)
        c3.metric("Alert limit", view.limit)
        for fact in view.facts:
            st.caption(fact)
    st.info(f"**Suggested next step.** {plain(view.next_step)}", icon=":material/lightbulb:")
    if view.evidence:
        title = "**Each input in that window**" if view.window else "**What was found**"
        st.markdown(title)
        st.dataframe(pd.DataFrame(list(view.evidence)), hide_index=True, width="stretch")
        if view.evidence_note:
            st.caption(view.evidence_note)
    if "reference" in alert.evidence:
        st.caption(f"Compared with: {plain(str(alert.evidence['reference']))}.")
    if view.window:
        st.page_link(page_file("monitoring.py"), label="See this model on the Monitoring page",
                     icon=":material/monitoring:")
    with st.expander("For data scientists: the rule and the stored evidence"):
        st.code(f"rule: {view.raw_rule}\nalert id: {alert.id}\nmessage: {alert.message}", language="text")
        st.code(view.raw_evidence, language="json")
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
