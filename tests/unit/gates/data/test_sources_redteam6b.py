"""Red team 6b (session 6): dataset layouts under which a data gate scans other values than the files hold."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.gates.data.expectations import check_expectations
from mlgate.gates.data.pii import PiiPolicy, check_pii
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import open_source
from tests.helpers import default_policy

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
POLICY = PiiPolicy(types=("email",))


def shadowed_lake(root, days=("a", "b"), rows=60):
    """Hive partitions ``day=a`` and ``day=b`` whose files also hold a ``day`` column, of e-mail addresses."""
    for day in days:
        (root / f"day={day}").mkdir(parents=True)
        emails = [f"someone{i}.{day}@example.org" for i in range(rows)]
        pq.write_table(pa.table({"day": emails, "v": list(range(rows))}), root / f"day={day}" / "part-0.parquet")
    return root


@pytest.mark.parametrize("days", [("a", "b"), ("a",)], ids=["two-partitions", "one-file"])
def test_a_partition_key_that_shadows_a_files_column_is_refused(tmp_path, days):
    """Arrow (and Spark) give the partition key's value where the file holds a column of the same name: the
    scan saw ``a``/``b`` and passed; any reader of the files themselves gets the addresses."""
    root = shadowed_lake(tmp_path / "lake", days)
    assert "@" in pq.read_table(next(root.rglob("*.parquet"))).column("day")[0].as_py()  # what the file holds
    with pytest.raises(GateInputError, match="partition key 'day'"):  # main: PASSED, no e-mail found
        check_pii_source(open_source(root), POLICY, DIGEST)
    assert check_pii(root, POLICY, DIGEST).status is Status.BLOCKED  # the in-memory scan reads each file alone


def test_a_partition_key_not_in_the_files_still_reads(tmp_path):
    root = tmp_path / "lake"
    (root / "day=a").mkdir(parents=True)
    pq.write_table(pa.table({"v": [1, 2, 3]}), root / "day=a" / "part-0.parquet")
    assert open_source(root).schema().names == ds.dataset(root, format="parquet", partitioning="hive").schema.names


@pytest.mark.parametrize("push_down", [False, True], ids=["in-memory", "push-down"])
def test_expectations_on_a_shadowed_column_are_not_judged_on_the_partition_key(tmp_path, push_down):
    """DuckDB's hive reading gives the key's value too: a suite on ``day`` passed on ``a``/``b``."""
    import json

    root = shadowed_lake(tmp_path / "lake")
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "rt", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "day", "value_set": ["a", "b"]}}]}))
    policy = parse_policy(default_policy())
    try:
        result = check_expectations(root, policy, suite, push_down=push_down)
    except GateInputError as exc:
        assert "partition key 'day'" in str(exc)
        return
    assert result.status is Status.BLOCKED  # main, push-down: PASSED
