"""Use cases: YAML in and out, versioning, and messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.adapters.store import Store
from core.domain.access import User
from core.errors import NotFound, PermissionDenied, ValidationError
from core.services import usecases
from tests.core.test_cli import cli, one_line_error

DEMO_YAML = Path(__file__).resolve().parents[2] / "data" / "usecases" / "sepsis-icu-adult.yaml"


def test_import_versions_only_real_changes(store: Store, operator: User) -> None:
    text = DEMO_YAML.read_text()
    first, created = usecases.import_use_case(store, operator, text)
    assert (first.version, created) == (1, True)
    again, created = usecases.import_use_case(store, operator, text)
    assert (again.version, created) == (1, False)
    changed, created = usecases.import_use_case(store, operator, text.replace("threshold: 0.06", "threshold: 0.08"))
    assert (changed.version, changed.threshold, created) == (2, 0.08, True)
    assert usecases.get_use_case(store, operator, "sepsis-icu-adult", 1).threshold == 0.06
    assert usecases.use_case_for_model(store, operator, "sepsis-icu").version == 2


def test_export_round_trips(store: Store, operator: User) -> None:
    imported, _ = usecases.import_use_case(store, operator, DEMO_YAML.read_text())
    exported = usecases.export_yaml(store, operator, "sepsis-icu-adult")
    assert usecases.parse_yaml(exported) == usecases.parse_yaml(DEMO_YAML.read_text())
    assert yaml.safe_load(exported)["criteria"]["max_sensitivity_gap"] == 0.10
    first_sentence = imported.plain_criteria()[0]
    assert first_sentence.startswith("Of 100 patients who develop the outcome, the model flags at least 80")


def test_a_named_positive_class_round_trips_and_leaves_older_use_cases_unchanged(store: Store, operator: User) -> None:
    text = DEMO_YAML.read_text()
    plain, _ = usecases.import_use_case(store, operator, text)
    assert plain.positive_class is None and "positive_class" not in yaml.safe_load(
        usecases.export_yaml(store, operator, "sepsis-icu-adult"))
    named, created = usecases.import_use_case(store, operator, text + "positive_class: septic\n")
    assert (named.version, named.positive_class, created) == (2, "septic", True)
    assert usecases.parse_yaml(usecases.export_yaml(store, operator, "sepsis-icu-adult")).positive_class == "septic"
    with pytest.raises(ValidationError, match="positive_class must name the label value"):
        usecases.parse_yaml(text + "positive_class: [a, b]\n")


def test_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ValidationError, match="not valid YAML at line 3, column 6"):
        usecases.parse_yaml("name: x\nthreshold: [0.5\ntitle: y\n")


def test_every_problem_is_listed_at_once() -> None:
    document = yaml.safe_load(DEMO_YAML.read_text())
    document |= {"name": "Bad Name!", "threshold": 1.5, "title": "", "colour": "red"}
    document["criteria"] |= {"min_sensitivity": "high", "max_specifity": 0.1}
    with pytest.raises(ValidationError) as info:
        usecases.parse_yaml(yaml.safe_dump(document))
    message = str(info.value)
    for fragment in ("name 'Bad Name!'", "threshold must be a probability", "title is required",
                     "colour is not a known field", "criteria.min_sensitivity must be a number",
                     "criteria.max_specifity is not a known criterion"):
        assert fragment in message


def test_only_administrators_define_use_cases(store: Store) -> None:
    clinician = User(username="ng", full_name="Dr. Ng", role="clinician")
    with pytest.raises(PermissionDenied):
        usecases.import_use_case(store, clinician, DEMO_YAML.read_text())
    with pytest.raises(NotFound, match="usecase import"):
        usecases.use_case_for_model(store, clinician, "sepsis-icu")


def test_cli_import_export(tmp_path: Path) -> None:
    imported = cli(tmp_path, "usecase", "import", str(DEMO_YAML))
    assert imported.returncode == 0 and "Imported use case sepsis-icu-adult v1" in imported.stdout
    out = tmp_path / "out.yaml"
    assert cli(tmp_path, "usecase", "export", "sepsis-icu-adult", "--out", str(out)).returncode == 0
    assert yaml.safe_load(out.read_text())["models"] == ["sepsis-icu", "sepsis-icu-charted"]
    missing = cli(tmp_path, "usecase", "import", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "is not a file" in one_line_error(missing)
    assert cli(tmp_path, "usecase", "export").returncode == 2


def test_a_clinical_lead_manages_use_cases_and_a_clinician_only_reads(store: Store) -> None:
    lead = User("patel", "Dr. Priya Patel", "clinical_lead")
    clinician = User("ng", "Dr. Alice Ng", "clinician")
    text = DEMO_YAML.read_text()
    with pytest.raises(PermissionDenied, match="may not define use cases"):
        usecases.import_use_case(store, clinician, text)
    usecases.import_use_case(store, lead, text)
    usecases.import_use_case(store, lead, text.replace("min_auroc: 0.75", "min_auroc: 0.78"))
    history = usecases.use_case_history(store, clinician, "sepsis-icu-adult")
    assert [h["version"] for h in history] == [2, 1] and {h["imported_by"] for h in history} == {"patel"}
    assert "AUROC at least 0.78." in history[0]["criteria"] and "AUROC at least 0.75." in history[1]["criteria"]
    events = store.query("SELECT actor, target FROM audit_events WHERE action = 'use_case_imported' ORDER BY id")
    assert events == [{"actor": "patel", "target": f"sepsis-icu-adult v{v}"} for v in (1, 2)]
    with pytest.raises(NotFound):
        usecases.use_case_history(store, clinician, "no-such-use-case")
