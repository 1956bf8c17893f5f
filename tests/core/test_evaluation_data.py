"""Every refusal of an evaluation set, each produced by a real bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.domain.identifiers import find_identifiers
from core.errors import ValidationError
from core.services.evaluation_data import check_evaluation_data, read_table

INPUTS = [("lactate", "double"), ("heart_rate", "double")]
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
    assert "column 'lactate' row 4 (line 5 of a CSV) holds 'high', which is not a number" in message


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
    assert "label 'sepsis_48h' must hold only 0 and 1" in message and "found 0, 1, 2" in message
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
    ("model_name", ["sepsis", "other", "x"], False), ("city", ["New York", "New York", "New York"], False),
])
def test_identifier_detection(column: str, values: list[str], found: bool) -> None:
    assert bool(find_identifiers(pd.DataFrame({column: values}))) is found
