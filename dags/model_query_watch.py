"""Extraction watch: ``monitor.queries`` every 5 minutes, with out-of-distribution evidence per client.

The hourly ``model_monitoring`` run comes too late for a simple model: a logistic regression's surrogate
agrees with it on 0.8 of inputs after about 40 stolen queries, one hour of a paced attacker splitting 40 an
hour over five keys. Here each client's OOD queries against the training reference accumulate across runs
in ``$MLGATE_HOME/monitor/extraction_state.json`` (so the windows are short, the evidence is not), and a
key is flagged after its third far-off query (benchmarks/extraction.py). Only this DAG keeps that state:
its windows must not overlap, which the hourly run's would. Volume and PRADA, which judge a window alone,
stay in the hourly run: at a fixed false-alarm rate per window, 12 windows an hour flag 12 times as many
natural clients. An alert is recorded and notified by
``respond`` (``monitor.queries`` is not in the policy's ``demote_on``); the run then fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from mlgate.operators import IncidentRespondOperator, MonitorQueriesGateOperator
from mlgate.trust.registry import mlgate_home

HOME = mlgate_home()
POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
EVERY = timedelta(minutes=5)

with DAG(
    dag_id="model_query_watch",
    description="Extraction evidence per client every 5 minutes, cumulative across runs",
    schedule=EVERY,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["mlgate", "security", "monitoring"],
    params={
        "inference_log_path": Param(str(HOME / "inference"), type="string",
                                    description="inference log: a .jsonl/.parquet file or a directory of them"),
        "reference_path": Param(str(HOME / "profiles" / "loans.dp.json"), type="string",
                                description="the training data's DP profile, the one the served version's "
                                            "attestation vouches for (a sample only under a policy whose "
                                            "monitor.queries.reference is 'unverified', ADR 0060)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
    },
) as dag:
    queries = MonitorQueriesGateOperator(
        task_id="monitor_queries", inference_log_path="{{ params.inference_log_path }}",
        reference_path="{{ params.reference_path }}", policy_path="{{ params.policy_path }}",
        window_hours=EVERY / timedelta(hours=1), per_window=False)
    respond = IncidentRespondOperator(task_id="respond", policy_path="{{ params.policy_path }}")

    @task(trigger_rule="one_failed", retries=0)
    def watch_failed() -> None:
        """Fails the run when the gate alerted or could not decide."""
        raise AirflowFailException("monitor.queries alerted or could not decide; see its task and the incident")

    queries >> respond
    [queries, respond] >> watch_failed()
