"""Monitoring test data: a DP reference profile of the loans training data and inference logs of it.

The reference is a real OpenDP release (bin edges and categories from domain knowledge, never from the
data); the logs are written with ``InferenceLogger``, as serving code would. Everything is seeded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mlgate.demo.dataset import FEATURES, generate_loans
from mlgate.gates.data.dp_release import CategoricalColumn, NumericColumn, Query, ReleaseSpec, plan_release, release
from mlgate.gates.data.privacy import query_space
from mlgate.gates.monitor.inference_log import InferenceLogger

_EDGES = {
    "age": (18, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75),
    "annual_income": (0, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 100_000, 150_000),
    "loan_amount": (0, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_001),
    "term_months": (12, 24, 36, 48, 60, 61),  # integer values on integer edges: the half-open side matters
    "credit_score": (300, 550, 600, 650, 700, 750, 800, 851),
    "employment_years": (0, 1, 2, 4, 6, 8, 12, 20, 46),
    "debt_to_income": (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.6),
}
# "business" is not declared: it lands in the release's "other" cell
_CATEGORIES = {"home_ownership": ("rent", "own", "mortgage"), "purpose": ("debt", "car", "home", "education")}
LOANS_RELEASE = ReleaseSpec(rows=Query(epsilon=1.0), columns={
    **{c: NumericColumn(edges=e, histogram=Query(epsilon=1.0)) for c, e in _EDGES.items()},
    **{c: CategoricalColumn(categories=k, histogram=Query(epsilon=1.0)) for c, k in _CATEGORIES.items()},
}, ood=Query(epsilon=1.0), query_space=True)
DRIFT = {"age": lambda x: x + 12, "annual_income": lambda x: x * 1.6, "credit_score": lambda x: x - 90}


def write_dp_reference(path: Path, rows: int = 1500, seed: int = 7, *, drifted: bool = False) -> Path:
    """The DP profile of the training data (``write_loans(rows=rows, seed=seed)``), as ``data.privacy`` releases it;
    ``drifted``: of that data shifted as ``write_inference_log(drifted=True)`` shifts it."""
    frame = generate_loans(rows, seed)
    for column, shift in (DRIFT.items() if drifted else ()):
        frame[column] = shift(frame[column])
    profile = release(frame, plan_release(LOANS_RELEASE), "sha256:test-training-data",
                      query_space(frame, LOANS_RELEASE))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_dict()))
    return path


def write_inference_log(path: Path, rows: int = 1000, seed: int = 21, *, drifted: bool = False,
                        clients: int = 10, end: datetime | None = None, low_share: float = 0.2) -> Path:
    """``rows`` predictions on fresh loan applications over the hour before ``end`` (default: now), from
    ``clients`` clients in turn; ``drifted`` shifts age, income and credit score."""
    rng = np.random.default_rng(seed)
    frame = generate_loans(rows, seed)[list(FEATURES)]
    for column, shift in (DRIFT.items() if drifted else ()):
        frame[column] = shift(frame[column])
    end = end or datetime.now(UTC)
    offsets = np.sort(rng.uniform(1, 3500, rows))[::-1]
    confidences = np.where(rng.random(rows) < low_share, rng.uniform(0.5, 0.6, rows), rng.uniform(0.6, 1.0, rows))
    with InferenceLogger(path) as log:
        for i, record in enumerate(frame.to_dict("records")):
            log.log(f"client-{i % clients}", {k: _plain(v) for k, v in record.items()}, int(rng.integers(0, 2)),
                    float(confidences[i]), timestamp=end - timedelta(seconds=float(offsets[i])))
    return path


def write_extraction_queries(path: Path, client: str = "attacker", searches: int = 3, steps: int = 30,
                             seed: int = 5, end: datetime | None = None) -> None:
    """A model-extraction client: bisection line searches between pairs of natural applications."""
    rng = np.random.default_rng(seed)
    natural = generate_loans(2 * searches, seed)[list(FEATURES)].to_dict("records")
    end = end or datetime.now(UTC)
    queries = []
    for start, stop in zip(natural[:searches], natural[searches:], strict=True):
        low, high = 0.0, 1.0
        for _ in range(steps):
            middle = (low + high) / 2
            queries.append({k: _plain(start[k] + (stop[k] - start[k]) * middle if k in _EDGES else start[k])
                            for k in FEATURES})
            low, high = (middle, high) if rng.random() < 0.5 else (low, middle)
    with InferenceLogger(path) as log:
        for i, features in enumerate(queries):  # in order, spread over the hour
            log.log(client, features, 1, 0.9, timestamp=end - timedelta(seconds=3500 - i * 3000 / len(queries)))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
