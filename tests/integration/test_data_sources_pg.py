"""Data gates on a real PostgreSQL table: read in batches (data.pii), digested by the database
(data.integrity), validated where it lies (data.expectations through GX's SQL datasource)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.demo.dataset import generate_loans
from mlgate.gates.data.expectations import check_expectations
from mlgate.gates.data.integrity import build_manifest, check_integrity
from mlgate.gates.data.pii import PiiPolicy, check_pii
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import open_source
from tests.fixtures.pii_table import pii_table
from tests.fixtures.postgres import throwaway_database
from tests.helpers import default_policy

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "0" * 64
_PG = {pa.string(): "text", pa.float64(): "double precision", pa.int64(): "bigint"}


@pytest.fixture(scope="module")
def database():
    with throwaway_database("mlgate_sources") as uri:
        yield uri.replace("postgresql+psycopg://", "postgresql://", 1)


def load(database: str, name: str, table: pa.Table) -> str:
    """``table`` as a PostgreSQL table ``name``; its source URI."""
    import psycopg

    columns = ", ".join(f'"{f.name}" {_PG[f.type]}' for f in table.schema)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{name}" ({columns})')
        with conn.cursor().copy(f'COPY "{name}" FROM STDIN') as copy:
            for row in table.to_pylist():
                copy.write_row(tuple(row.values()))
    return f"{database}?table={name}"


def test_pii_of_a_table_in_batches_equals_the_in_memory_scan(database, tmp_path):
    table = pii_table(2000)
    pq.write_table(table, tmp_path / "same.parquet")
    uri = load(database, "people", table)
    config = PiiPolicy(types=("email", "phone", "us_ssn", "ip_address", "national_id"),
                       allowed={"contact": ("email",)})
    streamed = check_pii_source(open_source(uri, batch_rows=300), config, DIGEST)
    in_memory = check_pii(tmp_path / "same.parquet", config, DIGEST)

    def seen(result):
        return (result.status, result.metrics["rows"], sorted((f.id, f.location, re.sub(r"#\w{8}", "", f.message))
                                                               for f in result.findings))
    assert seen(streamed) == seen(in_memory)
    assert streamed.metrics["batches"] == 7
    assert ("data.pii.national_id", "reference") in {(f.id, f.location) for f in streamed.findings}
    assert "password" not in streamed.subject.uri and streamed.subject.digest == build_manifest(uri).digest


def test_a_tables_digest_follows_its_content_not_its_row_order(database, tmp_path):
    import psycopg

    uri = load(database, "ordered", pa.table({"k": pa.array(range(500), pa.int64()),
                                              "v": pa.array([f"v{i}" for i in range(500)])}))
    manifest = build_manifest(uri).save(tmp_path / "manifest.json")
    policy = parse_policy(default_policy())
    with psycopg.connect(database, autocommit=True) as conn:  # rewrite every row: a new physical order
        conn.execute('UPDATE "ordered" SET v = v WHERE k % 2 = 0')
        conn.execute('VACUUM FULL "ordered"')
    assert check_integrity(uri, manifest, policy).status is Status.PASSED
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE \"ordered\" SET v = 'tampered' WHERE k = 7")
    result = check_integrity(uri, manifest, policy)
    assert result.status is Status.BLOCKED
    assert [(f.id, f.location) for f in result.findings] == [("data.integrity.changed", "table:ordered")]


def test_expectations_on_a_table_equal_the_in_memory_verdict(database, tmp_path):
    frame = generate_loans(1500)
    frame.loc[3, "credit_score"] = 1200
    frame.loc[900, "home_ownership"] = "castle"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(pa.schema([(f.name, pa.float64() if pa.types.is_floating(f.type) else
                                   pa.int64() if pa.types.is_integer(f.type) else pa.string())
                                  for f in table.schema]))
    pq.write_table(table, tmp_path / "loans.parquet")
    uri = load(database, "loans", table)
    policy = parse_policy(default_policy())
    in_db = check_expectations(uri, policy)
    in_memory = check_expectations(tmp_path / "loans.parquet", policy)
    assert in_db.metrics["engine"] == "postgresql"
    assert sorted((f.id, f.location, f.message) for f in in_db.findings) == \
        sorted((f.id, f.location, f.message) for f in in_memory.findings)
    assert in_db.status is Status.BLOCKED and len(in_db.findings) == 2


ROWS = 1_000_000  # the benchmark runs 10 million


def test_expectations_on_a_large_table_fetch_no_rows(database, tmp_path):
    """The database scans the whole table; what reaches this process is aggregates and GX's samples of at
    most 20 unexpected values, counted from every statement's result (SQLAlchemy's cursor events) and
    checked against the database's own scan counter."""
    import json

    import psycopg
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with psycopg.connect(database, autocommit=True) as conn:
        # a float column: GX validates the table through the NaN-as-NULL query asset (ADR 0055), whose column
        # reflection once received every row of the table
        conn.execute(f"CREATE TABLE big AS SELECT g AS id, ((g % 1000) / 10.0)::float8 AS score, "
                     f"CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END AS grade FROM generate_series(1, {ROWS}) g")
        conn.execute("ANALYZE big")
        before = conn.execute("SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'big'").fetchone()[0]
    suite = tmp_path / "big.json"
    suite.write_text(json.dumps({"name": "big", "expectations": [
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": ROWS}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score", "min_value": 0,
                                                                   "max_value": 90}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "grade", "value_set": ["a", "b"]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "score", "min_value": 49,
                                                                 "max_value": 51}},
    ]}))
    fetched: list[tuple[str, int]] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        fetched.append((statement.split()[0], cursor.rowcount))

    event.listen(Engine, "after_cursor_execute", count)
    try:
        result = check_expectations(f"{database}?table=big", parse_policy(default_policy()), suite)
    finally:
        event.remove(Engine, "after_cursor_execute", count)
    assert result.status is Status.BLOCKED  # scores above 90: 99 of every 1000 rows
    assert [f.id for f in result.findings] == ["data.expectations.expect_column_values_to_be_between"]
    assert f"{ROWS // 1000 * 99} of {ROWS} values unexpected" in result.findings[0].message
    rows_to_client = sum(max(n, 0) for _, n in fetched)
    assert fetched and rows_to_client < 200, fetched
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        after = conn.execute("SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'big'").fetchone()[0]
    assert after - before >= ROWS  # the database did read every row: the work was pushed down, not skipped


def test_an_airflow_connection_names_the_database(database, monkeypatch):
    from mlgate.operators.data import data_source

    uri = load(database, "via_conn", pa.table({"email": pa.array(["a@example.com"] * 10)}))
    monkeypatch.setenv("AIRFLOW_CONN_MLGATE_SOURCES", database)
    resolved = data_source("via_conn", "mlgate_sources")
    assert open_source(resolved).table == "via_conn"
    assert build_manifest(resolved).digest == build_manifest(uri).digest
