"""``registry.promote``: the last gate; moves the alias only for a model whose evidence all holds.

It runs with ``trigger_rule="all_done"`` so a pipeline whose earlier gates failed still ends with an
explicit, recorded refusal that names every reason, instead of a silently skipped promotion. It signs
and verifies the version's attestation with the key of connection ``mlgate_signing_default`` (else the
environment), appends every decision to the model's audit trail, and logs the version's scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.operators.base import BaseGateOperator, pipeline_key, task_actor
from mlgate.trust.promotion import GATE
from mlgate.trust.registry import download_evidence, pipeline_run

if TYPE_CHECKING:
    from airflow.sdk import Context


class RegistryPromoteGateOperator(BaseGateOperator):
    """Promotes ``model_name``/``version`` (default: the model the training task registered)."""

    gate_id = GATE
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model_name", "version")

    def __init__(self, *, model_name: str | None = None, version: str | None = None,
                 training_task_id: str = "train_model", **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = version
        self.training_task_id = training_task_id

    def subject(self) -> Subject:
        return Subject("model", f"models:/{self.model_name or '?'}/{self.version or '?'}", "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        ti = context["ti"]
        name = self.model_name or self.policy.promotion.model_name
        version = self.version or ti.xcom_pull(task_ids=self.training_task_id, key="model_version")
        client = self.mlflow_hook.get_conn()
        actor = task_actor(context)
        if not version:
            return self.nothing_to_promote(client, context, name, actor)
        from mlgate.trust.promote import promote

        return promote(client, self.policy, name, str(version), actor, self.signing_keys)

    def record_extra(self, client: Any, run_id: str, result: GateResult, context: Context) -> None:
        """The version's scorecard, after each decision; a report that cannot be built never changes one."""
        from mlgate.trust.version_report import publish_scorecard

        name, _, version = result.subject.uri.removeprefix("models:/").rpartition("/")
        if not name:  # nothing was promoted: there is no version to report on
            return
        try:
            publish_scorecard(client, self.policy, name, version)
        except Exception as exc:  # the report is best effort: it must not turn a decision into a crash
            self.log.warning("the scorecard of %s/%s could not be logged: %s: %s", name, version,
                             type(exc).__name__, exc)

    def nothing_to_promote(self, client: Any, context: Context, name: str, actor: str) -> GateResult:
        """No model version reached promotion: refuse, naming the gates of this run that did not pass, and
        audit the refusal (version ``-``)."""
        from mlgate.trust.audit import AuditRecord, append_decision
        from mlgate.trust.registry import current_alias_version

        started = utcnow()
        evidence = download_evidence(client, pipeline_run(client, self.mlflow_experiment, pipeline_key(context)))
        reasons = [f"no model version was registered by task {self.training_task_id!r} in this run"]
        for gate, item in sorted(evidence.items()):
            if not isinstance(item, GateResult):
                reasons.append(f"{gate}: {item}")
            elif item.status is not Status.PASSED:
                reasons.append(f"{gate}: status {item.status} ({'; '.join(item.top_failures(3))})")
        alias = self.policy.promotion.alias
        current = current_alias_version(client, name, alias) or ""
        append_decision(client, AuditRecord(at=utcnow(), model=name, version="-", decision="blocked", by=actor,
                                            alias=alias, alias_before=current, alias_after=current,
                                            reasons=tuple(reasons), policy_digest=self.policy.digest),
                        self.signing_keys)
        return GateResult(
            gate=GATE, status=Status.BLOCKED, subject=Subject("model", f"models:/{name}", "none"),
            policy_digest=self.policy.digest, tool=ToolInfo("mlgate", "n/a"), started_at=started,
            finished_at=utcnow(), thresholds={"required_gates": list(self.policy.promotion.required_gates)},
            findings=tuple(Finding(f"{GATE}.refused", Severity.HIGH, reason) for reason in reasons),
        )
