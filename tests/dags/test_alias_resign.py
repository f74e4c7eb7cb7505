"""The alias_resign DAG, run by Airflow itself: it re-signs the served alias state, and fails on a direct move."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.alias_store import trusted_view
from mlgate.trust.keys import keyring_from_env
from tests import alias_attacks as attack
from tests.helpers import default_policy, write_policy

pytestmark = pytest.mark.dags


def test_resign_refreshes_the_state_and_fails_on_a_direct_alias_move(dag_bag, tmp_path):
    client = MlflowHook().get_conn()
    policy = attack.new_policy()
    name = policy.promotion.model_name
    first, _ = attack.promoted(client, policy, 2)
    data = default_policy()
    data["promotion"]["model_name"] = name
    conf = {"policy_path": str(write_policy(tmp_path / "policy.yaml", data))}

    def state():
        return trusted_view(client, name, keyring_from_env().trusted_keys(), datetime.now(UTC)).states["champion"]

    before = state()
    dag = dag_bag.get_dag("alias_resign")
    assert str(dag.test(run_conf=conf).state) == "success"
    after = state()
    assert (after.sequence, after.origin, after.kind) == (before.sequence + 1, before.origin, "resign")
    assert after.expires > before.expires

    client.set_registered_model_alias(name, "champion", first)  # a direct move: re-signing must refuse
    assert str(dag.test(run_conf=conf).state) == "failed"
    assert state().sequence == after.sequence
