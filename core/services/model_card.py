"""Assembling, editing, rendering and recording model cards.

Values come from MLflow (how the model was built), the use case (what it is
for), ModelBoard's own evaluation (how it performs) and the owner's narrative.
Every card a person renders is stored with its SHA-256, so a later sign-off can
name exactly the card that was read.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pandas as pd

from core.adapters.registry import Registry
from core.adapters.store import Store
from core.domain.access import Permission, User, require
from core.domain.clock import utc_now
from core.domain.criteria import verdict_word
from core.domain.model_card import (
    FIELDS,
    NARRATIVE_KEYS,
    CriterionFigure,
    EvaluationFigures,
    MetricResult,
    ModelCard,
    to_markdown,
)
from core.domain.models import ModelVersionDetail
from core.domain.signature import InputColumn
from core.errors import NotFound, ValidationError
from core.services.audit import record_event
from core.services.submission import latest_evaluation
from core.services.usecases import use_case_for_model

DEMOGRAPHIC_INPUTS = ("race", "ethnicity", "language", "sexual_orientation", "gender", "sex", "female", "male",
                      "date_of_birth", "age", "zip", "income", "insurance", "payer")
MAX_NARRATIVE = 4_000


def _fmt(metric: dict[str, Any], digits: int = 3) -> str:
    value, lo, hi = metric.get("value"), metric.get("lo"), metric.get("hi")
    if value is None:
        return "undefined"
    if lo is None or hi is None:
        return f"{value:.{digits}f}"
    interval = f" ({lo:.{digits}f}–{hi:.{digits}f}, {metric.get('method')})"
    return f"{value:.{digits}f}{interval}"


def _performance(result: dict[str, Any]) -> str:
    detail = result.get("overall_detail", {})
    parts = [f"{name} {_fmt(detail[key])}" for key, name in (
        ("auroc", "AUROC"), ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("ppv", "PPV"),
        ("brier", "Brier score")) if key in detail]
    calibration = result.get("calibration", {})
    slope = calibration.get("slope_interval") or {"value": calibration.get("slope")}
    ece = calibration.get("ece_interval") or {"value": calibration.get("expected_calibration_error")}
    return (f"Evaluated by ModelBoard on {result.get('n')} patients ({result.get('data_source')}) at threshold "
            f"{result.get('threshold')}: " + "; ".join(parts)
            + f"; calibration slope {_fmt(slope, 2)}, expected calibration error {_fmt(ece)}.")


def _missing_inputs(result: dict[str, Any]) -> str:
    """Which inputs were missing, for whom, what it cost, and whether patients were left out (complete cases)."""
    from core.metrics.missingness import missing_sentence

    shares = pd.DataFrame(result.get("missingness") or [], columns=["attribute", "group", "column", "n", "missing",
                                                                   "share"])
    overall = shares[(shares["attribute"] == "overall") & (shares["missing"] > 0)]
    parts = [f"{r['column']} missing for {r['missing']:,} of {r['n']:,} patients ({r['share']:.0%})"
             for _, r in overall.iterrows()]
    attributes = [a for a in shares["attribute"].unique() if a != "overall"]
    parts += [sentence for c in overall["column"] for a in attributes
              if (sentence := missing_sentence(shares, c, a, min_n=int(result.get("min_n", 100))))]
    for entry in result.get("missing_flagged") or []:
        gone, there = entry["missing"], entry["present"]
        if gone["positives"] and there["positives"]:
            parts.append(f"of 100 patients with the outcome whose {entry['column']} was missing the model flagged "
                         f"{gone['sensitivity'] * 100:.0f}, against {there['sensitivity'] * 100:.0f} when it was "
                         "present")
    complete = result.get("complete_case")
    if complete:
        share = complete["rows_dropped"] / max(complete["rows_before"], 1)
        parts.append(f"evaluated on complete cases only, at the submitter's request: {complete['rows_dropped']:,} of "
                     f"{complete['rows_before']:,} patients ({share:.0%}) with a missing input were left out")
    if not parts:
        return "No input was missing for any patient of the evaluation data." if "missingness" in result else ""
    return "; ".join(parts)[:1].upper() + "; ".join(parts)[1:] + "."


def _fairness(result: dict[str, Any]) -> str:
    criteria = result.get("criteria", [])
    lines = [f"{verdict_word(c)} {c['criterion']}: {c['observed']} (required {c['required']})"
             for c in criteria]
    return "Use-case criteria — " + "; ".join(lines) if lines else ""


def _metric(name: str, stored: dict[str, Any] | None) -> MetricResult:
    stored = stored or {}
    return MetricResult(name, stored.get("value"), stored.get("lo"), stored.get("hi"), str(stored.get("method", "")))


def figures_of(result: dict[str, Any]) -> EvaluationFigures:
    """The evaluation's headline numbers for the card's machine-readable exports (CHAI key metrics)."""
    detail, calibration = result.get("overall_detail", {}), result.get("calibration", {})
    performance = tuple(_metric(name, detail[key]) for key, name in (
        ("auroc", "AUROC"), ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("ppv", "PPV"),
        ("brier", "Brier score")) if key in detail and detail[key].get("value") is not None)
    calibrated = tuple(_metric(name, calibration.get(f"{key}_interval") or {"value": calibration.get(value)})
                       for key, value, name in (("slope", "slope", "calibration slope"),
                                                ("ece", "expected_calibration_error", "expected calibration error"))
                       if calibration.get(value) is not None)
    criteria = tuple(CriterionFigure(c["criterion"], MetricResult(
        f"{verdict_word(c)} {c['criterion']}: {c['observed']} (required {c['required']})",
        c.get("value")), bool(c["passed"])) for c in result.get("criteria", []))
    return EvaluationFigures(f"{result.get('n')} patients ({result.get('data_source')})", performance, calibrated,
                             criteria)


def _mlflow_values(detail: ModelVersionDetail, columns: list[InputColumn]) -> dict[str, str]:
    inputs = [c.name for c in columns]
    params = detail.params
    hyper = ", ".join(f"{k}={v}" for k, v in sorted(params.items())
                      if k in ("C", "n_estimators", "max_depth", "learning_rate", "subsample"))
    demographic = [f for f in inputs if any(d in f.lower() for d in DEMOGRAPHIC_INPUTS)]
    datasets = "; ".join(f"{d.context}: {d.name} ({d.rows} rows, digest {d.digest})" for d in detail.datasets)
    return {
        "model_type": f"{params.get('algorithm', 'not logged')}" + (f" ({hyper})" if hyper else ""),
        "inputs": ", ".join(c.describe() for c in columns),
        "sensitive_inputs": ("Yes: " + ", ".join(demographic)) if demographic else
        "No race, ethnicity, language, sex, gender, date of birth or social-determinant inputs.",
        "training_data": f"{params.get('n_derivation', '?')} admissions, "
                         f"{params.get('training_period', 'period not logged')}"
                         + (f"; {datasets}" if datasets else ""),
        "lineage": f"run {detail.summary.run_id}; git commit {detail.git_commit or 'not logged'}; logged by "
                   f"{detail.summary.logged_by} on {detail.summary.created_at:%Y-%m-%d}",
    }


def narratives(store: Store, model: str, version: int) -> dict[str, str]:
    rows = store.query("SELECT field, value FROM model_card_narratives WHERE model_name = ? AND model_version = ?",
                       [model, version])
    return {r["field"]: r["value"] for r in rows}


def build_card(store: Store, registry: Registry, viewer: User, model: str, version: int) -> ModelCard:
    """The card as it stands now; empty values are the fields still to fill."""
    require(viewer, Permission.VIEW_REGISTRY)
    detail = registry.get_version(model, version)
    values = {k: "" for k in (f.key for f in FIELDS)}
    values |= _mlflow_values(detail, registry.model_inputs(model, version))
    try:
        uc = use_case_for_model(store, viewer, model)
        values |= {"summary": f"{uc.title}. {detail.summary.description}".strip(),
                   "outcome": f"{uc.outcome}; output: the predicted probability (0–1), flagged at or above the "
                              f"threshold", "intended_use": uc.intended_use, "target_population": uc.target_population,
                   "threshold": f"{uc.threshold} (use case {uc.name} v{uc.version})"}
    except NotFound:
        pass
    evaluation = latest_evaluation(store, viewer, model, version)
    if evaluation is not None:
        result = evaluation.result
        values |= {"performance": _performance(result), "fairness": _fairness(result),
                   "missing_inputs": _missing_inputs(result), "scoring": result.get("scoring", {}).get("sentence", "")}
    values |= {k: v for k, v in narratives(store, model, version).items() if k in NARRATIVE_KEYS}
    return ModelCard(model, version, values, figures=figures_of(evaluation.result) if evaluation else None)


def card_revision(store: Store, viewer: User, model: str, version: int) -> str:
    """What the stored parts of a card depend on (newest evaluation, narrative edits, use-case versions), in
    one cheap query: a page may reuse an assembled card for as long as this string does not change."""
    require(viewer, Permission.VIEW_REGISTRY)
    row = store.query_one(
        "SELECT (SELECT max(finished_at) FROM evaluations WHERE model_name = ? AND model_version = ? "
        "AND status = 'complete') AS evaluated, (SELECT max(updated_at) FROM model_card_narratives "
        "WHERE model_name = ? AND model_version = ?) AS edited, (SELECT max(imported_at) FROM use_cases) AS imported",
        [model, version, model, version])
    return "|".join(str(v) for v in (row or {}).values())


def save_narratives(store: Store, actor: User, model: str, version: int, values: dict[str, str]) -> list[str]:
    """Store the owner's narrative fields; returns the fields that changed (audited)."""
    require(actor, Permission.EDIT_MODEL_CARD)
    unknown = [k for k in values if k not in NARRATIVE_KEYS]
    too_long = [k for k, v in values.items() if len(v) > MAX_NARRATIVE]
    if unknown or too_long:
        raise ValidationError("; ".join([f"{k} is not a narrative field of the model card" for k in unknown]
                                        + [f"{k} is longer than {MAX_NARRATIVE} characters" for k in too_long]))
    current = narratives(store, model, version)
    changed = [k for k, v in values.items() if v.strip() != current.get(k, "")]
    if not changed:
        return []
    with store.transaction() as cur:
        for key in changed:
            cur.execute("INSERT INTO model_card_narratives VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (model_name, model_version, field) DO UPDATE SET value = excluded.value, "
                        "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                        [model, version, key, values[key].strip(), actor.username, utc_now()])
        record_event(cur, actor=actor.username, action="model_card_edited", model=model, version=version,
                     detail={"fields": changed})
    return changed


def card_sha256(card: ModelCard) -> str:
    """The card's fingerprint: SHA-256 of its Markdown without signatures (signing must not change what
    was signed)."""
    return hashlib.sha256(to_markdown(replace(card, signatures=())).encode()).hexdigest()


def record_rendered(store: Store, viewer: User, card: ModelCard, evaluation_id: str | None) -> str:
    """Store the rendered card (once per distinct content) and return its SHA-256."""
    require(viewer, Permission.VIEW_REGISTRY)
    card = replace(card, signatures=())
    markdown = to_markdown(card)
    digest = card_sha256(card)
    with store.transaction() as cur:
        cur.execute("INSERT INTO model_cards VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [card.model, card.version, digest, markdown, evaluation_id, utc_now()])
    return digest


_PDF_REPLACEMENTS = {"≥": ">=", "≤": "<=", "–": "-", "—": "-", "→": "->", "×": "x", "’": "'", "“": '"', "”": '"',
                     "…": "...", "·": "-"}


def to_pdf(card: ModelCard) -> bytes:
    """A printable PDF of the card (core fonts: text is reduced to Latin-1), carrying the card's CHAI XML
    as an attached file so the PDF stays machine-readable (the XML keeps the full Unicode text)."""
    from fpdf import FPDF

    from core.domain.model_card import to_chai_xml

    text = to_markdown(card)
    for old, new in _PDF_REPLACEMENTS.items():
        text = text.replace(old, new)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    for line in text.encode("latin-1", "replace").decode("latin-1").splitlines():
        heading = line.startswith("#")
        pdf.set_font("Helvetica", "B" if heading else "", 14 if line.startswith("# ") else 11 if heading else 9)
        pdf.multi_cell(0, 5, line.lstrip("# ").replace("**", ""), new_x="LMARGIN", new_y="NEXT")
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in card.model)
    pdf.embed_file(bytes=to_chai_xml(card).encode("utf-8"), basename=f"{name}-v{card.version}-chai-model-card.xml",
                   mime_type="application/xml", desc="CHAI applied model card (mc-schema v0.2)")
    return bytes(pdf.output())


def changes_since_production(store: Store, registry: Registry, viewer: User, model: str,
                             version: int) -> tuple[int | None, list[dict[str, str]]]:
    """Field by field, what differs from the card of the version holding `production`."""
    require(viewer, Permission.VIEW_REGISTRY)
    production = registry.version_for_alias(model, "production")
    if production is None or production == version:
        return production, []
    current = build_card(store, registry, viewer, model, version)
    previous = build_card(store, registry, viewer, model, production)
    changes = []
    for f in FIELDS:
        before, after = previous.values.get(f.key, ""), current.values.get(f.key, "")
        if f.key != "lineage" and before != after:
            changes.append({"field": f.label, "production": before or "—", "this version": after or "—"})
    return production, changes
