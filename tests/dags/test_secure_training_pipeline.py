"""The shipped pipeline, run by Airflow itself (``dag.test()`` on a migrated metadata DB)."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path

import pytest
import yaml

from mlgate.demo.dataset import write_loans
from mlgate.demo.run import tamper
from mlgate.gates.data.integrity import build_manifest
from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.audit import read_decisions
from mlgate.trust.registry import current_alias_version
from tests.helpers import default_policy, write_policy

pytestmark = pytest.mark.dags
SEEDS = itertools.count(101)


@pytest.fixture(scope="module")
def dag(dag_bag):
    return dag_bag.get_dag("secure_training_pipeline")


@pytest.fixture
def conf(tmp_path):
    data = write_loans(tmp_path / "loans.csv", rows=4000, seed=next(SEEDS))  # its own data, its own privacy budget
    policy = default_policy()
    policy["promotion"]["model_name"] = f"loans-{uuid.uuid4().hex[:8]}"
    return {"data_path": str(data), "manifest_path": str(build_manifest(data).save(tmp_path / "m.json")),
            "policy_path": str(write_policy(tmp_path / "policy.yaml", policy)),
            "profile_path": str(tmp_path / "profile.json"),
            "model": policy["promotion"]["model_name"]}


def run(dag, conf):
    dag_run = dag.test(run_conf={k: v for k, v in conf.items() if k != "model"})
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    alias = current_alias_version(MlflowHook().get_conn(), conf["model"], "champion")
    return str(dag_run.state), states, alias


def test_every_dag_file_imports_without_errors(dag):
    assert dag is not None
    assert {t.task_id for t in dag.tasks} == {
        "data_integrity", "data_pii", "data_expectations", "data_privacy", "code_static", "code_dependencies",
        "deploy_config", "code_dynamic",
        "train_model", "model_artifact", "model_robustness", "model_privacy", "model_fairness",
        "model_explainability", "model_dos", "model_poisoning", "promote_model"}
    assert dag.get_task("promote_model").trigger_rule == "all_done"
    assert "code_dynamic" in dag.get_task("train_model").upstream_task_ids  # a failing dynamic check stops training


def test_clean_data_is_trained_validated_and_promoted(dag, conf):
    state, tasks, alias = run(dag, conf)
    assert (state, tasks) == ("success", dict.fromkeys(tasks, "success"))
    assert alias == "1"
    profile = json.loads(Path(conf["profile_path"]).read_text())  # the DP reference profile for monitoring
    assert set(profile["columns"]) >= {"age", "credit_score", "home_ownership"}
    client = MlflowHook().get_conn()
    assert client.get_model_version(conf["model"], "1").tags["mlgate.attestation.digest"].startswith("sha256:")
    (audited,) = read_decisions(client, conf["model"])
    assert audited.decision == "promoted" and audited.by.startswith("airflow:secure_training_pipeline/")


def test_a_run_triggered_with_a_permissive_policy_of_its_own_is_never_promoted(dag, conf, tmp_path):
    """Issue 13, attack 9: the triggerer's conf names a policy that requires only one gate, neither pinned nor
    signed by a policy owner. Every gate passes under it and signs its result; the signer still refuses."""
    policy = default_policy()
    policy["promotion"].update(model_name=conf["model"], required_gates=["model.training"])
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(policy))  # unsigned: write_policy would sign it as the owner
    state, tasks, alias = run(dag, {**conf, "policy_path": str(mine)})
    assert tasks["train_model"] == "success" and tasks["promote_model"] == "failed" and state == "failed"
    assert alias is None
    (audited,) = read_decisions(MlflowHook().get_conn(), conf["model"])
    assert audited.decision == "blocked"
    assert audited.reasons[0].startswith(f"policy: the signer does not trust policy {mine}")


def test_data_changed_after_pinning_is_never_promoted(dag, conf):
    tamper(Path(conf["data_path"]))
    state, tasks, alias = run(dag, conf)
    assert state == "failed"
    assert tasks["data_integrity"] == "failed"
    assert tasks["code_static"] == tasks["code_dependencies"] == tasks["deploy_config"] == "success"
    assert tasks["code_dynamic"] == tasks["train_model"] == tasks["model_artifact"] == tasks["model_robustness"] \
        == "upstream_failed"
    assert tasks["promote_model"] == "failed"
    assert alias is None


@pytest.mark.parametrize("breakage", ["suite-deleted", "policy-invalid"])
def test_a_broken_configuration_is_never_promoted(dag, conf, tmp_path, breakage):
    if breakage == "suite-deleted":
        policy = default_policy()
        policy["promotion"]["model_name"] = conf["model"]
        policy["gates"]["data.expectations"]["suite"] = str(tmp_path / "deleted-suite.json")
        write_policy(tmp_path / "policy.yaml", policy)
    else:
        (tmp_path / "policy.yaml").write_text("version: 1\npromotion: {model_name: x}\n")
    state, tasks, alias = run(dag, conf)
    assert state == "failed"
    assert alias is None
    failed_first = "data_expectations" if breakage == "suite-deleted" else "data_integrity"
    assert tasks[failed_first] == "failed"
    assert tasks["promote_model"] == "failed"
