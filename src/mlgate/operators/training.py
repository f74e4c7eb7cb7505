"""``model.training``: train inside the pipeline's MLflow run, record everything, register the model.

The operator refuses to train on data whose integrity gate did not pass in this DAG run, and the gate
blocks when hyperparameters, data digests, code version, seed or library versions cannot be recorded.
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.digests import code_digest
from mlgate.core.errors import GateInputError
from mlgate.core.registry import (
    TAG_CODE_DIGEST,
    TAG_DATA_DIGEST,
    TAG_MODEL_DIGEST,
    mlflow_errors,
    model_digest,
    pipeline_run,
)
from mlgate.core.results import GateResult, Subject, utcnow
from mlgate.core.training import TrainingRecord, check_training, code_version, library_versions
from mlgate.operators.base import BaseGateOperator, pipeline_key, verified_data_digest

if TYPE_CHECKING:
    from airflow.sdk import Context


def resolve_callable(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable, or ``"package.module:function"`` (keeps DAG files free of heavy imports)."""
    if callable(target):
        return target
    module, _, name = str(target).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise GateInputError(f"training_callable {target!r} cannot be imported: {exc}") from None


def _model_and_metrics(output: Any) -> tuple[Any, dict[str, float]]:
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
        return output
    return output, {}


class ModelTrainingGateOperator(BaseGateOperator):
    """Runs ``training_callable(data_path=, params=<hyperparameters>, seed=)``, which returns a scikit-learn
    model or ``(model, metrics)``; logs and registers it as ``model_name`` (default: the policy's) and
    pushes ``model_version`` to XCom.
    """

    gate_id = "model.training"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "model_name",
                                      "hyperparameters", "seed", "data_gate_task_id")

    def __init__(self, *, training_callable: str | Callable[..., Any], data_path: str,
                 model_name: str | None = None, hyperparameters: dict[str, Any] | None = None, seed: int = 0,
                 data_gate_task_id: str = "data_integrity",
                 code_path: str | None = None, pip_requirements: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.training_callable = training_callable
        self.data_path = data_path
        self.model_name = model_name
        self.hyperparameters = hyperparameters or {}
        self.seed = seed
        self.data_gate_task_id = data_gate_task_id
        self.code_path = code_path
        self.pip_requirements = pip_requirements

    def subject(self) -> Subject:
        return Subject("model", f"models:/{self.model_name or '(policy model_name)'}", "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        import mlflow
        import numpy as np

        started = utcnow()
        name = self.model_name or self.policy.promotion.model_name
        data_digest = verified_data_digest(context, self.data_gate_task_id, "train")
        train = resolve_callable(self.training_callable)
        code_dir = Path(self.code_path or Path(inspect.getsourcefile(train) or ".").parent)
        code, code_tree = code_version(code_dir), code_digest(code_dir)
        libraries = library_versions()
        seed = int(self.seed)
        client = self.mlflow_hook.get_conn()
        run_id = pipeline_run(client, self.mlflow_experiment, pipeline_key(context))
        with mlflow_errors("recording the training inputs", client.tracking_uri), mlflow.start_run(run_id=run_id):
            mlflow.log_params({**self.hyperparameters, "seed": seed})
            mlflow.set_tags({"mlgate.code_version": code, TAG_DATA_DIGEST: data_digest,
                             "mlgate.library_versions": json.dumps(libraries, sort_keys=True)})
        random.seed(seed)
        np.random.seed(seed)
        output = train(data_path=self.data_path, params=dict(self.hyperparameters), seed=seed)
        model, metrics = _model_and_metrics(output)
        requirements = self.pip_requirements or [f"scikit-learn=={libraries.get('scikit-learn', '')}"]
        with mlflow_errors("logging and registering the model", client.tracking_uri):
            with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
                # skops walks every loaded module while saving; Airflow's deprecated aliases flood the log
                warnings.filterwarnings("ignore", module=r"skops\.")
                mlflow.log_metrics(metrics)
                info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                                pip_requirements=requirements)
            version = str(info.registered_model_version)
            model_uri = f"models:/{name}/{version}"
            digest = model_digest(client, model_uri)
            tags = {TAG_MODEL_DIGEST: digest, TAG_DATA_DIGEST: data_digest, TAG_CODE_DIGEST: code_tree,
                    "mlgate.code_version": code,
                    "mlgate.seed": str(seed), "mlgate.pipeline": pipeline_key(context)}
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
        context["ti"].xcom_push(key="model_name", value=name)
        context["ti"].xcom_push(key="model_version", value=version)
        record = TrainingRecord(params=dict(self.hyperparameters), data_digests={"data.integrity": data_digest},
                                code_version=code, seed=seed, library_versions=libraries, model_uri=model_uri,
                                model_digest=digest, metrics=metrics)
        return check_training(record, self.policy, started)
