"""Operator extra link to the MLflow run that holds a gate's evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.xcom import BaseXCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions.taskinstancekey import TaskInstanceKey


class MlflowRunLink(BaseOperatorLink):
    """Resolved from the URL the operator pushes to XCom during ``execute``."""

    name = "MLflow run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return BaseXCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""
