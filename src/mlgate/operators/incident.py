"""``incident.respond``: demote the served model when monitoring alerts, record it, request retraining, notify.

The operator runs with ``trigger_rule="all_done"`` and reads the monitoring gates' results from XCom
rather than using ``one_failed``: ``one_failed`` fires as soon as one gate fails, before the others have
reported, and cannot tell an alert (a blocked gate) from a gate that could not decide (an error, e.g. an
empty window), which must not demote a model. With no alert and no reported ``reason`` it is skipped.

Retraining is requested through an Asset event (``RETRAINING_REQUESTED``, added through the
``RETRAINING`` alias so it exists only when the response demoted the model), which the secure training
pipeline is scheduled on. An event, not a ``TriggerDagRunOperator``: the monitoring DAG needs no training
DAG id, several incidents before the next training collapse into one run, any DAG (or team) can
subscribe, and the event's ``extra`` names the incident. Put a ``TriggerDagRunOperator`` downstream
instead to start a specific DAG with its own conf.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias
from airflow.sdk.exceptions import AirflowSkipException

from mlgate.core.results import GateResult, Status, Subject
from mlgate.core.runner import GateOutcome
from mlgate.gates.monitor.incident import GATE, MONITOR_GATES, alerts, respond
from mlgate.hooks.signing import SigningKeyHook
from mlgate.operators.base import BaseGateOperator, pipeline_key

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context

RETRAINING_REQUESTED = Asset("mlgate_retraining_requested")
RETRAINING = AssetAlias("mlgate_retraining")


class IncidentRespondOperator(BaseGateOperator):
    """Responds to the blocked results of the monitoring gates upstream (``monitor_task_ids``, default: every
    upstream monitoring gate), or to a ``reason`` reported by a person (the ``incident_response`` DAG).

    The model is ``model_name`` (default: the policy's), ``version`` (default: the one the alias serves).
    ``notifiers`` (Airflow notifiers, e.g. Slack or SMTP) are called with the task's context plus
    ``incident`` (the response's GateResult as a dict), whatever the outcome; a notifier that fails is
    logged and does not undo the response.
    """

    gate_id = GATE
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model_name", "version", "reason")
    ui_color = "#f6e3e1"

    def __init__(self, *, model_name: str | None = None, version: str | None = None, reason: str | None = None,
                 monitor_task_ids: Sequence[str] | None = None, notifiers: Sequence[BaseNotifier] = (),
                 **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("outlets", [RETRAINING])
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version = version
        self.reason = reason
        self.monitor_task_ids = monitor_task_ids
        self.notifiers = list(notifiers)

    def subject(self) -> Subject:
        return Subject("model", f"models:/{self.model_name or '?'}/{self.version or 'served'}", "unknown")

    def alerts(self, context: Context) -> tuple[GateResult, ...]:
        """The blocked results the monitoring gates upstream pushed to XCom (under their gate id)."""
        ti = context["ti"]
        results = []
        for task_id in self.monitor_task_ids or sorted(self.upstream_task_ids):
            gate = getattr(self.dag.get_task(task_id), "gate_id", None)
            pushed = ti.xcom_pull(task_ids=task_id, key=gate) if gate in MONITOR_GATES else None
            if pushed:
                results.append(GateResult.from_dict(pushed))
        return alerts(results)

    def execute(self, context: Context) -> None:
        if not self.reason and not self.alerts(context):
            raise AirflowSkipException("no monitoring gate alerted and no incident was reported")
        super().execute(context)

    def check(self, context: Context, workdir: Path) -> GateResult:
        name = self.model_name or self.policy.promotion.model_name
        return respond(self.mlflow_hook.get_conn(), self.policy, name, self.version or None, self.alerts(context),
                       reason=self.reason or "", key=pipeline_key(context), keys=SigningKeyHook().get_conn())

    def record(self, result: GateResult, context: Context) -> None:
        try:
            super().record(result, context)
        finally:
            self.notify(result, context)

    def record_extra(self, client: Any, run_id: str, result: GateResult, context: Context) -> None:
        """Request retraining when the response demoted the model."""
        if not result.metrics.get("retrain") or RETRAINING not in self.outlets:
            return
        context["outlet_events"][RETRAINING].add(RETRAINING_REQUESTED, extra={
            "incident": result.metrics["incident"], "model": result.subject.uri,
            "restored_version": result.metrics["alias_after"], "gate": self.gate_id})

    def notify(self, result: GateResult, context: Context) -> None:
        for notifier in self.notifiers:
            try:
                notifier({**context, "incident": result.to_dict()})
            except Exception:
                self.log.exception("notifier %s failed for incident %s", type(notifier).__name__,
                                   result.metrics.get("incident", "?"))

    def raise_for(self, outcome: GateOutcome) -> None:
        """BLOCKED (nothing is served any more) is the response working as the policy says, not a failure
        of this task: the task succeeds, so retraining is requested. Errors still fail it."""
        if outcome.result.status is Status.BLOCKED:
            self.log.warning("%s", "\n".join(outcome.result.top_failures()))
            return
        super().raise_for(outcome)
