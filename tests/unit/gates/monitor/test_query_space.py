"""The query space a release may publish beside its DP profile (ADR 0067): a reference sample's joint structure
without its rows, kept as JSON under the release's attested digest. Data generated here: correlated Gaussians,
and the loans data released as data.privacy releases it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.data.dp_release import NumericColumn, Query, ReleaseSpec
from mlgate.gates.data.privacy import PROFILE_METRIC, PrivacyPolicy, check_privacy
from mlgate.gates.data.privacy_ledger import Budget, Budgets, SqlLedger
from mlgate.gates.monitor.drift import profile_from_sample
from mlgate.gates.monitor.extraction import (
    CDF_POINTS,
    space_from_profile,
    space_from_record,
    space_from_sample,
    space_record,
)
from mlgate.gates.monitor.monitoring import reference_from_release

pytestmark = pytest.mark.unit

COLUMNS = [f"x{i}" for i in range(12)]


def correlated(rows: int, seed: int) -> pd.DataFrame:
    """Three hidden factors with loadings of either sign: features that move together, but not all one way (the
    one direction a profile can assume, ADR 0066)."""
    loadings = np.random.default_rng(99).normal(size=(3, len(COLUMNS)))
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, 3)) @ loadings + 0.3 * rng.normal(size=(rows, len(COLUMNS))),
                        columns=COLUMNS)


def kept(record: dict) -> dict:
    """``record`` as a file holds it."""
    return json.loads(json.dumps(record))


def test_a_kept_query_space_judges_as_its_sample_does_and_sees_what_marginals_cannot():
    reference = correlated(3000, 0)
    space = space_from_record(kept(space_record(reference, COLUMNS)), COLUMNS, 0.99)
    sample = space_from_sample(reference, COLUMNS, 0.99)
    marginal = space_from_profile(profile_from_sample(reference), COLUMNS, 0.99)
    held_out = correlated(3000, 1).to_numpy()
    # a thief sampling each feature within its own spread: typical feature by feature, correlations broken
    x = reference.to_numpy()
    thief = np.random.default_rng(2).normal(x.mean(axis=0), x.std(axis=0), (1000, len(COLUMNS)))
    for rows in (held_out, thief):
        assert (space.ood(rows) == sample.ood(rows)).all()
    assert space.ood(held_out).mean() <= 0.025 and marginal.ood(held_out).mean() <= 0.025
    assert space.ood(thief).mean() > 0.9 and marginal.ood(thief).mean() < 0.1


def test_each_cdf_is_kept_at_a_bounded_number_of_points_with_the_range():
    values = np.random.default_rng(3).lognormal(size=20000)
    record = space_record(pd.DataFrame({"a": values, "b": -values}), ["a", "b"])
    for points, shares in record["cdfs"]:
        assert len(points) <= CDF_POINTS < 20000 and len(points) == len(shares)
    points, shares = record["cdfs"][0]
    assert (points[0], points[-1]) == (values.min(), values.max())
    assert 0 < shares[0] < 0.001 and 0.999 < shares[-1] < 1
    few = space_record(pd.DataFrame({"a": np.arange(200) % 7, "b": np.arange(200) % 5}), ["a", "b"])
    assert [len(p) for p, _ in few["cdfs"]] == [7, 5]  # a discrete feature keeps its every value


def test_thresholds_are_kept_only_at_quantiles_the_rows_can_bound():
    assert sorted(space_record(correlated(150, 4), COLUMNS)["thresholds"]) == ["0.95", "0.98", "0.99"]
    assert "0.999" in space_record(correlated(1000, 4), COLUMNS)["thresholds"]


def mutated(change) -> dict:
    record = kept(space_record(correlated(300, 5), COLUMNS))
    change(record)
    return record


@pytest.mark.parametrize("change", [
    lambda r: r.update(version=2),
    lambda r: r.pop("basis"),
    lambda r: r.update(columns=[*r["columns"][:-1], r["columns"][0]]),
    lambda r: r["cdfs"][0][0].reverse(),
    lambda r: r["cdfs"][0][1].__setitem__(0, 0.0),
    lambda r: r["cdfs"][1][1].__setitem__(-1, 1.0),
    lambda r: r["cdfs"].pop(),
    lambda r: r.update(basis=[row[:1] + row for row in r["basis"]] if len(r["basis"][0]) >= len(COLUMNS)
                       else r["basis"][:-1]),
    lambda r: r.update(center=r["center"][:-1]),
    lambda r: r["thresholds"].update({"0.99": [-1.0, 2.0]}),
    lambda r: r["thresholds"].update({"0.99": [1.0]}),
    lambda r: r["center"].__setitem__(0, "far"),
], ids=["version", "no-basis", "column-twice", "points-decreasing", "share-zero", "share-one", "cdf-missing",
        "basis-shape", "center-shape", "negative-threshold", "one-threshold", "center-not-a-number"])
def test_a_malformed_query_space_is_refused(change):
    with pytest.raises(GateInputError, match="query space"):
        space_from_record(mutated(change), COLUMNS, 0.99)


def test_a_quantile_it_was_not_calibrated_at_or_a_window_without_its_columns_is_refused():
    record = kept(space_record(correlated(300, 6), COLUMNS))
    with pytest.raises(GateInputError, match="calibrated at ood_quantile"):
        space_from_record(record, COLUMNS, 0.97)
    with pytest.raises(GateInputError, match=r"lacks the numeric feature columns \['x11'\]"):
        space_from_record(record, COLUMNS[:-1], 0.99)


def policy(query_space: bool) -> PrivacyPolicy:
    return PrivacyPolicy(budgets=Budgets(default=Budget(epsilon=10.0, delta=1e-5)), release=ReleaseSpec(
        rows=Query(epsilon=0.5), query_space=query_space,
        columns={c: NumericColumn(edges=(-3, -1, 0, 1, 3), histogram=Query(epsilon=0.5)) for c in COLUMNS[:4]}))


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def test_a_release_asked_for_its_query_space_publishes_it_under_the_signed_digest(ledger):
    frame = correlated(400, 7)
    result, profile = check_privacy(frame, "sha256:" + "ab" * 32, policy(True), ledger, "p", "alice")
    assert result.status is Status.PASSED and profile is not None and profile.query_space is not None
    assert profile.query_space["columns"] == COLUMNS[:4] and result.metrics["query_space_rows"] == 400
    written = kept(profile.to_dict())
    assert result.metrics[PROFILE_METRIC] == json_digest(written)  # the attested digest covers the space
    space = space_from_profile(reference_from_release(written), COLUMNS[:4], 0.99)
    assert space.columns == tuple(COLUMNS[:4]) and space.basis is not None  # joint structure, not marginals
    written["query_space"]["thresholds"]["0.99"][0] *= 100  # a raised threshold is another reference
    assert json_digest(written) != result.metrics[PROFILE_METRIC]
    _, plain = check_privacy(frame, "sha256:" + "cd" * 32, policy(False), ledger, "p", "alice")
    assert plain is not None and plain.query_space is None and "query_space" not in kept(plain.to_dict())


def test_a_query_space_that_cannot_be_built_charges_nothing(ledger):
    digest = "sha256:" + "ef" * 32
    with pytest.raises(GateInputError, match="the query space cannot be released: .* 60 complete rows"):
        check_privacy(correlated(60, 8), digest, policy(True), ledger, "p", "alice")
    assert ledger.spent(digest) == (0.0, 0.0)
