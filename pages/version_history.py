"""Version history (auditors, administrators): which version held production when, one version's
milestones, and its evidence package."""

from datetime import datetime, timedelta

import plotly.express as px
import streamlit as st

from app import cache, state
from app.signing import signed_fingerprints
from app.widgets import choose_version
from app.wording import plain
from core.domain.clock import utc_now
from core.domain.palette import OKABE_ITO
from core.services.evidence import evidence_package, last_export
from core.services.history import production_as_of, version_timeline

# Okabe & Ito's palette, distinguishable with the common colour-vision deficiencies (symbols differ too).
COLUMNS = {"occurred_at": "When (UTC)", "milestone": "Milestone", "kind": "Kind", "actor": "Who", "source": "Record"}
user = state.viewer().user
store = cache.store()
st.title("Version history")
st.caption("What ModelBoard knew at each moment, from its alias history, signatures and hash-chained audit trail. "
           "All times are UTC.")
models = [m.name for m in cache.models(user)]
if not models:
    st.info("No registered models yet.")
    st.stop()
default = models.index("sepsis-icu") if "sepsis-icu" in models else 0

st.subheader("Which version held production at a time?")
q1, q2, q3 = st.columns(3)
asked_model = q1.selectbox("Model", models, index=default, key="asof_model")
now = utc_now()
day = q2.date_input("Date (UTC)", value=now.date(), key="asof_date")
moment = q3.time_input("Time (UTC)", value=now.time().replace(second=0, microsecond=0), key="asof_time")
answer = production_as_of(store, user, asked_model, datetime.combine(day, moment))
if answer.version is None:
    st.warning(plain(answer.sentence), icon=":material/help:")
elif answer.kind in ("out_of_band", "adopted"):
    st.warning(plain(answer.sentence), icon=":material/warning:")
else:
    st.success(plain(answer.sentence), icon=":material/verified:")
for signature in answer.approvers:
    st.markdown(f"- {plain(signature.manifestation())}", help=signed_fingerprints(signature))

st.subheader("Timeline of one version")
model, option = choose_version(user, model_key="timeline_model", version_key="timeline_version", model_label="Model")
version = option.version
timeline = version_timeline(store, user, model, version)
if timeline.empty:
    st.info(f"ModelBoard has recorded nothing about {model} v{version} yet.")
else:
    shown = timeline.rename(columns=COLUMNS)[list(COLUMNS.values())]
    shown["Kind"] = shown["Kind"].str.capitalize()
    kinds = list(dict.fromkeys(shown["Kind"]))
    figure = px.scatter(shown, x="When (UTC)", y="Kind", color="Kind", symbol="Kind", text="Milestone",
                        hover_data=["Who", "Record"], title=f"{model} v{version}: milestones (UTC)",
                        color_discrete_sequence=list(OKABE_ITO), category_orders={"Kind": kinds})
    figure.update_traces(textposition="top center", marker={"size": 11})
    start, end = shown["When (UTC)"].min(), shown["When (UTC)"].max()
    pad = max(timedelta(minutes=30), (end - start) * 0.05)  # at least an hour shown: ticks in minutes, not ms
    figure.update_layout(showlegend=False, xaxis_title="Date and time (UTC)", yaxis_title="")
    figure.update_xaxes(range=[start - pad, end + pad], tickformat="%-d %b %Y<br>%H:%M",
                        hoverformat="%-d %b %Y %H:%M:%S")
    st.plotly_chart(figure, width="stretch")
    shown["When (UTC)"] = shown["When (UTC)"].dt.strftime("%Y-%m-%d %H:%M:%S")
    st.dataframe(shown, hide_index=True, width="stretch")

st.subheader("Evidence package")
st.caption("A zip with the model card (PDF, with signatures), the evaluation as stored, every signature with its "
           "standing today, every audit row about the version with its hashes, the chain check and a manifest "
           "of SHA-256 hashes. Each download is recorded in the audit trail.")
st.download_button(f"Download evidence package of {model} v{version}",
                   lambda: evidence_package(store, cache.registry(), user, model, version),
                   file_name=f"evidence-{model}-v{version}.zip", mime="application/zip",
                   icon=":material/folder_zip:")
previous = last_export(store, user, model, version)
if previous is None:
    st.info(f"No evidence package of {model} v{version} has been exported yet.")
else:
    hashes = previous["files"] | {"manifest.json": previous["manifest_sha256"]}
    st.markdown(f"**Last export:** audit row {previous['audit_row']}, by {previous['exported_by']} at "
                f"{previous['exported_at']:%Y-%m-%d %H:%M:%S} UTC. SHA-256 of each file (first 8 characters):")
    st.markdown("\n".join(f"- {plain(name)}: {digest[:8]}…" for name, digest in hashes.items()),
                help="The full hashes are under 'Full SHA-256 hashes' below.")
    with st.expander("Full SHA-256 hashes"):
        st.code("\n".join(f"{digest}  {name}" for name, digest in hashes.items()), language=None)
