"""Hourly monitoring of the served model over the latest hour of its inference log.

Drift against the training data's DP reference profile (the ``data.privacy`` release: no raw training
row is kept; accepted only when its digest is the one the served version's verified attestation records,
ADR 0060), a spike of low-confidence predictions, and extraction-like or excessive clients. The
queries gate measures distances against the same training reference, never against the window it judges
(whitened by its own covariance, the sparse pixels of natural digit queries flagged 289 of 300 natural
clients: benchmarks/extraction.py), and keeps its OOD evidence in its own state file: the hourly windows
tile time among themselves but overlap ``model_query_watch``'s 5-minute ones. When a
gate alerts, ``respond`` moves the alias back to the last version whose evidence still passes (or
removes it), records the incident in MLflow and requests retraining; ``monitoring_failed`` then fails
the DAG run, so an alert or a gate that could not decide is never a green run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from mlgate.operators import (
    IncidentRespondOperator,
    MonitorConfidenceGateOperator,
    MonitorDriftGateOperator,
    MonitorQueriesGateOperator,
)
from mlgate.trust.registry import mlgate_home

HOME = mlgate_home()
POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
window = {"inference_log_path": "{{ params.inference_log_path }}", "policy_path": "{{ params.policy_path }}"}

with DAG(
    dag_id="model_monitoring",
    description="Drift, confidence and query gates over the last hour of inference; demote on alert",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["mlgate", "security", "monitoring"],
    params={
        "inference_log_path": Param(str(HOME / "inference"), type="string",
                                    description="inference log: a .jsonl/.parquet file or a directory of them"),
        "reference_path": Param(str(HOME / "profiles" / "loans.dp.json"), type="string",
                                description="the DP profile of the training data (secure_training_pipeline's "
                                            "data.privacy gate writes it; the served version's attestation "
                                            "must vouch for its digest, ADR 0060)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
    },
) as dag:
    gates = [
        MonitorDriftGateOperator(task_id="monitor_drift", reference_path="{{ params.reference_path }}", **window),
        MonitorConfidenceGateOperator(task_id="monitor_confidence", **window),
        MonitorQueriesGateOperator(task_id="monitor_queries", reference_path="{{ params.reference_path }}",
                                   state_path=str(HOME / "monitor" / "extraction_state_hourly.json"), **window),
    ]
    respond = IncidentRespondOperator(task_id="respond", policy_path="{{ params.policy_path }}")

    @task(trigger_rule="one_failed", retries=0)
    def monitoring_failed() -> None:
        """Fails the run when a gate alerted or could not decide (a response that succeeded included)."""
        raise AirflowFailException("a monitoring gate alerted or could not decide; see its task and the incident")

    gates >> respond
    [*gates, respond] >> monitoring_failed()
