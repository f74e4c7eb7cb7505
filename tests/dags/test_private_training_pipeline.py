"""The private pipeline, run by Airflow itself: a DP-SGD model promoted once, then the same data refused
a second private training run by its privacy budget, and a policy limit the run's target exceeds."""

from __future__ import annotations

import itertools
import uuid

import pytest
import yaml

from mlgate.demo.dataset import write_loans
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.privacy_ledger import SqlLedger
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators.privacy import default_ledger_url
from mlgate.trust.registry import current_alias_version
from tests.conftest import ROOT
from tests.helpers import write_policy

pytestmark = pytest.mark.dags
# Seeds no other test uses: the same rows are the same digest, and the ledger is shared by every policy.
SEEDS = itertools.count(701)


@pytest.fixture(scope="module")
def dag(dag_bag):
    return dag_bag.get_dag("private_training_pipeline")


@pytest.fixture
def conf(tmp_path):
    data = write_loans(tmp_path / "loans.csv", rows=4000, seed=next(SEEDS))  # its own data, its own budget
    policy = yaml.safe_load((ROOT / "policies" / "private-training.yaml").read_text())
    policy["promotion"]["model_name"] = f"private-{uuid.uuid4().hex[:8]}"
    return {"data_path": str(data), "manifest_path": str(build_manifest(data).save(tmp_path / "m.json")),
            "policy_path": str(write_policy(tmp_path / "policy.yaml", policy)),
            "model": policy["promotion"]["model_name"]}


def run(dag, conf, **params):
    dag_run = dag.test(run_conf={**{k: v for k, v in conf.items() if k != "model"}, **params})
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return str(dag_run.state), states, current_alias_version(MlflowHook().get_conn(), conf["model"], "champion")


def test_a_dp_sgd_model_is_promoted_once_and_its_data_refused_a_second_private_run(dag, conf):
    state, tasks, alias = run(dag, conf)
    assert (state, tasks, alias) == ("success", dict.fromkeys(tasks, "success"), "1")
    version = MlflowHook().get_conn().get_model_version(conf["model"], "1")
    assert version.tags["mlgate.training.method"] == "dp_sgd"
    assert 2.0 < float(version.tags["mlgate.dp_epsilon"]) <= 3.0
    digest = version.tags["mlgate.data_digest"]
    assert SqlLedger(default_ledger_url()).spent(digest) == pytest.approx((3.0, 1e-5))

    state, tasks, alias = run(dag, conf)  # 3 spent + 3 asked > the budget of 5
    assert (state, tasks["train_model"], tasks["model_artifact"], alias) == ("failed", "failed", "upstream_failed", "1")
    assert SqlLedger(default_ledger_url()).spent(digest) == pytest.approx((3.0, 1e-5))
    assert [str(v.version) for v in MlflowHook().get_conn().search_model_versions(f"name = '{conf['model']}'")] == ["1"]


def test_a_target_above_the_policys_limit_trains_nothing(dag, conf):
    state, tasks, alias = run(dag, conf, target_epsilon=8.0)
    assert (state, tasks["train_model"], alias) == ("failed", "failed", None)
    assert MlflowHook().get_conn().search_model_versions(f"name = '{conf['model']}'") == []


def test_the_pipeline_requires_what_its_policy_requires(dag):
    policy = yaml.safe_load((ROOT / "policies" / "private-training.yaml").read_text())
    gates = {t.gate_id for t in dag.tasks if t.task_id != "promote_model"}
    assert gates == set(policy["promotion"]["required_gates"])
    assert dag.get_task("promote_model").trigger_rule == "all_done"
