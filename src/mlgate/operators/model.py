"""Operators for the model validation gates; ``model.artifact`` runs before anything loads the model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject
from mlgate.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelArtifactGateOperator(BaseGateOperator):
    """Downloads the registered model's files and scans them statically, without loading anything.

    The model is ``model_uri`` (``models:/name/version``), else the one ``training_task_id`` registered.
    Its subject digest is the same tree digest training recorded, so promotion binds it to the version.
    """

    gate_id = "model.artifact"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "model_uri")

    def __init__(self, *, model_uri: str | None = None, training_task_id: str = "train_model",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_uri = model_uri
        self.training_task_id = training_task_id

    def subject(self) -> Subject:
        return Subject("model", str(self.model_uri or f"(registered by {self.training_task_id})"), "unknown")

    def resolve_model_uri(self, context: Context) -> str:
        from mlgate.core.errors import GateInputError

        if self.model_uri:
            return self.model_uri
        ti = context["ti"]
        name = ti.xcom_pull(task_ids=self.training_task_id, key="model_name")
        version = ti.xcom_pull(task_ids=self.training_task_id, key="model_version")
        if not (name and version):
            raise GateInputError(f"no model registered by task {self.training_task_id!r} in this run")
        return f"models:/{name}/{version}"

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.model.artifacts import check_artifact
        from mlgate.trust.registry import download_model

        local = download_model(self.mlflow_hook.get_conn(), self.resolve_model_uri(context), workdir)
        return check_artifact(local, self.policy.section(self.gate_id), self.policy.digest)
