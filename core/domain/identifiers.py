"""Spotting direct identifiers (HIPAA-style) in evaluation data, by column name and by content.

An evaluation set needs features, the outcome and sensitive attributes — never
names, record numbers or contact details. Such columns are refused unless the
submitter declares the data de-identified (which is audited).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

NAME_RULES: dict[str, re.Pattern[str]] = {
    "a person's name": re.compile(
        r"^((patient|first|last|given|family|full|sur)_?)?name$|_(first|last|given|family)_?name$"),
    "a medical record number": re.compile(r"(^|_)(mrn|medical_record(_number|_no)?|med_rec(_no)?)($|_)"),
    "a social security number": re.compile(r"(^|_)(ssn|social_security(_number|_no)?)($|_)"),
    "a date of birth": re.compile(r"(^|_)(dob|date_of_birth|birth_?date|birthday)($|_)"),
    "a phone number": re.compile(r"(^|_)(phone|telephone|mobile|cell_?phone)(_number|_no)?($|_)"),
    "an e-mail address": re.compile(r"(^|_)e_?mail(_address)?($|_)"),
    "a street address": re.compile(r"(^|_)(street|address|addr|street_address)(_line_?\d)?($|_)"),
}
CONTENT_RULES: dict[str, re.Pattern[str]] = {
    "social security numbers": re.compile(r"^\d{3}-\d{2}-\d{4}$"),
    "e-mail addresses": re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"),
    "phone numbers": re.compile(r"^(\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}$"),
    "street addresses": re.compile(
        r"^\d{1,6}\s+(\w+\s){1,4}(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl)\.?$",
        re.IGNORECASE),
    "medical record numbers": re.compile(r"^MRN[-: #]?\d{4,}$", re.IGNORECASE),
    "person names": re.compile(r"^[A-Z][a-z]+(\s[A-Z]\.)?\s[A-Z][a-z]+(-[A-Z][a-z]+)?$"),
}
SAMPLE = 1_000
SHARE = 0.3  # a column is flagged when this share of its sampled values match


@dataclass(frozen=True)
class IdentifierFinding:
    column: str
    reason: str

    def message(self) -> str:
        return f"column '{self.column}' looks like {self.reason}"


def _normalise(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def find_identifiers(frame: pd.DataFrame) -> list[IdentifierFinding]:
    """Columns that look like direct identifiers, by name first, then by content."""
    findings = []
    for column in frame.columns:
        by_name = next((what for what, rule in NAME_RULES.items() if rule.search(_normalise(str(column)))), None)
        if by_name:
            findings.append(IdentifierFinding(str(column), f"{by_name} (by its name)"))
            continue
        by_content = _content_match(frame[column])
        if by_content:
            findings.append(IdentifierFinding(str(column), f"it holds {by_content} (by its content)"))
    return findings


def _content_match(values: pd.Series) -> str | None:
    if values.dtype.kind not in "OSU" and str(values.dtype) not in ("string", "str"):
        return None
    sample = values.dropna().astype(str).str.strip()
    sample = sample[sample != ""].head(SAMPLE)
    if sample.empty:
        return None
    for what, rule in CONTENT_RULES.items():
        if what == "person names" and sample.nunique() < 0.5 * len(sample):
            continue  # a handful of repeated values is a category (e.g. "New York"), not people
        if sample.str.match(rule).mean() >= SHARE:
            return what
    return None
