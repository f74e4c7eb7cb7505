"""data.expectations pushed down to DuckDB over Parquet files: the same verdicts as GX on pandas."""

from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.demo.dataset import generate_loans
from mlgate.gates.data.expectations import check_expectations
from tests.helpers import default_policy

pytestmark = pytest.mark.unit


def outcome(result) -> dict:
    return {"status": result.status, "evaluated": result.metrics["evaluated"], "digest": result.subject.digest,
            "findings": sorted((f.id, f.location, f.message) for f in result.findings)}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """The demo loans with two bad cells, as one Parquet file and as a hive-partitioned dataset."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    frame = generate_loans(3000)
    frame.loc[3, "credit_score"] = 1200
    frame.loc[2500, "home_ownership"] = "castle"
    root = tmp_path_factory.mktemp("lake")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, root / "loans.parquet")
    ds.write_dataset(table, root / "partitioned", format="parquet", partitioning=["term_months"],
                     partitioning_flavor="hive", max_rows_per_group=256)
    return root


@pytest.fixture(scope="module")
def policy():
    return parse_policy(default_policy())


def test_pushed_down_verdict_equals_in_memory(lake, policy):
    in_memory = check_expectations(lake / "loans.parquet", policy)
    pushed = check_expectations(lake / "loans.parquet", policy, push_down=True)
    assert pushed.metrics["engine"] == "duckdb" and in_memory.metrics["engine"] == "pandas"
    assert outcome(pushed) == outcome(in_memory)
    assert pushed.status is Status.BLOCKED and len(pushed.findings) == 2


def test_a_partitioned_dataset_is_one_table(lake, policy):
    """The partition column comes back from the directory names; the same two cells fail."""
    result = check_expectations(lake / "partitioned", policy, push_down=True)
    assert result.status is Status.BLOCKED, result.top_failures()
    assert {(f.id, f.location) for f in result.findings} == {
        ("data.expectations.expect_column_values_to_be_between", "column credit_score"),
        ("data.expectations.expect_column_values_to_be_in_set", "column home_ownership")}
    assert "1 of 3000 values unexpected" in result.findings[0].message


def test_pushing_down_csv_is_refused(tmp_path, policy):
    generate_loans(100).to_csv(tmp_path / "loans.csv", index=False)
    with pytest.raises(GateInputError, match="Parquet files or a table"):
        check_expectations(tmp_path / "loans.csv", policy, push_down=True)
