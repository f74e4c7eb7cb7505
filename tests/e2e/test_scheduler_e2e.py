"""The secure training pipeline through the real Airflow scheduler: triggered over the REST API, run by the
LocalExecutor, recorded in a real MLflow server. Clean data is promoted; one changed byte is blocked."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from mlgate.demo.dataset import write_loans
from mlgate.demo.run import tamper
from mlgate.gates.data.integrity import build_manifest
from mlgate.trust.registry import PIPELINE_TAG

pytestmark = pytest.mark.e2e

DAG_ID = "secure_training_pipeline"
MODEL, ALIAS = "loan-default", "champion"
RUN_TIMEOUT_S = 360


@pytest.fixture(scope="module")
def api(airflow_stack):
    """An API client logged in as the stack's admin through the simple auth manager."""
    with httpx.Client(base_url=airflow_stack.url, timeout=30) as client:
        login = client.post("/auth/token", json={"username": "admin", "password": airflow_stack.credentials["admin"]})
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield client


def wait_for_dag(api: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while api.get(f"/api/v2/dags/{DAG_ID}").status_code == 404:
        assert time.monotonic() < deadline, f"{DAG_ID} was not parsed within {timeout}s"
        time.sleep(1)


def run_dag(api: httpx.Client, conf: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """Trigger a run, wait for its end; its id, final state and the state of each task."""
    created = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (state := api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run {run_id} still {state} after {RUN_TIMEOUT_S}s"
        time.sleep(2)
    tasks = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return run_id, state, {task["task_id"]: task["state"] for task in tasks}


def client(tracking_uri: str):
    """A client bound to the server for tracking and registry alike: in-process tests elsewhere in the
    session may have pointed MLflow's global registry URI at another store."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)


def champion(tracking_uri: str):
    """The model version the alias points at; None only while the model does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client(tracking_uri).get_model_version_by_alias(MODEL, ALIAS)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def test_scheduler_promotes_clean_data_and_blocks_tampered_data(airflow_stack, api, e2e_mlflow, tmp_path: Path):
    wait_for_dag(api)
    unpaused = api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert unpaused.status_code == 200 and unpaused.json()["is_paused"] is False, unpaused.text
    data, manifest = tmp_path / "loans.csv", tmp_path / "loans.manifest.json"
    write_loans(data, 4000)
    build_manifest(data).save(manifest)
    conf = {"data_path": str(data), "manifest_path": str(manifest),
            "policy_path": str(Path(__file__).resolve().parents[2] / "policies" / "default.yaml"),
            "profile_path": str(tmp_path / "loans.dp.json")}
    assert champion(e2e_mlflow.url) is None

    run_id, state, tasks = run_dag(api, conf)
    assert (state, tasks) == ("success", dict.fromkeys(tasks, "success"))
    assert {"data_integrity", "code_dependencies", "deploy_config", "model_robustness", "promote_model"} <= set(tasks)
    promoted = champion(e2e_mlflow.url)
    assert promoted is not None
    run_tags = client(e2e_mlflow.url).get_run(promoted.run_id).data.tags
    assert run_tags[PIPELINE_TAG] == f"{DAG_ID}/{run_id}"

    tamper(data)
    _, state, tasks = run_dag(api, conf)
    assert state == "failed"
    assert tasks["data_integrity"] == "failed"
    assert tasks["train_model"] == "upstream_failed"
    assert champion(e2e_mlflow.url).version == promoted.version
