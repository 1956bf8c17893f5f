"""A criterion the evaluation cannot assess is never passed: it shows as "cannot be judged" and blocks sign-off
like a failure (a clinical lead's signed exception lets it through), and an evaluation set too small to judge
is refused before anything is written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.config import Settings
from core.domain.criteria import assess, verdict_word
from core.domain.usecase import PerformanceCriteria, UseCase
from tests.core.test_cli import cli

OVERALL = {"auroc": 0.8, "sensitivity": 0.9, "specificity": 0.7, "ppv": 0.2}


def use_case(**criteria: Any) -> UseCase:
    return UseCase(name="u", title="U", intended_use="x", target_population="adults", outcome="sepsis",
                   threshold=0.1, models=("m",), label="y", sensitive_attributes=("sex",),
                   criteria=PerformanceCriteria(**criteria))


def group(name: str, sensitivity: float, n: int = 500, enough: bool = True) -> dict[str, Any]:
    return {"attribute_set": "sex", "group": name, "n": n, "sensitivity": sensitivity, "enough_patients": enough}


def groups_and_gap(results: list[Any]) -> list[Any]:
    """The two subgroup criteria (the overall minimum, judged on everyone, comes first and is not under test)."""
    assert results[0].criterion == "sensitivity overall" and results[0].judged
    return [r for r in results if r.criterion != "sensitivity overall"]


def test_no_group_large_enough_cannot_be_judged_and_is_not_passed() -> None:
    every, gap = groups_and_gap(assess(use_case(min_sensitivity=0.8, max_sensitivity_gap=0.1, min_subgroup_n=100),
                                       OVERALL, [group("F", 0.95, 12, False), group("M", 0.5, 8, False)]))
    assert (every.passed, every.judged, gap.passed, gap.judged) == (False, False, False, False)
    assert "no group has 100 or more patients" in every.observed
    assert verdict_word(every.to_dict()) == verdict_word(gap.to_dict()) == "CANNOT BE JUDGED"


def test_a_large_group_without_outcomes_cannot_be_judged_unless_another_group_fails() -> None:
    undefined = group("M", math.nan)
    [every] = groups_and_gap(assess(use_case(min_sensitivity=0.8), OVERALL, [group("F", 0.9), undefined]))
    assert (every.passed, every.judged) == (False, False) and "sex: M" in every.observed
    [every] = groups_and_gap(assess(use_case(min_sensitivity=0.8), OVERALL, [group("F", 0.6), undefined]))
    assert (every.passed, every.judged, every.value) == (False, True, 0.6)  # a real failure is a failure
    assert verdict_word(every.to_dict()) == "FAIL"


def test_judgeable_groups_pass_and_fail_as_before() -> None:
    every, gap = groups_and_gap(assess(use_case(min_sensitivity=0.8, max_sensitivity_gap=0.1), OVERALL,
                                       [group("F", 0.9), group("M", 0.85), group("X", 0.2, 30, False)]))
    assert (every.passed, every.judged, gap.passed, gap.judged) == (True, True, True, True)
    assert gap.value == pytest.approx(0.05)
    assert verdict_word(every.to_dict()) == "PASS"


def test_an_undefined_overall_metric_cannot_be_judged() -> None:
    [auroc] = assess(use_case(min_auroc=0.7), OVERALL | {"auroc": math.nan}, [])
    assert (auroc.passed, auroc.judged) == (False, False) and auroc.observed.startswith("cannot be judged")


def test_older_stored_criteria_without_the_flag_read_as_judged() -> None:
    assert verdict_word({"passed": False, "criterion": "c"}) == "FAIL"


def test_an_evaluation_set_too_small_to_judge_is_refused_with_the_numbers(demo_settings: Settings,
                                                                          tmp_path: Path) -> None:
    from core.services.installation import open_store

    store = open_store(demo_settings)
    before = store.query_one("SELECT count(*) AS n FROM evaluations")
    logged = pd.read_parquet(_logged_evaluation_set(demo_settings))
    tiny = logged.head(20)
    tiny.to_csv(tmp_path / "tiny.csv", index=False)
    result = cli(demo_settings.home, "submit", "--model", "sepsis-icu", "--version", "2", "--eval-data",
                 str(tmp_path / "tiny.csv"), "--home", str(demo_settings.home), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = int(tiny["sepsis_48h"].sum())
    assert f"holds 20 patients, {outcomes} of whom had the outcome" in result.stderr
    assert "at least 100 patients and 10 with the outcome" in result.stderr
    assert store.query_one("SELECT count(*) AS n FROM evaluations") == before  # nothing written
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _logged_evaluation_set(settings: Settings) -> str:
    from core.services.installation import open_registry

    return open_registry(settings).evaluation_dataset_path("sepsis-icu", 2)
