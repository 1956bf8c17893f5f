"""Is it a risk? Every way a model's output is read or refused, each with an output worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.domain.scoring import ScoresNotRisks, ScoringMethod, positive_index, risk_from_output
from core.domain.signature import OutputSpec, columns_from_example, parse_inputs, parse_output

RISKS = np.array([0.05, 0.31, 0.72, 0.18, 0.9])


def read(raw: object, **kwargs: object) -> tuple[np.ndarray, str, str]:
    return risk_from_output(raw, positive_class=kwargs.pop("positive_class", None), what="m v1",  # type: ignore[arg-type]
                            **kwargs)  # type: ignore[arg-type]


def test_a_probability_per_patient_is_a_risk() -> None:
    scores, how, positive = read(RISKS, check_distinct=True)
    assert how == "pyfunc_risk" and positive == "1" and scores.tolist() == RISKS.tolist()


def test_two_columns_of_class_probabilities_give_the_outcomes_column() -> None:
    both = np.column_stack([1 - RISKS, RISKS])
    assert read(both)[0].tolist() == RISKS.tolist()  # unnamed: scikit-learn's order, outcome last
    named = pd.DataFrame({"sepsis": RISKS, "no sepsis": 1 - RISKS})
    scores, how, positive = read(named, positive_class="sepsis")
    assert scores.tolist() == RISKS.tolist() and how == "pyfunc_probabilities" and positive == "sepsis"


@pytest.mark.parametrize("raw", [np.array([0, 1, 1, 0, 1]), np.array([0.0, 1.0, 1.0, 0.0, 0.0]),
                                 pd.Series([True, False, True, True, False]).astype(int)])
def test_decisions_are_refused_and_say_how_to_log_the_model(raw: object) -> None:
    with pytest.raises(ScoresNotRisks, match=r"returned decisions \(only the values 0 and 1\), not risks") as info:
        read(raw, check_distinct=True)
    assert "pyfunc_predict_fn='predict_proba'" in str(info.value)


def test_a_probe_of_a_few_rows_is_not_judged_on_distinct_values() -> None:
    assert read(np.array([0.4, 0.4]))[0].tolist() == [0.4, 0.4]


@pytest.mark.parametrize("raw,match", [
    (np.array([-1.2, 0.3, 2.5]), r"outside 0–1 \(for example -1.2\).*\(log-odds or a regression\?\)"),
    (np.array(["yes", "no", "yes"]), r"returned labels \(no, yes\), not risks"),
    (np.column_stack([RISKS, RISKS]), "do not add up to 1"),
    (np.full((3, 3), 1 / 3), "3 values per patient"),
    (np.array([0.2, np.nan, 0.4]), "1 missing or infinite scores"),
])
def test_outputs_that_are_not_probabilities_are_refused(raw: object, match: str) -> None:
    with pytest.raises(ScoresNotRisks, match=match):
        read(raw)


def test_an_output_narrower_than_the_signature_declares_is_refused() -> None:
    with pytest.raises(ScoresNotRisks, match="declares 2 per patient; ModelBoard will not guess"):
        read(RISKS, declared_width=2)


@pytest.mark.parametrize("classes,positive,index", [([0, 1], None, 1), ([True, False], None, 0),
                                                    ([0, 1], "deteriorated", 1),  # the label's name, not the model's
                                                    (["stable", "deteriorated"], "deteriorated", 1),
                                                    (["deteriorated", "stable"], "deteriorated", 0)])
def test_the_outcome_among_a_classifiers_classes(classes: list[object], positive: str | None, index: int) -> None:
    assert positive_index(classes, positive, "m") == index


@pytest.mark.parametrize("classes,positive,match", [(["a", "b"], None, "say which one is the outcome"),
                                                    ([0, 1, 2], None, "has 3 classes"),
                                                    (["a", "b"], "c", "names the outcome 'c'")])
def test_classes_that_do_not_name_the_outcome_are_refused(classes: list[object], positive: str | None,
                                                          match: str) -> None:
    with pytest.raises(ScoresNotRisks, match=match):
        positive_index(classes, positive, "m")


def test_the_method_is_said_in_words() -> None:
    method = ScoringMethod("predict_proba", "sklearn", "1", "decisions (the predicted class, 0 or 1)")
    assert method.sentence() == ("Risk = the probability of class '1' from the model's own predict_proba (MLflow "
                                 "sklearn flavour); MLflow's pyfunc predict returns decisions (the predicted class, "
                                 "0 or 1), which ModelBoard did not use.")


def test_signatures_are_read_with_types_and_requiredness() -> None:
    inputs = parse_inputs('[{"type": "long", "name": "age", "required": true}, {"type": "double", "name": '
                          '"lactate", "required": false}, {"type": "string", "name": "source"}]', "m")
    assert [(c.name, c.type, c.required, c.kind) for c in inputs] == [
        ("age", "long", True, "numerical"), ("lactate", "double", False, "numerical"),
        ("source", "string", True, "categorical")]
    assert parse_output('[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]') == OutputSpec(
        "tensor", "float64", 2)
    assert parse_output('[{"type": "long", "required": true}]').is_decision
    example = columns_from_example(["age", "lactate", "flag", "src"], [[30, 1.5, True, "ed"], [41, None, False, None]])
    assert [(c.type, c.required) for c in example] == [("long", False), ("double", False), ("boolean", False),
                                                        ("string", False)]


def test_tensor_signatures_without_names_are_refused_with_how_to_log() -> None:
    with pytest.raises(ValueError, match="tensor signature without column names.*infer_signature"):
        parse_inputs('[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]', "m v1")
