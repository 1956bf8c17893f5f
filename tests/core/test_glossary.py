"""One vocabulary: input names and units from the use case, words for raw names nobody named, and numbers with
the decimals their interval supports."""

from __future__ import annotations

import math
import re

import pytest
import yaml

from core.adapters.store import Store
from core.domain import glossary
from core.domain.access import User
from core.errors import ValidationError
from core.services import usecases
from tests.core.test_usecases import DEMO_YAML

SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")


def test_the_use_case_names_its_inputs_and_units_and_they_round_trip(store: Store, operator: User) -> None:
    usecases.import_use_case(store, operator, DEMO_YAML.read_text())
    words = usecases.glossary_for_model(store, operator, "sepsis-icu")
    declared = yaml.safe_load(DEMO_YAML.read_text())["inputs"]
    for raw, entry in declared.items():
        term = words.input(raw)
        assert (term.name, term.unit, term.raw) == (entry["name"], entry["unit"], raw)
    assert words.input("spo2").with_unit() == "Oxygen saturation by pulse oximetry (SpO2) (%)"
    exported = usecases.parse_yaml(usecases.export_yaml(store, operator, "sepsis-icu-adult"))
    assert exported.inputs == {k: (v["name"], v["unit"]) for k, v in declared.items()}


def test_a_model_without_a_use_case_still_gets_words(store: Store, operator: User) -> None:
    words = usecases.glossary_for_model(store, operator, "a-hospital-model")
    assert words.input("heart_rate").with_unit() == "Heart rate (beats/min)"  # the common clinical names
    assert words.input("days_since_last_dialysis").name == "Days since last dialysis"  # nobody named it


def test_one_hot_columns_read_as_their_input_and_category() -> None:
    words = glossary.glossary_for({"admission_source": ("Admitted from", "")})
    assert words.input("admission_source_ward_transfer").name == "Admitted from: ward transfer"
    assert words.input("admission_source").name == "Admitted from"


@pytest.mark.parametrize("bad", [
    "inputs: [lactate]\n",
    "inputs:\n  lactate: Lactate\n",
    "inputs:\n  lactate: {name: '', unit: mmol/L}\n",
    "inputs:\n  lactate: {name: Lactate, units: mmol/L}\n",
])
def test_malformed_input_names_are_refused_with_the_shape_expected(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"inputs"):
        usecases.parse_yaml(DEMO_YAML.read_text().split("\ninputs:")[0] + "\n" + bad)


def test_every_named_attribute_measure_and_event_reads_as_words() -> None:
    raw_names = ["age_band × race_ethnicity", "sensitivity_lo", "observed_expected", "alerts_per_100",
                 "missing_share", "reference_missing_share", "selection_rate", "alert_raised",
                 "monitoring_reference_recorded", "wasserstein", "jensenshannon", "psi"]
    shown = [glossary.attribute(raw_names[0]), *(glossary.measure(r).name for r in raw_names[1:7]),
             glossary.event(raw_names[7]), glossary.event(raw_names[8]),
             *(glossary.statistic(r).name for r in raw_names[9:])]
    assert glossary.attribute("age_band × race_ethnicity") == "Age band × race and ethnicity"
    assert not [s for s in shown if SNAKE.search(s)], shown
    assert glossary.statistic("psi").meaning.startswith("population stability index")


@pytest.mark.parametrize(("value", "lo", "hi", "shown"), [
    (0.70123, 0.6421, 0.7634, "0.70 (0.64–0.76)"),      # width 0.12: two decimals
    (0.80512, 0.80123, 0.81234, "0.805 (0.801–0.812)"),  # width 0.011: three
    (1.234, 0.41, 1.92, "1.2 (0.4–1.9)"),               # width 1.5 (a calibration slope): one
    (0.5, None, None, "0.50"),                          # no interval: the value alone
    (float("nan"), 0.1, 0.2, "—"),                      # undefined: a mark, never "nan"
    (None, None, None, "—"),
])
def test_intervals_show_the_decimals_they_support(value: float | None, lo: float | None, hi: float | None,
                                                  shown: str) -> None:
    assert glossary.interval(value, lo, hi) == shown


def test_decimals_follow_the_interval_width_for_any_width() -> None:
    for width in (0.9, 0.2, 0.05, 0.012, 0.004, 0.0001):
        places = glossary.decimals_for(0.5, 0.5 + width)
        # two significant figures of the width, never more than 3 decimals nor fewer than 1
        assert places == max(1, min(3, 1 - math.floor(math.log10(width))))


def test_rates_percent_and_measured_values() -> None:
    assert glossary.per100(0.7) == "70 of 100"
    assert glossary.per100(0.864) == "86 of 100"
    assert glossary.per100(None) == "—"
    assert glossary.percent(0.314) == "31 %"
    assert glossary.significant(1.3812) == "1.38" and glossary.significant(142.7) == "143"
    assert glossary.number(float("nan")) == "—"
