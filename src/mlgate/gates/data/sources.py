"""Where a data gate reads from, as Arrow record batches of bounded size: a file, a partitioned dataset
directory (``pyarrow.dataset``, hive partitions such as ``day=2024-01-01/part-0.parquet``), or a PostgreSQL
table named ``postgresql://user@host:port/db?table=schema.name``.

A gate that iterates ``Source.batches()`` holds one batch per column at a time, whatever the data's size.
A table is read with ``COPY … TO STDOUT`` into Arrow's streaming CSV reader inside one ``REPEATABLE READ``
transaction per read with synchronized scans off, so every pass over it sees the same rows in the same
order. Its digest is computed by the database (ADR 0042): nothing is downloaded to name it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from mlgate.core.digests import list_files
from mlgate.core.errors import GateInputError, ToolError

if TYPE_CHECKING:
    import psycopg

BATCH_ROWS = 65_536
_DATASET_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
# PostgreSQL types Arrow reads from COPY's CSV text as numbers / booleans; every other type stays text
_PG_ARROW = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(),
             "double precision": pa.float64(), "boolean": pa.bool_()}
_STORED = {"r", "p", "m"}  # table, partitioned table, materialized view: rows that are stored, not computed
_RELKINDS = {"v": "view", "f": "foreign table", "S": "sequence", "c": "composite type", "i": "index"}
# the session settings a row's text form depends on, pinned so the table digest does not move with them
_PINNED_SESSION = ("SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'", "SET TimeZone = 'UTC'",
                   "SET extra_float_digits = 1", "SET bytea_output = 'hex'", "SET synchronize_seqscans = off")


def is_table(spec: str) -> bool:
    return str(spec).startswith(("postgresql://", "postgres://"))


def table_uri(connection_uri: str, table: str) -> str:
    """``connection_uri`` (an Airflow connection's ``get_uri()``) with the table added as ``?table=``."""
    parts = urlsplit(connection_uri.replace("postgres://", "postgresql://", 1))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "table"] + [("table", table)]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))


def redacted(uri: str) -> str:
    """``uri`` without its user, password and connection options, but with its table, for evidence."""
    from mlgate.core.redaction import redact_uri

    table = dict(parse_qsl(urlsplit(uri).query)).get("table") if is_table(uri) else None
    return redact_uri(uri) + (f"?table={table}" if table else "")


@dataclass(frozen=True)
class Source:
    """A file, a dataset directory, or a table; ``open_source`` builds one from what the user named."""

    uri: str
    kind: str  # "file" | "dataset" | "table"
    path: Path | None = None
    dsn: str | None = None
    table: str | None = None
    batch_rows: int = BATCH_ROWS
    snapshot: str | None = None  # a table read in one exported snapshot (``pinned``)

    @property
    def label(self) -> str:
        return redacted(self.uri)

    # --- schema and batches ---------------------------------------------------------------------------

    def schema(self, strings: bool = False) -> pa.Schema:
        if self.kind == "table":
            return pa.schema([(name, pa.string() if strings else _PG_ARROW.get(kind, pa.string()))
                              for name, kind in self._pg_columns()])
        return self._dataset(strings).schema

    def batches(self, columns: list[str] | None = None, strings: bool = False) -> Iterator[pa.RecordBatch]:
        """Record batches of at most ``batch_rows`` rows, in a stable order. ``strings``: every column as
        text (CSV keeps its leading zeros; a table's numbers come as the database writes them)."""
        if self.kind == "table":
            yield from self._table_batches(columns, strings)
            return
        # A threaded scan reads ahead of a slow consumer without bound (apache/arrow#33759, #39808): data.pii
        # held most of a dataset decoded. A serial scan without readahead decodes a batch when it is asked
        # for, and Parquet is read without pre-buffering (below): memory follows batch_rows, not the files'
        # size or count (ADR 0050).
        scanner = self._dataset(strings).scanner(columns=columns, batch_size=self.batch_rows,
                                                 batch_readahead=0, fragment_readahead=0, use_threads=False)
        try:
            for batch in scanner.to_batches():
                if batch.num_rows:
                    yield batch
        except OSError as exc:
            raise GateInputError(f"{self.label}: cannot read: {exc.strerror or type(exc).__name__}") from None
        except (pa.ArrowException, UnicodeError, ValueError) as exc:
            raise GateInputError(f"{self.label}: not valid data ({type(exc).__name__}; details withheld, "
                                 "they may quote the data)") from None

    def _dataset(self, strings: bool) -> Any:
        import pyarrow.dataset as ds

        files = dataset_files(self.path)
        fmt = _DATASET_FORMATS[files[0].suffix.lower()]
        file_format: Any = fmt
        if fmt == "parquet":  # pre-buffering caches whole column chunks ahead of the batch being read
            file_format = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                pre_buffer=False))
        if fmt == "csv" and strings:
            import pyarrow.csv as pa_csv

            with pa_csv.open_csv(files[0]) as reader:
                names = reader.schema.names
            file_format = ds.CsvFileFormat(convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string())))
        def discover(schema: pa.Schema | None = None) -> Any:
            return ds.dataset([str(f) for f in files], format=file_format, schema=schema,
                              partitioning=ds.partitioning(flavor="hive") if self.kind == "dataset" else None,
                              partition_base_dir=str(self.path) if self.kind == "dataset" else None)

        try:
            dataset = discover()
            fragments = list(dataset.get_fragments())  # each reads its footer once, for both uses below
            if self.kind == "dataset":
                _refuse_shadowed_columns(self.label, fragments)
            if len(files) == 1:
                return dataset
            # Arrow takes the schema of the first file and drops any column only later files hold: the
            # gate reads every file's own columns (a reader that merges schemas would see them)
            return discover(pa.unify_schemas([dataset.schema, *(f.physical_schema for f in fragments)]))
        except (pa.ArrowException, OSError) as exc:
            raise GateInputError(f"{self.label}: not a readable {fmt} dataset, or its files disagree on a "
                                 f"column's type ({type(exc).__name__})") from None

    # --- PostgreSQL -----------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection]:
        import psycopg

        try:
            with psycopg.connect(self.dsn, autocommit=False) as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if self.snapshot:
                    from psycopg import sql

                    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
                for statement in _PINNED_SESSION:
                    conn.execute(statement)
                yield conn
        except psycopg.OperationalError as exc:
            raise ToolError(f"{self.label}: cannot reach PostgreSQL: {type(exc).__name__}") from None
        except psycopg.errors.UndefinedTable:
            raise GateInputError(f"{self.label}: no table {self.table!r}") from None
        except psycopg.Error as exc:  # libpq quotes a malformed URI's parts, the password among them
            raise ToolError(f"{self.label}: PostgreSQL refused the request: {type(exc).__name__} "
                            "(details withheld: they may quote the connection string)") from None

    @contextmanager
    def pinned(self) -> Iterator[Source]:
        """This source with every read and digest of a table in one snapshot, exported by a transaction held
        open meanwhile: a gate's passes and the digest it names are of the same rows, whatever is written
        between them. The table is share-locked as well: a snapshot does not cover its name, and a rename
        swaps in another table for the gate's later reads (a file or dataset is returned as it is)."""
        if self.kind != "table":
            yield self
            return
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(self._relation()))
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            yield replace(self, snapshot=snapshot)

    def _pg_columns(self) -> list[tuple[str, str]]:
        schema, _, name = self.table.rpartition(".")
        relation = f'"{schema}"."{name}"' if schema else f'"{name}"'
        with self._connect() as conn:
            kind, hidden = conn.execute("SELECT relkind, row_security_active(oid) FROM pg_class "
                                        "WHERE oid = %s::regclass", (relation,)).fetchone()
            if kind not in _STORED or hidden:
                # a view, a foreign table or row-level security can show the gate's read-only session other
                # rows than training's session reads: only stored rows visible in full are gated
                raise GateInputError(f"{self.label}: {self.table!r} is "
                                     + (f"a {_RELKINDS.get(kind, kind)}" if kind not in _STORED else
                                        "under row-level security for this user")
                                     + "; name a table whose rows every reader sees alike")
            rows = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (relation,)).fetchall()
        if not rows:
            raise GateInputError(f"{self.label}: the table has no columns")
        return rows

    def _relation(self) -> Any:
        from psycopg import sql

        return sql.Identifier(*self.table.split("."))

    def _table_batches(self, columns: list[str] | None, strings: bool) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pa_csv

        schema = self.schema(strings)
        names = columns or schema.names
        missing = sorted(set(names) - set(schema.names))
        if missing:
            raise GateInputError(f"{self.label}: no column(s) {missing} in the table")
        from psycopg import sql

        kinds = dict(self._pg_columns())
        # bytea leaves COPY as hex text, which hides what it holds: its bytes are read as UTF-8 text, as a
        # Parquet binary column is (bytes that are not text fail the read: closed)
        selected = [sql.SQL("convert_from({}, 'UTF8')").format(sql.Identifier(n)) if kinds[n] == "bytea"
                    else sql.Identifier(n) for n in names]
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(", ").join(selected), self._relation())
        with self._connect() as conn, conn.cursor() as cursor, cursor.copy(query) as copy:
            stream = _CopyStream(copy)
            reader = pa_csv.open_csv(
                stream, read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 22),
                convert_options=pa_csv.ConvertOptions(
                    column_types={n: schema.field(n).type for n in names}, null_values=[""],
                    strings_can_be_null=True, quoted_strings_can_be_null=False))
            for batch in reader:
                for start in range(0, batch.num_rows, self.batch_rows):
                    yield batch.slice(start, self.batch_rows)

    def table_digest(self) -> tuple[str, int]:
        """(digest, rows) of the table's content, computed by the database.

        Each row's text form (``(t.*)::text`` under pinned session settings; a bare ``t::text`` would be a
        column named ``t`` alone) is hashed with SHA-256; the row
        digests are sorted and hashed in 256 groups by first byte, and the group digests in order, with
        the column names and types. Sorting makes it independent of physical row order (which VACUUM and
        updates move), keeps duplicates, and needs no key; grouping keeps each aggregate far below
        PostgreSQL's 1 GB value limit. Only the 256 group digests leave the server (ADR 0042).
        """
        from psycopg import sql

        columns = self._pg_columns()
        query = sql.SQL(
            "SELECT get_byte(d, 0), count(*), sha256(string_agg(d, ''::bytea ORDER BY d)) FROM "
            "(SELECT sha256(convert_to((t.*)::text, 'UTF8')) AS d FROM {} AS t) AS r GROUP BY 1 ORDER BY 1"
        ).format(self._relation())
        with self._connect() as conn:
            groups = conn.execute(query).fetchall()
        hasher = hashlib.sha256(json.dumps(columns).encode())
        for key, count, digest in groups:
            hasher.update(bytes([key]) + count.to_bytes(8, "big") + bytes(digest))
        return "sha256:" + hasher.hexdigest(), sum(count for _, count, _ in groups)


class _CopyStream(io.RawIOBase):
    """psycopg's COPY reader as a file Arrow can stream from."""

    def __init__(self, copy: Any) -> None:
        self._copy, self._pending = copy, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fills ``buffer`` from as many COPY messages (one row each) as fit: Arrow reads in large blocks."""
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            if not self._pending:
                chunk = self._copy.read()
                if not chunk:
                    break
                self._pending = memoryview(chunk)
            size = min(len(view) - filled, len(self._pending))
            view[filled:filled + size] = self._pending[:size]
            self._pending = self._pending[size:]
            filled += size
        return filled


def dataset_files(path: Path) -> list[Path]:
    """Data files of a file or dataset directory, in name order; markers (``_SUCCESS``, ``.crc``) skipped,
    as Arrow's discovery skips them. One format throughout: a directory mixing formats is not one dataset.
    A symbolic link is refused, as ``data.integrity`` refuses it: Arrow follows a linked partition directory
    that a walk would skip, so training would read rows no gate saw and no manifest pinned."""
    if not path.exists() and not path.is_symlink():
        raise GateInputError(f"{path}: no such file or directory")
    try:
        listed = list_files(path)
    except ValueError as exc:
        raise GateInputError(str(exc)) from None
    files = [p for p in listed if p == path or not any(part.startswith((".", "_"))
                                                       for part in p.relative_to(path).parts)]
    formats = {_DATASET_FORMATS.get(p.suffix.lower()) for p in files}
    if not files:
        raise GateInputError(f"{path}: holds no data files; an empty dataset proves nothing")
    if None in formats or len(formats) > 1:
        raise GateInputError(f"{path}: a dataset must hold files of one format, one of "
                             f"{sorted(_DATASET_FORMATS)}; found {sorted({p.suffix for p in files})}")
    return files


def open_source(spec: str | Path, batch_rows: int = BATCH_ROWS) -> Source:
    """The ``Source`` for a path or a ``postgresql://…?table=`` URI."""
    spec = str(spec)
    if is_table(spec):
        parts = urlsplit(spec)
        query = dict(parse_qsl(parts.query))
        table = query.pop("table", "")
        if not _IDENTIFIER.match(table):
            raise GateInputError(f"{redacted(spec)}: name the table as ?table=name or ?table=schema.name "
                                 f"(letters, digits, _), found {table!r}")
        dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        return Source(spec, "table", dsn=dsn, table=table, batch_rows=batch_rows)
    path = Path(spec)
    dataset_files(path)
    return Source(spec, "dataset" if path.is_dir() else "file", path=path, batch_rows=batch_rows)


def _refuse_shadowed_columns(label: str, fragments: list[Any]) -> None:
    """A hive partition key named like a column of its files: Arrow, Spark and pandas over them give the key's
    value and never the column's, which any reader of the file itself gets (it can hold anything)."""
    import pyarrow.dataset as ds

    for fragment in fragments:
        clash = sorted(set(ds.get_partition_keys(fragment.partition_expression)) & set(fragment.physical_schema.names))
        if clash:
            raise GateInputError(f"{label}: partition key {clash[0]!r} is also a column of a file under it; its "
                                 "values would be read as the key's and go unchecked (rename the column or the key)")
