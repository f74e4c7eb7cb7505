"""The monitoring gates' inputs: DP profiles as drift references, inference-log windows, window bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.gates.data.dp_release import CategoricalColumn, NumericColumn, Query, ReleaseSpec, plan_release, release
from mlgate.gates.monitor.drift import OTHER, DriftPolicy, ReferenceProfile, check_drift, profile_from_sample
from mlgate.gates.monitor.monitoring import (
    check_drift_files,
    load_reference,
    load_window,
    reference_from_release,
    window_bounds,
)
from mlgate.trust.registry import flat_metrics
from tests.helpers import default_policy
from tests.monitoring_data import write_inference_log

pytestmark = pytest.mark.unit

RELEASE = {"version": 1, "dataset_digest": "sha256:d", "plan_digest": "sha256:p", "rows": 60, "epsilon": 2.0,
           "delta": 0.0, "queries": {}, "tool": "opendp", "columns": {
               "x": {"kind": "numeric", "edges": [0, 10, 20], "counts": [20, 30], "below": 4, "above": 6,
                     "missing": 3, "bounds": None, "mean": None},
               "c": {"kind": "categorical", "categories": ["a", "b"], "counts": [40, 15], "other": 5}}}


def test_a_dp_release_maps_to_cuts_and_counts():
    profile = reference_from_release(RELEASE)
    cuts, counts = profile.numeric["x"]
    assert cuts.tolist() == [np.nextafter(0.0, -1), np.nextafter(10.0, -1), np.nextafter(20.0, -1)]
    assert counts.tolist() == [4, 20, 30, 6]  # below, the bins, above; missing values left out
    assert profile.categorical["c"] == {"a": 40, "b": 15, OTHER: 5}
    assert profile.accuracy is None


def _release(frame, spec):
    """A real OpenDP release with negligible noise (ε = 60 per query), as a JSON round trip."""
    return json.loads(json.dumps(release(frame, plan_release(spec), "sha256:d").to_dict()))


def test_values_on_the_edges_are_binned_as_the_release_binned_them():
    """Integer values on integer edges: the release counts ``x == edge`` in the bin above; the mapping must
    too, or the same data would look shifted by one bin."""
    frame = pd.DataFrame({"term": np.random.default_rng(1).choice([12, 24, 36, 48, 60], 3000)})
    spec = ReleaseSpec(rows=Query(epsilon=60), columns={
        "term": NumericColumn(edges=(12, 24, 36, 48, 60, 61), histogram=Query(epsilon=60))})
    data = _release(frame, spec)
    mapped = check_drift(frame, reference_from_release(data), DriftPolicy(), "p")
    assert mapped.status is Status.PASSED
    assert mapped.metrics["columns"]["term"]["statistic"] < 0.01
    column = data["columns"]["term"]
    naive = ReferenceProfile({"term": (np.asarray(column["edges"], float),
                                       np.asarray([column["below"], *column["counts"], column["above"]], float))},
                             nulls={"term": 0.0})
    assert check_drift(frame, naive, DriftPolicy(), "p").metrics["columns"]["term"]["statistic"] > 0.15


@pytest.mark.parametrize(("business_share", "drifted"), [(0.2, False), (0.6, True)], ids=["same-share", "surge"])
def test_undeclared_categories_are_compared_through_the_other_cell(business_share, drifted):
    rng = np.random.default_rng(2)
    training = pd.DataFrame({"purpose": rng.choice(["car", "home", "business"], 3000, p=[0.4, 0.4, 0.2])})
    spec = ReleaseSpec(rows=Query(epsilon=60), columns={
        "purpose": CategoricalColumn(categories=("car", "home"), histogram=Query(epsilon=60))})
    reference = reference_from_release(_release(training, spec))
    rest = (1 - business_share) / 2
    window = pd.DataFrame({"purpose": rng.choice(["car", "home", "business"], 2000, p=[rest, rest, business_share])})
    result = check_drift(window, reference, DriftPolicy(), "p")
    assert (result.metrics["drifted_columns"] == ["purpose"]) is drifted
    assert result.metrics["columns"]["purpose"]["categories"] == 3  # car, home and the other cell


def test_load_reference_reads_each_kind(tmp_path):
    sample = pd.DataFrame({"x": np.arange(200.0)})
    paths = {"dp": tmp_path / "dp.json", "profile": tmp_path / "profile.json", "csv": tmp_path / "sample.csv"}
    paths["dp"].write_text(json.dumps(RELEASE))
    paths["profile"].write_text(json.dumps(profile_from_sample(sample, bins=5).to_dict()))
    sample.to_csv(paths["csv"], index=False)
    assert set(load_reference(paths["dp"]).numeric) == {"x"}
    assert load_reference(paths["profile"]).numeric["x"][1].sum() == 200
    assert load_reference(paths["csv"])["x"].tolist() == sample["x"].tolist()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("r.json", "{not json", "not valid JSON"),
    ("r.json", "[1, 2]", "expected a reference profile object"),
    ("r.json", '{"rows": 3}', "neither a DP profile"),
    ("r.json", json.dumps({**RELEASE, "version": 9}), "not a valid mlgate DP profile"),
    ("r.json", '{"numeric": {"x": {"cuts": [1, 0], "counts": [1, 1, 1]}}}', "strictly increasing"),
    ("r.txt", "x", "expected CSV or Parquet"),
    ("missing.json", None, "cannot read the reference"),
], ids=["bad-json", "not-object", "unknown-kind", "dp-version", "bad-cuts", "unknown-suffix", "missing"])
def test_a_bad_reference_is_an_input_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(GateInputError, match=message):
        load_reference(path)


def test_a_window_holds_the_records_between_its_bounds(tmp_path):
    end = datetime(2026, 3, 1, 12, tzinfo=UTC)
    log = write_inference_log(tmp_path / "log.jsonl", rows=300, end=end)
    whole = load_window(log)
    last_half_hour = load_window(log, end - timedelta(minutes=30), end)
    assert len(whole) == 300
    assert 0 < len(last_half_hour) < 300
    assert last_half_hour["timestamp"].min() >= pd.Timestamp(end - timedelta(minutes=30))
    assert {"client_id", "confidence", "age", "purpose"} <= set(whole.columns)
    table = tmp_path / "current.csv"
    whole.drop(columns=["timestamp"]).to_csv(table, index=False)
    assert len(load_window(table, end - timedelta(minutes=1), end)) == 300  # a table is taken whole


@pytest.mark.parametrize(("start", "end", "expected"), [
    (None, None, ("2026-03-01T11:00:00+00:00", "2026-03-01T12:00:00+00:00")),
    (None, "2026-03-01T08:00:00+02:00", ("2026-03-01T05:00:00+00:00", "2026-03-01T06:00:00+00:00")),
    ("2026-03-01T00:00:00Z", None, ("2026-03-01T00:00:00+00:00", "2026-03-01T12:00:00+00:00")),
], ids=["default-last-hour", "given-end", "given-start"])
def test_window_bounds(start, end, expected):
    bounds = window_bounds(start, end, default_end=datetime(2026, 3, 1, 12, tzinfo=UTC), hours=1)
    assert tuple(b.isoformat() for b in bounds) == expected


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-03-01T00:00:00", None, "no time zone"),
    ("yesterday", None, "not an ISO-8601"),
    ("2026-03-01T13:00:00Z", None, "the window is empty"),
], ids=["naive", "unparseable", "empty"])
def test_bad_window_bounds_are_input_errors(start, end, message):
    with pytest.raises(GateInputError, match=message):
        window_bounds(start, end, default_end=datetime(2026, 3, 1, 12, tzinfo=UTC), hours=1)


def test_nested_metrics_are_flattened_for_mlflow():
    metrics = {"rows": 10, "drifted_columns": ["a"], "columns": {"a b/c": {"psi": 0.3, "drifted": True,
                                                                         "test": "ks"}},
               "p": float("nan")}
    assert flat_metrics("mlgate.monitor.drift", metrics) == [
        ("mlgate.monitor.drift.rows", 10.0), ("mlgate.monitor.drift.columns.a b_c.psi", 0.3),
        ("mlgate.monitor.drift.columns.a b_c.drifted", 1.0)]


def test_noise_only_cells_are_merged_and_counts_shrink_to_their_effective_size():
    """Laplace scale 10: cells below 10·ln(500) ≈ 62 may be pure noise (here the phantom tail 25 and 3)."""
    data = json.loads(json.dumps(RELEASE))
    data["queries"] = {"x.histogram": {"mechanism": "laplace", "scale": 10.0, "epsilon": 0.1, "delta": 0.0},
                       "c.histogram": {"mechanism": "laplace", "scale": 10.0, "epsilon": 0.1, "delta": 0.0}}
    data["columns"]["x"].update(edges=[0, 10, 20, 30], below=0, counts=[400, 300, 25], above=3)
    data["columns"]["c"].update(counts=[400, 40], other=300)
    profile = reference_from_release(data)
    cuts, counts = profile.numeric["x"]
    assert cuts.tolist() == [np.nextafter(10.0, -1)]  # below into [0, 10); [20, 30) and above into [10, 20)
    shrink = 1 / (1 + 2 * 2 * 10.0**2 / 728)  # two cells, Laplace variance 2b², 728 rows
    assert counts.tolist() == pytest.approx([400 * shrink, 328 * shrink])
    shrink = 1 / (1 + 2 * 2 * 10.0**2 / 740)
    assert profile.categorical["c"] == pytest.approx({"a": 400 * shrink, OTHER: 340 * shrink})  # "b" may be noise


def test_the_drift_history_makes_drift_block_once_it_persists(tmp_path):
    rng = np.random.default_rng(21)
    reference, history = tmp_path / "reference.csv", tmp_path / "history.jsonl"
    pd.DataFrame({"x": rng.standard_normal(5000)}).to_csv(reference, index=False)
    policy = parse_policy(default_policy())
    statuses = []
    for hour, shift in enumerate((0.0, 0.4, 0.0, 0.4)):
        window = tmp_path / f"window-{hour}.csv"
        pd.DataFrame({"x": rng.standard_normal(2000) + shift}).to_csv(window, index=False)
        statuses.append(check_drift_files(window, reference, policy, history=history))
    assert [r.status for r in statuses] == [Status.PASSED, Status.PASSED, Status.PASSED, Status.BLOCKED]
    persistent = [f for f in statuses[-1].findings if f.id == "monitor.drift.persistent"]
    assert persistent and "window-1.csv" in persistent[0].message and "window-3.csv" in persistent[0].message
    assert len(history.read_text().splitlines()) == 4


def test_a_damaged_drift_history_is_an_error_not_a_clean_slate(tmp_path):
    rng = np.random.default_rng(22)
    reference, history, window = tmp_path / "reference.csv", tmp_path / "history.jsonl", tmp_path / "w.csv"
    pd.DataFrame({"x": rng.standard_normal(1000)}).to_csv(reference, index=False)
    pd.DataFrame({"x": rng.standard_normal(1000)}).to_csv(window, index=False)
    history.write_text("{not json\n")
    policy = parse_policy(default_policy())
    with pytest.raises(GateInputError, match="history.jsonl:1"):
        check_drift_files(window, reference, policy, history=history)
