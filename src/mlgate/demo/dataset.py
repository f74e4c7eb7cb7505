"""A synthetic loan/credit dataset with PII columns the pipeline must drop before training.

Deterministic for a seed, so the pinned manifest of a fresh clone is reproducible. The PII values are
fake by construction (SSNs in the never-issued 9xx area, in groups 10-49, which no ITIN has either; 555-01xx
phone numbers, example.com mail).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PII_COLUMNS = ("applicant_name", "email", "ssn", "phone")
FEATURES = ("age", "annual_income", "loan_amount", "term_months", "credit_score", "employment_years",
            "debt_to_income", "home_ownership", "purpose")
TARGET = "defaulted"
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Thompson")


def generate_loans(rows: int = 5000, seed: int = 7):
    """A DataFrame of ``rows`` loan applications with a default label that depends on the features."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(21, 75, rows)
    income = np.round(rng.lognormal(10.9, 0.45, rows), 2)
    amount = np.round(rng.uniform(1_000, 40_000, rows), 2)
    term = rng.choice([12, 24, 36, 48, 60], rows)
    score = np.clip(rng.normal(680, 60, rows), 300, 850).round().astype(int)
    employment = np.clip(rng.exponential(6, rows), 0, 45).round(1)
    dti = np.round(np.clip(amount / income + rng.normal(0, 0.05, rows), 0.01, 2.5), 3)
    ownership = rng.choice(["rent", "own", "mortgage"], rows, p=[0.45, 0.2, 0.35])
    purpose = rng.choice(["debt", "car", "home", "education", "business"], rows)
    # Risk rises with debt-to-income, term and renting, falls with credit score and tenure; age plays no part.
    logit = (-0.9 + 0.8 * (dti - 0.5) / 0.35 - 0.8 * (score - 680) / 60 + 0.4 * (term - 36) / 17
             - 0.4 * (employment - 6) / 6 + 0.4 * (ownership == "rent"))
    defaulted = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = np.arange(rows)
    first, last = rng.choice(_FIRST, rows), rng.choice(_LAST, rows)
    return pd.DataFrame({
        "applicant_name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
        "email": [f"{f.lower()}.{s.lower()}{i}@example.com" for f, s, i in zip(first, last, ids, strict=True)],
        "ssn": [f"9{i % 100:02d}-{(i // 100) % 40 + 10:02d}-{i % 9000 + 1000:04d}" for i in ids],
        "phone": [f"+1-202-555-01{i % 100:02d}" for i in ids],
        "age": age, "annual_income": income, "loan_amount": amount, "term_months": term,
        "credit_score": score, "employment_years": employment, "debt_to_income": dti,
        "home_ownership": ownership, "purpose": purpose, TARGET: defaulted,
    })


def write_loans(path: Path, rows: int = 5000, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    generate_loans(rows, seed).to_csv(path, index=False)
    return path
