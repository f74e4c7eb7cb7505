"""Session fixtures of the integration tests: trivy with an offline DB, and a real ``mlflow server`` on the
machine's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.demo.trivy_db import write_trivy_db
from mlgate.gates.code.trivy import find_trivy
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.oci_image import FIXED, VULNERABLE
from tests.fixtures.postgres import throwaway_database


@pytest.fixture(scope="session")
def trivy_binary() -> Path:
    return find_trivy(None)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return write_trivy_db(tmp_path_factory.mktemp("trivy-cache"))


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    trees = {}
    for name, version in (("vulnerable", VULNERABLE), ("fixed", FIXED)):
        (root / name).mkdir()
        (root / name / "requirements.txt").write_text(f"requests=={version['requests']}\n")
        trees[name] = root / name
    return trees


@pytest.fixture(scope="session")
def postgres_db():
    with throwaway_database("mlgate_it") as uri:
        yield uri


@pytest.fixture(scope="session")
def mlflow_server(postgres_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(postgres_db, root / "artifacts", root / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def use_server(mlflow_server, monkeypatch):
    """Point hooks and the CLI at the server; fail fast instead of MLflow's minutes of retries."""
    if mlflow_server.process is None or mlflow_server.process.poll() is not None:
        mlflow_server.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return mlflow_server
