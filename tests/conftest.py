"""Test environment: Airflow and MLflow point at a per-session scratch area before anything imports them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SCRATCH = Path(os.environ.get("MLGATE_TEST_SCRATCH") or tempfile.mkdtemp(prefix="mlgate-tests-"))

# Airflow reads its configuration at import: set it first. The DB is migrated by the `airflow_db` fixture.
os.environ.update({
    "AIRFLOW_HOME": str(_SCRATCH / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
        "MLGATE_TEST_AIRFLOW_DB", f"sqlite:///{_SCRATCH / 'airflow' / 'airflow.db'}"),
    "MLGATE_HOME": str(_SCRATCH / "mlgate"),
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "OMP_NUM_THREADS": "1",
})
os.environ.pop("MLFLOW_TRACKING_URI", None)
(_SCRATCH / "airflow").mkdir(parents=True, exist_ok=True)

LEVELS = ("unit", "integration", "dags", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries one of the level markers; an unmarked test fails collection."""
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(m) for m in LEVELS)]
    if unmarked:
        raise pytest.UsageError(f"tests without a level marker ({', '.join(LEVELS)}): {unmarked}")


@pytest.fixture(scope="session")
def scratch() -> Path:
    return _SCRATCH


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session", autouse=True)
def signing_key() -> Path:
    """Promotion refuses without a signing key: the session signs with one generated under its MLGATE_HOME,
    as ``mlgate demo`` does (the environment carries it to ``dag.test()`` and CLI subprocesses)."""
    from mlgate.demo.run import demo_signing_key
    from mlgate.trust.keys import KEY_ENV, KEY_FILE_ENV, TRUSTED_ENV

    for variable in (KEY_ENV, TRUSTED_ENV):
        os.environ.pop(variable, None)
    path = demo_signing_key(_SCRATCH / "mlgate")
    os.environ[KEY_FILE_ENV] = str(path)
    return path


@pytest.fixture(autouse=True)
def no_run_settle(request, monkeypatch) -> None:
    """Gates run in this process one after another, so nothing races them to create a DAG run's MLflow run:
    skip ``keyed_run``'s settle wait (1 s per DAG run). Tests marked ``racing`` keep it; processes the tests
    start (the scheduler, the CLI) always do."""
    if request.node.get_closest_marker("racing") is None:
        monkeypatch.setattr("mlgate.trust.registry.RUN_SETTLE_S", 0.0)
