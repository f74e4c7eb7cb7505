"""Operators for the data gates: ``data.integrity``, ``data.expectations`` and ``data.pii``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Subject
from mlgate.gates.data.provenance import append_provenance
from mlgate.operators.base import BaseGateOperator, provenance_entry
from mlgate.trust.registry import log_dataset_input

if TYPE_CHECKING:
    from airflow.sdk import Context


def data_source(data_path: str, postgres_conn_id: str | None) -> str:
    """``data_path`` itself, or, with ``postgres_conn_id``, the table ``data_path`` names on that Airflow
    connection as a ``postgresql://…?table=`` source (its password never leaves this task)."""
    if not postgres_conn_id:
        return str(data_path)
    from airflow.sdk import BaseHook

    from mlgate.gates.data.sources import table_uri

    return table_uri(BaseHook.get_connection(postgres_conn_id).get_uri(), str(data_path))


def _label(data_path: str, postgres_conn_id: str | None) -> str:
    return f"{postgres_conn_id}:{data_path}" if postgres_conn_id else str(data_path)


class DataIntegrityGateOperator(BaseGateOperator):
    """Compares a file or directory with its pinned manifest; its subject digest is the data version.

    A verified dataset also gets a provenance entry (JSON lines, logged with the evidence), an MLflow
    dataset input on the pipeline run, and its digest in the ``extra`` of each outlet Asset's event.
    """

    gate_id = "data.integrity"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "manifest_path")

    def __init__(self, *, data_path: str, manifest_path: str, postgres_conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.manifest_path = manifest_path
        self.postgres_conn_id = postgres_conn_id

    def subject(self) -> Subject:
        return Subject("dataset", _label(self.data_path, self.postgres_conn_id), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.data.integrity import check_integrity

        def progress(done: int, total: int) -> None:
            if done == total or done % max(1, total // 10) == 0:
                self.log.info("hashed %d/%d files", done, total)

        result = check_integrity(data_source(self.data_path, self.postgres_conn_id), Path(self.manifest_path),
                                 self.policy, progress)
        if not result.passed:
            return result
        entry = provenance_entry(context, source_uri=str(self.data_path), output_digest=result.subject.digest,
                                 upstream=(result.thresholds["pinned_digest"],),
                                 transformation="none: verified against the pinned manifest")
        return replace(result, artifacts=(*result.artifacts, str(append_provenance(workdir / "provenance.jsonl",
                                                                                   [entry]))))

    def record_extra(self, client: Any, run_id: str, result: GateResult, context: Context) -> None:
        """The verified data version as an MLflow dataset input and in each outlet Asset event's ``extra``."""
        if not result.passed:
            return
        log_dataset_input(client, run_id, str(self.data_path), result.subject.digest)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"digest": result.subject.digest, "gate": self.gate_id}


class DataExpectationsGateOperator(BaseGateOperator):
    """Validates data with the policy's Great Expectations suite (or ``suite_path``). With ``postgres_conn_id``,
    ``data_path`` names a table on that connection, validated in the database; ``push_down`` validates a
    Parquet dataset with DuckDB over its files instead of in memory."""

    gate_id = "data.expectations"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "suite_path")

    def __init__(self, *, data_path: str, suite_path: str | None = None, postgres_conn_id: str | None = None,
                 push_down: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.suite_path = suite_path
        self.postgres_conn_id = postgres_conn_id
        self.push_down = push_down

    def subject(self) -> Subject:
        return Subject("dataset", _label(self.data_path, self.postgres_conn_id), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.data.expectations import check_expectations

        suite = Path(self.suite_path) if self.suite_path else None
        return check_expectations(data_source(self.data_path, self.postgres_conn_id), self.policy, suite,
                                  report_dir=workdir, push_down=self.push_down)


class DataPiiGateOperator(BaseGateOperator):
    """Scans CSV, Parquet, JSONL or text (a file, or a directory of them such as a partitioned dataset) for
    PII and secrets outside the columns allowed to hold them; text is decoded with ``encoding``. With
    ``stream`` the file or dataset is read as one table in record batches (bounded memory); with
    ``postgres_conn_id``, ``data_path`` names a table on that connection, always read in batches. With
    ``engine="spark"`` a Parquet file or dataset is scanned by a Spark job on ``spark_master`` (default
    ``local[2]``), with the streamed scan's verdict (ADR 0049).

    With ``action: mask`` the sanitized copy is logged with the evidence and, when ``masked_path`` is
    set, also written there (its digest is in ``metrics.masked_digest``) for the tasks downstream.
    """

    gate_id = "data.pii"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "masked_path", "encoding")

    def __init__(self, *, data_path: str, masked_path: str | None = None, encoding: str = "utf-8",
                 postgres_conn_id: str | None = None, stream: bool = False, engine: str = "arrow",
                 spark_master: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.masked_path = masked_path
        self.encoding = encoding
        self.postgres_conn_id = postgres_conn_id
        self.stream = stream
        self.engine = engine
        self.spark_master = spark_master

    def subject(self) -> Subject:
        return Subject("dataset", _label(self.data_path, self.postgres_conn_id), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        import shutil

        from mlgate.gates.data.pii import check_pii

        if self.engine == "spark":
            from mlgate.gates.data.pii_spark import check_pii_spark
            from mlgate.gates.data.sources import open_source

            return check_pii_spark(open_source(self.data_path), self.policy.section(self.gate_id),
                                   self.policy.digest, self.policy.section("data.integrity").algorithm,
                                   self.spark_master)
        if self.engine != "arrow":
            raise GateInputError(f"{self.gate_id}: engine {self.engine!r}: choose 'arrow' or 'spark'")
        if self.stream or self.postgres_conn_id:  # read in bounded batches; a table always is
            from mlgate.gates.data.pii_stream import check_pii_source
            from mlgate.gates.data.sources import open_source

            return check_pii_source(open_source(data_source(self.data_path, self.postgres_conn_id)),
                                    self.policy.section(self.gate_id), self.policy.digest,
                                    self.policy.section("data.integrity").algorithm)
        result = check_pii(Path(self.data_path), self.policy.section(self.gate_id), self.policy.digest, workdir,
                           self.policy.section("data.integrity").algorithm, self.encoding)
        if self.masked_path and result.artifacts:
            Path(self.masked_path).parent.mkdir(parents=True, exist_ok=True)
            masked = Path(result.artifacts[0])
            if masked.is_dir():
                shutil.copytree(masked, self.masked_path, dirs_exist_ok=True)
            else:
                shutil.copyfile(masked, self.masked_path)
        return result
