"""The model card: a Model Facts label first, then the ONC HTI-1 / CHAI detail.

Each field says where its value comes from — MLflow, the use case, ModelBoard's
evaluation, or the owner's narrative — and whether a card may be signed without
it. Rendering is pure: Markdown, HTML (every value escaped) and CHAI XML.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["narrative", "mlflow", "use_case", "evaluation"]


@dataclass(frozen=True)
class CardField:
    key: str
    label: str
    section: str
    source: Source
    required: bool
    hti1: tuple[int, ...] = ()
    chai: str = ""


FIELDS: tuple[CardField, ...] = (
    CardField("summary", "Summary", "Summary", "use_case", True, (3,), "ModelSummary/Summary"),
    CardField("developer", "Developer", "Summary", "narrative", True, (1,), "BasicInfo/ModelDeveloper"),
    CardField("developer_contact", "Developer contact", "Summary", "narrative", True, (1,), "BasicInfo/DeveloperContact"),
    CardField("funding_source", "Funding source", "Summary", "narrative", True, (2,),
              "TrustIngredients/TransparencyInformation/FundingSource"),
    CardField("outcome", "Outcome and output", "Mechanism", "use_case", True, (3, 4),
              "TrustIngredients/AISystemFacts/OutcomesAndOutputs"),
    CardField("model_type", "Model type", "Mechanism", "mlflow", True, (), "TrustIngredients/AISystemFacts/ModelType"),
    CardField("inputs", "Input data", "Mechanism", "mlflow", True, (12,),
              "TrustIngredients/AISystemFacts/OutputAndInputDataTypes"),
    CardField("scoring", "How the risk scores were produced (established by ModelBoard)", "Mechanism", "evaluation",
              False, (3,), "TrustIngredients/AISystemFacts/OutcomesAndOutputs"),
    CardField("sensitive_inputs", "Race, ethnicity, sex or other demographics used as inputs", "Mechanism",
              "mlflow", True, (12,), "TrustIngredients/AISystemFacts/OutputAndInputDataTypes"),
    CardField("training_data", "Training data and period", "Mechanism", "mlflow", True, (11, 13),
              "TrustIngredients/AISystemFacts/DevelopmentDataCharacterization"),
    CardField("training_inclusion_exclusion", "Training inclusion and exclusion criteria", "Mechanism", "narrative",
              True, (11,), "TrustIngredients/AISystemFacts/DevelopmentDataCharacterization"),
    CardField("training_representativeness", "Demographic representativeness of the training data", "Mechanism",
              "narrative", True, (13,), "TrustIngredients/AISystemFacts/DevelopmentDataCharacterization"),
    CardField("relevance_to_setting", "Relevance of the training data to this hospital", "Mechanism", "narrative",
              False, (14,), "TrustIngredients/AISystemFacts/DevelopmentDataCharacterization"),
    CardField("performance", "Performance in the validation cohort (computed by ModelBoard)", "Validation and performance",
              "evaluation", True, (21,), "KeyMetrics/UsefulnessUsabilityEfficacy"),
    CardField("fairness", "Fairness in the validation cohort (computed by ModelBoard)", "Validation and performance",
              "evaluation", True, (22,), "KeyMetrics/FairnessEquity"),
    CardField("missing_inputs", "Missing inputs in the validation cohort (computed by ModelBoard)",
              "Validation and performance", "evaluation", False, (13, 21, 22),
              "TrustIngredients/AISystemFacts/DevelopmentDataCharacterization"),
    CardField("external_validation", "External validation (setting, tester, process)", "Validation and performance",
              "narrative", False, (17, 18, 19, 20, 23, 24),
              "KeyMetrics/UsefulnessUsabilityEfficacy/ValidationProcessAndJustification"),
    CardField("intended_use", "Intended use and workflow", "Uses and directions", "use_case", True, (5,),
              "UsesAndDirections/IntendedUseAndWorkflow"),
    CardField("target_population", "Target patient population", "Uses and directions", "use_case", True, (6,),
              "UsesAndDirections/TargetedPatientPopulation"),
    CardField("intended_users", "Intended users", "Uses and directions", "narrative", True, (7,),
              "UsesAndDirections/PrimaryIntendedUsers"),
    CardField("decision_role", "Decision-making role (informs, augments or replaces)", "Uses and directions",
              "narrative", True, (8,), "UsesAndDirections/HowToUse"),
    CardField("threshold", "Operating threshold", "Uses and directions", "use_case", True, (), "UsesAndDirections/HowToUse"),
    CardField("out_of_scope", "Cautioned out-of-scope uses", "Warnings", "narrative", True, (9,),
              "UsesAndDirections/CautionedOutOfScopeSettings"),
    CardField("known_risks_limitations", "Known risks and limitations", "Warnings", "narrative", True, (10,),
              "Warnings/KnownRisksAndLimitations"),
    CardField("ethical_considerations", "Known biases and ethical considerations", "Warnings", "narrative", True, (),
              "Warnings/KnownBiasesOrEthicalConsiderations"),
    CardField("clinical_risk_level", "Clinical risk level", "Warnings", "narrative", True, (),
              "Warnings/ClinicalRiskLevel"),
    CardField("fairness_approach", "Approach to ensuring fair output", "Fairness process", "narrative", True, (15,),
              "TrustIngredients/AISystemFacts/BiasMitigationApproaches"),
    CardField("bias_mitigation", "Approaches to manage or reduce bias", "Fairness process", "narrative", True, (16,),
              "TrustIngredients/AISystemFacts/BiasMitigationApproaches"),
    CardField("ongoing_monitoring", "How and how often validity and fairness are monitored", "Maintenance", "narrative",
              True, (26, 28), "TrustIngredients/AISystemFacts/OngoingMaintenance"),
    CardField("update_schedule", "Update schedule and correction of problems", "Maintenance", "narrative", True,
              (30, 31), "TrustIngredients/AISystemFacts/OngoingMaintenance"),
    CardField("outcome_references", "References to evaluations of outcomes", "Other information", "narrative", False,
              (25,), "Resources/EvaluationReferences"),
    CardField("lineage", "Lineage (run, commit, datasets)", "Other information", "mlflow", True, (),
              "ReleaseInfo/ReleaseVersion"),
)
NARRATIVE_KEYS = tuple(f.key for f in FIELDS if f.source == "narrative")
SECTIONS = ("Summary", "Mechanism", "Validation and performance", "Uses and directions", "Warnings",
            "Fairness process", "Maintenance", "Other information")


@dataclass(frozen=True)
class MetricResult:
    """One figure ModelBoard's evaluation computed, as CHAI's key metrics carry it."""

    name: str  # "AUROC", "sensitivity", "calibration slope", or a criterion's PASS/FAIL line
    value: float | None
    lo: float | None = None
    hi: float | None = None
    method: str = ""

    @property
    def label(self) -> str:
        if self.lo is None or self.hi is None:
            return self.name
        return f"{self.name} (interval {self.lo:.3f}–{self.hi:.3f}, {self.method})"


@dataclass(frozen=True)
class CriterionFigure:
    """A use-case criterion as the evaluation judged it: its name, the PASS/FAIL result line, and the verdict."""

    criterion: str
    result: MetricResult
    passed: bool


@dataclass(frozen=True)
class EvaluationFigures:
    """The numbers behind the card's performance and fairness text, passed as numbers (never re-read from text)."""

    cohort: str  # "6000 patients (the validation cohort logged with the run)"
    performance: tuple[MetricResult, ...]
    calibration: tuple[MetricResult, ...]
    criteria: tuple[CriterionFigure, ...]


@dataclass(frozen=True)
class ModelCard:
    model: str
    version: int
    values: dict[str, str]
    signatures: tuple[str, ...] = field(default_factory=tuple)
    figures: EvaluationFigures | None = None  # None until ModelBoard has evaluated the version

    @property
    def missing_required(self) -> list[CardField]:
        return [f for f in FIELDS if f.required and not self.values.get(f.key, "").strip()]

    def section(self, name: str) -> list[tuple[CardField, str]]:
        return [(f, self.values.get(f.key, "")) for f in FIELDS if f.section == name]


def to_markdown(card: ModelCard) -> str:
    lines = [f"# Model card: {card.model} v{card.version}", ""]
    if card.missing_required:
        lines += ["**Required fields still empty:** " + ", ".join(f.label for f in card.missing_required), ""]
    for name in SECTIONS:
        lines += [f"## {name}", ""]
        for f, value in card.section(name):
            refs = f" (HTI-1 {', '.join(map(str, f.hti1))})" if f.hti1 else ""
            lines += [f"**{f.label}**{refs}: {value or '_not provided_'}", ""]
    if card.signatures:
        lines += ["## Signatures", ""] + [f"- {s}" for s in card.signatures] + [""]
    return "\n".join(lines)


def to_html(card: ModelCard) -> str:
    """A standalone HTML page; every value is escaped (owners type free text)."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Model card {e(card.model)} v{card.version}"
             "</title></head><body>", f"<h1>Model card: {e(card.model)} v{card.version}</h1>"]
    if card.missing_required:
        parts.append("<p><strong>Required fields still empty:</strong> "
                     + e(", ".join(f.label for f in card.missing_required)) + "</p>")
    for name in SECTIONS:
        parts.append(f"<h2>{e(name)}</h2><dl>")
        for f, value in card.section(name):
            parts.append(f"<dt>{e(f.label)}</dt><dd>{e(value) if value else '<em>not provided</em>'}</dd>")
        parts.append("</dl>")
    if card.signatures:
        parts.append("<h2>Signatures</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in card.signatures) + "</ul>")
    return "".join(parts) + "</body></html>"


# CHAI applied model card, mc-schema v0.2 (github.com/coalition-for-health-ai/mc-schema): the schema's
# sections and their children in schema order. "?" marks an optional element, written only when it has a
# value; the optional elements ModelBoard never fills (EHR compatibility, regulatory approval, foundation
# models, security, transparency, third-party information, clinical trial, reimbursement, the XML
# signature) are left out. KeyMetrics is built by _add_key_metrics.
CHAI_NAMESPACE = "https://mc.chai.org/v0.2/schema.xsd"
NOT_PROVIDED = "Not provided"
_CHAI_LAYOUT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("BasicInfo", ("ModelName", "ModelDeveloper", "DeveloperContact")),
    ("ReleaseInfo", ("ReleaseStage", "ReleaseDate", "ReleaseVersion", "GlobalAvailability")),
    ("ModelSummary", ("Summary", "Keywords")),
    ("UsesAndDirections", ("IntendedUseAndWorkflow", "PrimaryIntendedUsers", "HowToUse", "TargetedPatientPopulation",
                           "CautionedOutOfScopeSettings")),
    ("Warnings", ("KnownRisksAndLimitations", "KnownBiasesOrEthicalConsiderations", "ClinicalRiskLevel")),
    ("TrustIngredients/AISystemFacts", ("OutcomesAndOutputs", "ModelType", "InputDataSource", "OutputAndInputDataTypes",
                                        "DevelopmentDataCharacterization", "BiasMitigationApproaches",
                                        "OngoingMaintenance")),
    ("TrustIngredients/TransparencyInformation", ("FundingSource", "StakeholdersConsulted")),
    ("KeyMetrics", ()),
    ("Resources", ("EvaluationReferences?", "PeerReviewedPublications", "PatientConsentOrDisclosure")),
    ("Bibliography", ()),
)
# Characters XML 1.0 cannot carry at all (owners paste text from anywhere); they are dropped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CALIBRATION_HINTS = {"calibration slope": "1 is ideal; below 1, predicted risks are too extreme",
                      "expected calibration error": "0 is ideal; the average gap between predicted and observed risk"}
_TEST_TYPE = "Retrospective validation, recomputed by ModelBoard from the registered model's scores"
_METRIC_TEXT = {  # key metric: (goal, validation process)
    "UsefulnessUsabilityEfficacy": (
        "Discrimination and classification at the use case's operating threshold",
        "ModelBoard scored the evaluation cohort with the registered model version and computed each metric with "
        "the interval method named in its result."),
    "FairnessEquity": (
        "Meet every acceptance criterion of the use case, overall and in patient subgroups",
        "ModelBoard computed the metrics in every patient subgroup and checked each acceptance criterion of the "
        "use case."),
    "SafetyReliability": (
        "Predicted risks that match observed risk (calibration)",
        "ModelBoard compared predicted with observed risk in the evaluation cohort."),
}
_EXTERNAL_VALIDATION = "KeyMetrics/UsefulnessUsabilityEfficacy/ValidationProcessAndJustification"


@dataclass(frozen=True)
class _KeyMetric:
    goal: str = ""
    results: tuple[MetricResult, ...] = ()
    interpretation: str = ""
    test_type: str = ""
    testing_data: str = ""
    process: str = ""


def to_chai_xml(card: ModelCard) -> str:
    """The card as a CHAI applied model card, valid against mc-schema v0.2.

    Every element the schema requires is written even when the card has no value for it (empty text is
    valid there; a key metric without results gets one result labelled "Not provided"), so a card still
    being filled exports too. Fields that share a CHAI element become labelled Markdown paragraphs,
    which the schema allows in every text element.
    """
    root = ET.Element(_mc("AppliedModelCard"))
    for path, children in _CHAI_LAYOUT:
        parent = root
        for name in path.split("/"):
            found = parent.find(_mc(name))
            parent = ET.SubElement(parent, _mc(name)) if found is None else found
        for child in children:
            text = _chai_text(card, f"{path}/{child.rstrip('?')}")
            if text or not child.endswith("?"):
                _add_text(parent, child.rstrip("?"), text)
        if path == "KeyMetrics":
            _add_key_metrics(parent, card)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True, default_namespace=CHAI_NAMESPACE)


def _mc(name: str) -> str:
    return f"{{{CHAI_NAMESPACE}}}{name}"


def _add_text(parent: ET.Element, name: str, text: str) -> None:
    ET.SubElement(parent, _mc(name)).text = _NOT_XML.sub("", text) or None


def _paragraphs(parts: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"**{label}:** {text}" if label else text for label, text in parts if text)


def _chai_text(card: ModelCard, path: str) -> str:
    """The text of one CHAI element: the card's fields whose `chai` names it."""
    if path == "BasicInfo/ModelName":
        return card.model
    values = [(f.label, card.values.get(f.key, "").strip()) for f in FIELDS if f.chai == path]
    if path == "ReleaseInfo/ReleaseVersion":
        lineage = " ".join(text for _, text in values if text)
        return f"{card.version} ({lineage})" if lineage else str(card.version)
    if len(values) == 1:
        return values[0][1]
    return _paragraphs(values)


def _add_key_metrics(parent: ET.Element, card: ModelCard) -> None:
    for name, metric in _key_metrics(card).items():
        element = ET.SubElement(parent, _mc(name))
        _add_text(element, "MetricGoal", metric.goal)
        results = ET.SubElement(element, _mc("Results"))
        for figure in metric.results or (MetricResult(NOT_PROVIDED, None),):
            result = ET.SubElement(results, _mc("MetricResult"))
            _add_text(result, "Label", figure.label)
            # The value shape of CHAI's own examples; "null" where the card states no number.
            _add_text(result, "ValueJson", "null" if figure.value is None else
                      json.dumps({"kind": "single", "value": figure.value, "unit": ""}, separators=(",", ":")))
        for child, text in (("Interpretation", metric.interpretation), ("TestType", metric.test_type),
                            ("TestingDataDescription", metric.testing_data),
                            ("ValidationProcessAndJustification", metric.process)):
            _add_text(element, child, text)


def _key_metrics(card: ModelCard) -> dict[str, _KeyMetric]:
    """CHAI's three key metrics from ModelBoard's evaluation: discrimination, fairness criteria, calibration."""
    figures = card.figures
    external = _paragraphs([(f.label, card.values.get(f.key, "").strip())
                            for f in FIELDS if f.chai == _EXTERNAL_VALIDATION])
    if figures is None:
        return {name: _KeyMetric(process=external if name == "UsefulnessUsabilityEfficacy" else "")
                for name in _METRIC_TEXT}
    failed = [c.criterion for c in figures.criteria if not c.passed]
    met = len(figures.criteria) - len(failed)
    criteria_summary = (f"{met} of {len(figures.criteria)} criteria met"
                        + (f"; not met: {', '.join(failed)}." if failed else ".")) if figures.criteria else ""
    calibration = "; ".join(f"{m.name} {m.value:.3g} ({_CALIBRATION_HINTS[m.name]})" for m in figures.calibration
                            if m.value is not None and m.name in _CALIBRATION_HINTS)
    return {
        "UsefulnessUsabilityEfficacy": _key_metric("UsefulnessUsabilityEfficacy", figures.performance,
                                                   card.values.get("performance", "").strip(), figures.cohort,
                                                   external),
        "FairnessEquity": _key_metric("FairnessEquity", tuple(c.result for c in figures.criteria), criteria_summary,
                                      figures.cohort),
        "SafetyReliability": _key_metric("SafetyReliability", figures.calibration, calibration, figures.cohort),
    }


def _key_metric(name: str, results: tuple[MetricResult, ...], interpretation: str, testing: str,
                external: str = "") -> _KeyMetric:
    """A key metric ModelBoard computed; when it computed none, only the owner's external validation."""
    if not interpretation:
        return _KeyMetric(process=external)
    goal, process = _METRIC_TEXT[name]
    return _KeyMetric(goal, results, interpretation, _TEST_TYPE, testing, _paragraphs([("", process), ("", external)]))
