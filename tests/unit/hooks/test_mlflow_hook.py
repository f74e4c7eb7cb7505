from __future__ import annotations

import json
import socket

import pytest

from mlgate.hooks.mlflow import MlflowHook

pytestmark = pytest.mark.unit


def test_without_a_connection_it_uses_MLFLOW_TRACKING_URI(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert MlflowHook().settings["tracking_uri"] == "http://tracking.example:5000"


def test_without_anything_it_uses_an_embedded_store_under_MLGATE_HOME(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLGATE_HOME", str(tmp_path))
    assert MlflowHook().settings["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_connection_gives_tracking_and_registry_uris_and_a_token(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_PROD", json.dumps({
        "conn_type": "mlflow", "host": "https://mlflow.internal", "password": "s3cret",
        "extra": {"registry_uri": "https://registry.internal"}}))
    settings = MlflowHook("mlflow_prod").settings
    assert settings["tracking_uri"] == "https://mlflow.internal"
    assert settings["registry_uri"] == "https://registry.internal"
    assert settings["token"] == "s3cret"


def test_test_connection_succeeds_on_a_real_store(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'db.sqlite'}")
    ok, message = MlflowHook().test_connection()
    assert ok, message


def test_test_connection_fails_on_a_closed_port(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEAD", json.dumps({
        "conn_type": "mlflow", "host": f"http://127.0.0.1:{port}", "extra": {"http_max_retries": 0}}))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")  # recorded, so the URI mlflow exports is undone after
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    ok, message = MlflowHook("mlflow_dead").test_connection()
    assert not ok
    assert f"127.0.0.1:{port} is not reachable" in message


def test_the_client_it_gives_draws_no_progress_bars(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'db.sqlite'}")
    MlflowHook().get_conn()
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False
