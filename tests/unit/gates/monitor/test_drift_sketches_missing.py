"""Window sketches count each column's missing values (ADR 0059): per batch, across merged partitions whose
columns differ (issue 20), through serialisation, and the streamed path decides as the in-memory one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.gates.monitor.monitoring import check_drift_files, check_drift_sketched
from mlgate.gates.monitor.policies import DriftPolicy
from mlgate.gates.monitor.sketches import WindowSketch, check_drift_sketch, sketch_batches
from tests.helpers import default_policy

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
CONFIG = DriftPolicy(demote_after=1, of_last=1)


def table(rows: int, seed: int, null_share: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"age": rng.normal(40, 10, rows), "score": rng.integers(300, 850, rows).astype(float),
                         "plan": rng.choice(["basic", "plus", "pro"], rows, p=(0.5, 0.3, 0.2)).astype(object)})
    for column in data:
        data.loc[rng.random(rows) < null_share, column] = None
    return data


def sketch(data: pd.DataFrame, parts: int = 1) -> WindowSketch:
    merged = WindowSketch()
    whole = pa.Table.from_pandas(data, preserve_index=False)
    for rows in np.array_split(np.arange(len(data)), parts):
        merged.merge(sketch_batches(whole.slice(int(rows[0]), len(rows)).to_batches(max_chunksize=700)))
    return merged


def test_update_counts_nulls_and_nan_and_every_column_covers_every_row():
    batch = pa.record_batch({"x": pa.array([1.0, None, float("nan"), 4.0]), "c": pa.array(["a", None, "b", None]),
                             "gone": pa.nulls(4)})
    sketched = sketch_batches([batch, batch])
    assert sketched.nulls == {"x": 4, "c": 4, "gone": 8} and sketched.rows == 8
    assert sketched.values("x") == 4 and sketched.values("gone") == 0 and "gone" not in sketched.categorical


def test_a_column_a_partition_lacks_is_missing_in_all_its_rows():
    """Issue 20: merged silently, the column's counts covered fewer rows than ``rows``."""
    full, short = table(3000, 1), table(2000, 2).drop(columns=["plan"])
    merged = sketch(full).merge(sketch(short))
    assert merged.rows == 5000
    assert merged.nulls["plan"] == full["plan"].isna().sum() + 2000
    assert merged.nulls["age"] == full["age"].isna().sum() + short["age"].isna().sum()
    other_way = sketch(short).merge(sketch(full))
    assert other_way.nulls == merged.nulls and WindowSketch.from_dict(merged.to_dict()).nulls == merged.nulls


def test_a_window_whose_partitions_drop_a_column_is_drift():
    """Two of four partitions without ``plan``: half the window misses it; judged, that is severe drift."""
    reference = sketch(table(20_000, 3), 3)
    window = WindowSketch()
    for part in range(4):
        data = table(1000, 10 + part)
        window.merge(sketch(data.drop(columns=["plan"]) if part % 2 else data))
    result = check_drift_sketch(window, reference, CONFIG, DIGEST)
    assert result.status is Status.BLOCKED and result.metrics["drifted_columns"] == ["plan"]
    assert result.metrics["columns"]["plan"]["missing"]["severe"]


@pytest.mark.parametrize("null_type", [True, False], ids=["arrow-null-type", "typed-nulls"])
def test_a_column_sketched_as_all_null_blocks(null_type):
    reference = sketch(table(20_000, 4))
    data = table(3000, 5)
    batch = pa.Table.from_pandas(data, preserve_index=False)
    empty = pa.nulls(len(data)) if null_type else pa.nulls(len(data), pa.float64())
    window = sketch_batches(batch.set_column(0, "age", empty).to_batches())
    result = check_drift_sketch(window, reference, CONFIG, DIGEST)
    assert result.status is Status.BLOCKED and result.metrics["drifted_columns"] == ["age"]
    assert result.metrics["columns"]["age"]["tested"] is False  # no values to test, the missing share decides


def test_healthy_missing_values_pass():
    result = check_drift_sketch(sketch(table(5000, 6), 2), sketch(table(20_000, 7), 3), CONFIG, DIGEST)
    assert result.status is Status.PASSED and result.metrics["drifted_columns"] == []
    assert all(c["missing"]["in_family"] for c in result.metrics["columns"].values())


@pytest.mark.parametrize("damage", ["no-nulls", "too-few", "too-many", "uncounted"])
def test_a_sketch_whose_null_counts_do_not_add_up_is_refused(damage):
    data = sketch(table(2000, 8)).to_dict()
    if damage == "no-nulls":
        del data["nulls"]
    elif damage == "uncounted":
        del data["nulls"]["age"]
    else:
        data["nulls"]["age"] += -1 if damage == "too-few" else 1
    with pytest.raises(GateInputError, match="made before ADR 0059" if damage == "no-nulls" else "age"):
        WindowSketch.from_dict(data)


@pytest.mark.parametrize("null_share", [0.05, 0.5], ids=["healthy", "half-null"])
def test_the_streamed_path_sees_the_missing_shares_the_in_memory_path_sees(tmp_path, null_share):
    reference, window = tmp_path / "reference.parquet", tmp_path / "window.parquet"
    pq.write_table(pa.Table.from_pandas(table(20_000, 9), preserve_index=False), reference)
    pq.write_table(pa.Table.from_pandas(table(4000, 10, null_share), preserve_index=False), window, row_group_size=900)
    data = default_policy()
    data["gates"]["monitor.drift"].update(demote_after=1, of_last=1)
    policy = parse_policy(data)
    streamed = check_drift_sketched(window, reference, policy, engine="arrow", batch_rows=500)
    in_memory = check_drift_files(window, reference, policy)
    assert streamed.metrics["drifted_columns"] == in_memory.metrics["drifted_columns"] == (
        [] if null_share < 0.1 else ["age", "plan", "score"])
    for column in ("age", "plan", "score"):
        a, b = (r.metrics["columns"][column]["missing"] for r in (streamed, in_memory))
        assert (a["missing"], a["rows"], a["share"], a["reference_missing"], a["reference_share"]) == (
            b["missing"], b["rows"], b["share"], b["reference_missing"], b["reference_share"])
        assert a["p_value"] == b["p_value"] and a["drifted"] == b["drifted"]
