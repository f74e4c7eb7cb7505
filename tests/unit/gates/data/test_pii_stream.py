import re

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.data.pii import PiiPolicy, check_pii
from mlgate.gates.data.pii_stream import check_pii_source, elect
from mlgate.gates.data.sources import open_source
from tests.fixtures.pii_table import pii_table

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
POLICY = PiiPolicy(types=("email", "phone", "us_ssn", "ip_address", "national_id", "credit_card"),
                   allowed={"contact": ("email",)})


def comparable(result) -> dict:
    """What must not depend on how the data was read (example prefixes are salted per scan)."""
    return {"status": result.status, "rows": result.metrics["rows"],
            "cells": {t: c for t, c in result.metrics["cells_by_type"].items() if c},
            "scanned": sorted(result.metrics["columns_scanned"]),
            "findings": sorted((f.id, f.severity.value, f.location, re.sub(r"#[0-9a-f]{8}", "#", f.message))
                               for f in result.findings)}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return pii_table()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("batch_rows", [97, 1000, 100_000])
def test_streamed_verdict_equals_in_memory(table, tmp_path, fmt, batch_rows):
    path = tmp_path / f"data.{fmt}"
    pq.write_table(table, path) if fmt == "parquet" else pa_csv.write_csv(table, path)
    in_memory = check_pii(path, POLICY, DIGEST)
    streamed = check_pii_source(open_source(path, batch_rows), POLICY, DIGEST)
    assert comparable(streamed) == comparable(in_memory)
    assert streamed.metrics["batches"] == -(-table.num_rows // batch_rows)
    # not trivially equal: the ID column was elected by its values although early batches are below the share
    cells = streamed.metrics["cells_by_type"]
    assert cells["national_id"].get("reference", 0) > 0.9 * table.num_rows
    assert "order_no" not in cells["national_id"]
    assert streamed.subject.digest == in_memory.subject.digest


def test_a_batch_alone_would_not_elect_the_id_column(table, tmp_path):
    """Why the election takes the whole column: the first batch of the same data does not reach the share."""
    pq.write_table(table.slice(0, 500), tmp_path / "head.parquet")
    head = open_source(tmp_path / "head.parquet")
    assert ("reference", "national_id") not in elect(head, POLICY, strings=False)
    pq.write_table(table, tmp_path / "all.parquet")
    assert elect(open_source(tmp_path / "all.parquet", 500), POLICY, strings=False)[("reference", "national_id")]


def test_partitioned_dataset_streams_as_one_table(table, tmp_path):
    import pyarrow.dataset as ds

    with_day = table.append_column("day", pa.array([f"d{i % 3}" for i in range(table.num_rows)]))
    ds.write_dataset(with_day, tmp_path / "lake", format="parquet", partitioning=["day"],
                     partitioning_flavor="hive")
    source = open_source(tmp_path / "lake", 256)
    assert source.kind == "dataset"
    result = check_pii_source(source, POLICY, DIGEST)
    assert result.metrics["rows"] == table.num_rows
    assert "day" in result.metrics["columns_scanned"]
    assert result.status.value == "blocked"
    found = {(f.id, f.location) for f in result.findings}
    assert ("data.pii.national_id", "reference") in found and ("data.pii.email", "notes") in found


def test_mask_on_a_stream_is_refused(table, tmp_path):
    pq.write_table(table, tmp_path / "data.parquet")
    with pytest.raises(GateInputError, match="mask"):
        check_pii_source(open_source(tmp_path / "data.parquet"), PiiPolicy(action="mask"), DIGEST)


def test_mixed_formats_are_not_one_dataset(table, tmp_path):
    pq.write_table(table, tmp_path / "a.parquet")
    pa_csv.write_csv(table, tmp_path / "b.csv")
    with pytest.raises(GateInputError, match="one format"):
        open_source(tmp_path)
