"""Audit log (auditors, administrators): who did what, when."""

from datetime import date, datetime, time, timedelta

import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from core.domain.csv_export import spreadsheet_csv
from core.domain.glossary import event
from core.services.audit import (
    AuditQuery,
    events_for_screen,
    events_per_day,
    list_actions,
    list_events,
    record_export,
    verify_chain,
)
from core.services.history import audited_models, audited_versions

viewer = state.viewer().user
store = cache.store()
st.title("Audit log")
st.caption("Every login, account change and governance action, appended and never edited.")

chain = verify_chain(store, cache.registry())
if chain.ok and chain.anchored:
    st.success(chain.sentence, icon=":material/verified:")
elif chain.ok:
    st.warning(chain.sentence, icon=":material/gpp_maybe:")
else:
    st.error(f"{chain.sentence} ({chain.rows} rows checked.) Restore the store from a backup and compare.",
             icon=":material/gpp_bad:")

c1, c2, c3 = st.columns(3)
action = c1.selectbox("What happened", ["(all)"] + list_actions(store, viewer),
                      format_func=lambda a: "(all)" if a == "(all)" else event(a))
actor = c2.text_input("Who (username)", max_chars=64).strip() or None
period = c3.date_input("Dates (UTC)", value=(date.today() - timedelta(days=30), date.today()))
since = until = None
if isinstance(period, tuple) and len(period) == 2:
    since = datetime.combine(period[0], time.min)
    until = datetime.combine(period[1] + timedelta(days=1), time.min)
m1, m2 = st.columns(2)
model = m1.selectbox("Model", ["(all)"] + audited_models(store, viewer))
version = None
if model != "(all)":
    version = m2.selectbox("Version", [None] + audited_versions(store, viewer, model),
                           format_func=lambda v: "(all)" if v is None else f"v{v}")

query = AuditQuery(actor=actor, action=None if action == "(all)" else action, since=since, until=until,
                   model=None if model == "(all)" else model, version=version)
events = list_events(store, viewer, query)
st.metric("Events shown", len(events))
if events.empty:
    st.info("No audit events match these filters.")
    st.stop()
chart = events_per_day(events)
fig = go.Figure()
for kind, colour in chart.colours.items():
    rows = chart.counts[chart.counts["kind"] == kind]
    fig.add_bar(x=rows["day"], y=rows["events"], name=kind,
                marker={"color": colour, "pattern": {"shape": chart.patterns[kind]}},
                hovertemplate="%{x|%d %b %Y}: %{y} events<extra>" + kind + "</extra>")
fig.update_layout(title="Events per day, by kind", barmode="stack", yaxis_title="events", legend_title_text="Kind",
                  xaxis={"type": "date", "tickformat": "%d %b %Y", "dtick": chart.tick_days * 86_400_000,
                         "title": {"text": "day (UTC)"}})
st.plotly_chart(fig, width="stretch")
st.dataframe(events_for_screen(events), hide_index=True, width="stretch")
st.caption("Long ids and fingerprints are shortened to 8 characters here; the CSV download keeps them in full, "
           "with each event's details as stored.")
st.download_button("Download as CSV", spreadsheet_csv(events), file_name="modelboard-audit.csv",
                   mime="text/csv", on_click=record_export,
                   kwargs={"store": store, "viewer": viewer, "what": "audit log CSV", "rows": len(events),
                           "filters": query})
