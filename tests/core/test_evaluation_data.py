"""Every refusal of an evaluation set, each produced by a real bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.domain.identifiers import find_identifiers
from core.domain.signature import InputColumn
from core.errors import ValidationError
from core.services.evaluation_data import check_evaluation_data, read_table

INPUTS = [InputColumn("lactate", "double"), InputColumn("heart_rate", "double")]
MB = 1_000_000


def good_frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"encounter_id": [f"E{i}" for i in range(n)], "lactate": rng.gamma(2, 1, n).round(2),
                         "heart_rate": rng.normal(90, 10, n).round(0), "sepsis_48h": np.arange(n) % 2,
                         "sex": np.where(np.arange(n) % 3, "female", "male")})


def check(frame: pd.DataFrame, **kwargs: object) -> None:
    options = {"inputs": INPUTS, "label": "sepsis_48h", "sensitive": ("sex",), "deidentified": False,
               "source": "test"} | kwargs
    check_evaluation_data(frame, **options)  # type: ignore[arg-type]


def refusal(frame: pd.DataFrame, **kwargs: object) -> str:
    with pytest.raises(ValidationError) as info:
        check(frame, **kwargs)
    return str(info.value)


def test_a_good_file_passes_in_both_formats(tmp_path: Path) -> None:
    frame = good_frame()
    frame.to_csv(tmp_path / "eval.csv", index=False)
    frame.to_parquet(tmp_path / "eval.parquet", index=False)
    for name in ("eval.csv", "eval.parquet"):
        data = check_evaluation_data(read_table(tmp_path / name, max_bytes=MB), inputs=INPUTS, label="sepsis_48h",
                                     sensitive=("sex",), deidentified=False, source=name)
        assert len(data.frame) == 50 and len(data.digest) == 64


def test_csv_that_does_not_parse_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    lines = good_frame(10).to_csv(index=False).splitlines()
    lines[6] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError, match="line 7 has 6 fields where the header has 5"):
        read_table(path, max_bytes=MB)


def test_non_numeric_value_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    frame = good_frame(10).astype({"lactate": object})
    frame.loc[3, "lactate"] = "high"
    frame.to_csv(path, index=False)
    message = refusal(read_table(path, max_bytes=MB))
    assert "column 'lactate' row 4 (line 5 of a CSV) holds 'high', which is not a finite number" in message


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    good_frame(20_000).to_csv(path, index=False)
    with pytest.raises(ValidationError, match="over the 0 MB limit"):
        read_table(path, max_bytes=100_000)


def test_unreadable_parquet_and_wrong_extension(tmp_path: Path) -> None:
    (tmp_path / "fake.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        read_table(tmp_path / "fake.parquet", max_bytes=MB)
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(ValidationError, match="only .csv and .parquet"):
        read_table(tmp_path / "data.xlsx", max_bytes=MB)


def test_missing_columns_label_and_sensitive_are_all_reported() -> None:
    frame = good_frame().drop(columns=["heart_rate", "sex"])
    frame["sepsis_48h"] = frame.index % 3
    message = refusal(frame)
    assert "columns heart_rate are missing: the model's signature needs them" in message
    assert "label 'sepsis_48h' must hold two values (0/1, true/false, or two named classes)" in message
    assert "found 0, 1, 2" in message
    assert "sensitive attribute columns sex are missing" in message


def test_label_with_one_class_or_gaps_is_refused() -> None:
    frame = good_frame()
    frame["sepsis_48h"] = 0
    assert "holds only 0" in refusal(frame)
    frame["sepsis_48h"] = np.where(frame.index == 5, np.nan, 1.0)
    assert "1 empty values" in refusal(frame)


def test_identifiers_refused_unless_declared_deidentified() -> None:
    frame = good_frame().assign(mrn=[f"{i:08d}" for i in range(50)],
                                contact=[f"patient{i}@example.org" for i in range(50)])
    message = refusal(frame)
    assert "column 'mrn' looks like a medical record number (by its name)" in message
    assert "column 'contact' looks like it holds e-mail addresses (by its content)" in message
    check(frame, deidentified=True)  # declared: accepted (and audited by the submission service)


@pytest.mark.parametrize("column,values,found", [
    ("Patient Name", ["Ann Lee"] * 3, True), ("date_of_birth", ["1950-01-01"] * 3, True),
    ("ssn_code", ["123-45-6789"] * 3, True), ("notes", ["12 Oak Street", "4 Elm Road", "7 Pine Ave"], True),
    ("tel", ["(555) 123-4567", "555-987-6543", "+1 555 222 3333"], True),
    ("who", ["Jane Doe", "John Smith", "Ann Lee"], True),
    ("race_ethnicity", ["Black", "White", "Asian"], False), ("payer", ["Medicare", "Medicaid", "Self-pay"], False),
    ("model_name", ["sepsis", "other", "x"], False),
    ("city", ["New York", "New York", "New York"], True),  # Safe Harbor (B): a place below a state, even if constant
])
def test_identifier_detection(column: str, values: list[str], found: bool) -> None:
    assert bool(find_identifiers(pd.DataFrame({column: values}))) is found


TYPED = [InputColumn("age", "long"), InputColumn("lactate", "double", required=False),
         InputColumn("source", "string", required=False), InputColumn("on_oxygen", "boolean"),
         InputColumn("ward", "string")]


def typed_frame(n: int = 40) -> pd.DataFrame:
    frame = good_frame(n).assign(age=np.arange(n) + 30, source=["ed", "ward", None, "clinic"] * (n // 4),
                                 on_oxygen=["true", "false"] * (n // 2), ward=[12, 14] * (n // 2))
    frame.loc[::5, "lactate"] = np.nan
    return frame


def test_values_arrive_in_the_signatures_types_and_stay_missing_where_allowed(tmp_path: Path) -> None:
    path = tmp_path / "typed.csv"
    typed_frame().to_csv(path, index=False)
    data = check_evaluation_data(read_table(path, max_bytes=MB), inputs=TYPED, label="sepsis_48h", sensitive=("sex",),
                                 deidentified=False, source="typed.csv")
    frame = data.frame
    assert frame["age"].dtype == "int64" and frame["on_oxygen"].dtype == bool
    assert frame["lactate"].isna().sum() == 8  # passed on as missing, never filled
    assert frame["source"].tolist()[:4] == ["ed", "ward", None, "clinic"]  # text stays text, missing stays None
    assert frame["ward"].tolist()[:2] == ["12", "14"]  # a code column read as numbers is text again, not '12.0'
    assert set(frame["sepsis_48h"]) == {0, 1}


def test_a_required_column_with_gaps_and_values_of_the_wrong_type_are_all_reported() -> None:
    frame = typed_frame().astype({"age": object, "on_oxygen": object})
    frame.loc[2, "age"] = 41.5
    frame.loc[3, "on_oxygen"] = "sometimes"
    required = [InputColumn("lactate", "double")] + TYPED[:1] + TYPED[2:]
    message = refusal(frame, inputs=required)
    assert "column 'lactate' has 8 empty values (first at row 1 (line 2 of a CSV)), but the model's signature marks " \
           "it required" in message and "--complete-case" in message
    assert "column 'age' row 3 (line 4 of a CSV) holds '41.5', which is not a whole number" in message
    assert "column 'on_oxygen' row 4 (line 5 of a CSV) holds 'sometimes', which is not true/false" in message


def test_infinite_values_are_refused() -> None:
    frame = good_frame()
    frame.loc[7, "heart_rate"] = np.inf
    assert "column 'heart_rate' row 8 (line 9 of a CSV) holds 'inf', which is not a finite number" in refusal(frame)


def test_complete_cases_leave_out_rows_with_a_missing_input_and_say_from_which_groups() -> None:
    frame = typed_frame()
    frame.loc[[0, 1, 2], "source"] = None  # row 0 and 5, 10, … lack lactate; rows 2, 6, … lack a source
    data = check_evaluation_data(frame, inputs=TYPED, label="sepsis_48h", sensitive=("sex",), deidentified=False,
                                 source="t", complete_case=True)
    gone = frame[["lactate", "source"]].isna().any(axis=1)
    assert data.complete_case is not None and data.complete_case.rows_dropped == int(gone.sum())
    assert len(data.frame) == len(frame) - int(gone.sum()) and not data.frame[["lactate", "source"]].isna().any().any()
    expected = gone.groupby(frame["sex"]).mean().to_dict()
    assert data.complete_case.dropped_by_group["sex"] == pytest.approx(expected)


@pytest.mark.parametrize("values,positive,problem", [
    (["yes", "no"], "yes", None), (["True", "False"], None, None), ([1.0, 0.0], None, None),
    (["sepsis", "none"], None, "say which one is the outcome with positive_class in the use case"),
    (["sepsis", "none"], "septic", "but the use case names the outcome 'septic'"),
    (["a", "b", "c"], None, "must hold two values"),
])
def test_labels_as_0_1_true_false_or_two_named_classes(values: list[object], positive: str | None,
                                                       problem: str | None) -> None:
    frame = good_frame(30).assign(sepsis_48h=[values[i % len(values)] for i in range(30)])
    if problem:
        assert problem in refusal(frame, positive_class=positive)
    else:
        data = check_evaluation_data(frame, inputs=INPUTS, label="sepsis_48h", sensitive=("sex",),
                                     deidentified=False, source="t", positive_class=positive)
        assert data.frame["sepsis_48h"].tolist()[:2] == [1, 0]
