"""``data.privacy``: what a DP reference profile costs in time and accuracy, and how fast the ledger spends.

Generates a table (1,000,000 rows; 100,000 with ``--quick``) with a numeric and a categorical column and
times mlgate's OpenDP release (plan + release) against the exact, non-private profile computed with
pandas/numpy (the reference: what monitoring would keep without DP). Then, per ε, it releases the
histogram repeatedly and compares the measured error of the noisy counts with the noise scale OpenDP
calibrated (E|noise| of discrete Laplace with scale t is 2p/(1-p²), p = e^(-1/t)). Last, it times ledger spends
on SQLite and, when reachable, on PostgreSQL (``MLGATE_TEST_PG``, default postgresql://postgres@127.0.0.1:5432).

    .venv/bin/python benchmarks/dp_release.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

import numpy as np
import pandas as pd

from mlgate.gates.data.dp_release import CategoricalColumn, NumericColumn, Query, ReleaseSpec, plan_release, release
from mlgate.gates.data.privacy_ledger import Budget, SqlLedger

EDGES = tuple(float(e) for e in range(0, 100_001, 10_000))
REGIONS = ("north", "south", "east", "west")


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"income": rng.gamma(4.0, 9000.0, rows),
                         "region": rng.choice([*REGIONS, "other"], rows, p=[.35, .3, .2, .1, .05])})


def spec(epsilon: float) -> ReleaseSpec:
    return ReleaseSpec(rows=Query(epsilon=epsilon), columns={
        "income": NumericColumn(edges=EDGES, bounds=(0, 100_000), histogram=Query(epsilon=epsilon),
                                mean=Query(epsilon=epsilon)),
        "region": CategoricalColumn(categories=REGIONS, histogram=Query(epsilon=epsilon))})


def exact_profile(frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    cells = np.bincount(np.searchsorted(EDGES, frame["income"], side="right"), minlength=len(EDGES) + 1)
    frame["region"].value_counts()
    return cells, float(frame["income"].clip(0, 100_000).mean())


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def time_table(frame: pd.DataFrame) -> None:
    exact_s, _ = timed(lambda: exact_profile(frame))
    plan_s, plan = timed(lambda: plan_release(spec(1.0)))
    release_s, _ = timed(lambda: release(frame, plan, "sha256:bench"))
    print(f"\nprofile of {len(frame):,} rows (2 columns, 10 bins + 4 categories, best of 3)")
    print(f"{'what':<28}{'seconds':>10}{'ratio to exact':>16}")
    for name, seconds in [("exact pandas/numpy (ref)", exact_s), ("mlgate plan (no data)", plan_s),
                          ("mlgate release", release_s), ("mlgate plan + release", plan_s + release_s)]:
        print(f"{name:<28}{seconds:>10.3f}{seconds / exact_s:>16.1f}")


def error_table(frame: pd.DataFrame, repeats: int) -> None:
    cells, mean = exact_profile(frame)
    print(f"\nerror of the released histogram (11 cells x {repeats} releases) and mean, per ε per query")
    print(f"{'epsilon':>8}{'scale':>8}{'E|noise|':>10}{'mean|err|':>11}{'ratio':>7}{'max|err|':>10}"
          f"{'|err| of mean':>15}")
    for epsilon in (0.1, 0.5, 1.0, 5.0):
        plan = plan_release(spec(epsilon))
        errors, mean_errors = [], []
        for _ in range(repeats):
            column = release(frame, plan, "sha256:bench").columns["income"]
            noisy = np.array([column.below, *column.counts, column.above])
            errors.append(noisy - cells[:len(noisy)])
            mean_errors.append(column.mean - mean)
        errors = np.abs(np.concatenate(errors))
        scale = plan.queries["income.histogram"].scale
        p = np.exp(-1 / scale)
        expected = 2 * p / (1 - p * p)  # mean |noise| of discrete Laplace with this scale
        print(f"{epsilon:>8}{scale:>8.2f}{expected:>10.2f}{errors.mean():>11.2f}{errors.mean() / expected:>7.2f}"
              f"{errors.max():>10.0f}{np.abs(mean_errors).mean():>15.3f}")


def ledger_table(spends: int) -> None:
    print(f"\nledger: {spends} sequential spends (one transaction with a row lock each)")
    print(f"{'backend':<12}{'spends/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("sqlite", f"sqlite:///{tmp}/ledger.db", None)]
        dsn = os.environ.get("MLGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
        try:
            import psycopg

            name = f"mlgate_ledger_bench_{uuid.uuid4().hex[:8]}"
            admin = psycopg.connect(f"{dsn}/postgres", autocommit=True)
            admin.execute(f"CREATE DATABASE {name}")
            backends.append(("postgresql", f"{dsn.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}",
                             (admin, name)))
        except Exception as exc:  # noqa: BLE001
            print(f"{'postgresql':<12}  skipped: {type(exc).__name__}")
        for backend, url, cleanup in backends:
            ledger = SqlLedger(url)
            start = time.perf_counter()
            for _ in range(spends):
                ledger.spend("sha256:bench", 0.001, 0.0, "bench", "bench", budget=Budget(epsilon=1e9))
            print(f"{backend:<12}{spends / (time.perf_counter() - start):>10.0f}")
            ledger.close()
            if cleanup:
                admin, name = cleanup
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, fewer repeats")
    args = parser.parse_args()
    frame = make_frame(100_000 if args.quick else 1_000_000)
    time_table(frame)
    error_table(frame.head(100_000), repeats=20 if args.quick else 100)
    ledger_table(100 if args.quick else 500)


if __name__ == "__main__":
    main()
