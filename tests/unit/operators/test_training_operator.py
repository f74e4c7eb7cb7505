"""The training operator's loop options on a real embedded MLflow store and a real SQLite privacy ledger:
DP-SGD charged before training and blocked past the budget, the policy's DP requirement, adversarial
training that turns a robustness block into a pass, and bad options failing closed."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import mlflow
import pytest
import yaml

from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.privacy_ledger import SqlLedger
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators import ModelArtifactGateOperator, ModelTrainingGateOperator
from mlgate.operators.validation import ModelRobustnessGateOperator
from tests.fixtures.digits_training import write_digits
from tests.helpers import context, default_policy, integrity_op, pipeline_run_of, write_policy

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore::UserWarning")]

ROBUSTNESS = {"attacks": [{"name": "pgd", "eps": 0.1, "steps": 10, "samples": 300}],
              "min_robust_accuracy": 0.7, "max_accuracy_drop": 0.25, "curve_factors": []}


def digits_run(tmp_path, **training_policy):
    data = write_digits(tmp_path / "digits.npz")
    policy = default_policy()
    policy["promotion"]["model_name"] = f"cnn-{uuid.uuid4().hex[:8]}"
    policy["gates"]["data.privacy"]["budgets"]["default"] = {"epsilon": 5.0, "delta": 1e-4}
    policy["gates"]["model.robustness"] = ROBUSTNESS
    policy["gates"]["model.training"].update(training_policy)
    run = {"data": data, "manifest": build_manifest(data).save(tmp_path / "digits.manifest.json"),
           "policy": write_policy(tmp_path / "policy.yaml", policy), "model": policy["promotion"]["model_name"],
           "run_id": uuid.uuid4().hex, "ledger": f"sqlite:///{tmp_path / 'ledger.db'}"}
    verified = context(run, "data_integrity")
    integrity_op(run).execute(verified)
    run["upstream"] = {("data_integrity", "data.integrity"): verified["ti"].pushed["data.integrity"]}
    run["digest"] = verified["ti"].pushed["data.integrity"]["subject"]["digest"]
    return run


def train(run, task_id="train_model", callable_="cnn_training", **options):
    options.setdefault("hyperparameters", {"epochs": 10, "batch_size": 128, "lr": 1e-2})
    ctx = context(run, task_id, run["upstream"])
    ModelTrainingGateOperator(task_id=task_id, training_callable=f"tests.fixtures.digits_training:{callable_}",
                              data_path=str(run["data"]), ledger_url=run["ledger"], seed=0,
                              policy_path=str(run["policy"]), **options).execute(ctx)
    return ctx["ti"].pushed


def versions(run) -> list:
    return MlflowHook().get_conn().search_model_versions(f"name = '{run['model']}'")


def test_dp_sgd_is_charged_before_training_reports_epsilon_and_blocks_past_the_budget(tmp_path):
    run = digits_run(tmp_path)
    dp_sgd = {"target_epsilon": 3.0, "target_delta": 1e-5}
    result = train(run, dp_sgd=dp_sgd)["model.training"]
    assert result["status"] == "passed"
    assert 1.0 < result["metrics"]["dp_epsilon"] <= 3.0 * 1.01 and result["metrics"]["accuracy"] > 0.7
    ledger = SqlLedger(run["ledger"])
    assert ledger.spent(run["digest"]) == pytest.approx((3.0, 1e-5))
    (spend,) = ledger.history(run["digest"])
    assert spend.purpose == f"DP-SGD training of {run['model']}" and spend.actor.endswith("/train_model")
    (version,) = versions(run)
    assert version.tags["mlgate.training.method"] == "dp_sgd"
    assert float(version.tags["mlgate.dp_epsilon"]) == pytest.approx(result["metrics"]["dp_epsilon"], rel=1e-5)
    client, mlflow_run = pipeline_run_of(run)
    assert mlflow_run.data.params["training.target_epsilon"] == "3.0"
    mirror = Path(client.download_artifacts(mlflow_run.info.run_id, "gates/model.training/ledger.jsonl", str(tmp_path)))
    assert json.loads(mirror.read_text())["epsilon_total"] == pytest.approx(3.0)
    assert float(mlflow_run.data.metrics["dp_epsilon"]) == pytest.approx(result["metrics"]["dp_epsilon"])

    with pytest.raises(GatePolicyViolation, match=r"not trained: privacy budget of sha256:\w+ exceeded"):
        train(run, task_id="train_again", dp_sgd=dp_sgd)  # 3.0 spent + 3.0 asked > 5.0
    assert ledger.spent(run["digest"]) == pytest.approx((3.0, 1e-5)), "a blocked run must spend nothing"
    assert len(versions(run)) == 1, "a blocked run must register nothing"


@pytest.mark.parametrize("dp_sgd", [None, {"target_epsilon": 3.0, "target_delta": 1e-5}],
                         ids=["no-dp", "epsilon-above-limit"])
def test_a_policy_requiring_dp_refuses_to_train_without_it(tmp_path, dp_sgd):
    run = digits_run(tmp_path, max_dp_epsilon=1.0)
    with pytest.raises(GatePolicyViolation, match=r"requires DP-SGD with ε <= 1"):
        train(run, dp_sgd=dp_sgd)
    assert SqlLedger(run["ledger"]).spent(run["digest"]) == (0.0, 0.0)
    assert versions(run) == []


@pytest.mark.parametrize(("options", "callable_", "message"), [
    ({"dp_sgd": {"target_epsilon": -1, "target_delta": 1e-5}}, "cnn_training", "option dp_sgd: target_epsilon"),
    ({"adversarial_training": {"eps": 0.1, "norm": 2}}, "cnn_training", "option adversarial_training: norm"),
    ({"dp_sgd": {"target_epsilon": 1, "target_delta": 1e-5}}, "fitted_logistic", "return a mlgate.gates.model.fitting"),
    ({"dp_sgd": {"target_epsilon": 1, "target_delta": 1e-5}}, "batchnorm_training", "cannot train .*BatchNorm"),
    ({"dp_sgd": {"target_epsilon": 1, "target_delta": 1e-5, "secure_mode": True}}, "cnn_training",
     "needs the torchcsprng package"),
    ({"torch_serialization": "pt3"}, "cnn_training", "torch_serialization must be"),
], ids=["negative-epsilon", "unknown-key", "self-fitted-model", "no-per-example-gradients", "no-secure-rng",
        "unknown-format"])
def test_unusable_options_are_config_errors_and_spend_nothing(tmp_path, options, callable_, message):
    run = digits_run(tmp_path)
    with pytest.raises(GateConfigViolation, match=message):
        train(run, callable_=callable_, **options)
    assert versions(run) == []
    assert SqlLedger(run["ledger"]).spent(run["digest"]) == (0.0, 0.0)


def trained_and_attacked(run, **options) -> tuple[dict, dict]:
    """One DAG run: train → model.artifact → model.robustness; the robustness result and the run's params."""
    run = {**run, "run_id": uuid.uuid4().hex}
    pushed = {**run["upstream"], **{("train_model", k): v for k, v in
                                    train(run, hyperparameters={"epochs": 10, "lr": 3e-3}, **options).items()}}
    scanned = context(run, "model_artifact", pushed)
    ModelArtifactGateOperator(task_id="model_artifact", policy_path=str(run["policy"])).execute(scanned)
    ctx = context(run, "model_robustness", {**pushed, ("model_artifact", "model.artifact"):
                                            scanned["ti"].pushed["model.artifact"]})
    op = ModelRobustnessGateOperator(task_id="model_robustness", data_callable="tests.fixtures.digits_training:"
                                     "validation", data_path=str(run["data"]), policy_path=str(run["policy"]))
    try:
        op.execute(ctx)
    except GatePolicyViolation:
        pass
    return ctx["ti"].pushed["model.robustness"], pipeline_run_of(run)[1].data.params


def test_one_policy_blocks_the_plain_cnn_and_passes_the_adversarially_trained_one(tmp_path):
    run = digits_run(tmp_path)
    plain, plain_params = trained_and_attacked(run)
    madry, madry_params = trained_and_attacked(run, adversarial_training={"eps": 0.1, "steps": 7})
    assert [plain["status"], madry["status"]] == ["blocked", "passed"], [plain["metrics"], madry["metrics"]]
    assert madry["metrics"]["robust_accuracy"] > plain["metrics"]["robust_accuracy"] + 0.2
    assert plain_params["training.method"] == "plain"
    assert {k: madry_params[f"training.{k}"] for k in ("method", "eps", "steps", "epochs")} == {
        "method": "madry_pgd", "eps": "0.1", "steps": "7", "epochs": "10"}
    assert sorted(v.tags["mlgate.training.method"] for v in versions(run)) == ["madry_pgd", "plain"]


def test_dp_sgd_under_a_policy_without_budgets_is_a_config_error(tmp_path):
    run = digits_run(tmp_path)
    policy = yaml.safe_load(run["policy"].read_text())
    del policy["gates"]["data.privacy"]
    write_policy(run["policy"], policy)
    with pytest.raises(GateConfigViolation, match=r"gates\.data\.privacy\.budgets"):
        train(run, dp_sgd={"target_epsilon": 1.0, "target_delta": 1e-5})
    assert versions(run) == []


def test_training_code_cannot_read_the_signing_key(tmp_path, monkeypatch):
    """Red team (A2 supplies training code): the code trains a good model and hunts for the worker's signing
    key, connection, variables and credentials, smuggling what it finds into its metrics and its model. It
    finds nothing (it runs in the isolated child), and the gate still trains, registers and reports."""
    from mlgate.trust.keys import KEY_FILE_ENV
    from tests.helpers import new_run

    key_file = Path(os.environ[KEY_FILE_ENV])
    key_body = key_file.read_text().splitlines()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLGATE_SIGNING", json.dumps({"conn_type": "mlgate_signing",
                                                                  "extra": {"key_file": str(key_file)}}))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "CANARY-aws")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "CANARY-fernet")
    run = new_run(tmp_path)
    verified = context(run, "data_integrity")
    integrity_op(run).execute(verified)
    upstream = {("data_integrity", "data.integrity"): verified["ti"].pushed["data.integrity"]}
    trained = context(run, "train_model", upstream)
    ModelTrainingGateOperator(task_id="train_model", training_callable="tests.fixtures.snooping_training:"
                              "snooping_train", data_path=str(run["data"]), seed=3,
                              hyperparameters={"C": 0.5, "key_file": str(key_file)},
                              policy_path=str(run["policy"])).execute(trained)
    result = trained["ti"].pushed["model.training"]
    assert result["status"] == "passed" and result["metrics"]["accuracy"] > 0.6
    assert (result["metrics"]["loot_pem"], result["metrics"]["loot_secret_vars"]) == (0, 0), result["metrics"]
    assert result["metrics"]["sandbox"] == "bwrap"
    stored = Path(MlflowHook().get_conn().download_artifacts(
        pipeline_run_of(run)[1].info.run_id, "", str(tmp_path / "run")))
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{run['model']}/{trained['ti'].pushed['model_version']}",
                                                     dst_path=str(tmp_path / "model")))
    for path in [*model.rglob("*"), *stored.rglob("*")]:
        if path.is_file():
            text = path.read_bytes()
            assert key_body.encode() not in text and b"CANARY-" not in text, path


def test_a_training_callable_that_cannot_cross_to_the_child_is_an_input_error(tmp_path):
    run = digits_run(tmp_path)
    ctx = context(run, "train_model", run["upstream"])
    with pytest.raises(GateConfigViolation, match="training_callable must be importable"):
        ModelTrainingGateOperator(task_id="train_model", training_callable=lambda **_: None,
                                  data_path=str(run["data"]), policy_path=str(run["policy"])).execute(ctx)
    assert versions(run) == []


def test_distilled_version_with_a_declared_defence_is_judged_as_defended_and_blocked_by_masking(tmp_path):
    run = digits_run(tmp_path)
    policy = yaml.safe_load(run["policy"].read_text())
    policy["gates"]["model.robustness"] = {**ROBUSTNESS, "min_robust_accuracy": 0.5, "masking_checks": {
        "large_eps": 0.5, "surrogate_epochs": 10, "restarts": 2}}
    write_policy(run["policy"], policy)
    result, params = trained_and_attacked(run, defensive_distillation={"temperature": 50},
                                          input_defence={"name": "feature_squeezing", "bit_depth": 5})
    assert {k: params[f"training.{k}"] for k in ("method", "temperature")} == {
        "method": "defensive_distillation", "temperature": "50.0"}
    assert json.loads(params["training.input_defence"])["name"] == "feature_squeezing"
    assert result["metrics"]["input_defence"]["bit_depth"] == 5  # read from the version's own files
    assert result["status"] == "blocked"
    assert any(f["id"].startswith("model.robustness.masking.") for f in result["findings"]), result["findings"]
