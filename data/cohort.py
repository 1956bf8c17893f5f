"""A synthetic ICU cohort generated from a documented causal model.

Causal model (see docs/demo-data.md for the full table):

| variable | depends on | how |
|---|---|---|
| age, sex, race/ethnicity | — | drawn from a US adult ICU mix |
| payer | age, race/ethnicity | Medicare from 65; Medicaid more often for Black and Hispanic patients under 65 |
| comorbidity | age | Poisson, rising with age |
| infection | age, comorbidity | logistic |
| severity (latent host response) | infection | gamma when infected, small noise otherwise |
| respiratory dysfunction (latent) | severity | normal around a share of severity |
| sepsis within 48 h | severity, respiratory dysfunction, age, comorbidity | logistic; **no race term** |
| heart rate, resp. rate, temperature, SBP, WBC, lactate, creatinine | severity (+ age) | noisy manifestations |
| true arterial saturation (SaO2) | severity, respiratory dysfunction | falls as both rise |
| measured SpO2 | SaO2, race/ethnicity | pulse oximetry overestimates SaO2 for darker skin (Sjoding 2020) |
| lactate as reported | lactate, assay | assay "B" (from the change day) reads 1.25 × + 0.3 mmol/L |

Only measured values are model inputs; SaO2 and the latent variables are not.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd

FEATURES: list[str] = [
    "age", "female", "heart_rate", "resp_rate", "temperature", "sbp", "spo2", "wbc", "lactate", "creatinine",
]
LABEL = "sepsis_48h"
SENSITIVE: list[str] = ["sex", "age_band", "race_ethnicity", "payer"]
RACES = np.array(["White", "Black", "Hispanic", "Asian", "Other"])
RACE_SHARES = [0.60, 0.16, 0.13, 0.06, 0.05]
AGE_BANDS = ["18-44", "45-64", "65-79", "80+"]
# Mean overestimate of SaO2 by pulse oximetry, in points, when SaO2 is normal (Sjoding et al., NEJM 2020).
OXIMETER_BIAS = {"White": 0.0, "Black": 2.2, "Hispanic": 1.0, "Asian": 1.0, "Other": 0.0}
ASSAY_B_SLOPE, ASSAY_B_OFFSET = 1.25, 0.3

READMISSION_FEATURES: list[str] = [
    "age", "female", "length_of_stay_days", "prior_admissions_12m", "charlson_index", "discharged_to_facility",
    "hemoglobin", "sodium",
]
READMISSION_LABEL = "readmitted_30d"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _demographics(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = np.clip(rng.normal(62, 17, n), 18, 95).round().astype(int)
    female = (rng.random(n) < 0.44).astype(int)
    race = rng.choice(RACES, size=n, p=RACE_SHARES)
    under65 = age < 65
    medicaid_share = np.where(np.isin(race, ["Black", "Hispanic"]), 0.40, 0.22)
    u = rng.random(n)
    payer = np.where(
        ~under65,
        np.where(u < 0.86, "Medicare", np.where(u < 0.95, "Commercial", "Medicaid")),
        np.where(u < medicaid_share, "Medicaid",
                 np.where(u < medicaid_share + 0.45, "Commercial", np.where(u < 0.93, "Medicare", "Self-pay"))),
    )
    band = pd.cut(age, bins=[17, 44, 64, 79, 200], labels=AGE_BANDS).astype(str)
    return pd.DataFrame({"sex": np.where(female == 1, "female", "male"), "age": age, "age_band": band,
                         "race_ethnicity": race, "payer": payer, "female": female})


def _admission_times(rng: np.random.Generator, n: int, start: date, days: int) -> pd.Series:
    offsets = np.sort(rng.random(n)) * days * 24 * 60
    minutes = pd.to_timedelta(np.floor(offsets), unit="min")
    return pd.Series(pd.Timestamp(start) + minutes)


def _oximeter_bias(rng: np.random.Generator, race: np.ndarray, sao2: np.ndarray) -> np.ndarray:
    base = np.vectorize(OXIMETER_BIAS.get)(race).astype(float)
    # The overestimate grows as true saturation falls, which is where it hides hypoxaemia.
    deficit = np.clip(94.0 - sao2, 0, None)
    return np.asarray(base * (1.0 + 0.12 * deficit) + rng.normal(0, 1.0, len(race)))


def generate_icu_cohort(
    n: int, *, seed: int, start: date, days: int, lactate_assay_change_day: int | None = None,
    id_prefix: str = "ENC",
) -> pd.DataFrame:
    """One row per ICU admission; the same arguments always give the same frame."""
    rng = np.random.default_rng(seed)
    df = _demographics(rng, n)
    df.insert(0, "encounter_id", [f"{id_prefix}-{i:06d}" for i in range(1, n + 1)])
    df.insert(1, "admitted_at", _admission_times(rng, n, start, days))
    age = df["age"].to_numpy()
    comorbidity = rng.poisson(0.6 + 0.035 * (age - 18))
    infection = rng.random(n) < _sigmoid(-1.3 + 0.015 * (age - 60) + 0.2 * comorbidity)
    severity = np.where(infection, rng.gamma(2.2, 0.65, n), 0.0) + rng.normal(0, 0.35, n)
    respiratory = np.clip(0.45 * severity + rng.normal(0, 0.8, n), 0, None)
    risk = -4.2 + 1.25 * severity + 0.9 * respiratory + 0.012 * (age - 60) + 0.12 * comorbidity
    df[LABEL] = (rng.random(n) < _sigmoid(risk)).astype(int)
    fever = rng.random(n) < 0.8
    df["heart_rate"] = np.round(84 + 8.5 * severity + rng.normal(0, 13, n), 0)
    df["resp_rate"] = np.round(17 + 1.6 * severity + 1.5 * respiratory + rng.normal(0, 3.5, n), 0)
    df["temperature"] = np.round(37.0 + np.where(fever, 0.45, -0.35) * severity + rng.normal(0, 0.5, n), 1)
    df["sbp"] = np.round(124 - 8.0 * severity + rng.normal(0, 17, n), 0)
    sao2 = np.clip(96.8 - 1.2 * severity - 3.0 * respiratory + rng.normal(0, 1.6, n), 70, 100)
    df["sao2_true"] = np.round(sao2, 1)
    df["spo2"] = np.round(np.clip(sao2 + _oximeter_bias(rng, df["race_ethnicity"].to_numpy(), sao2), 70, 100), 0)
    df["wbc"] = np.round(np.clip(8.5 + 2.2 * severity + rng.normal(0, 3.2, n), 0.5, None), 1)
    lactate = np.exp(np.log(1.1) + 0.25 * severity + rng.normal(0, 0.38, n))
    df["creatinine"] = np.round(np.exp(np.log(0.95) + 0.15 * severity + 0.004 * (age - 60) + rng.normal(0, 0.35, n)), 2)
    day = ((df["admitted_at"] - pd.Timestamp(start)).dt.days).to_numpy()
    after = np.zeros(n, dtype=bool) if lactate_assay_change_day is None else day >= lactate_assay_change_day
    df["lactate"] = np.round(np.where(after, ASSAY_B_SLOPE * lactate + ASSAY_B_OFFSET, lactate), 2)
    df["lactate_assay"] = np.where(after, "B", "A")
    return df


def generate_readmission_cohort(n: int, *, seed: int, start: date, days: int) -> pd.DataFrame:
    """Hospital discharges with the outcome "readmitted within 30 days"; latent frailty drives all."""
    rng = np.random.default_rng(seed)
    df = _demographics(rng, n)
    df.insert(0, "encounter_id", [f"DIS-{i:06d}" for i in range(1, n + 1)])
    df.insert(1, "discharged_at", _admission_times(rng, n, start, days))
    age = df["age"].to_numpy()
    frailty = rng.normal(0, 1, n) + 0.02 * (age - 60)
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
    """SHA-256 over column names and every value: equal digests mean equal data."""
    h = hashlib.sha256("|".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()
