"""TrivyHook: where the trivy binary, its DB cache and an optional trivy server are (connection ``trivy``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlgate.gates.code.trivy import TrivyConnection, find_trivy, trivy_version


class TrivyHook(BaseHook):
    """Connection fields: host = trivy server URL (client/server mode), password = token; extras ``binary``,
    ``cache_dir``, ``db_repository`` and ``offline``. With no connection, the packaged binary scans locally
    with its default DB download.
    """

    conn_name_attr = "trivy_conn_id"
    default_conn_name = "trivy_default"
    conn_type = "trivy"
    hook_name = "Trivy"

    def __init__(self, trivy_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.trivy_conn_id = trivy_conn_id

    @cached_property
    def connection(self) -> TrivyConnection:
        try:
            conn = self.get_connection(self.trivy_conn_id)
        except AirflowNotFoundException:
            return TrivyConnection(offline=False)
        extra = conn.extra_dejson
        return TrivyConnection(binary=extra.get("binary") or None,
                               cache_dir=Path(extra["cache_dir"]) if extra.get("cache_dir") else None,
                               db_repository=extra.get("db_repository") or None, server=conn.host or None,
                               token=conn.password or None, offline=bool(extra.get("offline", False)))

    def get_conn(self) -> TrivyConnection:
        return self.connection

    def test_connection(self) -> tuple[bool, str]:
        try:
            binary = find_trivy(self.connection.binary)
            return True, f"trivy {trivy_version(binary)} at {binary}"
        except Exception as exc:
            return False, str(exc)
