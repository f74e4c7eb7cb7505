"""The secure training pipeline on Airflow's CeleryExecutor, as docker-compose.yml's celery profile runs it:
a Redis broker, PostgreSQL as the result backend and two ``airflow celery worker`` processes. The tasks of
one DAG run land on both workers and their evidence converges on one MLflow run; clean data is promoted, one
changed byte is blocked, and a broker nobody listens on leaves the model unpromoted (docs/adr/0039)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from mlgate.demo.run import tamper
from mlgate.trust.registry import PIPELINE_TAG
from tests.e2e.pipeline import DAG_ID, champion, client, logged_in, pipeline_conf, run_dag, states, unpaused_pipeline
from tests.fixtures.mlflow_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.celery]

# Each task's gate id, where it is not the task id with its first "_" as a ".".
GATE_OF_TASK = {"train_model": "model.training", "promote_model": "registry.promote"}


@pytest.fixture(scope="module")
def api(celery_stack):
    with logged_in(celery_stack) as client:
        unpaused_pipeline(client)
        yield client


def version(model_version) -> str | None:
    return None if model_version is None else model_version.version


@contextlib.contextmanager
def scheduler_with_broker(stack, broker_url: str):
    """The scheduler restarted with another broker URL, and restarted with the stack's own afterwards."""
    stack.restart("scheduler", AIRFLOW__CELERY__BROKER_URL=broker_url)
    try:
        yield
    finally:
        stack.restart("scheduler")


def test_tasks_of_one_run_land_on_both_workers_and_converge_on_one_mlflow_run(celery_stack, api, tmp_path: Path):
    url = celery_stack.mlflow_url
    data, conf = pipeline_conf(tmp_path)
    assert champion(url) is None

    run_id, state, tasks = run_dag(api, conf)
    assert (state, states(tasks)) == ("success", dict.fromkeys(tasks, "success"))
    ran_on = {task_id: task["hostname"] for task_id, task in tasks.items()}
    assert set(ran_on.values()) == set(celery_stack.celery.names), ran_on

    mlflow = client(url)
    experiment = mlflow.get_experiment_by_name("mlgate")
    runs = mlflow.search_runs([experiment.experiment_id], f"tags.`{PIPELINE_TAG}` = '{DAG_ID}/{run_id}'")
    # gates racing on both workers may each create a run (keyed_run); all evidence goes to the oldest one
    with_evidence = [r for r in runs if any(tag.startswith("mlgate.gate.") for tag in r.data.tags)]
    assert [r.info.run_id for r in with_evidence] == [min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
                                                      .info.run_id], [(r.info.run_id, r.data.tags) for r in runs]
    recorded = with_evidence[0].data.tags
    for worker in celery_stack.celery.names:
        gates = {GATE_OF_TASK.get(t, t.replace("_", ".", 1)) for t, host in ran_on.items() if host == worker}
        gates.discard("registry.promote")  # its decision lives on the model version
        assert {g: recorded.get(f"mlgate.gate.{g}") for g in gates} == dict.fromkeys(gates, "passed"), worker
    promoted = champion(url)
    assert promoted is not None and promoted.run_id == with_evidence[0].info.run_id

    tamper(data)
    _, state, tasks = run_dag(api, conf)
    assert state == "failed"
    assert tasks["data_integrity"]["state"] == "failed"
    assert tasks["train_model"]["state"] == "upstream_failed"
    assert version(champion(url)) == promoted.version


def test_a_broker_down_leaves_the_model_unpromoted_and_says_where(celery_stack, api, tmp_path: Path):
    url = celery_stack.mlflow_url
    before = version(champion(url))
    dead = f"redis://127.0.0.1:{free_port()}/0"  # a closed port: nothing listens there
    _, conf = pipeline_conf(tmp_path)
    log = celery_stack.logs / "scheduler.log"
    seen = log.stat().st_size
    with scheduler_with_broker(celery_stack, dead):
        run_id, state, tasks = run_dag(api, conf)
        scheduler_log = log.read_text(errors="replace")[seen:]

    # nothing ran (promote_model, trigger rule all_done, was queued too and failed undelivered)
    assert state == "failed"
    assert set(states(tasks).values()) == {"failed", "upstream_failed"}, states(tasks)
    assert tasks["promote_model"]["state"] == "failed" and not any(task["hostname"] for task in tasks.values())
    assert version(champion(url)) == before
    failed = {task_id for task_id, task in tasks.items() if task["state"] == "failed"}
    # where: Airflow's event log names each task the executor failed, and the executor
    events = api.get("/api/v2/eventLogs", params={"dag_id": DAG_ID, "run_id": run_id, "event": "state mismatch"})
    mismatches = {e["task_id"]: e["extra"] for e in events.json()["event_logs"]}
    assert set(mismatches) == failed and all("CeleryExecutor" in extra for extra in mismatches.values()), mismatches
    # what: the scheduler's log says which workload could not be sent, to which broker address, and why
    broker = dead.removeprefix("redis://").removesuffix("/0")
    assert f"Error sending Celery workload: Error 111 connecting to {broker}. Connection refused." in scheduler_log
    assert all(f"task_id='{t}'" in scheduler_log for t in failed), scheduler_log[-3000:]
