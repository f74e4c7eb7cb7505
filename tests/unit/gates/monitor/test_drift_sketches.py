"""monitor.drift over merged DataSketches profiles against the in-memory gate, on data that fits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlgate.gates.monitor.drift import check_drift, profile_from_sample
from mlgate.gates.monitor.policies import DriftPolicy
from mlgate.gates.monitor.sketches import (
    WindowSketch,
    check_drift_sketch,
    rank_error,
    reference_profile,
    sketch_batches,
)

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
CONFIG = DriftPolicy(demote_after=1, of_last=1)


def frame(rows: int, seed: int, shift: float = 0.0, scale: float = 1.0, weights=(0.4, 0.3, 0.2, 0.1)):
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40 + shift * 10, 10, rows),
        "income": rng.lognormal(10, 0.5 * scale, rows),
        "score": rng.integers(300, 850, rows).astype(np.int64),
        "plan": rng.choice(["basic", "plus", "pro", "team"], rows, p=list(weights)),
    })


def partitions(data, parts: int) -> WindowSketch:
    """One sketch per partition, merged: how a window profiled per worker comes together."""
    table = pa.Table.from_pandas(data, preserve_index=False)
    merged = WindowSketch()
    for chunk in np.array_split(np.arange(table.num_rows), parts):
        merged.merge(sketch_batches(table.slice(int(chunk[0]), len(chunk)).to_batches(max_chunksize=1000)))
    return merged


@pytest.fixture(scope="module")
def reference():
    return frame(60_000, 1)


@pytest.mark.parametrize(("current", "drifted"), [
    ({"seed": 2}, []),
    ({"seed": 3, "shift": 0.3}, ["age"]),
    ({"seed": 4, "scale": 1.6, "weights": (0.25, 0.25, 0.25, 0.25)}, ["income", "plan"]),
], ids=["healthy", "shifted-age", "wider-income-flat-plan"])
def test_same_drifted_columns_as_in_memory(reference, current, drifted):
    window = frame(40_000, **current)
    sketched = check_drift_sketch(partitions(window, 4), partitions(reference, 3), CONFIG, DIGEST)
    exact = check_drift(window, reference, CONFIG, DIGEST)
    binned = check_drift(window, profile_from_sample(reference), CONFIG, DIGEST)
    assert sketched.metrics["drifted_columns"] == exact.metrics["drifted_columns"] == \
        binned.metrics["drifted_columns"] == drifted
    assert sketched.status == exact.status


def test_statistics_within_the_sketch_error(reference):
    """At the sketch's own cut points, its KS statistic is within two rank errors (one per side) of the one
    computed from the raw values; categories under the sketch's capacity are counted exactly."""
    window = frame(40_000, 3, shift=0.3)
    sketch, ref = partitions(window, 4), partitions(reference, 3)
    profile = reference_profile(ref)
    result = check_drift_sketch(sketch, profile, CONFIG, DIGEST)
    for column in ("age", "income", "score"):
        cuts = profile.numeric[column][0]
        exact = np.abs(np.searchsorted(np.sort(reference[column]), cuts, side="right") / len(reference)
                       - np.searchsorted(np.sort(window[column]), cuts, side="right") / len(window)).max()
        assert abs(result.metrics["columns"][column]["statistic"] - exact) <= 2 * rank_error() + 1e-6
    assert profile.categorical["plan"] == {k: float(v) for k, v in reference["plan"].value_counts().items()}
    assert 0 < rank_error() < 0.005


def test_a_merged_sketch_survives_serialisation(reference):
    sketch = partitions(reference, 5)
    again = WindowSketch.from_dict(sketch.to_dict())
    assert again.rows == sketch.rows == len(reference) and again.digest == sketch.digest
    assert again.numeric["age"].n == len(reference)
