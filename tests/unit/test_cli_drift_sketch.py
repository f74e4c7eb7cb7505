"""``mlgate sketch`` and ``mlgate check monitor.drift --engine arrow``: drift of a partitioned Parquet dataset in
bounded memory, as a CI system runs it, against the in-memory gate's verdict on the same rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.core.policy import load_policy
from mlgate.gates.monitor.drift import check_drift
from tests.helpers import write_policy
from tests.unit.test_cli import mlgate

pytestmark = pytest.mark.unit


def table(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"age": rng.normal(40 + 10 * shift, 10, rows), "income": rng.lognormal(10, 0.5, rows),
                     "plan": pa.array(["basic", "plus", "pro", "team"]).take(
                         pa.array(rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1])))})


def dataset(root, parts: list[pa.Table]):
    for day, part in enumerate(parts, 1):
        (root / f"day=2026-11-0{day}").mkdir(parents=True)
        pq.write_table(part, root / f"day=2026-11-0{day}" / "part-0.parquet", row_group_size=2_000)
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift-sketch-cli")
    pq.write_table(table(40_000, 1), root / "reference.parquet")
    return {"root": root, "policy": write_policy(root / "policy.yaml"), "reference": root / "reference.parquet",
            "healthy": dataset(root / "healthy", [table(6_000, 2), table(6_000, 3), table(6_000, 4)]),
            "shifted": dataset(root / "shifted", [table(6_000, 5, 0.8), table(6_000, 6, 0.8), table(6_000, 7, 0.8)])}


def in_memory(files, window):
    """The in-memory gate's verdict on the same rows (pandas, exact statistics)."""
    import pandas as pd

    policy = load_policy(files["policy"])
    current = pd.concat([pq.read_table(p, columns=["age", "income", "plan"]).to_pandas()
                         for p in sorted(files[window].rglob("*.parquet"))])
    reference = pq.read_table(files["reference"]).to_pandas()
    return check_drift(current, reference, policy.section("monitor.drift"), policy.digest)


@pytest.mark.parametrize("window", ["healthy", "shifted"])
def test_a_dataset_against_a_sketched_reference_decides_as_in_memory(files, window):
    root, expected = files["root"], in_memory(files, window)
    sketch = root / f"reference-{window}.sketch.json"
    done = mlgate("sketch", files["reference"], "--out", sketch, cwd=root)
    assert done.returncode == 0, done.stderr
    assert json.loads(sketch.read_text())["rows"] == 40_000
    out = root / f"drift-{window}.json"
    done = mlgate("check", "monitor.drift", files[window], "--engine", "arrow", "--reference", sketch, "--batch-rows",
                  "1500", "--policy", files["policy"], "--json", out, cwd=root)
    result = json.loads(out.read_text())
    assert done.returncode == (1 if expected.status.value == "blocked" else 0), done.stderr
    assert result["status"] == expected.status.value
    assert result["metrics"]["drifted_columns"] == expected.metrics["drifted_columns"]
    assert result["metrics"]["rows"] == 18_000
    assert result["subject"]["uri"] == str(files[window])
    assert result["subject"]["digest"].startswith("sha256:")  # the dataset's manifest, not "unknown"


def test_sketches_of_partitions_merge_into_the_window(files):
    """A window profiled per partition (or per worker) and merged is judged as the whole window."""
    root = files["root"]
    parts = sorted(files["shifted"].iterdir())
    for index, part in enumerate(parts):
        assert mlgate("sketch", part, "--out", root / f"part-{index}.json", cwd=root).returncode == 0
    merged = root / "merged.json"
    done = mlgate("sketch", *[root / f"part-{i}.json" for i in range(len(parts))], "--out", merged, cwd=root)
    assert done.returncode == 0, done.stderr
    whole = {}
    for name, window in (("merged", merged), ("whole", files["shifted"])):
        out = root / f"drift-{name}.json"
        mlgate("check", "monitor.drift", window, "--engine", "arrow", "--reference", files["reference"], "--policy",
               files["policy"], "--json", out, cwd=root)
        whole[name] = json.loads(out.read_text())["metrics"]
    assert whole["merged"]["rows"] == whole["whole"]["rows"] == 18_000
    assert whole["merged"]["drifted_columns"] == whole["whole"]["drifted_columns"] == ["age"]


def test_a_time_window_or_a_wrong_sketch_is_refused(files):
    root = files["root"]
    done = mlgate("check", "monitor.drift", files["healthy"], "--engine", "arrow", "--reference", files["reference"],
                  "--since", "2026-11-01T00:00:00+00:00", "--policy", files["policy"], cwd=root)
    assert done.returncode == 2 and "--since/--until" in done.stderr
    (root / "not-a-sketch.json").write_text(json.dumps({"kind": "something else"}))
    done = mlgate("check", "monitor.drift", root / "not-a-sketch.json", "--engine", "arrow", "--reference",
                  files["reference"], "--policy", files["policy"], cwd=root)
    assert done.returncode == 2 and "not a window sketch" in done.stderr
