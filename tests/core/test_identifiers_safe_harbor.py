"""One fixture per HIPAA Safe Harbor category that can appear in a table (45 CFR 164.514(b)(2)(i)), found by the
column's name and, where values have a recognisable shape, by content under a neutral name; and the ordinary
clinical columns that must not be flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Settings
from core.domain import identifiers as hipaa
from core.domain.identifiers import find_identifiers
from core.domain.signature import InputColumn
from core.errors import ValidationError
from core.services.evaluation_data import check_evaluation_data
from core.services.installation import open_registry, open_store
from tests.core.test_cli import cli, one_line_error

N = 40


def column(values: list[object]) -> list[object]:
    return (values * N)[:N]


# (column name, values, Safe Harbor category): each found by its name
BY_NAME = [
    ("patient_name", column(["Ann Lee", "Raj Patel"]), hipaa.NAMES),
    ("LastName", column(["Lee", "Patel"]), hipaa.NAMES),
    ("mothers_maiden_name", column(["Smith"]), hipaa.NAMES),
    ("street_address", column(["12 Oak Street"]), hipaa.GEOGRAPHY),
    ("city", column(["Springfield", "Shelbyville"]), hipaa.GEOGRAPHY),
    ("County", column(["Cook"]), hipaa.GEOGRAPHY),
    ("zip_code", column([2139, 60612]), hipaa.GEOGRAPHY),
    ("home zip", column(["02139"]), hipaa.GEOGRAPHY),
    ("latitude", column([41.88]), hipaa.GEOGRAPHY),
    ("date_of_birth", column(["1950-01-01"]), hipaa.DATES),
    ("DOB", column(["01/02/1950"]), hipaa.DATES),
    ("admission_date", column(["2025-03-04"]), hipaa.DATES),
    ("discharge_dt", column(["2025-03-09"]), hipaa.DATES),
    ("date_of_death", column(["2025-03-10", None]), hipaa.DATES),
    ("admitted_at", column(["2025-03-04 10:22"]), hipaa.DATES),
    ("phone", column(["555 0100"]), hipaa.PHONE),
    ("mobile_number", column(["07700 900123"]), hipaa.PHONE),
    ("fax", column(["555-123-4567"]), hipaa.FAX),
    ("fax_number", column(["(555) 123-4567"]), hipaa.FAX),
    ("email", column(["ann@example.org"]), hipaa.EMAIL),
    ("ssn", column(["123-45-6789"]), hipaa.SSN),
    ("mrn", column(["00012345"]), hipaa.MRN),
    ("medical_record_number", column([12345]), hipaa.MRN),
    ("member_id", column(["XYZ123456789"]), hipaa.HEALTH_PLAN),
    ("medicare_number", column(["1EG4-TE5-MK73"]), hipaa.HEALTH_PLAN),
    ("health_plan_id", column(["HP-998877"]), hipaa.HEALTH_PLAN),
    ("account_number", column(["AC-1234"]), hipaa.ACCOUNT),
    ("billing_account", column([99887766]), hipaa.ACCOUNT),
    ("drivers_license_number", column(["D123-4567-8901"]), hipaa.LICENCE),
    ("certificate_number", column(["BC-1950-00042"]), hipaa.LICENCE),
    ("license_plate", column(["7ABC123"]), hipaa.VEHICLE),
    ("VIN", column(["1HGCM82633A004352"]), hipaa.VEHICLE),
    ("device_serial_number", column(["PM-55-0042"]), hipaa.DEVICE),
    ("pacemaker_serial", column(["SN0042"]), hipaa.DEVICE),
    ("udi", column(["(01)00643169001763(17)160712"]), hipaa.DEVICE),
    ("url", column(["https://example.org/ann"]), hipaa.URL),
    ("website", column(["example.org"]), hipaa.URL),
    ("ip_address", column(["10.0.0.7"]), hipaa.IP),
    ("fingerprint", column(["a9f3e1"]), hipaa.BIOMETRIC),
    ("voice_print", column(["vp-0042.wav"]), hipaa.BIOMETRIC),
    ("retina_scan", column(["scan-42.dcm"]), hipaa.BIOMETRIC),
    ("photo", column(["ann_lee.jpg"]), hipaa.PHOTO),
    ("face_image_url", column(["https://pacs.example.org/faces/42.png"]), hipaa.PHOTO),
    ("national_id", column(["AB123456C"]), hipaa.OTHER),
    ("nhs_number", column(["943 476 5919"]), hipaa.OTHER),
]

# (values under a neutral column name, Safe Harbor category): each found by its content
BY_CONTENT = [
    (column(["02139", "60612", "94110-1234"]), hipaa.GEOGRAPHY),  # ZIP codes
    (column(["12 Oak Street", "4 Elm Road"]), hipaa.GEOGRAPHY),  # street addresses
    (column(["10.0.0.7", "192.168.1.20", "2001:db8::1"]), hipaa.IP),
    (column(["https://example.org/p/1", "http://clinic.example.com/x", "www.example.net/a"]), hipaa.URL),
    (column(["123-45-6789", "987-65-4321"]), hipaa.SSN),
    (column(["(555) 123-4567", "555-987-6543", "+1 555 222 3333"]), hipaa.PHONE),
    (column(["ann@example.org", "raj.patel@example.com"]), hipaa.EMAIL),
    (column(["1950-01-01", "1962-07-30", "1941-11-11", "1988-02-29"]), hipaa.DATES),  # dates of birth
    (column(["01/02/1950", "7/30/1962", "11/11/1941"]), hipaa.DATES),
    (column(["MRN-0012345", "MRN 0067890"]), hipaa.MRN),
    ([f"{first} {last}" for first in ("Ann", "Raj", "Maria", "John", "Wei") for last in ("Lee", "Patel", "Gomez",
                                                                                     "Smith", "Okafor", "Novak",
                                                                                     "Berg", "Silva")], hipaa.NAMES),
]

# ordinary clinical columns, none of them an identifier
NOT_IDENTIFIERS = {
    "age": column([18, 45, 67, 89]),
    "age_band": column(["18-44", "80+"]),
    "admission_source": column(["ED", "ward", "transfer"]),
    "admission_type": column(["elective", "emergency"]),
    "discharge_disposition": column(["home", "facility"]),
    "encounter_id": column(["ENC-000001", "ENC-000002"]),
    "predicted_at": column(["2026-01-03 10:00:00"]),
    "model_name": column(["sepsis-icu"]),
    "payer": column(["Medicare", "Medicaid", "Self-pay"]),
    "race_ethnicity": column(["Black", "White", "Asian"]),
    "procedure_code": column(["99213", "99214"]),  # CPT codes look like ZIP codes
    "icd10": column(["A41.9", "J18.9"]),
    "lactate": column([1.2, 3.4, np.nan]),
    "ward": column([12, 14]),
    "device_type": column(["ventilator", "none"]),
    "ip_visits_12m": column([0, 2]),  # inpatient visits, not an IP address
    "facial_droop": column([True, False]),
    "site": column(["New York", "New York"]),
    "version": column(["1.2.3", "1.2.4"]),
    "sample_date_year": column([2024, 2025]),
    "admit_month_index": column([1, 2, 3]),
    "note": column(["stable", "deteriorating"]),
    "field_1": column(["10:22:33", "23:59:00"]),  # times of day, not IPv6 addresses
    "field_2": column(["2.1", "3.4.1"]),
    "lab_date": column(["2025-03-04"]),  # a recent date: not a birth date by content
}


def categories(frame: pd.DataFrame, **options: bool) -> dict[str, str]:
    return {f.column: f.category for f in find_identifiers(frame, **options)}


@pytest.mark.parametrize("name,values,category", BY_NAME, ids=[n for n, _, _ in BY_NAME])
def test_each_safe_harbor_category_is_found_by_column_name(name: str, values: list[object], category: str) -> None:
    assert categories(pd.DataFrame({name: values})) == {name: category}
    assert "(by its name)" in find_identifiers(pd.DataFrame({name: values}))[0].message()


@pytest.mark.parametrize("values,category", BY_CONTENT, ids=[f"{c[:4]}{i}" for i, (_, c) in enumerate(BY_CONTENT)])
def test_shaped_identifiers_are_found_by_content_under_a_neutral_name(values: list[object], category: str) -> None:
    assert categories(pd.DataFrame({"field_7": values})) == {"field_7": category}
    assert "(by its content)" in find_identifiers(pd.DataFrame({"field_7": values}))[0].message()


def test_every_category_that_fits_a_table_has_a_fixture() -> None:
    every = {v for k, v in vars(hipaa).items() if isinstance(v, str) and v.startswith("(") and k.isupper()}
    assert len(every) == 18 and {c for _, _, c in BY_NAME} == every


def test_ordinary_clinical_columns_are_not_flagged() -> None:
    assert find_identifiers(pd.DataFrame(NOT_IDENTIFIERS), ages_over_89=True) == []


def test_ages_over_89_are_flagged_and_top_coded_ages_are_not() -> None:
    old = pd.DataFrame({"age": column([45, 67, 93]), "age_years": column([45.5, 90.0])})
    assert categories(old, ages_over_89=True) == {"age": hipaa.DATES, "age_years": hipaa.DATES}
    assert "an age over 89 (it holds 93" in find_identifiers(old, ages_over_89=True)[0].message()
    assert find_identifiers(pd.DataFrame({"age": column([18, 89, "90+"])}), ages_over_89=True) == []
    assert find_identifiers(old) == []  # off by default until the demo and test cohorts top-code at 90


def test_the_message_names_column_and_category() -> None:
    [finding] = find_identifiers(pd.DataFrame({"Home ZIP": column(["02139"])}))
    assert finding.message() == ("column 'Home ZIP' looks like a ZIP or postal code (by its name) — HIPAA Safe Harbor "
                                 "category (B) geographic subdivisions smaller than a state")


INPUTS = [InputColumn("heart_rate", "double")]


def evaluation_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"heart_rate": rng.normal(90, 10, N), "sepsis_48h": column([0, 1]),
                         "sex": column(["female", "male"])})


@pytest.mark.parametrize("name,values,category", [BY_NAME[6], BY_NAME[41], BY_NAME[25]])
def test_the_evaluation_check_refuses_unless_declared_deidentified(name: str, values: list[object],
                                                                   category: str) -> None:
    frame = evaluation_frame().assign(**{name: values})
    options = {"inputs": INPUTS, "label": "sepsis_48h", "sensitive": ("sex",), "source": "eval.csv"}
    with pytest.raises(ValidationError) as refused:
        check_evaluation_data(frame, deidentified=False, **options)  # type: ignore[arg-type]
    assert f"column '{name}'" in str(refused.value) and category in str(refused.value)
    accepted = check_evaluation_data(frame, deidentified=True, **options)  # type: ignore[arg-type]
    assert [f.column for f in accepted.identifiers] == [name]  # what the submission service audits


def test_cli_submit_refuses_identifiers_and_writes_nothing(demo_settings: Settings, tmp_path: Path) -> None:
    data = pd.read_parquet(open_registry(demo_settings).evaluation_dataset_path("sepsis-icu", 1))
    path = tmp_path / "with-zip.csv"
    data.assign(zip_code=(["02139", "60612"] * len(data))[: len(data)]).to_csv(path, index=False)
    store = open_store(demo_settings)
    counts = "SELECT (SELECT count(*) FROM audit_events) AS audit, (SELECT count(*) FROM evaluations) AS ev"
    before = store.query(counts)
    result = cli(demo_settings.home, "submit", "--model", "sepsis-icu", "--version", "2", "--eval-data", str(path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    line = one_line_error(result)
    assert "column 'zip_code' looks like a ZIP or postal code" in line and hipaa.GEOGRAPHY in line
    assert "--deidentified" in line
    assert store.query(counts) == before
