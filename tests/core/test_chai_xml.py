"""The CHAI applied model card export against the shape of CHAI's mc-schema v0.2.

CHAI's XSD cannot be shipped here, so STRUCTURE below is our own transcription of what it requires:
for each element with element content, its children in schema order ("?" optional, "*" any number,
"+" at least one). Every element not listed holds text (xs:string) and has no children; no element
has attributes. The export was also validated against the XSD itself with lxml and xmlschema outside
the repository (see the commit message).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from core.domain.model_card import (
    FIELDS,
    NOT_PROVIDED,
    CriterionFigure,
    EvaluationFigures,
    MetricResult,
    ModelCard,
    to_chai_xml,
)

NS = "https://mc.chai.org/v0.2/schema.xsd"
DSIG = "{http://www.w3.org/2000/09/xmldsig#}"
KEY_METRIC = ("MetricGoal", "Results", "Interpretation", "TestType", "TestingDataDescription",
              "ValidationProcessAndJustification")
STRUCTURE: dict[str, tuple[str, ...]] = {
    "AppliedModelCard": ("BasicInfo", "ReleaseInfo", "ModelSummary", "UsesAndDirections", "Warnings",
                         "TrustIngredients", "KeyMetrics", "Resources", "Bibliography", f"{DSIG}Signature?"),
    "BasicInfo": ("ModelName", "ModelDeveloper", "DeveloperContact"),
    # "EHRCompatability" is the schema's own spelling in the revision validated against.
    "ReleaseInfo": ("ReleaseStage", "ReleaseDate", "ReleaseVersion", "GlobalAvailability", "EHRCompatability?",
                    "RegulatoryApproval?"),
    "EHRCompatability": ("EHR*",),
    "ModelSummary": ("Summary", "Keywords"),
    "Keywords": ("Keyword*",),
    "UsesAndDirections": ("IntendedUseAndWorkflow", "PrimaryIntendedUsers", "HowToUse", "TargetedPatientPopulation",
                          "CautionedOutOfScopeSettings"),
    "Warnings": ("KnownRisksAndLimitations", "KnownBiasesOrEthicalConsiderations", "ClinicalRiskLevel"),
    "TrustIngredients": ("AISystemFacts", "TransparencyInformation"),
    "AISystemFacts": ("OutcomesAndOutputs", "ModelType", "FoundationModels?", "InputDataSource",
                      "OutputAndInputDataTypes", "DevelopmentDataCharacterization", "BiasMitigationApproaches",
                      "OngoingMaintenance", "Security?", "Transparency?"),
    "TransparencyInformation": ("FundingSource", "ThirdPartyInformation?", "StakeholdersConsulted"),
    "KeyMetrics": ("UsefulnessUsabilityEfficacy", "FairnessEquity", "SafetyReliability"),
    "UsefulnessUsabilityEfficacy": KEY_METRIC,
    "FairnessEquity": KEY_METRIC,
    "SafetyReliability": KEY_METRIC,
    "Results": ("MetricResult+",),
    "MetricResult": ("Label", "ValueJson"),
    "Resources": ("EvaluationReferences?", "ClinicalTrial?", "PeerReviewedPublications", "ReimbursementStatus?",
                  "PatientConsentOrDisclosure"),
}

PERFORMANCE = ("Evaluated by ModelBoard on 6000 patients (the evaluation dataset logged with the run) at threshold "
               "0.06: AUROC 0.840 (0.824–0.857, DeLong); sensitivity 0.817 (0.786–0.844, Wilson score); "
               "specificity 0.675 (0.663–0.688, Wilson score); PPV undefined; Brier score 0.072 (0.067–0.077, "
               "percentile bootstrap, 200 resamples, seed 1); calibration slope 0.92, expected calibration error "
               "0.013.")
FAIRNESS = ("Use-case criteria — PASS auroc overall: 0.840 (required ≥ 0.75); FAIL sensitivity in every group of "
            "≥ 100 patients: lowest 0.400 (age_band × race_ethnicity: 18-44 / Hispanic); 44 groups below "
            "(required ≥ 0.80); FAIL sensitivity gap between groups: 0.544 (age_band) (required ≤ 0.10)")


def local(tag: str) -> str:
    """The name STRUCTURE uses: bare inside CHAI's namespace, qualified outside it (or '{}' for none)."""
    if tag.startswith(f"{{{NS}}}"):
        return tag[len(NS) + 2:]
    return tag if tag.startswith("{") else "{}" + tag


def structure_errors(element: ET.Element, parent: str = "") -> list[str]:
    """Every way `element` and its descendants depart from STRUCTURE, each with its path."""
    name = local(element.tag)
    path = f"{parent}/{name}"
    errors = [f"{path}: attributes {dict(element.attrib)} are not in the schema"] if element.attrib else []
    children = [local(child.tag) for child in element]
    expected = STRUCTURE.get(name)
    if expected is None:
        return errors + ([f"{path}: a text element, but has children {children}"] if children else [])
    position = 0
    for item in expected:
        child, occurs = item.rstrip("?*+"), item[-1] if item[-1] in "?*+" else ""
        count = 0
        while position < len(children) and children[position] == child and (occurs in "*+" or count == 0):
            position, count = position + 1, count + 1
        if count == 0 and occurs in ("", "+"):
            found = children[position] if position < len(children) else "the end"
            errors.append(f"{path}: {child} missing (found {found} at position {position + 1})")
    if position < len(children):
        errors.append(f"{path}: {children[position]} unexpected at position {position + 1}")
    for child_element in element:
        errors += structure_errors(child_element, path)
    return errors


def parse(card: ModelCard) -> ET.Element:
    return ET.fromstring(to_chai_xml(card).encode("utf-8"))


def find(root: ET.Element, path: str) -> ET.Element:
    element = root.find("/".join(f"{{{NS}}}{name}" for name in path.split("/")))
    assert element is not None, f"{path} not in the export"
    return element


FIGURES = EvaluationFigures(
    "6000 patients (the evaluation dataset logged with the run)",
    (MetricResult("AUROC", 0.84, 0.824, 0.857, "DeLong"),
     MetricResult("sensitivity", 0.817, 0.786, 0.844, "Wilson score"),
     MetricResult("specificity", 0.675, 0.663, 0.688, "Wilson score"),
     MetricResult("Brier score", 0.072, 0.067, 0.077, "percentile bootstrap, 200 resamples, seed 1")),
    (MetricResult("calibration slope", 0.92, 0.86, 0.98, "Wald"), MetricResult("expected calibration error", 0.013)),
    tuple(CriterionFigure(name, MetricResult(f"{'PASS' if ok else 'FAIL'} {name}: …", value), ok)
          for name, value, ok in (("auroc overall", 0.84, True),
                                  ("sensitivity in every group of ≥ 100 patients", 0.4, False),
                                  ("sensitivity gap between groups", 0.544, False))))


def full_card() -> ModelCard:
    values = {f.key: f"value of {f.key}" for f in FIELDS} | {"performance": PERFORMANCE, "fairness": FAIRNESS}
    return ModelCard("sepsis-icu", 2, values, figures=FIGURES)


def results(root: ET.Element, metric: str) -> list[tuple[str | None, Any]]:
    return [(r.findtext(f"{{{NS}}}Label"), json.loads(r.findtext(f"{{{NS}}}ValueJson") or ""))
            for r in find(root, f"KeyMetrics/{metric}/Results")]


@pytest.mark.parametrize("card", [full_card(), ModelCard("empty", 1, {})], ids=["full", "empty"])
def test_export_follows_the_v02_structure(card: ModelCard) -> None:
    root = parse(card)
    assert root.tag == f"{{{NS}}}AppliedModelCard"
    assert [local(child.tag) for child in root] == list(STRUCTURE["AppliedModelCard"][:-1])
    assert structure_errors(root) == []


def test_the_structure_check_fails_on_wrong_order_missing_and_extra_elements() -> None:
    root = parse(full_card())
    warnings = find(root, "Warnings")
    root.remove(warnings)
    root.insert(3, warnings)
    assert structure_errors(root)[0] == "/AppliedModelCard: UsesAndDirections missing (found Warnings at position 4)"
    root = parse(full_card())
    find(root, "BasicInfo").remove(find(root, "BasicInfo/ModelDeveloper"))
    assert structure_errors(root) == [
        "/AppliedModelCard/BasicInfo: ModelDeveloper missing (found DeveloperContact at position 2)"]
    root = parse(full_card())
    ET.SubElement(find(root, "ModelSummary/Summary"), f"{{{NS}}}Keyword")
    find(root, "ReleaseInfo").set("schemaVersion", "0.2")
    assert len(structure_errors(root)) == 2
    root = parse(full_card())
    find(root, "KeyMetrics/FairnessEquity/Results").clear()
    assert structure_errors(root) == ["/AppliedModelCard/KeyMetrics/FairnessEquity/Results: MetricResult missing "
                                      "(found the end at position 1)"]


def test_every_field_lands_in_the_chai_element_it_names() -> None:
    root = parse(full_card())
    for f in FIELDS:
        names = f.chai.split("/")
        for parent, child in zip(["AppliedModelCard", *names], names, strict=False):
            assert child in {item.rstrip("?*+") for item in STRUCTURE[parent]}, f"{f.key}: {f.chai}"
        text = "".join(find(root, f.chai).itertext())
        expected = {"performance": "AUROC 0.840", "fairness": "criteria met"}.get(f.key, f"value of {f.key}")
        assert expected in text, f"{f.key} not in {f.chai}"


def test_fields_sharing_an_element_are_labelled_paragraphs() -> None:
    root = parse(full_card())
    how_to_use = find(root, "UsesAndDirections/HowToUse").text
    assert how_to_use == ("**Decision-making role (informs, augments or replaces):** value of decision_role\n\n"
                          "**Operating threshold:** value of threshold")
    assert find(root, "ReleaseInfo/ReleaseVersion").text == "2 (value of lineage)"
    assert find(root, "BasicInfo/ModelName").text == "sepsis-icu"


def test_key_metrics_carry_the_evaluation() -> None:
    root = parse(full_card())
    assert results(root, "UsefulnessUsabilityEfficacy") == [
        ("AUROC (interval 0.824–0.857, DeLong)", {"kind": "single", "value": 0.84, "unit": ""}),
        ("sensitivity (interval 0.786–0.844, Wilson score)", {"kind": "single", "value": 0.817, "unit": ""}),
        ("specificity (interval 0.663–0.688, Wilson score)", {"kind": "single", "value": 0.675, "unit": ""}),
        ("Brier score (interval 0.067–0.077, percentile bootstrap, 200 resamples, seed 1)",
         {"kind": "single", "value": 0.072, "unit": ""})]
    fairness = results(root, "FairnessEquity")
    assert [str(label).split(" ")[0] for label, _ in fairness] == ["PASS", "FAIL", "FAIL"]
    assert [value["value"] for _, value in fairness] == [0.84, 0.4, 0.544]
    assert find(root, "KeyMetrics/FairnessEquity/Interpretation").text == (
        "1 of 3 criteria met; not met: sensitivity in every group of ≥ 100 patients, sensitivity gap between groups.")
    assert [label for label, _ in results(root, "SafetyReliability")] == [
        "calibration slope (interval 0.860–0.980, Wald)", "expected calibration error"]
    assert find(root, "KeyMetrics/SafetyReliability/Interpretation").text == (
        "calibration slope 0.92 (1 is ideal; below 1, predicted risks are too extreme); expected calibration error "
        "0.013 (0 is ideal; the average gap between predicted and observed risk)")
    assert find(root, "KeyMetrics/SafetyReliability/TestingDataDescription").text == (
        "6000 patients (the evaluation dataset logged with the run)")
    process = find(root, "KeyMetrics/UsefulnessUsabilityEfficacy/ValidationProcessAndJustification").text or ""
    assert process.endswith("**External validation (setting, tester, process):** value of external_validation")


def test_empty_card_keeps_every_required_element_and_its_missing_fields() -> None:
    empty = ModelCard("empty", 1, {})
    root = parse(empty)
    assert {f.key for f in empty.missing_required} == {f.key for f in FIELDS if f.required}
    assert find(root, "Warnings/ClinicalRiskLevel").text is None
    assert find(root, "Resources").find(f"{{{NS}}}EvaluationReferences") is None  # optional: left out when empty
    for metric in STRUCTURE["KeyMetrics"]:
        assert results(root, metric) == [(NOT_PROVIDED, None)]
        assert find(root, f"KeyMetrics/{metric}/MetricGoal").text is None


def test_text_round_trips_and_unwritable_characters_are_dropped() -> None:
    hostile = "<script>alert('x')</script> & \"quoted\" ]]> ≥ 0.8 → ok\n\nsecond paragraph"
    card = ModelCard("m<&>\"'", 1, {"developer": hostile, "known_risks_limitations": "bell\x07 form\x0c feed\x00"})
    xml = to_chai_xml(card)
    assert "<script>" not in xml
    root = ET.fromstring(xml.encode("utf-8"))
    assert find(root, "BasicInfo/ModelDeveloper").text == hostile
    assert find(root, "BasicInfo/ModelName").text == "m<&>\"'"
    assert find(root, "Warnings/KnownRisksAndLimitations").text == "bell form feed"
