"""Great Expectations on data that stays where it is: GX's SQL datasources compile each expectation to SQL
that the engine runs, and only aggregates and GX's bounded samples of unexpected rows come back (ADR 0043).

- a PostgreSQL table: GX's ``add_postgres`` datasource, over SQLAlchemy's psycopg 3 driver;
- a Parquet dataset (a file or a hive-partitioned directory): a DuckDB view over ``read_parquet``, which
  scans the files in row groups under a memory limit and spills to disk.

DuckDB's DB-API cursor loses its result when its connection is returned to the pool, and GX fetches after
returning it; ``_BufferedCursor`` reads each (small) result at execute time instead.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from mlgate.core.errors import GateInputError, ToolError
from mlgate.gates.data.sources import Source, dataset_files

DUCKDB_MEMORY = "1GB"
DUCKDB_THREADS = 2
# Parquet's min/max leave NaN out and DuckDB folds expressions on them: ``isnan(x)`` became constant false
# and a range test dropped its NaN rows (DuckDB 2.0); without it every row is evaluated
DUCKDB_DISABLED_OPTIMIZERS = "statistics_propagation"
_VIEW = "data"


class _BufferedCursor:
    """A DuckDB cursor whose rows are fetched when the statement runs (GX's results are aggregates and
    ``LIMIT``-ed samples, never the table)."""

    def __init__(self, connection: Any, wrapper: Any) -> None:
        self._connection, self.connection = connection, wrapper
        self.description: Any = None
        self.rowcount = -1
        self._rows: list = []

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        cursor = self._connection.execute(statement, parameters) if parameters is not None \
            else self._connection.execute(statement)
        self.description = cursor.description
        self._rows = cursor.fetchall() if cursor.description else []
        self.rowcount = len(self._rows) if cursor.description else -1

    def fetchall(self) -> list:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int | None = None) -> list:
        rows, self._rows = self._rows[:size or 1], self._rows[size or 1:]
        return rows

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def close(self) -> None:
        """Nothing to release: the rows were read at execute."""


def _duckdb_creator(database: Path, spill: Path, files: list[Path]) -> Any:
    """Connections that read the dataset's files and nothing else: a suite's SQL (``unexpected_rows_query``)
    could otherwise read any file the worker can (``read_text('…/signing.key')``), install extensions or write."""
    import duckdb
    from duckdb_engine import ConnectionWrapper

    class Buffered(ConnectionWrapper):
        def cursor(self) -> _BufferedCursor:
            return _BufferedCursor(self._ConnectionWrapper__c, self)

    def create() -> Buffered:
        connection = duckdb.connect(str(database), read_only=True, config={
            "memory_limit": DUCKDB_MEMORY, "threads": DUCKDB_THREADS, "temp_directory": str(spill),
            "disabled_optimizers": DUCKDB_DISABLED_OPTIMIZERS})
        connection.execute(f"SET allowed_paths = [{_literals(files)}]")
        connection.execute(f"SET allowed_directories = [{_literals([spill])}]")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        return Buffered(connection)

    return create


def _parquet_view(source: Source, workdir: Path) -> Path:
    import duckdb

    files = dataset_files(source.path)
    if files[0].suffix.lower() not in (".parquet", ".pq"):
        raise GateInputError(f"{source.label}: pushing expectations down needs Parquet files or a table; "
                             f"found {files[0].suffix} (validate it in memory instead)")
    source.schema()  # refuses what Arrow would misread, as every other path does (a key shadowing a column)
    database = workdir / "view.duckdb"
    # the files the gates and Arrow read, by name: a glob would add the ``_``/``.`` files readers skip, and
    # union_by_name keeps a column only later files hold (DuckDB would take the first file's columns)
    listed = _literals(files)
    hive = "true" if source.kind == "dataset" else "false"
    scan = f"read_parquet([{listed}], hive_partitioning = {hive}, union_by_name = true)"
    with duckdb.connect(str(database)) as connection:  # a view holds no data: each GX query reads the files
        floats = [row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()  # noqa: S608
                  if row[1] in ("FLOAT", "DOUBLE")]
        # pandas reads a NaN as missing, DuckDB as a number: NULL keeps the verdicts equal (not-null, mostly)
        nan_null = ", ".join(f"CASE WHEN isnan({c}) THEN NULL ELSE {c} END AS {c}"
                             for c in (_quoted(name, '"') for name in floats))
        connection.execute(f"CREATE VIEW {_VIEW} AS SELECT * "  # noqa: S608 - quoted literals and identifiers
                           + (f"REPLACE ({nan_null}) " if nan_null else "") + f"FROM {scan}")
    return database


def _literals(paths: list[Path]) -> str:
    return ", ".join(_quoted(str(path), "'") for path in paths)


def _quoted(text: str, quote: str) -> str:
    """``text`` as a DuckDB string literal (``'``) or identifier (``"``): file and column names are data."""
    return quote + text.replace(quote, quote * 2) + quote


def _nan_as_null(source: Source) -> str | None:
    """For a table with float columns, a query reading their 'NaN' as NULL, as pandas reads NaN (ADR 0055)."""
    from psycopg import sql

    fields = list(source.schema())
    if not any(pa.types.is_floating(field.type) for field in fields):
        return None
    columns = [sql.SQL("NULLIF({0}, 'NaN') AS {0}").format(sql.Identifier(f.name)) if pa.types.is_floating(f.type)
               else sql.Identifier(f.name) for f in fields]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(columns), source._relation()).as_string(None)


@contextmanager
def _snapshot_on_begin(marker: str, snapshot: str | None) -> Iterator[None]:
    """Every transaction of the engine whose connections are named ``marker`` starts read-only in ``snapshot``
    (``Source.pinned``): GX's queries see the rows the gate's digest names, not what was written since."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if snapshot is None:
        raise ToolError("a table is validated in the snapshot its digest was taken in; open it with pinned()")

    def begin(connection: Any) -> None:
        if connection.engine.url.query.get("application_name") == marker:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            connection.exec_driver_sql("SET TRANSACTION SNAPSHOT " + _quoted(snapshot, "'"))

    event.listen(Engine, "begin", begin)
    try:
        yield
    finally:
        event.remove(Engine, "begin", begin)


# The GX function that reads a query asset's column names by executing the bare query (GX 1.x,
# great_expectations/expectations/metrics/util.py): only the names of the result's columns are used.
_REFLECTION = "column_reflection_fallback"


@contextmanager
def _columns_only(marker: str, query: str) -> Iterator[None]:
    """When GX reflects the columns of ``query`` (the query asset) by executing it bare, the engine named
    ``marker`` runs it with ``LIMIT 0``: on a client-side cursor the bare query sent every row of the table to
    this process (10 million rows, 1.6 GB, in the benchmark) for a list of names. Only that caller's statement
    is rewritten (found on the stack): any other execution of the bare query, were a later GX to make one for
    its rows, runs as written, so a rewrite can cost memory but never rows a metric counts."""
    import sys

    from sqlalchemy import event, text
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.elements import TextClause

    def reflecting() -> bool:
        frame = sys._getframe(2)
        for _ in range(12):
            if frame is None:
                return False
            if frame.f_code.co_name == _REFLECTION:
                return True
            frame = frame.f_back
        return False

    def before(connection: Any, element: Any, multiparams: Any, params: Any, execution_options: Any) -> tuple:
        if isinstance(element, TextClause) and element.text == query and reflecting() \
                and connection.engine.url.query.get("application_name") == marker:
            element = text(f"SELECT * FROM ({query}) AS mlgate_columns LIMIT 0")  # noqa: S608 (_nan_as_null: quoted names)
        return element, multiparams, params

    event.listen(Engine, "before_execute", before, retval=True)
    try:
        yield
    finally:
        event.remove(Engine, "before_execute", before)


def validate_source(source: Source, suite: Any) -> dict[str, Any]:
    """Run ``suite`` on ``source`` through a GX SQL datasource; GX's result as JSON."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from mlgate.gates.data.expectations import gx_log

    with tempfile.TemporaryDirectory(prefix="mlgate-gx-") as scratch, gx_log(), ExitStack() as stack:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        try:
            if source.kind == "table":
                schema, _, table = source.table.rpartition(".")
                marker = f"mlgate-gx-{uuid.uuid4().hex}"
                stack.enter_context(_snapshot_on_begin(marker, source.snapshot))
                parts = urlsplit(source.dsn.replace("postgresql://", "postgresql+psycopg://", 1))
                dsn = urlunsplit(parts._replace(query="&".join(filter(None, [parts.query,
                                                                             f"application_name={marker}"]))))
                datasource = context.data_sources.add_postgres("mlgate", connection_string=dsn)
                if query := _nan_as_null(source):
                    stack.enter_context(_columns_only(marker, query))
                    asset = datasource.add_query_asset("data", query=query)
                else:
                    asset = datasource.add_table_asset("data", table_name=table, schema_name=schema or None)
            else:
                import sqlalchemy

                database = _parquet_view(source, Path(scratch))
                spill = Path(scratch) / "spill"
                datasource = context.data_sources.add_sql("mlgate", connection_string="duckdb:///:memory:", kwargs={
                    "creator": _duckdb_creator(database, spill, dataset_files(source.path)),
                    "poolclass": sqlalchemy.pool.NullPool})
                asset = datasource.add_table_asset("data", table_name=_VIEW)
            batch = asset.add_batch_definition_whole_table("all").get_batch()
        except GateInputError:
            raise
        except Exception as exc:  # GX wraps connection and reflection failures in its own types
            # the message may quote the connection string: only its type is kept
            raise ToolError(f"{source.label}: GX cannot open the data ({type(exc).__name__})") from None
        return batch.validate(suite, result_format="SUMMARY").to_json_dict()
