"""Operators run ``execute`` against a real embedded MLflow store; only the task instance is a stand-in."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.gates.data.integrity import build_manifest
from mlgate.hooks.mlflow import MlflowHook
from mlgate.links import MlflowRunLink
from mlgate.operators import (
    CodeDynamicGateOperator,
    DataExpectationsGateOperator,
)
from mlgate.trust.audit import read_decisions
from mlgate.trust.registry import PIPELINE_TAG, current_alias_version
from tests.helpers import (
    context,
    default_policy,
    integrity_op,
    new_run,
    promote_op,
    run_pipeline,
    training_op,
    write_policy,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def run(tmp_path):
    return new_run(tmp_path)


def pipeline_tags(key):
    client = MlflowHook().get_conn()
    experiment = client.get_experiment_by_name("mlgate")
    (found,) = client.search_runs([experiment.experiment_id], f"tags.`{PIPELINE_TAG}` = '{key}'")
    return client, found


def test_a_passing_gate_pushes_its_result_logs_evidence_and_a_link(run):
    ctx = context(run, "data_integrity")
    integrity_op(run).execute(ctx)
    pushed = ctx["ti"].pushed
    assert pushed["data.integrity"]["status"] == "passed"
    assert pushed["data.integrity"]["subject"]["digest"] == build_manifest(run["data"]).digest
    client, mlflow_run = pipeline_tags(f"ops/{run['run_id']}")
    assert mlflow_run.data.tags["mlgate.gate.data.integrity"] == "passed"
    assert mlflow_run.data.metrics["mlgate.data.integrity.files"] == 1
    run_id = mlflow_run.info.run_id
    assert [a.path for a in client.list_artifacts(run_id, "gates")] == [
        "gates/data.integrity", "gates/data.integrity.dsse.json", "gates/data.integrity.json"]  # signed where run
    assert run_id in pushed[MlflowRunLink().xcom_key]


def test_verified_data_gets_provenance_and_an_mlflow_dataset_input(run, tmp_path):
    integrity_op(run).execute(context(run, "data_integrity"))
    client, mlflow_run = pipeline_tags(f"ops/{run['run_id']}")
    digest = build_manifest(run["data"]).digest
    provenance = client.download_artifacts(mlflow_run.info.run_id, "gates/data.integrity/provenance.jsonl", tmp_path)
    entry = json.loads(Path(provenance).read_text())
    assert entry["output_digest"] == digest
    assert entry["producer"] == {"dag_id": "ops", "run_id": run["run_id"], "task_id": "data_integrity"}
    (dataset_input,) = client.get_run(mlflow_run.info.run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in dataset_input.tags}["mlgate.data_digest"] == digest
    assert dataset_input.dataset.digest == digest.split(":")[1][:36]


def test_a_blocked_gate_records_evidence_then_fails_without_retry(run):
    raw = bytearray(run["data"].read_bytes())
    raw[len(raw) // 2] ^= 1
    run["data"].write_bytes(bytes(raw))
    ctx = context(run, "data_integrity")
    with pytest.raises(GatePolicyViolation, match=r"data.integrity.changed: content differs .*\(loans.csv\)") as caught:
        integrity_op(run).execute(ctx)
    assert isinstance(caught.value, AirflowFailException)
    assert ctx["ti"].pushed["data.integrity"]["status"] == "blocked"
    _, mlflow_run = pipeline_tags(f"ops/{run['run_id']}")
    assert mlflow_run.data.tags["mlgate.gate.data.integrity"] == "blocked"


def test_a_failing_dynamic_check_fails_its_task_without_retry_and_records_the_evidence(run):
    """The pipeline's step before training (dags/secure_training_pipeline.py): a blocked code.dynamic fails
    its task, so training downstream never runs; the evidence names the shrunk input, never its values."""
    policy = yaml.safe_load(run["policy"].read_text())
    policy["gates"]["code.dynamic"] = {"max_examples": 30, "call_budget_ms": 400}
    write_policy(run["policy"], policy)
    ctx = context(run, "code_dynamic")
    op = CodeDynamicGateOperator(task_id="code_dynamic", callables=["tests.fixtures.dynamic_defects:income_per_year_"
                                 "employed"], data_path=str(run["data"]), policy_path=str(run["policy"]))
    with pytest.raises(GatePolicyViolation, match=r"code.dynamic.non_finite: .* shrunk input \d+x\d+ sha256:"):
        op.execute(ctx)
    assert ctx["ti"].pushed["code.dynamic"]["status"] == "blocked"
    _, mlflow_run = pipeline_tags(f"ops/{run['run_id']}")
    assert mlflow_run.data.tags["mlgate.gate.code.dynamic"] == "blocked"


def test_an_invalid_policy_fails_without_retry_and_names_the_key(run):
    run["policy"].write_text(run["policy"].read_text().replace("algorithm: sha256", "algorithm: md5"))
    ctx = context(run, "data_integrity")
    with pytest.raises(GateConfigViolation, match=r"gates.data.integrity.algorithm: Input should be 'sha256' or "
                                                  r"'blake3'; found 'md5'"):
        integrity_op(run).execute(ctx)
    assert ctx["ti"].pushed["data.integrity"]["status"] == "error"


def test_unreachable_mlflow_fails_retryably_and_names_the_server(run, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEAD", json.dumps({"conn_type": "mlflow",
                                                                "host": f"http://127.0.0.1:{port}"}))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")  # recorded, so the URI mlflow exports is undone after
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    op = integrity_op(run, mlflow_conn_id="mlflow_dead")
    with pytest.raises(AirflowException, match=f"evidence could not be recorded.*127.0.0.1:{port}") as caught:
        op.execute(context(run, "data_integrity"))
    assert not isinstance(caught.value, AirflowFailException)


def test_a_deleted_suite_fails_the_expectations_gate_naming_the_suite(run, tmp_path):
    policy = default_policy()
    policy["gates"]["data.expectations"]["suite"] = str(tmp_path / "deleted.json")
    write_policy(run["policy"], policy)
    op = DataExpectationsGateOperator(task_id="data_expectations", data_path=str(run["data"]),
                                      policy_path=str(run["policy"]))
    with pytest.raises(GateConfigViolation, match="deleted.json: cannot read the expectation suite"):
        op.execute(context(run, "data_expectations"))


def test_training_refuses_data_whose_integrity_gate_did_not_pass(run):
    blocked = {("data_integrity", "data.integrity"): {"status": "blocked", "subject": {"digest": "x"}}}
    with pytest.raises(GateConfigViolation, match="data.integrity in task 'data_integrity' is blocked; refusing"):
        training_op(run).execute(context(run, "train_model", blocked))
    with pytest.raises(GateConfigViolation, match="no data.integrity result"):
        training_op(run).execute(context(run, "train_model"))


def test_training_records_everything_and_promotion_moves_the_alias(run):
    upstream = run_pipeline(run)
    version = upstream[("train_model", "model_version")]
    client = MlflowHook().get_conn()
    tags = client.get_model_version(run["model"], version).tags
    assert tags["mlgate.data_digest"] == build_manifest(run["data"]).digest
    assert tags["mlgate.code_version"].startswith(("git:", "tree:sha256:"))
    assert tags["mlgate.model_digest"].startswith("sha256:")
    assert upstream[("train_model", "model.training")]["status"] == "passed"

    promote_op(run).execute(context(run, "promote_model", upstream))
    assert current_alias_version(client, run["model"], "champion") == version
    assert client.get_model_version(run["model"], version).tags["mlgate.decision"] == "promoted"


def test_an_artifact_swapped_after_validation_is_not_promoted(run):
    upstream = run_pipeline(run)
    version = upstream[("train_model", "model_version")]
    client = MlflowHook().get_conn()
    source = client.get_model_version(run["model"], version).source
    stored = Path(client.get_logged_model(source.split("/")[-1]).artifact_location.removeprefix("file://"))
    (stored / "model.skops").write_bytes(b"swapped after validation")

    swapped = "model.training: signed evidence counts as missing: model artifact changed since validation"
    with pytest.raises(GatePolicyViolation, match=swapped):
        promote_op(run).execute(context(run, "promote_model", upstream))
    assert current_alias_version(client, run["model"], "champion") is None
    decision = client.get_model_version(run["model"], version).tags
    assert decision["mlgate.decision"] == "blocked"
    assert "model artifact changed" in decision["mlgate.decision.reasons"]
    (audited,) = read_decisions(client, run["model"])
    assert any(swapped in r for r in audited.reasons)


def test_promotion_without_a_model_version_refuses_and_names_the_failed_gates(run):
    raw = bytearray(run["data"].read_bytes())
    raw[-5] ^= 1
    run["data"].write_bytes(bytes(raw))
    with pytest.raises(GatePolicyViolation):
        integrity_op(run).execute(context(run, "data_integrity"))
    with pytest.raises(GatePolicyViolation, match=r"no model version was registered(.|\n)*data.integrity: status "
                                                  r"blocked"):
        promote_op(run).execute(context(run, "promote_model"))
    (audited,) = read_decisions(MlflowHook().get_conn(), run["model"])
    assert (audited.version, audited.decision) == ("-", "blocked")
    assert audited.reasons[0] == "no model version was registered by task 'train_model' in this run"
