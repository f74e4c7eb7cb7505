"""MlflowHook: one place that knows where MLflow is and how to reach it."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlgate.trust.registry import default_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowHook(BaseHook):
    """Connection ``mlflow_default``: host = tracking URI, extra ``registry_uri``, password = token.

    Without a connection it uses ``MLFLOW_TRACKING_URI``, else an embedded SQLite store under
    ``MLGATE_HOME``. Extras ``http_timeout`` and ``http_max_retries`` bound how long an unreachable
    server can stall a task (MLflow's own default retries for minutes).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def settings(self) -> dict[str, Any]:
        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            uri = default_tracking_uri()
            return {"tracking_uri": uri, "registry_uri": uri, "token": None, "extra": {}}
        host = conn.host or ""
        if conn.port and "://" in host and host.count(":") < 2:
            host = f"{host}:{conn.port}"
        uri = host if "://" in host else f"{conn.schema or 'http'}://{host}"
        extra = conn.extra_dejson
        return {"tracking_uri": uri, "registry_uri": extra.get("registry_uri") or uri,
                "token": conn.password or None, "extra": extra}

    def get_conn(self) -> MlflowClient:
        """A client for the configured server; also points MLflow's fluent API at it (tasks use both)."""
        import mlflow

        settings = self.settings
        if settings["token"]:
            os.environ["MLFLOW_TRACKING_TOKEN"] = settings["token"]
        extra = settings["extra"]
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(extra.get("http_timeout", 30)))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(extra.get("http_max_retries", 3)))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars are noise in task logs
        mlflow.set_tracking_uri(settings["tracking_uri"])
        mlflow.set_registry_uri(settings["registry_uri"])
        return mlflow.MlflowClient(settings["tracking_uri"], settings["registry_uri"])

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.get_conn().search_experiments(max_results=1)
        except Exception as exc:
            return False, f"MLflow at {self.settings['tracking_uri']} is not reachable: {exc}"
        return True, f"MLflow at {self.settings['tracking_uri']} answered"
