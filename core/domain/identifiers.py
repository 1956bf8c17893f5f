"""Spotting direct identifiers (HIPAA Safe Harbor) in evaluation data, by column name and by content.

An evaluation set needs features, the outcome and sensitive attributes — never
names, record numbers or contact details. Such columns are refused unless the
submitter declares the data de-identified (which is audited).

Every finding names one of the Safe Harbor categories of 45 CFR 164.514(b)(2)(i)
that can appear in a table. Names are matched on whole words of the column name
(`admission_date` is a date, `admission_source` is not), so that a feature that only
shares a word with an identifier is not refused. An encounter or study identifier
that ModelBoard needs to join outcomes (`encounter_id`) is a re-identification
code in the sense of 164.514(c), not a direct identifier, and is not flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from core.domain.clock import utc_now

NAMES = "(A) names"
GEOGRAPHY = "(B) geographic subdivisions smaller than a state"
DATES = "(C) dates directly related to an individual, and ages over 89"
PHONE = "(D) telephone numbers"
FAX = "(E) fax numbers"
EMAIL = "(F) e-mail addresses"
SSN = "(G) social security numbers"
MRN = "(H) medical record numbers"
HEALTH_PLAN = "(I) health plan beneficiary numbers"
ACCOUNT = "(J) account numbers"
LICENCE = "(K) certificate and licence numbers"
VEHICLE = "(L) vehicle identifiers and serial numbers, including licence plates"
DEVICE = "(M) device identifiers and serial numbers"
URL = "(N) web addresses (URLs)"
IP = "(O) IP addresses"
BIOMETRIC = "(P) biometric identifiers"
PHOTO = "(Q) full-face photographs and comparable images"
OTHER = "(R) other unique identifying numbers"


def _words(alternatives: str) -> re.Pattern[str]:
    """Whole words of a normalised column name: `zip` matches `zip` and `home_zip`, never `zipper`."""
    return re.compile(rf"(^|_)({alternatives})($|_)")


# (what it looks like, Safe Harbor category, pattern on the normalised name). Order matters where names overlap:
# the first rule that matches wins, so `ip_address` and `email_address` are found before the street address rule.
NAME_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("a person's name", NAMES, re.compile(
        r"^((patient|pt|first|last|given|family|full|middle|maiden|sur|fore|mother|father|guardian|spouse|kin|nok)"
        r"_?)?name$|_(first|last|given|family|middle|maiden|kin|nok|guardian|spouse)_?name$"
        r"|(^|_)(surname|forename|firstname|lastname|initials)($|_)")),
    ("a medical record number", MRN, _words(
        r"mrn|medical_record(_number|_no|_num|_id)?|med_rec(_no|_num)?|chart_(number|no|num)|"
        r"hospital_(number|no)|patient_(number|no|num)")),
    ("a social security number", SSN, _words(r"ssn|social_security(_number|_no|_num)?")),
    ("a date of birth", DATES, _words(r"dob|date_of_birth|birth_?date|birth_?day|birth_dt")),
    ("a date of admission, discharge, death or care", DATES, re.compile(
        r"(^|_)(admission|admit|admitted|discharge|discharged|death|died|deceased|surgery|operation|procedure|"
        r"visit|encounter|service)_?(date|dt|datetime|timestamp|time|on|at)($|_)"
        r"|(^|_)date_of_(admission|discharge|death|surgery|operation|procedure|visit|service)($|_)|(^|_)dod($|_)")),
    ("a fax number", FAX, _words(r"fax|fax_(number|no|num)|facsimile")),
    ("a phone number", PHONE, _words(
        r"(phone|telephone|tel|mobile|cell_?phone)(_number|_no|_num)?|contact_number")),
    ("an e-mail address", EMAIL, _words(r"e_?mail(_address|_addr)?")),
    ("a health plan beneficiary number", HEALTH_PLAN, _words(
        r"member_(id|number|no)|subscriber_(id|number|no)|beneficiary_(id|number|no)|"
        r"health_plan_(id|number|no|member_id)|insurance_(id|number|no|member_id)|policy_(number|no)|"
        r"medicaid_(id|number|no)|medicare_(id|number|no)|hicn|mbi")),
    ("an account number", ACCOUNT, _words(
        r"account_(number|no|num|id)|acct(_(number|no|num|id))?|bank_account(_number)?|"
        r"billing_account(_number)?|iban|credit_card(_number)?|card_number")),
    ("a vehicle identifier or licence plate", VEHICLE, _words(
        r"licen[cs]e_plate(_number)?|number_plate|plate_(number|no)|registration_plate|vin|"
        r"vehicle_(id|identifier|identification_number|number|registration|plate)")),
    ("a certificate or licence number", LICENCE, _words(
        r"licen[cs]e_(number|no|num|id)|drivers?_licen[cs]e(_number|_no)?|driving_licen[cs]e|dl_(number|no)|"
        r"certificate_(number|no|id)|cert_(number|no)|(birth|death|marriage)_certificate(_number|_no)?|"
        r"passport(_number|_no)?")),
    ("a device identifier or serial number", DEVICE, _words(
        r"device_(id|identifier|serial|serial_number|sn|uid|udi)|serial(_number|_no|_num)?|udi|imei|meid|"
        r"mac_addr(ess)?|(implant|pacemaker)_serial")),
    ("a photograph of a face", PHOTO, _words(
        r"photos?|photograph|photo_(url|path|file|id)|face_(image|photo|picture|pic|img)|head_?shot|portrait|"
        r"mug_?shot|selfie|(patient|profile|id)_(picture|pic|photo|image|img)")),
    ("a web address (URL)", URL, _words(r"url|uri|website|web_site|homepage|home_page|web_address|profile_link")),
    ("an IP address", IP, re.compile(
        r"^ip$|(^|_)ip_?(address|addr|v4|v6)($|_)|(^|_)(client|remote|source|host)_ip($|_)|(^|_)ipv[46]($|_)")),
    ("a biometric identifier", BIOMETRIC, _words(
        r"finger_?prints?|retina(_scan)?|retinal_scan|iris_(scan|code|template)|voice_?print|palm_?print|"
        r"face_(encoding|embedding|template)|facial_(recognition|template|geometry|encoding)|biometrics?(_\w+)?|"
        r"dna_profile")),
    ("another unique identifying number", OTHER, _words(
        r"national_(id|identifier|number|insurance_number|health_number)|nhs_(number|no)|chi_number|"
        r"health_card(_number|_no)?|tax_(id|number)|employee_(id|number)|student_(id|number)|voter_id")),
    ("a ZIP or postal code", GEOGRAPHY, _words(
        r"zip|zip_?code|zip5|zip_plus_4|post_?code|postal_?code")),
    ("a city, county or other place smaller than a state", GEOGRAPHY, _words(
        r"city|town|municipality|county|borough|neighbou?rhood|census_(tract|block)|geocode|"
        r"latitude|longitude|lat|lon|lng|gps|geo_?location")),
    ("a street address", GEOGRAPHY, _words(r"street|address|addr|street_address|address_line_?\d|home_address")),
)

# (what the values are, Safe Harbor category, pattern on each value)
CONTENT_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("social security numbers", SSN, re.compile(r"^\d{3}-\d{2}-\d{4}$")),
    ("e-mail addresses", EMAIL, re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")),
    ("web addresses (URLs)", URL, re.compile(r"^(https?|ftp)://\S+$|^www\.\S+\.[a-z]{2,}\S*$", re.IGNORECASE)),
    ("IP addresses", IP, re.compile(
        r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
        r"|^(?=.*::|([^:]*:){3})[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$", re.IGNORECASE)),  # not a time 10:22:33
    ("phone numbers", PHONE, re.compile(r"^(\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}$")),
    ("ZIP codes", GEOGRAPHY, re.compile(r"^\d{5}(-\d{4})?$")),
    ("street addresses", GEOGRAPHY, re.compile(
        r"^\d{1,6}\s+(\w+\s){1,4}(street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl)\.?$",
        re.IGNORECASE)),
    ("medical record numbers", MRN, re.compile(r"^MRN[-: #]?\d{4,}$", re.IGNORECASE)),
    ("person names", NAMES, re.compile(r"^[A-Z][a-z]+(\s[A-Z]\.)?\s[A-Z][a-z]+(-[A-Z][a-z]+)?$")),
)
# Five-digit strings in a column named as a code are procedure or diagnosis codes (CPT 99213), not ZIP codes.
CODE_COLUMN = _words(r"code|codes|cpt|icd|icd10|hcpcs|drg|loinc|ndc|snomed|rxnorm")
DATE_ONLY = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4}|\d{4}/\d{1,2}/\d{1,2})$")
AGE_NAME = re.compile(r"^((patient|pt)_)?age(_(years|yrs|in_years|at_\w+))?$")
BIRTH_YEARS = 18  # dates whose median lies this many years back are birth dates, not admissions
OLDEST_AGE = 89  # Safe Harbor: ages over 89 must be aggregated into one "90 or older" category
SAMPLE = 1_000
SHARE = 0.3  # a column is flagged when this share of its sampled values match


@dataclass(frozen=True)
class IdentifierFinding:
    column: str
    reason: str
    category: str = ""

    def message(self) -> str:
        kind = f" — HIPAA Safe Harbor category {self.category}" if self.category else ""
        return f"column '{self.column}' looks like {self.reason}{kind}"


def _normalise(column: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column)  # patientName -> patient_Name
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def find_identifiers(frame: pd.DataFrame, *, ages_over_89: bool = False) -> list[IdentifierFinding]:
    """Columns that look like direct identifiers, by name first, then by content.

    `ages_over_89` also flags an age column holding an age above 89 (Safe Harbor wants those top-coded as one
    "90 or older" group); it is off by default until the demo and test cohorts top-code their ages."""
    findings = []
    for column in frame.columns:
        name = _normalise(str(column))
        by_name = next(((what, category) for what, category, rule in NAME_RULES if rule.search(name)), None)
        if by_name:
            findings.append(IdentifierFinding(str(column), f"{by_name[0]} (by its name)", by_name[1]))
            continue
        if ages_over_89 and AGE_NAME.match(name) and _oldest(frame[column]) > OLDEST_AGE:
            findings.append(IdentifierFinding(str(column), f"an age over {OLDEST_AGE} (it holds "
                                              f"{_oldest(frame[column]):g}: group ages above {OLDEST_AGE} as 90)",
                                              DATES))
            continue
        by_content = _content_match(frame[column], name)
        if by_content:
            findings.append(IdentifierFinding(str(column), f"it holds {by_content[0]} (by its content)",
                                              by_content[1]))
    return findings


def _oldest(values: pd.Series) -> float:
    ages = pd.to_numeric(values, errors="coerce")
    return float(ages.max()) if ages.notna().any() else float("nan")


def _content_match(values: pd.Series, name: str) -> tuple[str, str] | None:
    if values.dtype.kind not in "OSU" and str(values.dtype) not in ("string", "str"):
        return None
    sample = values.dropna().astype(str).str.strip()
    sample = sample[sample != ""].head(SAMPLE)
    if sample.empty:
        return None
    for what, category, rule in CONTENT_RULES:
        if what == "person names" and sample.nunique() < 0.5 * len(sample):
            continue  # a handful of repeated values is a category (e.g. "New York"), not people
        if what == "ZIP codes" and CODE_COLUMN.search(name):
            continue
        if sample.str.match(rule).mean() >= SHARE:
            return what, category
    return ("dates of birth", DATES) if _birth_dates(sample) else None


def _birth_dates(sample: pd.Series) -> bool:
    """Day-precise dates (no time of day) lying mostly decades back: birth dates, whatever the column is called."""
    dated = sample[sample.str.match(DATE_ONLY)]
    if len(dated) < SHARE * len(sample):
        return False
    days = pd.to_datetime(dated, errors="coerce", format="mixed").dropna()
    if len(days) < SHARE * len(sample):
        return False
    years_back = (utc_now() - days.median()).days / 365.25
    return bool(years_back >= BIRTH_YEARS)
