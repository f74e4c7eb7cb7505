"""TrivyHook: where the trivy binary, its DB cache and an optional trivy server are (connection ``trivy``)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException


class TrivyHook(BaseHook):
    """Connection fields: host = server URL, password = token; extras ``binary``, ``cache_dir``,
    ``timeout`` and ``offline``. With no connection, trivy runs locally with its defaults.
    """

    conn_name_attr = "trivy_conn_id"
    default_conn_name = "trivy_default"
    conn_type = "trivy"
    hook_name = "Trivy"

    def __init__(self, trivy_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.trivy_conn_id = trivy_conn_id

    @cached_property
    def settings(self) -> dict[str, Any]:
        try:
            conn = self.get_connection(self.trivy_conn_id)
        except AirflowNotFoundException:
            return {"server": None, "token": None, "binary": None, "cache_dir": None, "timeout": 600,
                    "offline": False}
        extra = conn.extra_dejson
        return {"server": conn.host or None, "token": conn.password or None, "binary": extra.get("binary"),
                "cache_dir": extra.get("cache_dir"), "timeout": int(extra.get("timeout") or 600),
                "offline": bool(extra.get("offline", False))}

    def get_conn(self) -> dict[str, Any]:
        return self.settings
