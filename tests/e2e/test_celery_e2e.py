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
    assert len(runs) == 1, [r.info.run_id for r in runs]
    recorded = runs[0].data.tags
    for worker in celery_stack.celery.names:
        gates = {GATE_OF_TASK.get(t, t.replace("_", ".", 1)) for t, host in ran_on.items() if host == worker}
        gates.discard("registry.promote")  # its decision lives on the model version
        assert {g: recorded.get(f"mlgate.gate.{g}") for g in gates} == dict.fromkeys(gates, "passed"), worker
    promoted = champion(url)
    assert promoted is not None and promoted.run_id == runs[0].info.run_id

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
    with scheduler_with_broker(celery_stack, dead):
        run_id, state, tasks = run_dag(api, conf)

    assert state == "failed"
    assert tasks["promote_model"]["state"] in ("upstream_failed", "failed")
    assert all(task["hostname"] in ("", None) for task in tasks.values()), "a task ran without a broker"
    assert version(champion(url)) == before
    scheduler_log = (celery_stack.logs / "scheduler.log").read_text()
    assert "Error sending Celery workload" in scheduler_log
    print({t: (x["state"], x["hostname"]) for t, x in tasks.items()})
