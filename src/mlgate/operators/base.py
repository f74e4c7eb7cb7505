"""BaseGateOperator: render arguments, run a core gate, record the evidence, then pass or raise.

Order matters (ADR 0001): the GateResult goes to XCom and MLflow *before* any exception, so a blocked or
broken gate always leaves evidence; if the evidence cannot be recorded, the task fails (retryably)
because nothing downstream could trust it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy import Policy, load_policy
from mlgate.core.results import GateResult, Status, Subject, error_result, utcnow
from mlgate.core.runner import GateOutcome, run_gate
from mlgate.core.summary import format_summary
from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.gates.data.provenance import Producer, ProvenanceEntry
from mlgate.hooks.mlflow import MlflowHook
from mlgate.hooks.signing import SigningKeyHook
from mlgate.links import MlflowRunLink
from mlgate.trust.registry import log_result, pipeline_run, run_url

if TYPE_CHECKING:
    from airflow.sdk import Context
    from securesystemslib.signer import CryptoSigner

    from mlgate.trust.keys import KeyRing


def pipeline_key(context: Context) -> str:
    """Identifies the MLflow run that collects all evidence of one DAG run."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}"


def verified_data_digest(context: Context, task_id: str, purpose: str) -> str:
    """The data version this run's ``data.integrity`` task verified; anything else is refused (fail closed)."""
    upstream = context["ti"].xcom_pull(task_ids=task_id, key="data.integrity")
    if not upstream:
        raise GateInputError(f"no data.integrity result from task {task_id!r} in this run; refusing to {purpose} "
                             "on unverified data")
    if upstream.get("status") != Status.PASSED:
        raise GateInputError(f"data.integrity in task {task_id!r} is {upstream.get('status')}; refusing to {purpose}")
    return upstream["subject"]["digest"]


def task_actor(context: Context) -> str:
    """Who acts, for ledgers and audit trails: ``airflow:<dag>/<run>/<task>``."""
    ti = context["ti"]
    return f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}"


def provenance_entry(context: Context, *, source_uri: str, output_digest: str, upstream: tuple[str, ...],
                     transformation: str) -> ProvenanceEntry:
    """Who produced ``output_digest`` (this DAG run's task), from what, how, and when."""
    ti = context["ti"]
    return ProvenanceEntry(source_uri=source_uri, retrieved_at=utcnow(), producer=Producer(ti.dag_id, ti.run_id,
                           ti.task_id), transformation=transformation, output_digest=output_digest,
                           upstream_digests=upstream)


class BaseGateOperator(BaseOperator):
    """Subclasses set ``gate_id`` and implement ``check`` (and ``subject`` for error results)."""

    gate_id: ClassVar[str]
    template_fields: Sequence[str] = ("policy_path", "mlflow_experiment")
    operator_extra_links = (MlflowRunLink(),)
    ui_color = "#e8f1e4"

    def __init__(self, *, policy_path: str, mlflow_conn_id: str = MlflowHook.default_conn_name,
                 mlflow_experiment: str = "mlgate", signing_conn_id: str = SigningKeyHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy_path = policy_path
        self.mlflow_conn_id = mlflow_conn_id
        self.mlflow_experiment = mlflow_experiment
        self.signing_conn_id = signing_conn_id

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        """The one accessor tests override."""
        return MlflowHook(self.mlflow_conn_id)

    @cached_property
    def signing_keys(self) -> KeyRing:
        """The keys of connection ``signing_conn_id`` (else the environment), read lazily."""
        return SigningKeyHook(self.signing_conn_id).get_conn()

    @cached_property
    def signer(self) -> CryptoSigner | None:
        """The key this task signs its results with; ``None`` when none is configured."""
        keys = self.signing_keys
        return keys.signer() if keys.has_signing_key else None

    def sign(self, result: GateResult, run_id: str) -> str | None:
        """The result's DSSE envelope, signed where it is produced for the MLflow run it is logged in
        (ADR 0013); without a key it is recorded unsigned, and promotion counts it as missing."""
        from mlgate.trust.gate_evidence import sign_result

        if self.signer is None:
            self.log.warning("%s: no signing key configured; the result is recorded unsigned and promotion "
                             "will count it as missing", self.gate_id)
            return None
        return sign_result(result, self.signer, run_id)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.policy_path)

    def subject(self) -> Subject:
        """What this gate checks, named before checking (used when the gate errors out)."""
        raise NotImplementedError

    def check(self, context: Context, workdir: Path) -> GateResult:
        raise NotImplementedError

    def execute(self, context: Context) -> None:
        with tempfile.TemporaryDirectory(prefix="mlgate-") as workdir:
            outcome = run_gate(self.gate_id, self.subject(), lambda: self.check(context, Path(workdir)),
                               lambda: self.policy.digest)
            self.record(outcome.result, context)
        self.raise_for(outcome)

    def record(self, result: GateResult, context: Context) -> None:
        ti = context["ti"]
        ti.xcom_push(key=self.gate_id, value=result.to_dict())
        try:
            client = self.mlflow_hook.get_conn()
            run_id = pipeline_run(client, self.mlflow_experiment, pipeline_key(context))
            envelope = self.sign(result, run_id)
            log_result(client, run_id, result, envelope)
            self.record_extra(client, run_id, result, context)
            ti.xcom_push(key=MlflowRunLink().xcom_key, value=run_url(client, run_id))
        except (ToolError, GateInputError) as exc:  # MLflow failed, or the configured key is unusable
            # the XCom must not say ``passed`` for a gate that counts as failed: a task downstream that
            # runs anyway (trigger rule ``all_done``) would trust it
            ti.xcom_push(key=self.gate_id, value=error_result(self.gate_id, result.subject, result.policy_digest,
                                                              result.tool, result.started_at, exc).to_dict())
            raise AirflowException(f"{self.gate_id}: its evidence could not be recorded, so the gate counts "
                                   f"as failed: {exc}") from exc
        self.log.info("%s\n%s", self.gate_id, format_summary(result))

    def record_extra(self, client: Any, run_id: str, result: GateResult, context: Context) -> None:
        """More evidence a gate records beside its result (MLflow inputs, Asset events); none by default."""

    def raise_for(self, outcome: GateOutcome) -> None:
        result = outcome.result
        if result.status is Status.PASSED:
            return
        message = (f"{self.gate_id} {result.status} for {result.subject.uri}:\n  "
                   + "\n  ".join(result.top_failures()))
        if result.status is Status.BLOCKED:
            raise GatePolicyViolation(message)
        if outcome.retryable:
            raise AirflowException(message) from outcome.error
        raise GateConfigViolation(message) from outcome.error
