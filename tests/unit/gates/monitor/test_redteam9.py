"""Red team 9 against the query space a DP release publishes (5307d1e, ADR 0067): what a reader of the release
(A3 reads MLflow) learns from it, and what the gate judges with it. Data generated here (correlated Gaussians,
the demo loans); the numbers quoted come from docs/notes/2026-12-06-s9/redteam9.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import load_policy
from mlgate.core.results import Status, Subject
from mlgate.demo.dataset import generate_loans
from mlgate.gates.data.dp_release import NumericColumn, Query, ReleaseSpec
from mlgate.gates.data.privacy import PrivacyPolicy, check_privacy, query_space
from mlgate.gates.data.privacy_ledger import Budget, Budgets, SqlLedger
from mlgate.gates.monitor.extraction import ExtractionState, space_from_profile, space_from_record, space_record
from mlgate.gates.monitor.monitoring import reference_from_release
from mlgate.gates.monitor.queries import check_queries
from tests.monitoring_data import LOANS_RELEASE
from tests.unit.gates.monitor.test_query_space import COLUMNS, correlated

pytestmark = pytest.mark.unit

KEYS, PER_WINDOW, WINDOWS = 5, 4, 15  # 300 thief queries over 15 windows, as the benchmark paces them


def published_release(tmp_path: Path, frame: pd.DataFrame) -> dict:
    """The profile ``data.privacy`` releases, as its operator logs it to MLflow (``dp_profile.json``)."""
    policy = PrivacyPolicy(budgets=Budgets(default=Budget(epsilon=10.0, delta=1e-5)), release=ReleaseSpec(
        rows=Query(epsilon=0.5), query_space=True,
        columns={c: NumericColumn(edges=(-6, -2, 0, 2, 6), histogram=Query(epsilon=0.5)) for c in COLUMNS}))
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        result, profile = check_privacy(frame, "sha256:" + "ab" * 32, policy, ledger, "p", "alice")
    finally:
        ledger.close()
    assert result.status is Status.PASSED and profile is not None
    return json.loads(json.dumps(profile.to_dict()))


def copula_thief(record: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Queries drawn from the Gaussian the record's basis and centre describe, mapped through its CDFs: the
    joint structure of the training rows, no row of them."""
    from scipy.special import ndtr

    basis, center = np.asarray(record["basis"]), np.asarray(record["center"])
    norms = np.linalg.norm(basis, axis=0)  # the basis is the principal directions scaled to unit variance
    z = center + (rng.standard_normal((n, basis.shape[1])) / norms) @ (basis / norms).T
    return np.column_stack([np.interp(ndtr(z[:, j]), shares, points)
                            for j, (points, shares) in enumerate(record["cdfs"])])


def marginal_thief(record: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """What a reader of marginals alone can do: each feature from its own CDF, independently."""
    return np.column_stack([np.interp(rng.random(n), shares, points) for points, shares in record["cdfs"]])


def flagged_thief_keys(queries: np.ndarray, naturals: np.ndarray, space) -> list[str]:
    """The thief's keys the query watch flags (5-minute windows, cumulative OOD evidence), naturals beside."""
    config = load_policy(Path(__file__).parents[4] / "policies" / "default.yaml").section("monitor.queries")
    state, start, flagged = ExtractionState(), datetime(2026, 1, 1, tzinfo=UTC), set()
    per = KEYS * PER_WINDOW
    for w in range(WINDOWS):
        rows = [(f"key-{i % KEYS}", q) for i, q in enumerate(queries[w * per:(w + 1) * per])]
        rows += [(f"user-{i % 10}", q) for i, q in enumerate(naturals[w * 40:(w + 1) * 40])]
        window = pd.DataFrame([q for _, q in rows], columns=list(space.columns))
        window.insert(0, "client_id", [c for c, _ in rows])
        window.insert(0, "timestamp", [start + timedelta(minutes=5 * w, seconds=i) for i in range(len(rows))])
        result = check_queries(window, config, "p", subject=Subject("dataset", f"w-{w}", "x"), space=space,
                               state=state, per_window=False)
        flagged |= {c for c in result.metrics["flagged_clients"] if c.startswith("key-")}
    return sorted(flagged)


@pytest.mark.xfail(strict=True, reason=(
    "A3 reads the release from MLflow (the operator logs dp_profile.json with its query_space) and samples the "
    "Gaussian copula its basis, centre and CDFs describe: in distribution by construction. benchmarks victims, "
    "--reference attested, 5 keys x 8/h, 300 queries (/tmp/rt9/copula.py): breast cancer pool 0.7 % OOD "
    "(naturals 2.2 %), never flagged, Knockoff surrogate beyond trivial at 9 queries, final 0.934 (Copycat "
    "0.956); digits 0.0 % OOD, never flagged, 0.8 at 60 queries, final 0.904 (Copycat 0.910). The marginal "
    "thief, all a reader of marginals can do: 99.8 % / 48 % OOD, flagged at 7 / 27 queries (surrogate 0.67 / "
    "0.37 then). No OOD statistic can see draws from "
    "the model it is built on: the remedy is to keep the space where A3 cannot read it (published to "
    "monitoring's kept folder only, its digest signed; never logged to MLflow) or to release it with DP noise "
    "- a decision for ADR 0067"))
def test_a_thief_who_reads_the_published_release_is_flagged(tmp_path):
    from sklearn.linear_model import LogisticRegression

    training, held_out = correlated(3000, 0), correlated(3000, 1).to_numpy()
    labels = (training.to_numpy() @ np.random.default_rng(3).normal(size=len(COLUMNS)) > 0).astype(int)
    victim = LogisticRegression(max_iter=1000).fit(training.to_numpy(), labels)
    published = published_release(tmp_path, training)
    space = space_from_profile(reference_from_release(published), COLUMNS, 0.99)
    rng, n = np.random.default_rng(4), KEYS * PER_WINDOW * WINDOWS
    assert flagged_thief_keys(marginal_thief(published["query_space"], n, rng), held_out, space)  # marginals: seen
    stolen = copula_thief(published["query_space"], n, rng)
    surrogate = LogisticRegression(max_iter=1000).fit(stolen, victim.predict(stolen))
    assert np.mean(surrogate.predict(held_out) == victim.predict(held_out)) > 0.9  # the theft works
    assert flagged_thief_keys(stolen, held_out, space)


def added_row_disclosed(before: dict, after: dict) -> list[str]:
    """Columns whose value for the one row ``after`` adds over ``before`` the two records pin down exactly
    (named, never the value): a kept point's mid-rank count moves by 1/2 exactly when the new row equals it."""
    out = []
    for column, (p1, s1), (p2, s2) in zip(before["columns"], before["cdfs"], after["cdfs"], strict=True):
        common = np.intersect1d(p1, p2)
        moved = np.interp(common, p2, s2) * after["rows"] - np.interp(common, p1, s1) * before["rows"]
        if np.isclose(moved, 0.5).sum() == 1:
            out.append(column)
    return out


@pytest.mark.xfail(strict=True, reason=(
    "Differencing two releases of the same data, one row added (a retraining after one new customer): the "
    "exact row count and the mid-rank CDF at <= 257 exact training values per column pin the added row's "
    "value in every column with few distinct values. Demo loans, 1,500 rows, default-like release: age, "
    "term_months, employment_years, debt_to_income exact; annual_income within ~3,200, loan_amount ~600, "
    "credit_score ~15 - one linked row, though the policy says 'no row'. The same records publish those "
    "columns' exact histograms beside the ε-charged DP ones and the exact min/max outside the declared edges. "
    "Not fixable by rounding; the remedy is the same as for the copula thief (the space not where A3 reads) "
    "or a DP space - a decision for ADR 0067"))
def test_two_releases_do_not_disclose_the_row_between_them():
    frame = generate_loans(1500, 7)
    newcomer = frame.sample(1, random_state=3)
    before = query_space(frame, LOANS_RELEASE)
    after = query_space(pd.concat([frame, newcomer], ignore_index=True), LOANS_RELEASE)
    assert before is not None and after is not None
    assert added_row_disclosed(before, after) == []


def test_a_window_column_the_query_space_does_not_score_is_refused_and_the_default_release_scores_all():
    """The default release left out employment_years, a feature of the demo model: against its profile the gate
    errored (the calibration does not cover it); against its query space it scored the other six and left that
    column to the thief, any value in distribution (5307d1e)."""
    from mlgate.demo.dataset import FEATURES
    from mlgate.gates.monitor.queries import feature_columns

    policy = load_policy(Path(__file__).parents[4] / "policies" / "default.yaml")
    config, spec = policy.section("monitor.queries"), policy.section("data.privacy").release
    frame, window = generate_loans(1500, 1), generate_loans(50, 2)[list(FEATURES)]
    columns = feature_columns(window, config)
    partial = space_record(frame, [c for c in columns if c != "employment_years"])
    with pytest.raises(GateInputError, match=r"does not score .*\['employment_years'\]"):
        space_from_record(json.loads(json.dumps(partial)), columns, config.ood_quantile)
    shipped = query_space(frame, spec)
    assert shipped is not None
    assert sorted(space_from_record(shipped, columns, config.ood_quantile).columns) == sorted(columns)


@pytest.mark.xfail(strict=True, reason=(
    "A2 adds to the training rows a few rows like the queries a marginal thief will send (each feature drawn "
    "alone): the joint threshold is the level at which at most 1 - ood_quantile (1 %) of the rows are out, so "
    "once the poison is more than 1 % of the rows it sets the threshold. Synthetic 12 features, 3,000 rows: the "
    "thief's queries OOD 99.7 % clean, 48 % with 1 % poison, 38 % with 2 %, 10 % with 5 % (naturals 1.4 % -> "
    "0.9 %). Benchmark victims, --reference attested, marginal thief (/tmp/rt9/poison_bench.py): breast cancer "
    "flagged at 7 queries clean and with 2 % poison (6 rows), at 60 with 5 % (17 rows), when its surrogate "
    "already agreed 0.93 (0.8 beyond trivial at 11); digits at 27 clean, 207 with 5 % (surrogate 0.75). Remedy "
    "(a calibration decision, ADR 0058): thresholds from the body of the held-out statistics, which rows in the "
    "top few per cent barely move - measured: a scaled chi-square fit on the median and 90th percentile resists "
    "5 % poison but lets 2.6 % / 2.3 % (max 4.4 / 3.3 %) of naturals out; or a reference from rows A2 does not "
    "influence"))
def test_a_few_poisoned_training_rows_do_not_open_the_space_to_the_marginal_thief():
    training, held_out = correlated(3000, 0), correlated(3000, 1).to_numpy()
    clean = space_record(training, COLUMNS)
    poison = pd.DataFrame(marginal_thief(clean, 60, np.random.default_rng(7)), columns=COLUMNS)  # 2 % of the rows
    poisoned = space_from_record(json.loads(json.dumps(space_record(pd.concat([training, poison]), COLUMNS))),
                                 COLUMNS, 0.99)
    assert poisoned.ood(held_out).mean() <= 0.025  # naturals stay in
    assert poisoned.ood(marginal_thief(clean, 2000, np.random.default_rng(8))).mean() > 0.9
