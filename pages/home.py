"""Home: what needs the viewer's attention, worded for their role."""

from datetime import timedelta

import streamlit as st

from app import cache, state
from app.navigation import page_file
from app.wording import plain
from core.domain.access import ROLE_LABELS, Permission, can
from core.domain.clock import utc_now
from core.errors import ModelBoardError
from core.services.alerts import acknowledge, open_alerts
from core.services.audit import failed_logins_since
from core.services.auth import locked_accounts
from core.services.monitoring import last_run

session = state.viewer()
user = session.user
st.title("Home")
st.write(f"Welcome, {plain(user.full_name)} — {ROLE_LABELS[user.role].lower()}.")

items = cache.attention(user)
in_review = [i for i in items if i.status_label.startswith("In clinical review")]
yours = [i for i in items if i.awaits_you]
in_use = [i for i in items if "production" in i.aliases]

c1, c2, c3 = st.columns(3)
c1.metric("Model versions registered", len(items))
c1.caption("Every version of every model in the MLflow registry.")
c2.metric("Versions in clinical use", len(in_use))
c2.caption("Versions that hold the 'production' alias: the ones patients' care depends on.")
c3.metric("Waiting for clinical review", len(in_review))
c3.caption("Submitted versions that need clinicians' sign-off before any patient use.")

st.subheader("Needs your attention")
if can(user, Permission.SIGN_OFF) and not yours:
    st.success("Nothing waits for your review right now.", icon=":material/check_circle:")
for item in yours:  # the link opens Sign-off on exactly this version
    st.page_link(page_file("sign_off.py"), label=f"{item.model} v{item.version} waits for your review",
                 icon=":material/rate_review:", query_params={"model": item.model, "version": str(item.version)})
if can(user, Permission.MANAGE_USERS):
    for account in locked_accounts(cache.store(), user):
        st.warning(f"Account {account.username} ({plain(account.full_name)}) is locked after repeated failed logins "
                   f"until {account.locked_until:%H:%M} UTC. Unlock it on the Users page if the person asks.",
                   icon=":material/lock:")
if can(user, Permission.VIEW_AUDIT_LOG):
    failed = failed_logins_since(cache.store(), user, utc_now() - timedelta(hours=24))
    st.info(f"{failed} failed login{'s' if failed != 1 else ''} in the last 24 hours (see the Audit log).",
            icon=":material/policy:")

st.subheader("Alerts")
if can(user, Permission.VIEW_PRODUCTION_LOG):
    run = last_run(cache.store(), user)
    st.caption("Monitoring has never run." if run is None else
               f"Monitoring last ran {run['finished_at']:%Y-%m-%d %H:%M} UTC: {run['summary'].get('windows', 0)} "
               f"window(s) computed, {run['summary'].get('alerts_raised', 0)} new alert(s).")
alerts = open_alerts(cache.store(), user)
if not alerts:
    st.success("No open alert.", icon=":material/check_circle:")
for alert in alerts:
    with st.container(border=True):
        icon = ":material/error:" if alert.severity == "critical" else ":material/warning:"
        st.markdown(f"{icon} **{alert.severity.capitalize()}: {plain(alert.title)}**")
        st.write(plain(alert.message))
        if can(user, Permission.VIEW_PRODUCTION_LOG):
            st.page_link(page_file("alerts.py"), label="Open the alert and its evidence",
                         icon=":material/arrow_forward:", query_params={"alert": alert.id})
        st.caption(f"Raised {alert.raised_at:%Y-%m-%d %H:%M} UTC · {alert.status}"
                   + (f" by {alert.acknowledged_by}: {plain(alert.acknowledgement or '')}" if alert.acknowledged_by
                      else ""))
        if can(user, Permission.HANDLE_ALERTS) and alert.status == "open":
            with st.form(f"ack-{alert.id}"):
                note = st.text_input("What are you doing about it?", max_chars=2000)
                if st.form_submit_button("Acknowledge"):
                    try:
                        acknowledge(cache.store(), user, alert.id, note)
                    except ModelBoardError as exc:
                        st.error(str(exc), icon=":material/error:")
                    else:
                        st.rerun()

st.subheader("Locked models")
st.caption("The files of each version in production, re-hashed and compared with the fingerprint recorded when it "
           "was approved (or first seen by ModelBoard).")
for finding in cache.alias_findings():
    if finding.kind == "production_without_signoff":
        st.warning(finding.message, icon=":material/gpp_maybe:")
for finding in cache.artifact_findings():
    if finding.problem:
        st.error(finding.message, icon=":material/gpp_bad:")
    else:
        st.markdown(f":material/verified_user: {finding.message}")

st.subheader("Model versions")
for item in items:
    with st.container(border=True):
        left, right = st.columns([4, 1])
        left.markdown(f"**{item.headline}**")
        badge = "  ·  ".join([f"alias: {a}" for a in item.aliases] + [item.status_label])
        left.caption(badge)
        right.page_link(page_file("registry.py"), label="Open", icon=":material/arrow_forward:",
                        query_params={"model": item.model, "version": str(item.version)})
