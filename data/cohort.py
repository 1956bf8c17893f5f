"""A synthetic ICU cohort generated from a documented causal model.

The demo needs data whose problems are *real*: a model trained on it must fail
some patients for a reason a clinician can trace, not because a number was
painted on. So every column comes from an explicit causal model
(docs/demo-data.md has the full table with coefficients):

| variable | depends on | how |
|---|---|---|
| age, sex, race/ethnicity | — | drawn from a US adult ICU mix |
| payer | age, race/ethnicity | Medicare from 65; Medicaid more often for Black and Hispanic patients under 65 |
| comorbidity (latent) | age | Poisson, rising with age |
| infection (latent) | age, comorbidity | logistic |
| severity (latent host response) | infection | gamma when infected, small noise otherwise |
| respiratory dysfunction (latent) | severity | normal around a share of severity, floored at 0 |
| sepsis within 48 h (label) | severity, respiratory dysfunction, age, comorbidity | logistic; **no race term** |
| heart rate, resp. rate, temperature, SBP | severity (resp. rate also respiratory dysfunction) | noisy manifestations |
| WBC, lactate, creatinine | severity (creatinine also age) | noisy manifestations |
| true arterial saturation SaO2 | severity, respiratory dysfunction | falls as both rise; never a model input |
| measured SpO2 | SaO2, race/ethnicity | pulse oximetry overestimates SaO2 for darker skin (Sjoding 2020) |
| lactate as reported | lactate, assay | assay "B" (from the change day) reads 1.25 × + 0.3 mmol/L |

Only measured values are model inputs; SaO2 and the latent variables are not.
Every random draw comes from one `numpy.random.default_rng(seed)` in a fixed
order, so the same arguments always give a byte-identical frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

FEATURES: list[str] = [
    "age", "female", "heart_rate", "resp_rate", "temperature", "sbp", "spo2", "wbc", "lactate", "creatinine",
]
LABEL = "sepsis_48h"
SENSITIVE: list[str] = ["sex", "age_band", "race_ethnicity", "payer"]
READMISSION_FEATURES: list[str] = [
    "age", "female", "length_of_stay_days", "prior_admissions_12m", "charlson_index", "discharged_to_facility",
    "hemoglobin", "sodium",
]
READMISSION_LABEL = "readmitted_30d"

RACES = np.array(["White", "Black", "Hispanic", "Asian", "Other"])
RACE_SHARES = [0.60, 0.16, 0.13, 0.06, 0.05]
AGE_BANDS = ["18-44", "45-64", "65-79", "80+"]
# Mean overestimate of SaO2 by pulse oximetry, in points, at normal saturation (Sjoding et al., NEJM 2020).
OXIMETER_BIAS: dict[str, float] = {"White": 0.0, "Black": 2.5, "Hispanic": 1.0, "Asian": 1.0, "Other": 0.0}
OXIMETER_BIAS_GROWTH = 0.12  # the overestimate grows by 12 % per point of true saturation below 94
OXIMETER_NOISE_SD = 1.0
ASSAY_B_SLOPE, ASSAY_B_OFFSET = 1.25, 0.3
ADMISSION_SOURCES = np.array(["emergency department", "ward", "operating theatre", "other hospital"])
# Log-odds of a lactate being measured at ICU admission: clinicians order it when the admission looks worrying
# (tachycardia, hypotension, fever or tachypnoea), less often for some patients than for others. The race terms
# stand for a documented kind of disparity in sepsis work-up; their sizes are invented for the demo.
LACTATE_ORDERED_BASE = 1.6
LACTATE_ORDERED_CONCERN = 0.9  # per abnormal vital sign
LACTATE_ORDERED_GAP: dict[str, float] = {"White": 0.0, "Black": -1.35, "Hispanic": -0.7, "Asian": -0.2, "Other": 0.0}
CHARTED_FEATURES: list[str] = [*FEATURES, "admission_source"]


@dataclass(frozen=True)
class _Latent:
    """The patient's hidden state: what a clinician cannot measure directly."""

    comorbidity: np.ndarray
    severity: np.ndarray
    respiratory: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _demographics(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = np.clip(rng.normal(62, 17, n), 18, 95).round().astype(int)
    female = (rng.random(n) < 0.44).astype(int)
    race = rng.choice(RACES, size=n, p=RACE_SHARES)
    band = pd.cut(age, bins=[17, 44, 64, 79, 200], labels=AGE_BANDS).astype(str)
    return pd.DataFrame({"sex": np.where(female == 1, "female", "male"), "age": age, "age_band": band,
                         "race_ethnicity": race, "payer": _payer(rng, age, race), "female": female})


def _payer(rng: np.random.Generator, age: np.ndarray, race: np.ndarray) -> np.ndarray:
    """Medicare covers almost everyone from 65; under 65, Medicaid is commoner for Black and Hispanic
    patients (a structural difference the fairness pages should be able to show by payer)."""
    medicaid_share = np.where(np.isin(race, ["Black", "Hispanic"]), 0.40, 0.22)
    u = rng.random(len(age))
    over65 = np.where(u < 0.86, "Medicare", np.where(u < 0.95, "Commercial", "Medicaid"))
    under65 = np.where(u < medicaid_share, "Medicaid",
                       np.where(u < medicaid_share + 0.45, "Commercial", np.where(u < 0.93, "Medicare", "Self-pay")))
    return np.asarray(np.where(age >= 65, over65, under65))


def _event_times(rng: np.random.Generator, n: int, start: date, days: int) -> pd.Series:
    """Times spread uniformly over `days` days from `start`, sorted, to the minute."""
    offsets = np.sort(rng.random(n)) * days * 24 * 60
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(np.floor(offsets), unit="min"))


def _latent_state(rng: np.random.Generator, age: np.ndarray) -> _Latent:
    n = len(age)
    comorbidity = rng.poisson(0.6 + 0.035 * (age - 18))
    infection = rng.random(n) < _sigmoid(-1.3 + 0.015 * (age - 60) + 0.2 * comorbidity)
    severity = np.where(infection, rng.gamma(2.2, 0.65, n), 0.0) + rng.normal(0, 0.35, n)
    respiratory = np.clip(0.35 * severity + rng.normal(0, 0.9, n), 0, None)
    return _Latent(comorbidity, severity, respiratory)


def _sepsis(rng: np.random.Generator, latent: _Latent, age: np.ndarray) -> np.ndarray:
    """The outcome: caused by the latent state, age and comorbidity only (no race term)."""
    risk = -4.3 + 1.1 * latent.severity + 1.3 * latent.respiratory + 0.012 * (age - 60) + 0.12 * latent.comorbidity
    return (rng.random(len(age)) < _sigmoid(risk)).astype(int)


def _vitals(rng: np.random.Generator, latent: _Latent) -> dict[str, np.ndarray]:
    """Tachycardia, tachypnoea, fever (or hypothermia in one in five) and hypotension with severity."""
    sev, n = latent.severity, len(latent.severity)
    fever = rng.random(n) < 0.8
    return {
        "heart_rate": np.round(84 + 8.5 * sev + rng.normal(0, 13, n), 0),
        "resp_rate": np.round(17 + 1.6 * sev + 1.5 * latent.respiratory + rng.normal(0, 3.5, n), 0),
        "temperature": np.round(37.0 + np.where(fever, 0.45, -0.35) * sev + rng.normal(0, 0.5, n), 1),
        "sbp": np.round(124 - 8.0 * sev + rng.normal(0, 17, n), 0),
    }


def oximeter_bias(race: np.ndarray, sao2: np.ndarray) -> np.ndarray:
    """Mean overestimate of SaO2 by the pulse oximeter for each patient, in saturation points.

    It grows as true saturation falls below 94, which is exactly where it hides hypoxaemia."""
    base = np.array([OXIMETER_BIAS[str(r)] for r in race], dtype=float)
    return np.asarray(base * (1.0 + OXIMETER_BIAS_GROWTH * np.clip(94.0 - sao2, 0, None)))


def _oximetry(rng: np.random.Generator, latent: _Latent, race: np.ndarray) -> dict[str, np.ndarray]:
    n = len(race)
    sao2 = np.clip(96.8 - 1.2 * latent.severity - 3.0 * latent.respiratory + rng.normal(0, 1.6, n), 70, 100)
    spo2 = np.clip(sao2 + oximeter_bias(race, sao2) + rng.normal(0, OXIMETER_NOISE_SD, n), 70, 100)
    return {"sao2_true": np.round(sao2, 1), "spo2": np.round(spo2, 0)}


def _labs(rng: np.random.Generator, latent: _Latent, age: np.ndarray) -> dict[str, np.ndarray]:
    """Leukocytosis, raised lactate and raised creatinine with severity; lactate as the old assay A reads it."""
    sev, n = latent.severity, len(age)
    return {
        "wbc": np.round(np.clip(8.5 + 2.2 * sev + rng.normal(0, 3.2, n), 0.5, None), 1),
        "lactate": np.exp(np.log(1.1) + 0.25 * sev + rng.normal(0, 0.38, n)),
        "creatinine": np.round(np.exp(np.log(0.95) + 0.15 * sev + 0.004 * (age - 60) + rng.normal(0, 0.35, n)), 2),
    }


def _reported_lactate(lactate: np.ndarray, day: np.ndarray, change_day: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Lactate as the lab reports it: from `change_day` the recalibrated enzymatic assay B reads
    1.25 × + 0.3 mmol/L of what assay A would have reported for the same sample."""
    after = np.zeros(len(day), dtype=bool) if change_day is None else day >= change_day
    reported = np.where(after, ASSAY_B_SLOPE * lactate + ASSAY_B_OFFSET, lactate)
    return np.round(reported, 2), np.where(after, "B", "A")


def _as_charted(rng: np.random.Generator, df: pd.DataFrame, latent: _Latent) -> pd.DataFrame:
    """The admission as the EHR records it: where the patient came from, and lactate only when it was ordered.

    Drawn after every other column, so the patients and their other values are those of the plain cohort."""
    sev, n = latent.severity, len(df)
    logits = np.column_stack([0.3 * sev, -0.6 + 0.35 * sev, -0.8 - 0.5 * sev, -1.5 + 0.2 * sev])
    shares = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pick = (rng.random(n)[:, None] < shares.cumsum(axis=1)).argmax(axis=1)
    concern = ((df["heart_rate"] > 100).astype(int) + (df["sbp"] < 100).astype(int)
               + (df["temperature"] > 38.0).astype(int) + (df["resp_rate"] > 22).astype(int)).to_numpy()
    gap = np.array([LACTATE_ORDERED_GAP[str(r)] for r in df["race_ethnicity"]])
    ordered = rng.random(n) < _sigmoid(LACTATE_ORDERED_BASE + LACTATE_ORDERED_CONCERN * concern + gap)
    return df.assign(admission_source=ADMISSION_SOURCES[pick], lactate=df["lactate"].where(ordered))


def generate_icu_cohort(
    n: int, *, seed: int, start: date, days: int, lactate_assay_change_day: int | None = None,
    id_prefix: str = "ENC", charted: bool = False,
) -> pd.DataFrame:
    """One row per ICU admission over `days` days from `start`; the same arguments give the same frame.

    `id_prefix` keeps encounter ids of different cohorts (derivation, post-change, production)
    apart. `lactate_assay_change_day` is the day (0 = `start`) from which lactate is reported
    by assay B; the patients themselves, and every random draw, are unchanged by it. `charted`
    adds the admission source and leaves lactate empty where it was not ordered (`_as_charted`)."""
    rng = np.random.default_rng(seed)
    df = _demographics(rng, n)
    df.insert(0, "encounter_id", [f"{id_prefix}-{i:06d}" for i in range(1, n + 1)])
    df.insert(1, "admitted_at", _event_times(rng, n, start, days))
    age, race = df["age"].to_numpy(), df["race_ethnicity"].to_numpy()
    latent = _latent_state(rng, age)
    df[LABEL] = _sepsis(rng, latent, age)
    for name, values in (_vitals(rng, latent) | _oximetry(rng, latent, race) | _labs(rng, latent, age)).items():
        df[name] = values
    day = (df["admitted_at"] - pd.Timestamp(start)).dt.days.to_numpy()
    df["lactate"], df["lactate_assay"] = _reported_lactate(df["lactate"].to_numpy(), day, lactate_assay_change_day)
    return _as_charted(rng, df, latent) if charted else df


def generate_readmission_cohort(n: int, *, seed: int, start: date, days: int) -> pd.DataFrame:
    """Hospital discharges with the outcome "unplanned readmission within 30 days".

    Causal model: a latent frailty (rising with age) drives length of stay, prior admissions,
    Charlson index, discharge to a facility, lower haemoglobin and sodium, and the readmission
    itself, which also rises with prior admissions. Discharge facts are weak proxies of frailty,
    so the achievable AUROC is modest (about 0.68), as it is for real readmission models."""
    rng = np.random.default_rng(seed)
    df = _demographics(rng, n)
    df.insert(0, "encounter_id", [f"DIS-{i:06d}" for i in range(1, n + 1)])
    df.insert(1, "discharged_at", _event_times(rng, n, start, days))
    frailty = rng.normal(0, 1, n) + 0.02 * (df["age"].to_numpy() - 60)
    df["length_of_stay_days"] = np.round(rng.gamma(2.0, 2.0 + 0.8 * np.clip(frailty, 0, None)), 1)
    df["prior_admissions_12m"] = rng.poisson(np.exp(-0.7 + 0.5 * frailty))
    df["charlson_index"] = rng.poisson(np.exp(0.4 + 0.35 * frailty))
    df["discharged_to_facility"] = (rng.random(n) < _sigmoid(-2.0 + 0.8 * frailty)).astype(int)
    df["hemoglobin"] = np.round(13.2 - 0.7 * frailty + rng.normal(0, 1.4, n), 1)
    df["sodium"] = np.round(139 - 0.6 * frailty + rng.normal(0, 3.0, n), 0)
    risk = -2.3 + 0.75 * frailty + 0.25 * df["prior_admissions_12m"].to_numpy()
    df[READMISSION_LABEL] = (rng.random(n) < _sigmoid(risk)).astype(int)
    return df


def cohort_digest(df: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every value (with the index): equal digests mean equal data."""
    h = hashlib.sha256("|".join(f"{c}:{t}" for c, t in df.dtypes.astype(str).items()).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()
