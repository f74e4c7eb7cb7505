"""The fault matrix's session bench: one dataset, one pipeline (integrity → expectations → training →
artifact scan) with a registered scikit-learn model, one registered torch model for ``model.poisoning``,
an image tarball, trivy on an offline DB, and the stand-in programs. Every cell shares them."""

from __future__ import annotations

import uuid

import pytest
import yaml

from mlgate.demo.trivy_db import write_trivy_db
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators import ModelArtifactGateOperator
from tests.faults.specs import Bench, trivy_connection, write_standins
from tests.fixtures.oci_image import FIXED, write_docker_archive
from tests.helpers import context, integrity_op, new_run, run_pipeline, write_policy

# What mlflow.pytorch pickles besides a state dict: the module classes of the test CNN.
TORCH_MODULES = ("tests.fixtures.models.DigitsCNN", "torch.nn.modules.container.Sequential",
                 "torch.nn.modules.conv.Conv2d", "torch.nn.modules.activation.ReLU",
                 "torch.nn.modules.pooling.MaxPool2d", "torch.nn.modules.flatten.Flatten",
                 "torch.nn.modules.linear.Linear")


def _register_torch_model(name: str) -> str:
    """A small digits CNN, logged the classic way (a pickled module) and registered as ``name``."""
    import mlflow
    import mlflow.pytorch

    from tests.fixtures.models import digits_cnn

    MlflowHook().get_conn()
    with mlflow.start_run():
        info = mlflow.pytorch.log_model(digits_cnn(epochs=2), name="model", serialization_format="pickle",
                                        registered_model_name=name, pip_requirements=["torch"])
    return f"models:/{name}/{info.registered_model_version}"


def _monitoring_inputs(root, data):
    """An inference log of the last day's predictions on the run's rows, and a reference sample of them."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from mlgate.gates.monitor.inference_log import InferenceLogger

    frame = pd.read_csv(data)[["age", "annual_income", "credit_score", "debt_to_income"]]
    frame.iloc[:600].to_csv(root / "reference.csv", index=False)
    now = datetime.now(UTC)
    with InferenceLogger(root / "inference.jsonl") as log:
        for i, row in enumerate(frame.iloc[600:1200].to_dict("records")):
            log.log(f"client-{i % 12}", row, prediction=i % 2, confidence=0.9 - (i % 5) * 0.05,
                    timestamp=now - timedelta(minutes=i))
    return root / "inference.jsonl", root / "reference.csv"


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> Bench:
    root = tmp_path_factory.mktemp("faults")
    run = new_run(root)
    policy = yaml.safe_load(run["policy"].read_text())
    policy["gates"]["model.artifact"]["extra_allowed_globals"] = list(TORCH_MODULES)
    # the torch digits CNN, both norms, at sizes that keep the cells that run it for real short
    policy["gates"]["model.certification"] = {"l2": {"sigma": 0.25, "n0": 20, "n": 200, "radii": [
        {"radius": 0.1, "min_accuracy": 0}]}, "linf": {"radii": [{"radius": 0.001, "min_accuracy": 0}]}, "samples": 30}
    # the monitoring cells judge a reference sample, which only a policy that says so accepts (ADR 0060)
    for gate in ("monitor.drift", "monitor.queries"):
        policy["gates"][gate]["reference"] = "unverified"
    write_policy(run["policy"], policy)
    integrity = context(run, "data_integrity")
    integrity_op(run).execute(integrity)
    pipeline = {("data_integrity", "data.integrity"): integrity["ti"].pushed["data.integrity"], **run_pipeline(run)}
    artifact = context(run, "model_artifact", pipeline)
    ModelArtifactGateOperator(task_id="model_artifact", policy_path=str(run["policy"])).execute(artifact)
    pipeline[("model_artifact", "model.artifact")] = artifact["ti"].pushed["model.artifact"]

    torch_uri = _register_torch_model(f"cnn-{uuid.uuid4().hex[:8]}")
    torch_artifact = context(run, "torch_artifact")
    ModelArtifactGateOperator(task_id="torch_artifact", model_uri=torch_uri,
                              policy_path=str(run["policy"])).execute(torch_artifact)
    inference_log, reference = _monitoring_inputs(root, run["data"])
    return Bench(root=root, run=run, pipeline=pipeline, torch_model_uri=torch_uri,
                 inference_log=inference_log, reference=reference,
                 torch_artifact=torch_artifact["ti"].pushed["model.artifact"],
                 image=write_docker_archive(root / "image.tar", FIXED), trivy_cache=write_trivy_db(root / "trivy"),
                 standins=write_standins(root / "standins"))


@pytest.fixture(autouse=True)
def offline_trivy(bench, monkeypatch) -> None:
    """The ``trivy_default`` connection: the packaged trivy on the offline DB."""
    monkeypatch.setenv("AIRFLOW_CONN_TRIVY_DEFAULT", trivy_connection(None, bench.trivy_cache))
