"""The secure training pipeline driven through a process stack's public surfaces only: the REST API (log in,
unpause, trigger with ``logical_date: null``, poll) and MLflow's registry. Shared by the e2e tests of every
executor."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from mlgate.demo.dataset import write_loans
from mlgate.gates.data.integrity import build_manifest

DAG_ID = "secure_training_pipeline"
MODEL, ALIAS = "loan-default", "champion"
RUN_TIMEOUT_S = float(os.environ.get("MLGATE_E2E_RUN_TIMEOUT_S", 360))  # more on a machine shared with others
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def logged_in(stack) -> Iterator[httpx.Client]:
    """An API client logged in as the stack's admin through the simple auth manager."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        login = client.post("/auth/token", json={"username": "admin", "password": stack.credentials["admin"]})
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield client


def unpaused_pipeline(api: httpx.Client, timeout: float = 120) -> None:
    """Wait until the DAG is parsed, then unpause it."""
    deadline = time.monotonic() + timeout
    while api.get(f"/api/v2/dags/{DAG_ID}").status_code == 404:
        assert time.monotonic() < deadline, f"{DAG_ID} was not parsed within {timeout}s"
        time.sleep(1)
    unpaused = api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert unpaused.status_code == 200 and unpaused.json()["is_paused"] is False, unpaused.text


def pipeline_conf(folder: Path) -> tuple[Path, dict[str, str]]:
    """Clean demo data pinned by its manifest in ``folder``, and the run conf that trains on it."""
    data, manifest = folder / "loans.csv", folder / "loans.manifest.json"
    write_loans(data, 4000)
    build_manifest(data).save(manifest)
    return data, {"data_path": str(data), "manifest_path": str(manifest),
                  "policy_path": str(ROOT / "policies" / "default.yaml"), "profile_path": str(folder / "loans.dp.json")}


def run_dag(api: httpx.Client, conf: dict[str, str]) -> tuple[str, str, dict[str, dict]]:
    """Trigger a run, wait for its end; its id, final state and each task instance as the API shows it."""
    created = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (state := api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run {run_id} still {state} after {RUN_TIMEOUT_S}s"
        time.sleep(2)
    tasks = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return run_id, state, {task["task_id"]: task for task in tasks}


def states(tasks: dict[str, dict]) -> dict[str, str]:
    return {task_id: task["state"] for task_id, task in tasks.items()}


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
