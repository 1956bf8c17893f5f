"""Production log: what the model in use has been doing, day by day."""

import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from core.services.production import daily_summary, daily_table, logged_models

user = state.viewer().user
st.title("Production log")
st.caption("Predictions the model in clinical use made, as logged by the hospital's scoring service.")

models = logged_models(cache.store(), user)
if not models:
    st.info("No production predictions have been logged yet.")
    st.stop()
model = st.selectbox("Model", models)
daily = daily_summary(cache.store(), user, model)
total = int(daily["predictions"].sum())
flagged = float((daily["flagged_share"] * daily["predictions"]).sum() / max(total, 1))

c1, c2, c3 = st.columns(3)
c1.metric("Predictions logged", f"{total:,}")
c1.caption(f"Over {len(daily)} days, about {total / max(len(daily), 1):.0f} admissions scored a day.")
c2.metric("Alerts per 100 admissions", f"{flagged * 100:.1f}")
c2.caption(f"Of 100 admissions scored, the model flagged about {flagged * 100:.0f} as at risk.")
c3.metric("Days covered", len(daily))
c3.caption(f"From {daily['day'].min():%d %b %Y} to {daily['day'].max():%d %b %Y}.")

fig = go.Figure()
fig.add_scatter(x=daily["day"], y=daily["flagged_share"] * 100, name="Flagged per 100 admissions", mode="lines")
fig.add_scatter(x=daily["day"], y=daily["outcome_rate"] * 100, name="Developed the outcome per 100", mode="lines")
fig.add_scatter(x=daily["day"], y=daily["mean_score"] * 100, name="Mean predicted risk (%)", mode="lines",
                line={"dash": "dot"})
fig.update_layout(title="Daily alerts, outcomes and predicted risk", yaxis_title="per 100 admissions / %",
                  legend={"orientation": "h"}, xaxis={"type": "date", "tickformat": "%d %b %Y"})
st.plotly_chart(fig, width="stretch")
st.caption("If the flagged share climbs while the outcome rate stays flat, the model's inputs may have "
           "shifted (for example a lab changing its assay): the Monitoring page tests that per input and week.")
st.dataframe(daily_table(daily), hide_index=True, width="stretch")
st.caption("Developed the outcome: among patients whose outcome has arrived; '—' on days with none yet.")
