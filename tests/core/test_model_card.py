"""Model cards on the demo: exactly the missing fields, narratives, exports and fingerprints."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from core.config import Settings
from core.domain.access import User, command_line_operator
from core.domain.model_card import ModelCard, to_chai_xml, to_html
from core.errors import PermissionDenied, ValidationError
from core.services import model_card
from core.services.installation import open_registry, open_store
from core.services.submission import StoredEvaluation
from tests.core.test_chai_xml import NS, structure_errors

OPERATOR = command_line_operator("pytest")


def card(settings: Settings, version: int) -> ModelCard:
    return model_card.build_card(open_store(settings), open_registry(settings), OPERATOR, "sepsis-icu", version)


def test_card_lists_exactly_the_missing_required_fields(demo_settings: Settings) -> None:
    v3 = card(demo_settings, 3)  # the demo leaves two narratives empty and v3 is not evaluated
    assert {f.key for f in v3.missing_required} == {"bias_mitigation", "update_schedule", "performance", "fairness"}
    v1 = card(demo_settings, 1)
    assert "update_schedule" not in {f.key for f in v1.missing_required}


def test_evaluation_fills_performance_and_fairness(demo_settings: Settings, evaluated_v2: StoredEvaluation) -> None:
    v2 = card(demo_settings, 2)
    assert {f.key for f in v2.missing_required} == {"update_schedule"}
    auroc = evaluated_v2.result["overall"]["auroc"]
    assert f"AUROC {auroc:.3f}" in v2.values["performance"] and "DeLong" in v2.values["performance"]
    assert "FAIL sensitivity gap between groups" in v2.values["fairness"]
    assert v2.values["sensitive_inputs"].startswith("Yes: age, female")


def test_narratives_are_validated_audited_and_permissioned(demo_settings: Settings) -> None:
    store = open_store(demo_settings)
    with pytest.raises(PermissionDenied):
        model_card.save_narratives(store, User("ng", "Dr. Ng", "clinician"), "sepsis-icu", 3, {"developer": "x"})
    with pytest.raises(ValidationError, match="performance is not a narrative field"):
        model_card.save_narratives(store, OPERATOR, "sepsis-icu", 3, {"performance": "AUROC 0.99"})
    changed = model_card.save_narratives(store, OPERATOR, "sepsis-icu", 3, {"update_schedule": "Quarterly"})
    assert changed == ["update_schedule"]
    assert model_card.save_narratives(store, OPERATOR, "sepsis-icu", 3, {"update_schedule": "Quarterly"}) == []
    assert card(demo_settings, 3).values["update_schedule"] == "Quarterly"
    events = store.query("SELECT detail FROM audit_events WHERE action = 'model_card_edited' AND target = ?",
                         ["sepsis-icu v3"])
    assert any("update_schedule" in e["detail"] for e in events)


def test_rendered_cards_are_fingerprinted_once(demo_settings: Settings) -> None:
    store = open_store(demo_settings)
    first = model_card.record_rendered(store, OPERATOR, card(demo_settings, 1), None)
    again = model_card.record_rendered(store, OPERATOR, card(demo_settings, 1), None)
    assert first == again and len(first) == 64
    rows = store.query("SELECT count(*) AS n FROM model_cards WHERE sha256 = ?", [first])
    assert rows[0]["n"] == 1


def test_exports_escape_parse_and_print(demo_settings: Settings) -> None:
    hostile = ModelCard("sepsis-icu", 9, {"developer": "<script>alert(1)</script>", "summary": "≥ 0.8 → ok"})
    assert "<script>" not in to_html(hostile) and "&lt;script&gt;" in to_html(hostile)
    root = ET.fromstring(to_chai_xml(card(demo_settings, 1)).split("?>", 1)[1])
    assert root.tag == f"{{{NS}}}AppliedModelCard"
    assert root.findtext(f"{{{NS}}}BasicInfo/{{{NS}}}ModelName") == "sepsis-icu"
    pdf = model_card.to_pdf(hostile)
    assert pdf.startswith(b"%PDF")
    # fpdf2 stores attachments uncompressed: the card's CHAI XML is in the file byte for byte, under its name.
    assert b"/EmbeddedFiles <</Names [(sepsis-icu-v9-chai-model-card.xml) " in pdf
    assert b"/Subtype /application#2Fxml\n/Type /EmbeddedFile" in pdf
    assert to_chai_xml(hostile).encode("utf-8") in pdf


def test_chai_xml_of_the_evaluated_demo_card_follows_the_schema(demo_settings: Settings,
                                                                evaluated_v2: StoredEvaluation) -> None:
    root = ET.fromstring(to_chai_xml(card(demo_settings, 2)).encode("utf-8"))
    assert structure_errors(root) == []
    metrics = root.find(f"{{{NS}}}KeyMetrics/{{{NS}}}UsefulnessUsabilityEfficacy/{{{NS}}}Results")
    assert metrics is not None
    values = {r.findtext(f"{{{NS}}}Label", "").split(" (")[0]: json.loads(r.findtext(f"{{{NS}}}ValueJson", ""))
              for r in metrics}
    assert values["AUROC"]["value"] == evaluated_v2.result["overall"]["auroc"]  # the number, not re-read text
    assert {"sensitivity", "specificity", "Brier score"} <= set(values)
    fairness = root.find(f"{{{NS}}}KeyMetrics/{{{NS}}}FairnessEquity/{{{NS}}}Results")
    assert fairness is not None
    gap = next(r for r in fairness if r.findtext(f"{{{NS}}}Label", "").startswith("FAIL sensitivity gap"))
    criterion = next(c for c in evaluated_v2.result["criteria"] if c["criterion"] == "sensitivity gap between groups")
    assert json.loads(gap.findtext(f"{{{NS}}}ValueJson", ""))["value"] == criterion["value"] > 0.10
    unevaluated = ET.fromstring(to_chai_xml(card(demo_settings, 3)).encode("utf-8"))
    assert structure_errors(unevaluated) == []


def test_changes_since_production_name_the_differing_fields(demo_settings: Settings) -> None:
    production, changes = model_card.changes_since_production(
        open_store(demo_settings), open_registry(demo_settings), OPERATOR, "sepsis-icu", 2)
    assert production == 1
    by_field = {c["field"]: c for c in changes}
    assert "gradient_boosting" in by_field["Model type"]["this version"]
    assert "logistic_regression" in by_field["Model type"]["production"]
    assert by_field["Update schedule and correction of problems"]["this version"] == "—"
    assert "Developer" not in by_field  # same narrative in both versions
    assert model_card.changes_since_production(open_store(demo_settings), open_registry(demo_settings), OPERATOR,
                                               "sepsis-icu", 1) == (1, [])


def test_signature_manifestations_appear_in_the_pdf_and_do_not_change_the_fingerprint(demo_settings: Settings) -> None:
    """21 CFR 11.50: the printout shows name, role, UTC time and meaning; signing must not alter what was signed."""
    import dataclasses
    import re
    import zlib
    from datetime import datetime

    from core.domain.signoff import Signature

    unsigned = card(demo_settings, 1)
    signature = Signature("s1", "sepsis-icu", 1, "sign_off", "approve", "ng", "Dr. Alice Ng", "clinician",
                          "approved for clinical use in adult ICU", "reviewed", datetime(2026, 11, 25, 9, 30, 5),
                          "e1", "a" * 64, model_card.card_sha256(unsigned), "b" * 64, "use case x v1")
    signed = dataclasses.replace(unsigned, signatures=(signature.manifestation(),))
    assert model_card.card_sha256(signed) == model_card.card_sha256(unsigned)
    pdf = model_card.to_pdf(signed)
    text = b"".join(zlib.decompress(s) for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
                    if s[:1] == b"x").decode("latin-1").replace("\\(", "(").replace("\\)", ")")
    for part in ("Dr. Alice Ng (Clinician)", "Approved", "approved for clinical use in adult ICU",
                 "2026-11-25 09:30:05 UTC"):
        assert part in text, part
