"""Operators for the data gates: ``data.integrity``, ``data.expectations`` and ``data.pii``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject
from mlgate.gates.data.provenance import append_provenance
from mlgate.operators.base import BaseGateOperator, provenance_entry
from mlgate.trust.registry import log_dataset_input

if TYPE_CHECKING:
    from airflow.sdk import Context


class DataIntegrityGateOperator(BaseGateOperator):
    """Compares a file or directory with its pinned manifest; its subject digest is the data version.

    A verified dataset also gets a provenance entry (JSON lines, logged with the evidence), an MLflow
    dataset input on the pipeline run, and its digest in the ``extra`` of each outlet Asset's event.
    """

    gate_id = "data.integrity"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "manifest_path")

    def __init__(self, *, data_path: str, manifest_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.manifest_path = manifest_path

    def subject(self) -> Subject:
        return Subject("dataset", str(self.data_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.data.integrity import check_integrity

        def progress(done: int, total: int) -> None:
            if done == total or done % max(1, total // 10) == 0:
                self.log.info("hashed %d/%d files", done, total)

        result = check_integrity(Path(self.data_path), Path(self.manifest_path), self.policy, progress)
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
    """Validates data with the policy's Great Expectations suite (or ``suite_path``)."""

    gate_id = "data.expectations"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "suite_path")

    def __init__(self, *, data_path: str, suite_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.suite_path = suite_path

    def subject(self) -> Subject:
        return Subject("dataset", str(self.data_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.data.expectations import check_expectations

        suite = Path(self.suite_path) if self.suite_path else None
        return check_expectations(Path(self.data_path), self.policy, suite, report_dir=workdir)


class DataPiiGateOperator(BaseGateOperator):
    """Scans CSV, Parquet, JSONL or text (a file, or a directory of them such as a partitioned dataset) for
    PII and secrets outside the columns allowed to hold them; text is decoded with ``encoding``.

    With ``action: mask`` the sanitized copy is logged with the evidence and, when ``masked_path`` is
    set, also written there (its digest is in ``metrics.masked_digest``) for the tasks downstream.
    """

    gate_id = "data.pii"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "masked_path", "encoding")

    def __init__(self, *, data_path: str, masked_path: str | None = None, encoding: str = "utf-8",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.masked_path = masked_path
        self.encoding = encoding

    def subject(self) -> Subject:
        return Subject("dataset", str(self.data_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        import shutil

        from mlgate.gates.data.pii import check_pii

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
