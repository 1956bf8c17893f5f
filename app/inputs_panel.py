"""What the model was given, shown on Performance and Fairness: how the scores were produced, each input as
it arrived, and who was missing which input (read from the stored evaluation)."""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from core.domain import glossary
from core.domain.palette import OKABE_ITO
from core.services.input_review import InputsView, missing_by_group

STRONG = "#1565c0"


def scoring_note(view: InputsView | None) -> None:
    if view is not None and view.scoring:
        st.caption(":material/verified: " + view.scoring
                   + (" Inputs were read from the model's logged input example (it has no signature)."
                      if view.inputs_from == "input example" else ""))
    if view is not None and view.complete_case:
        st.warning(view.complete_case, icon=":material/person_remove:")


def inputs_table(view: InputsView) -> None:
    st.markdown("**The model's inputs, as the evaluation data gave them** (types from the model's signature; "
                "missing values were passed to the model as missing, never filled in):")
    st.dataframe(view.table, hide_index=True, width="stretch")
    for sentence in view.flagged:
        st.markdown("- " + sentence)


def missing_for_groups(view: InputsView, attribute: str, *, min_n: int,
                       names: Callable[[str], str] = str) -> None:
    """Bars of the missing share per group for each input that is sometimes missing, and the sentences.
    `names` gives an input's clinical name (the use case's glossary)."""
    if not view.gappy:
        st.caption("No input was missing for any patient in this evaluation.")
        return
    rows, sentences = missing_by_group(view, attribute, min_n=min_n)
    for sentence in sentences:
        st.markdown("- " + sentence)
    for sentence in view.flagged:
        st.markdown("- " + sentence)
    fig = go.Figure()
    for i, (column, part) in enumerate(rows.groupby("column", sort=False)):
        fig.add_bar(x=part["group"], y=part["share"], name=names(str(column)), customdata=part[["missing", "n"]],
                    marker_color=OKABE_ITO[i % len(OKABE_ITO)],
                    hovertemplate="%{y:.0%} missing (%{customdata[0]} of %{customdata[1]})",
                    marker_pattern_shape=["" if j else "/" for j in part["judged"]])
    fig.update_layout(title=f"Share of patients missing each input, by {glossary.attribute(attribute).lower()}",
                      barmode="group",
                      yaxis={"title": "share of the group's patients", "tickformat": ".0%", "rangemode": "tozero"})
    st.plotly_chart(fig, width="stretch")
    st.caption(f"Hatched bars: groups of fewer than {min_n} patients (too few to judge).")
