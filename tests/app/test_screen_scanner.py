"""The raw-identifier scanner finds what it is meant to find (else the every-page test would pass anything)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.screen import raw_identifiers


def _page(body: str) -> AppTest:
    return AppTest.from_string("import pandas as pd\nimport plotly.graph_objects as go\nimport streamlit as st\n"
                               + body, default_timeout=30).run()


def test_raw_names_none_and_long_ids_are_found_wherever_they_are_shown() -> None:
    at = _page('st.markdown("Gap by race_ethnicity")\n'
               'st.dataframe(pd.DataFrame({"sensitivity_lo": [0.5], "Note": [None]}))\n'
               'st.caption("run 0d1aa83a1e1e4f94be3ab238341c47bd")\n'
               'st.selectbox("Grouped by", ["age_band"])\n'
               'st.metric("Detail", "{}")\n'
               'st.plotly_chart(go.Figure(go.Bar(x=["heart_rate"], y=[1], name="mean_abs_shap")))\n')
    found = "\n".join(raw_identifiers(at))
    for raw in ("race_ethnicity", "sensitivity_lo", "None", "0d1aa83a1e1e4f94be3ab238341c47bd", "age_band", "{}",
                "heart_rate", "mean_abs_shap"):
        assert raw in found, raw


def test_words_code_spans_and_short_ids_pass() -> None:
    at = _page('st.markdown("Black patients: 70 of 100 (0.64–0.76). Run `python -m core.cli submit --model m` '
               'with a column `encounter_id`.")\n'
               'st.caption("Card fingerprint 33e95229…")\n'
               'st.markdown(r"Model sepsis\\-icu v2")\n'
               'st.dataframe(pd.DataFrame({"Sensitivity": ["0.70 (0.64–0.76)"], "Missing": ["—"]}))\n')
    assert raw_identifiers(at) == []
