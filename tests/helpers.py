"""Small shared test helpers (no fixtures): a task-instance stand-in and policy writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT


class FakeTaskInstance:
    """The part of Airflow's RuntimeTaskInstance an operator's ``execute`` uses: ids and XCom."""

    def __init__(self, dag_id: str = "test_dag", run_id: str = "run-1", task_id: str = "task",
                 upstream: dict[tuple[str, str], Any] | None = None) -> None:
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.pushed: dict[str, Any] = {}
        self.upstream = upstream or {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return self.upstream.get((task_ids, key))


def default_policy() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    data["gates"]["data.expectations"]["suite"] = str(ROOT / "expectations" / "loans.json")
    return data


def write_policy(path: Path, data: dict[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump(data or default_policy()))
    return path
