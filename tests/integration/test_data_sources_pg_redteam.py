"""Red team (session 6) of the gates over a PostgreSQL table: relations whose rows depend on who reads them,
and rows written between a gate's reads and the digest its evidence names (docs/notes/2026-12-04-s6/redteam6.md)."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.gates.data.expectations import check_expectations
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.pii import PiiPolicy
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import Source, open_source
from tests.fixtures.postgres import throwaway_database
from tests.helpers import default_policy
from tests.integration.test_data_sources_pg import load

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "0" * 64
POLICY = PiiPolicy(types=("us_ssn", "email"))
NOTES = pa.table({"notes": pa.array([f"row {i} is fine" for i in range(300)]),
                  "amount": pa.array([float(i) for i in range(300)])})
LEAK = "UPDATE {} SET notes = 'ssn 078-05-1120, mail jane.doe@example.com' WHERE amount < 20"


@pytest.fixture(scope="module")
def database():
    with throwaway_database("mlgate_redteam6") as uri:
        yield uri.replace("postgresql+psycopg://", "postgresql://", 1)


def execute(database: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_a_view_that_shows_a_read_only_session_clean_rows_is_refused(database):
    """The gate reads in a READ ONLY transaction; a view keyed on that (or on the user, the time, a setting)
    showed it clean rows while training's session read the PII. main: PASSED, 0 findings."""
    load(database, "raw_people", NOTES)
    execute(database, LEAK.format("raw_people"),
            "CREATE VIEW people AS SELECT CASE WHEN current_setting('transaction_read_only') = 'on' "
            "THEN 'fine' ELSE notes END AS notes, amount FROM raw_people")
    with pytest.raises(GateInputError, match="'people' is a view"):
        check_pii_source(open_source(f"{database}?table=people"), POLICY, DIGEST)


def test_row_level_security_hiding_rows_from_the_gate_is_refused(database):
    """A policy that hides the PII rows from the gate's user (training's user sees them). main: PASSED."""
    import psycopg

    role = f"mlgate_rt6_{uuid.uuid4().hex[:8]}"
    load(database, "guarded", NOTES)
    execute(database, LEAK.format("guarded"), f"CREATE ROLE {role} LOGIN", f"GRANT SELECT ON guarded TO {role}",
            "ALTER TABLE guarded ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY only_clean ON guarded FOR SELECT TO {role} USING (notes NOT LIKE 'ssn%')")
    try:
        uri = database.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        with pytest.raises(GateInputError, match="row-level security"):
            check_pii_source(open_source(f"{uri}?table=guarded"), POLICY, DIGEST)
    finally:
        execute(database, "DROP POLICY only_clean ON guarded", f"REVOKE ALL ON guarded FROM {role}")
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_rows_written_between_the_scan_and_the_digest_are_not_named_passed(database, monkeypatch):
    """Each pass and the digest ran in their own transaction: PII written after the scan and before the digest
    gave PASSED evidence naming the digest of the table with the PII. Pinned to one snapshot, the evidence names
    what was scanned (training's later read of the changed table has another digest)."""
    uri = load(database, "racing", NOTES)
    clean = build_manifest(uri).digest
    digest = Source.table_digest

    def writer_between(self):
        execute(database, LEAK.format("racing"))
        return digest(self)

    monkeypatch.setattr(Source, "table_digest", writer_between)
    result = check_pii_source(open_source(uri, batch_rows=64), POLICY, DIGEST)
    monkeypatch.undo()
    assert build_manifest(uri).digest != clean  # the write happened
    assert result.status is Status.PASSED and result.subject.digest == clean


@pytest.mark.parametrize("swap", ["rows", "rename"])
def test_expectations_on_a_table_validate_the_rows_their_digest_names(database, tmp_path, monkeypatch, swap):
    """Digest the bad table, hide the bad rows while GX validates, put them back (so a digest before and after
    agree): main gave PASSED evidence naming the digest of the table with the bad rows, which training reads.
    Rows: GX now reads the digest's snapshot. Rename (a snapshot does not cover names): the table is
    share-locked while the gate runs, so the swap waits and times out."""
    import psycopg

    from mlgate.gates.data import gx_sql

    table = f"scores_{swap}"
    load(database, table, NOTES)
    execute(database, f"UPDATE {table} SET amount = -1 WHERE amount < 5")
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}}]}))
    validate = gx_sql.validate_source
    hide = {"rows": [f"CREATE TABLE hidden_{swap} AS SELECT * FROM {table} WHERE amount < 0",
                     f"DELETE FROM {table} WHERE amount < 0"],
            "rename": ["SET lock_timeout = '3s'", f"ALTER TABLE {table} RENAME TO {table}_bad",
                       f"CREATE TABLE {table} AS SELECT * FROM {table}_bad WHERE amount >= 0"]}[swap]
    restore = {"rows": [f"INSERT INTO {table} SELECT * FROM hidden_{swap}"],
               "rename": [f"DROP TABLE {table}", f"ALTER TABLE {table}_bad RENAME TO {table}"]}[swap]
    refused = []

    def hidden_while_validated(source, suite):
        try:
            execute(database, *hide)
        except psycopg.errors.LockNotAvailable:
            refused.append(swap)
            return validate(source, suite)
        try:
            return validate(source, suite)
        finally:
            execute(database, *restore)

    monkeypatch.setattr(gx_sql, "validate_source", hidden_while_validated)
    uri = f"{database}?table={table}"
    result = check_expectations(uri, parse_policy(default_policy()), suite)
    assert result.subject.digest == build_manifest(uri).digest  # evidence names the table training reads
    assert result.status is Status.BLOCKED
    assert refused == (["rename"] if swap == "rename" else [])


def test_text_kept_as_bytea_is_scanned_as_text(database):
    """COPY writes bytea as hex (``\\x7373...``): the scan read hex and reported the column scanned, while the
    same bytes in a Parquet binary column are decoded and blocked. main: PASSED, 0 findings."""
    load(database, "blobs", NOTES)
    execute(database, LEAK.format("blobs"), "ALTER TABLE blobs ALTER COLUMN notes TYPE bytea "
                                           "USING convert_to(notes, 'UTF8')")
    result = check_pii_source(open_source(f"{database}?table=blobs"), POLICY, DIGEST)
    assert "notes" in result.metrics["columns_scanned"]
    assert result.status is Status.BLOCKED and result.metrics["cells_by_type"]["email"] == {"notes": 20}


def test_a_column_named_t_does_not_stand_for_the_row_in_the_digest(database, tmp_path):
    """The digest hashed ``t::text`` over ``FROM table AS t``: PostgreSQL resolves a column named ``t`` first, so
    only that column was digested and every other cell could change under a pinned manifest. main: PASSED."""
    from mlgate.gates.data.integrity import check_integrity

    load(database, "aliased", pa.table({"t": pa.array(range(50), pa.int64()),
                                        "notes": pa.array([f"row {i}" for i in range(50)])}))
    uri = f"{database}?table=aliased"
    manifest = build_manifest(uri).save(tmp_path / "manifest.json")
    execute(database, LEAK.format("aliased").replace("amount < 20", "t < 20"))
    result = check_integrity(uri, manifest, parse_policy(default_policy()))
    assert result.status is Status.BLOCKED
    assert [(f.id, f.location) for f in result.findings] == [("data.integrity.changed", "table:aliased")]


def test_a_nan_in_a_table_is_missing_as_in_pandas(database, tmp_path):
    """PostgreSQL's 'NaN' is a value, pandas' NaN is missing: the table PASSED where the same data as Parquet was
    BLOCKED. A table with float columns is now validated through a query reading 'NaN' as NULL."""
    import pyarrow.parquet as pq

    values = pa.table({"x": pa.array([1.0, float("nan"), 3.0] * 10)})
    load(database, "nans", values)
    pq.write_table(values, tmp_path / "nans.parquet")
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}]}))
    policy = parse_policy(default_policy())
    assert check_expectations(tmp_path / "nans.parquet", policy, suite).status is Status.BLOCKED
    assert check_expectations(f"{database}?table=nans", policy, suite).status is Status.BLOCKED
