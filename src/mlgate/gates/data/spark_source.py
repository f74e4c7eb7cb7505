"""Spark as the engine that reads a data-lake table (a Parquet file or a hive-partitioned Parquet dataset) for
the data gates: each Spark partition hands its rows to the gates' own Arrow code through ``mapInArrow`` and
returns one small JSON summary; the driver merges the summaries (ADR 0049).

Each batch reaches that code as the Arrow path reads it: cast to the schema ``pyarrow.dataset`` gives the same
files (so a partition column ``day=1`` is an int32 there and here), with every row's number in the Arrow path's
order (files in name order, rows in file order) and its Parquet row group, which Spark never splits across
partitions. A partition's exception is a failed job (``ToolError``); a ``GateInputError`` raised by the gates'
code comes back as such. Nothing but the summaries crosses the wire: no cell is collected or logged.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlgate.core.errors import GateInputError, ToolError
from mlgate.gates.data.sources import Source, dataset_files

MASTER = "local[2]"
_POSITION = ("file_path", "row_index")
_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
         "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
         "spark.sql.execution.arrow.useLargeVarTypes": "false"}
# Set on every job, a task's own session included: Arrow reads ``Notes`` and ``notes`` as two columns and a
# column only some files hold as null elsewhere; Spark by default resolves names case-insensitively (one
# file's ``notes`` was scanned as both columns) and takes one file's schema (a column only another file holds
# failed the job).
_JOB_CONF = {"spark.sql.sources.partitionColumnTypeInference.enabled": "false",
             "spark.sql.caseSensitive": "true", "spark.sql.parquet.mergeSchema": "true"}


def _java() -> None:
    """Spark's JVM must exist before Spark is asked to start it (its own failure is a 60-second wait)."""
    home = os.environ.get("JAVA_HOME")
    java = Path(home, "bin", "java") if home else shutil.which("java")
    if java is None or not Path(java).is_file():
        raise ToolError("Spark needs Java 17 or later: " + (f"JAVA_HOME={home} holds no bin/java" if home
                                                            else "no java on PATH and JAVA_HOME is not set"))


@contextmanager
def spark_session(master: str | None = None, session: Any = None) -> Iterator[Any]:
    """``session`` as it is; else the session already active in this process (a task's own, left running), if
    it runs on ``master``; else a new one on ``master`` (default ``local[2]``), stopped on exit."""
    if session is not None:
        yield session
        return
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ToolError("the Spark engine needs pyspark: pip install 'mlgate[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        if master and master != active.sparkContext.master:
            raise ToolError(f"a Spark session on {active.sparkContext.master} is already active in this process; "
                            f"one process cannot also run one on {master}")
        yield active
        return
    _java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run the gates' code: this interpreter's
    builder = SparkSession.builder.master(master or MASTER).appName("mlgate")
    for key, value in _CONF.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - py4j and pyspark raise many kinds; every one is "no Spark"
        raise ToolError(f"cannot start Spark on {master or MASTER}: {type(exc).__name__}") from None
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


@dataclass(frozen=True)
class Layout:
    """Where each row of a Parquet source stands in the Arrow path's order, read from the files' footers."""

    files: tuple[str, ...]  # absolute paths, in the Arrow path's order
    first_rows: tuple[int, ...]  # each file's first row number
    groups: tuple[tuple[int, ...], ...]  # per file, the row index its row groups start at
    first_groups: tuple[int, ...]  # each file's first row group number
    schema: pa.Schema  # the Arrow path's schema

    def positions(self, paths: pa.Array, rows: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, row group numbers) of the rows Spark read at ``rows`` of files ``paths``."""
        unique = paths.unique()
        known = [str(Path(unquote(urlsplit(path).path))) for path in unique.to_pylist()]
        if any(path not in self.files for path in known):
            raise RuntimeError("Spark read a file the source does not list")
        files = np.asarray([self.files.index(path) for path in known], np.int64)[
            pc.index_in(paths, value_set=unique).to_numpy(zero_copy_only=False)]
        rows = rows.to_numpy(zero_copy_only=False).astype(np.int64)
        groups = np.empty_like(rows)
        for file in np.unique(files).tolist():
            mask = files == file
            groups[mask] = self.first_groups[file] + np.searchsorted(self.groups[file], rows[mask], "right") - 1
        return np.asarray(self.first_rows, np.int64)[files] + rows, groups


def layout(source: Source) -> Layout:
    """The ``Layout`` of a Parquet file or dataset; any other source is refused (Spark reads data lakes)."""
    import pyarrow.parquet as pq

    files = [] if source.kind == "table" else dataset_files(source.path)
    if not files or files[0].suffix.lower() not in (".parquet", ".pq"):
        raise GateInputError(f"{source.label}: the Spark engine reads Parquet files and datasets (data-lake "
                             "tables); use the arrow engine for CSV, JSON lines and PostgreSQL")
    first_rows, groups, first_groups, row, group = [], [], [], 0, 0
    for file in files:
        meta = pq.read_metadata(file)
        starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])[:-1]
        first_rows.append(row)
        first_groups.append(group)
        groups.append(tuple(int(s) for s in starts))
        row, group = row + meta.num_rows, group + meta.num_row_groups
    return Layout(tuple(str(f.resolve()) for f in files), tuple(first_rows), tuple(groups), tuple(first_groups),
                  source.schema())


Positioned = Iterator[tuple[pa.RecordBatch, np.ndarray, np.ndarray]]  # batch, row numbers, row group numbers
Work = Callable[[Positioned], Any]


def map_partitions(spark: Any, source: Source, plan: Layout, work: Work, columns: list[str] | None = None
                   ) -> list[Any]:
    """``work`` run on each Spark partition's batches (as the Arrow path reads them), its JSON results."""
    names = columns or plan.schema.names
    schema = pa.schema([plan.schema.field(n) for n in names])
    for key, value in _JOB_CONF.items():
        spark.conf.set(key, value)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(source.batch_rows))
    try:
        reader = spark.read.option("basePath", str(source.path)) if source.kind == "dataset" else spark.read
        frame = reader.parquet(*plan.files).select(*[f"`{n}`" for n in names],
                                                   *[f"_metadata.{p}" for p in _POSITION])
        rows = frame.mapInArrow(_job(work, plan, schema), "result string").collect()
    except Exception as exc:  # noqa: BLE001 - a failed job, whatever Spark raised: details may quote data
        raise ToolError(f"{source.label}: the Spark job failed ({type(exc).__name__}; details withheld, they "
                        "may quote the data)") from None
    results = [json.loads(row["result"]) for row in rows]
    for result in results:
        if "refused" in result:
            raise GateInputError(result["refused"])
    return [result["ok"] for result in results]


def _job(work: Work, plan: Layout, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def job(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        def positioned() -> Positioned:
            for batch in batches:
                numbers, groups = plan.positions(batch.column(_POSITION[0]), batch.column(_POSITION[1]))
                columns = [batch.column(n).cast(schema.field(n).type) for n in schema.names]
                yield pa.RecordBatch.from_arrays(columns, schema=schema), numbers, groups

        try:
            result = {"ok": work(positioned())}
        except GateInputError as exc:
            result = {"refused": str(exc)}
        except Exception as exc:  # noqa: BLE001 - Spark logs a task's exception: its message may quote a cell
            raise RuntimeError(f"{type(exc).__name__} in a partition (details withheld, they may quote the "
                               "data)") from None
        yield pa.RecordBatch.from_pydict({"result": [json.dumps(result)]})

    return job


def runs(groups: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """(start, length, row group) of each stretch of a batch's rows within one row group."""
    edges = [0, *(np.flatnonzero(np.diff(groups)) + 1).tolist(), len(groups)]
    for start, end in zip(edges, edges[1:], strict=False):
        if end > start:
            yield start, end - start, int(groups[start])
