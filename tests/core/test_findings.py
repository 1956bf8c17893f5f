"""The finding pages lead with: which attribute and group the model fails most, cross-checked with fairlearn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import MetricFrame
from sklearn.metrics import recall_score

from core.config import Settings
from core.domain.access import command_line_operator
from core.domain.criteria import criterion_words, who
from core.domain.glossary import per100
from core.domain.usecase import PerformanceCriteria
from core.metrics.subgroups import subgroup_metrics
from core.services import findings, monitoring
from core.services.installation import open_store
from core.services.submission import StoredEvaluation
from tests.app.screen import SNAKE
from tests.core.test_usecases import DEMO_YAML

OPERATOR = command_line_operator("pytest")
CRITERIA = PerformanceCriteria(min_sensitivity=0.80, max_sensitivity_gap=0.10, min_subgroup_n=100)
TOL = 1e-12


def evaluation_rows(settings: Settings, evaluation_id: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rows = open_store(settings).query_df("SELECT label, score, attributes FROM evaluation_rows "
                                         "WHERE evaluation_id = ? ORDER BY row_index", [evaluation_id])
    return (rows["label"].to_numpy(), rows["score"].to_numpy(dtype=float),
            pd.DataFrame([json.loads(a) for a in rows["attributes"]]))


def test_the_demo_finding_is_black_patients_by_race_and_ethnicity(demo_settings: Settings,
                                                                   evaluated_v2: StoredEvaluation) -> None:
    review = findings.evaluation_review(open_store(demo_settings), OPERATOR, evaluated_v2.id)
    finding = review.finding
    assert finding is not None and review.attribute == finding.attribute == "race_ethnicity"
    assert finding.worst.group == "Black" and finding.best.group == "White" and finding.below_minimum

    y, score, attributes = evaluation_rows(demo_settings, evaluated_v2.id)
    flagged = score >= evaluated_v2.result["threshold"]
    race = MetricFrame(metrics=recall_score, y_true=y, y_pred=flagged, sensitive_features=attributes["race_ethnicity"])
    assert finding.worst.sensitivity == pytest.approx(race.by_group["Black"], abs=TOL)
    assert finding.best.sensitivity == pytest.approx(race.by_group["White"], abs=TOL)
    black = (attributes["race_ethnicity"] == "Black").to_numpy()
    assert finding.worst.positives == y[black].sum() and finding.worst.caught == (y[black] & flagged[black]).sum()
    assert finding.others == pytest.approx(recall_score(y[~black], flagged[~black]), abs=TOL)
    # The rule: a group below the minimum weighs most, so the finding is the lowest judged group of any single
    # attribute — fairlearn's group minimum over groups of 100 or more patients.
    lowest = min((float(mf.by_group[g]), a, g) for a in ("sex", "age_band", "race_ethnicity", "payer")
                 for mf in [MetricFrame(metrics=recall_score, y_true=y, y_pred=flagged,
                                        sensitive_features=attributes[a])]
                 for g in mf.by_group.index if (attributes[a] == g).sum() >= 100)
    assert lowest[1:] == ("race_ethnicity", "Black")

    assert review.headline.startswith("Black patients who developed sepsis within 48 hours of ICU admission are "
                                      "flagged less often than White patients: ")
    assert f"{per100(race.by_group['Black'])} vs {per100(race.by_group['White'])}" in review.headline
    assert finding.cause is not None and finding.cause.label == "Known risks and limitations"
    assert "Black patients" in finding.cause.text and "pulse-oximetry" in finding.cause.text
    assert finding.calibration is not None and "under-estimates their risk" in finding.calibration

    # The other attributes' lowest groups below the minimum are named too, each equal to fairlearn's minimum.
    minimum = yaml.safe_load(DEMO_YAML.read_text())["criteria"]["min_sensitivity"]
    expected = []
    for a in ("sex", "age_band", "payer"):
        by_group = MetricFrame(metrics=recall_score, y_true=y, y_pred=flagged,
                               sensitive_features=attributes[a]).by_group
        judged = {g: float(v) for g, v in by_group.items() if (attributes[a] == g).sum() >= 100}
        worst = min(judged, key=lambda g: judged[g])
        if judged[worst] < minimum:
            expected.append((a, worst, judged[worst]))
    assert [(g.attribute, g.group) for g in review.also_below] == [(a, g) for a, g, _ in sorted(expected,
                                                                                              key=lambda e: e[2])]
    assert expected and all(g.sensitivity == pytest.approx(v, abs=TOL)
                            for g, (_, _, v) in zip(review.also_below, sorted(expected, key=lambda e: e[2]),
                                                    strict=True))
    assert str(review.also_below_sentence()).startswith("Also below the minimum: ")


def synthetic(worst_payer: float = 0.5, seed: int = 3) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """4,000 patients; among Medicaid patients with the outcome only `worst_payer` are flagged, 0.9 elsewhere."""
    rng = np.random.default_rng(seed)
    n = 4_000
    attributes = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                               "payer": rng.choice(["Commercial", "Medicaid", "Medicare"], n),
                               "age_band": rng.choice(["18-44", "45-64", "65+"], n)})
    y = (rng.random(n) < 0.25).astype(int)
    caught = rng.random(n) < np.where(attributes["payer"] == "Medicaid", worst_payer, 0.9)
    score = np.where(y == 1, np.where(caught, 0.8, 0.2), rng.choice([0.2, 0.8], n, p=[0.7, 0.3]))
    return y, score, attributes


def test_another_attribute_can_be_worst() -> None:
    y, score, attributes = synthetic()
    table = subgroup_metrics(y, score, sensitive_features=attributes, threshold=0.5, min_n=100).by_group
    review = findings.find_gap(table, CRITERIA, outcome="sepsis")
    payer = MetricFrame(metrics=recall_score, y_true=y, y_pred=score >= 0.5, sensitive_features=attributes["payer"])
    assert review.attribute == "payer" and review.finding is not None
    assert review.finding.worst.group == payer.by_group.idxmin() == "Medicaid"
    assert review.finding.worst.sensitivity == pytest.approx(payer.group_min(), abs=TOL)
    assert review.finding.gap == pytest.approx(payer.difference(method="between_groups"), abs=TOL)
    assert review.headline.startswith("Medicaid patients who developed sepsis are flagged less often than ")
    assert review.finding.cause is None  # no card given


def test_an_intersection_leads_only_when_clearly_worse() -> None:
    y, score, attributes = synthetic(worst_payer=0.75)
    table = subgroup_metrics(y, score, sensitive_features=attributes, threshold=0.5, min_n=100).by_group
    assert findings.find_gap(table, CRITERIA, outcome="sepsis").attribute == "payer"  # its pairs are no worse
    # Older Medicaid patients are caught one time in ten: their whole interval lies below Medicaid's.
    older = ((attributes["payer"] == "Medicaid") & (attributes["age_band"] == "65+")).to_numpy()
    score = np.where(older & (y == 1), np.where(np.arange(len(y)) % 10 == 0, 0.8, 0.2), score)
    table = subgroup_metrics(y, score, sensitive_features=attributes, threshold=0.5, min_n=100).by_group
    review = findings.find_gap(table, CRITERIA, outcome="sepsis")
    assert review.attribute == "payer × age_band" and review.finding is not None
    assert review.finding.worst.who == "Medicaid patients aged 65+"
    assert review.finding.worst.sensitivity == pytest.approx(recall_score(y[older], score[older] >= 0.5), abs=TOL)


def test_no_group_large_enough_means_no_finding_and_says_so() -> None:
    y, score, attributes = synthetic()
    table = subgroup_metrics(y, score, sensitive_features=attributes, threshold=0.5, min_n=5_000).by_group
    review = findings.find_gap(table, PerformanceCriteria(min_sensitivity=0.8, min_subgroup_n=5_000), outcome="sepsis")
    assert review.finding is None and review.attribute is None
    assert "too few patients to judge" in review.headline and "5000 or more patients" in review.headline


def test_a_gap_within_the_limits_is_not_a_finding_to_lead_with() -> None:
    y, score, attributes = synthetic(worst_payer=0.88)
    table = subgroup_metrics(y, score, sensitive_features=attributes, threshold=0.5, min_n=100).by_group
    review = findings.find_gap(table, PerformanceCriteria(min_sensitivity=0.5, max_sensitivity_gap=0.3),
                               outcome="sepsis")
    assert review.finding is not None and not review.finding.clinically_relevant
    assert review.headline.startswith("No group stands out")


def test_the_documented_cause_names_the_group_first_then_its_attribute() -> None:
    card = {"known_risks_limitations": "Lactate depends on the assay.",
            "ethical_considerations": "Possible under-recognition in Black patients.",
            "bias_mitigation": "Race is not an input."}
    cause = findings.documented_cause(card, "race_ethnicity", "Black")
    assert cause is not None and cause.label == "Known biases and ethical considerations"
    cause = findings.documented_cause(card, "race_ethnicity", "Asian")
    assert cause is not None and cause.field == "bias_mitigation"  # names the attribute ('race') only
    assert findings.documented_cause(card, "payer", "Medicaid") is None
    assert findings.documented_cause({"bias_mitigation": "see the grace period"}, "race_ethnicity", "Other") is None


def test_criteria_name_the_worst_group_in_words_for_stored_results() -> None:
    stored = [  # as evaluations stored them before and after this change: the strings are kept
        {"criterion": "sensitivity in every group of ≥ 100 patients", "passed": False, "value": 0.4,
         "observed": "lowest 0.400 (age_band × race_ethnicity: 80+ / Black); 44 groups below", "required": "≥ 0.80"},
        {"criterion": "sensitivity gap between groups", "passed": False, "value": 0.544,
         "observed": "0.544 (age_band × race_ethnicity)", "required": "≤ 0.10"},
        {"criterion": "sensitivity overall", "passed": True, "observed": "0.817", "required": "≥ 0.80", "value": 0.817},
        {"criterion": "sensitivity in every group of ≥ 100 patients", "passed": False, "judged": False,
         "observed": "cannot be judged: 1 large group(s) had no patient with the outcome (e.g. age_band: 80+)",
         "required": "≥ 0.80"}]
    words = [criterion_words(c) for c in stored]
    assert words[0].observed == "lowest: Black patients aged 80+, 40 of 100; 44 groups below the minimum"
    assert words[0].required == "at least 80 of 100"
    assert words[1].observed == "54 percentage points, largest by age band × race and ethnicity"
    assert words[2].observed == "82 of 100"
    assert "patients aged 80+" in words[3].observed
    assert not [m for w in words for text in (w.name, w.observed, w.required) for m in SNAKE.findall(text)]
    assert who("sex × payer", "female / Medicaid") == "female Medicaid patients"


def test_monitoring_opens_on_the_attribute_with_the_largest_gap_over_the_windows(demo_settings: Settings) -> None:
    store = open_store(demo_settings)
    review = findings.monitoring_review(store, OPERATOR, "sepsis-icu", 1)  # v1 has no evaluation in the demo
    assert review.finding is not None and review.attribute is not None
    pooled = {}
    for attribute in monitoring.subgroup_attributes(store, OPERATOR, "sepsis-icu", 1):
        series = monitoring.subgroup_series(store, OPERATOR, "sepsis-icu", 1, attribute)
        caught = (series["sensitivity"].fillna(0) * series["positives"]).round().groupby(series["subgroup"]).sum()
        pooled[attribute] = caught / series.groupby("subgroup")["positives"].sum()
    lowest = min((float(v), a, g) for a, s in pooled.items() for g, v in s.items())
    assert (review.attribute, review.finding.worst.group) == lowest[1:]
    assert review.finding.worst.sensitivity == pytest.approx(lowest[0], abs=TOL)


def test_drift_is_said_in_clinical_words_with_the_median_and_unit(demo_settings: Settings) -> None:
    from core.services.drift_words import drift_in_words, drift_table, statistics_table
    from core.services.installation import open_registry
    from core.services.usecases import glossary_for_model

    store = open_store(demo_settings)
    windows = monitoring.window_series(store, OPERATOR, "sepsis-icu", 1)
    shift = windows[windows["breaches"].str.contains("input_drift")].iloc[0]  # the week the lab changed its assay
    drift = monitoring.feature_drift(store, OPERATOR, "sepsis-icu", 1, shift["window_start"])
    both = monitoring.window_comparison(store, open_registry(demo_settings), OPERATOR, "sepsis-icu", 1,
                                        shift["window_start"], shift["window_end"])
    lines = drift_in_words(drift, both.reference, both.current, glossary_for_model(store, OPERATOR, "sepsis-icu"))
    lactate = next(line for line in lines if line.raw == "lactate")
    before, after = np.nanmedian(both.reference["lactate"]), np.nanmedian(both.current["lactate"])
    assert after > before and lactate.drifted and lines[0] is lactate  # drifted inputs first
    assert lactate.sentence == (f"Lactate values are higher than at sign-off: typical value {before:.3g} → "
                                f"{after:.3g} mmol/L.")
    assert lactate.statistic == "Distance between distributions" and lactate.method == "wasserstein"
    assert lactate.score == pytest.approx(float(drift.set_index("column_name").loc["lactate", "score"]))
    for table in (drift_table(lines), statistics_table(lines)):
        cells = [str(c) for c in table.columns] + [str(v) for v in table.to_numpy().ravel()]
        assert not [c for c in cells if SNAKE.search(c) or c in ("None", "nan", "")]
