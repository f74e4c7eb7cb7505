"""Shared test helpers: a task-instance stand-in, policy writers, and the pipeline's steps as operator calls."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from mlgate.demo.dataset import write_loans
from mlgate.gates.data.integrity import build_manifest
from mlgate.operators import (
    DataExpectationsGateOperator,
    DataIntegrityGateOperator,
    ModelTrainingGateOperator,
    RegistryPromoteGateOperator,
)
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


def session_signer():
    """The test session's signing key (``tests/conftest.py``): it signs gate results and owns test policies."""
    from mlgate.trust.keys import keyring_from_env

    return keyring_from_env().signer()


def write_policy(path: Path, data: dict[str, Any] | None = None) -> Path:
    """Write a policy, signed by the session key as its owner (the signer trusts only such policies);
    a policy that does not validate is written unsigned."""
    from mlgate.core.errors import PolicyError
    from mlgate.core.policy import load_policy
    from mlgate.trust.trusted_policy import sign_policy

    path.write_text(yaml.safe_dump(data or default_policy()))
    try:
        sign_policy(load_policy(path), session_signer())
    except PolicyError:
        pass
    return path


def log_signed(client, run_id: str, result, signer=None) -> None:
    """Log a result as a gate task does: with its envelope, signed by ``signer`` (default the session key)."""
    from mlgate.trust.gate_evidence import sign_result
    from mlgate.trust.registry import log_result

    log_result(client, run_id, result, sign_result(result, signer or session_signer(), run_id))


def new_run(tmp_path: Path) -> dict[str, Any]:
    """A fresh dataset, its manifest, a policy requiring the gates ``run_pipeline`` runs (with a unique
    model name), and a unique DAG run id."""
    data = write_loans(tmp_path / "loans.csv", rows=1500)
    manifest = build_manifest(data).save(tmp_path / "loans.manifest.json")
    policy = default_policy()
    policy["promotion"]["model_name"] = f"model-{uuid.uuid4().hex[:8]}"
    policy["promotion"]["required_gates"] = ["data.integrity", "data.expectations", "model.training"]
    return {"data": data, "manifest": manifest, "policy": write_policy(tmp_path / "policy.yaml", policy),
            "model": policy["promotion"]["model_name"], "run_id": uuid.uuid4().hex}


def context(run, task_id, upstream=None):
    return {"ti": FakeTaskInstance(dag_id="ops", run_id=run["run_id"], task_id=task_id, upstream=upstream)}


def pipeline_run_of(run):
    """The MLflow client and the run holding this DAG run's evidence."""
    from mlgate.hooks.mlflow import MlflowHook
    from mlgate.trust.registry import PIPELINE_TAG

    client = MlflowHook().get_conn()
    experiment = client.get_experiment_by_name("mlgate")
    (found,) = client.search_runs([experiment.experiment_id], f"tags.`{PIPELINE_TAG}` = 'ops/{run['run_id']}'")
    return client, found


def integrity_op(run, **kwargs):
    return DataIntegrityGateOperator(task_id="data_integrity", data_path=str(run["data"]),
                                     manifest_path=str(run["manifest"]), policy_path=str(run["policy"]), **kwargs)


def training_op(run):
    return ModelTrainingGateOperator(task_id="train_model", training_callable="mlgate.demo.train:train_loan_model",
                                     data_path=str(run["data"]), hyperparameters={"C": 0.5}, seed=3,
                                     policy_path=str(run["policy"]))


def run_pipeline(run):
    """integrity → expectations → training, as the DAG chains them; returns the upstream XComs."""
    integrity_ctx = context(run, "data_integrity")
    integrity_op(run).execute(integrity_ctx)
    DataExpectationsGateOperator(task_id="data_expectations", data_path=str(run["data"]),
                                 policy_path=str(run["policy"])).execute(context(run, "data_expectations"))
    upstream = {("data_integrity", "data.integrity"): integrity_ctx["ti"].pushed["data.integrity"]}
    train_ctx = context(run, "train_model", upstream)
    training_op(run).execute(train_ctx)
    return {("train_model", key): value for key, value in train_ctx["ti"].pushed.items()}


def promote_op(run):
    return RegistryPromoteGateOperator(task_id="promote_model", policy_path=str(run["policy"]))




def register_version(client, policy, name: str, *, passed: bool = True, pyfunc: bool = False,
                     signature=None, python_model=None) -> str:
    """A model version with a ``model.training`` result bound to its artifact digest, as the pipeline
    leaves it (cheap: a one-file model, or with ``pyfunc`` a loadable pyfunc model that answers its run id);
    ``passed=False`` records a blocked result instead; ``signature`` is the pyfunc model's input signature and
    ``python_model`` its class (taking the run id; default ``tests.pyfunc_models.Echo``)."""
    import tempfile

    from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
    from mlgate.trust.registry import get_or_create_experiment, model_digest

    run_id = client.create_run(get_or_create_experiment(client, "mlgate-test-versions")).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        if pyfunc:
            import mlflow.pyfunc

            from tests.pyfunc_models import Echo

            mlflow.pyfunc.save_model(f"{tmp}/m", python_model=(python_model or Echo)(run_id), pip_requirements=[],
                                     signature=signature)
            client.log_artifacts(run_id, f"{tmp}/m", artifact_path="model")
        else:
            (Path(tmp) / "weights.txt").write_text(f"weights of run {run_id}")
            client.log_artifacts(run_id, tmp, artifact_path="model")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = str(client.create_model_version(name, f"{client.get_run(run_id).info.artifact_uri}/model",
                                              run_id).version)
    digest = model_digest(client, f"models:/{name}/{version}")
    status, findings = (Status.PASSED, ()) if passed else (
        Status.BLOCKED, (Finding("model.training.missing", Severity.HIGH, "seed not recorded"),))
    log_signed(client, run_id, GateResult(
        "model.training", status, Subject("model", f"models:/{name}/{version}", digest),
        policy.digest, ToolInfo("test", "1"), utcnow(), utcnow(), findings=findings))
    return version


def validated_version(client, policy, name: str, baseline=None, *, promoted: bool = True) -> str:
    """``register_version`` plus a signed ``model.robustness`` result carrying ``baseline`` (a
    ``ConfidenceBaseline``; none when ``None``), as the validation step leaves it, promoted (signed) unless
    not ``promoted``, and served by the policy's alias."""
    from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
    from mlgate.gates.monitor.confidence import BASELINE_GATE, BASELINE_METRIC
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.promote import promote
    from mlgate.trust.registry import model_digest

    version = register_version(client, policy, name)
    uri = f"models:/{name}/{version}"
    metrics = {"robust_accuracy": 0.9, **({BASELINE_METRIC: baseline.to_dict()} if baseline else {})}
    log_signed(client, client.get_model_version(name, version).run_id, GateResult(
        BASELINE_GATE, Status.PASSED, Subject("model", uri, model_digest(client, uri)), policy.digest,
        ToolInfo("test", "1"), utcnow(), utcnow(), metrics=metrics))
    if promoted:
        assert promote(client, policy, name, version, "test:promoter", keyring_from_env()).status is Status.PASSED
    client.set_registered_model_alias(name, policy.promotion.alias, version)
    return version


def reference_version(client, policy, name: str, profile: Path | None) -> str:
    """``register_version`` plus a signed, passed ``data.privacy`` result recording the digest of the DP
    profile at ``profile`` (none when ``None``), as the training pipeline leaves it; promoted (signed) and
    served by the policy's alias."""
    import json

    from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
    from mlgate.gates.data.dp_release import DPProfile
    from mlgate.gates.data.privacy import GATE, PROFILE_METRIC
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.promote import promote
    from mlgate.trust.registry import TAG_DATA_DIGEST

    version = register_version(client, policy, name)
    released = DPProfile.from_dict(json.loads(profile.read_text())) if profile else None
    dataset = released.dataset_digest if released else "sha256:" + "0" * 64
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, dataset)
    log_signed(client, client.get_model_version(name, version).run_id, GateResult(
        GATE, Status.PASSED, Subject("dataset", "train.csv", dataset), policy.digest, ToolInfo("test", "1"),
        utcnow(), utcnow(), metrics={"epsilon_spent": 1.0, **({PROFILE_METRIC: released.digest} if released else {})}))
    assert promote(client, policy, name, version, "test:promoter", keyring_from_env()).status is Status.PASSED
    client.set_registered_model_alias(name, policy.promotion.alias, version)
    return version
