"""The model card: a Model Facts label first, then the ONC HTI-1 / CHAI detail.

Each field says where its value comes from — MLflow, the use case, ModelBoard's
evaluation, or the owner's narrative — and whether a card may be signed without
it. Rendering is pure: Markdown, HTML (every value escaped) and CHAI XML.
"""

from __future__ import annotations

import html
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
    CardField("developer", "Developer", "Summary", "narrative", True, (1,), "BasicInfo/Developer"),
    CardField("developer_contact", "Developer contact", "Summary", "narrative", True, (1,), "BasicInfo/DeveloperContact"),
    CardField("funding_source", "Funding source", "Summary", "narrative", True, (2,), "TransparencyInfo/FundingSource"),
    CardField("outcome", "Outcome and output", "Mechanism", "use_case", True, (3, 4), "TrustIngredients/OutcomesAndOutputs"),
    CardField("model_type", "Model type", "Mechanism", "mlflow", True, (), "TrustIngredients/ModelType"),
    CardField("inputs", "Input data", "Mechanism", "mlflow", True, (12,), "TrustIngredients/InputDataSource"),
    CardField("sensitive_inputs", "Race, ethnicity, sex or other demographics used as inputs", "Mechanism",
              "mlflow", True, (12,), "TrustIngredients/InputDataSource"),
    CardField("training_data", "Training data and period", "Mechanism", "mlflow", True, (11, 13),
              "TrustIngredients/DevelopmentDataCharacterization"),
    CardField("training_inclusion_exclusion", "Training inclusion and exclusion criteria", "Mechanism", "narrative",
              True, (11,), "TrustIngredients/DevelopmentDataCharacterization"),
    CardField("training_representativeness", "Demographic representativeness of the training data", "Mechanism",
              "narrative", True, (13,), "TrustIngredients/DevelopmentDataCharacterization"),
    CardField("relevance_to_setting", "Relevance of the training data to this hospital", "Mechanism", "narrative",
              False, (14,), "TrustIngredients/DevelopmentDataCharacterization"),
    CardField("performance", "Performance in the validation cohort (computed by ModelBoard)", "Validation and performance",
              "evaluation", True, (21,), "KeyMetrics/UsefulnessUsabilityEfficacy"),
    CardField("fairness", "Fairness in the validation cohort (computed by ModelBoard)", "Validation and performance",
              "evaluation", True, (22,), "KeyMetrics/FairnessEquity"),
    CardField("external_validation", "External validation (setting, tester, process)", "Validation and performance",
              "narrative", False, (17, 18, 19, 20, 23, 24), "KeyMetrics/ValidationProcess"),
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
              "TrustIngredients/BiasMitigationApproaches"),
    CardField("bias_mitigation", "Approaches to manage or reduce bias", "Fairness process", "narrative", True, (16,),
              "TrustIngredients/BiasMitigationApproaches"),
    CardField("ongoing_monitoring", "How and how often validity and fairness are monitored", "Maintenance", "narrative",
              True, (26, 28), "TrustIngredients/OngoingMaintenance"),
    CardField("update_schedule", "Update schedule and correction of problems", "Maintenance", "narrative", True,
              (30, 31), "TrustIngredients/OngoingMaintenance"),
    CardField("outcome_references", "References to evaluations of outcomes", "Other information", "narrative", False,
              (25,), "Resources/EvaluationReferences"),
    CardField("lineage", "Lineage (run, commit, datasets)", "Other information", "mlflow", True, (), "ReleaseInfo/Version"),
)
NARRATIVE_KEYS = tuple(f.key for f in FIELDS if f.source == "narrative")
SECTIONS = ("Summary", "Mechanism", "Validation and performance", "Uses and directions", "Warnings",
            "Fairness process", "Maintenance", "Other information")


@dataclass(frozen=True)
class ModelCard:
    model: str
    version: int
    values: dict[str, str]
    signatures: tuple[str, ...] = field(default_factory=tuple)

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


def to_chai_xml(card: ModelCard) -> str:
    """The card in the shape of CHAI's applied model card (mc-schema v0.2 element names)."""
    root = ET.Element("AppliedModelCard", {"schemaVersion": "0.2"})
    basic = ET.SubElement(root, "BasicInfo")
    ET.SubElement(basic, "ModelName").text = card.model
    release = ET.SubElement(root, "ReleaseInfo")
    ET.SubElement(release, "Version").text = str(card.version)
    for f in FIELDS:
        parent_name, _, leaf = f.chai.partition("/")
        parent = root.find(parent_name)
        if parent is None:
            parent = ET.SubElement(root, parent_name)
        ET.SubElement(parent, leaf, {"field": f.key}).text = card.values.get(f.key, "")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
