from __future__ import annotations

import json

import pandas as pd
import pytest

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.data.dp_release import CategoricalColumn, NumericColumn, Query, ReleaseSpec
from mlgate.gates.data.privacy import GATE, PROFILE_METRIC, PrivacyPolicy, check_privacy
from mlgate.gates.data.privacy_ledger import Budget, Budgets, SqlLedger

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "12" * 32
SECRET = "ACCT-9931-SECRET"


def policy(epsilon_budget: float = 5.0, overrides: dict | None = None) -> PrivacyPolicy:
    return PrivacyPolicy(
        budgets=Budgets(default=Budget(epsilon=epsilon_budget, delta=1e-5), overrides=overrides or {}),
        release=ReleaseSpec(rows=Query(epsilon=0.5), columns={
            "age": NumericColumn(edges=(0, 30, 60, 90), bounds=(0, 90), histogram=Query(epsilon=1.0),
                                 mean=Query(epsilon=0.5)),
            "plan": CategoricalColumn(categories=("basic", "pro"),
                                      histogram=Query(epsilon=1.0, delta=1e-6, mechanism="gaussian")),
        }))


@pytest.fixture
def frame():
    return pd.DataFrame({"age": [25, 40, 61, 33, 70] * 40, "plan": ["basic", "pro", "basic", SECRET, "pro"] * 40})


@pytest.fixture
def ledger(tmp_path):
    opened = SqlLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def test_a_release_within_budget_passes_with_its_profile(frame, ledger):
    result, profile = check_privacy(frame, DIGEST, policy(), ledger, "sha256:policy", "alice")
    assert result.status is Status.PASSED and result.gate == GATE
    assert (result.subject.kind, result.subject.digest) == ("dataset", DIGEST)
    assert result.tool.name == "opendp" and result.policy_digest == "sha256:policy"
    assert result.metrics["epsilon_spent"] == pytest.approx(3.0) and result.metrics["delta_spent"] == 1e-6
    assert result.metrics["epsilon_total_after"] == pytest.approx(3.0) and result.metrics["epsilon_budget"] == 5.0
    assert profile is not None and set(profile.columns) == {"age", "plan"}
    [spend] = ledger.history(DIGEST)
    assert (spend.actor, spend.release_digest) == ("alice", profile.plan_digest)
    assert SECRET not in result.to_json() and SECRET not in str(profile.to_dict())
    # the signed result names the released profile: monitoring accepts only the file with this digest (ADR 0060)
    written = json.loads(json.dumps(profile.to_dict(), indent=1))  # as the operator writes profile_path
    assert result.metrics[PROFILE_METRIC] == profile.digest == json_digest(written)


def test_a_release_past_the_budget_is_blocked_and_releases_nothing(frame, ledger):
    check_privacy(frame, DIGEST, policy(), ledger, "sha256:policy", "alice")
    result, profile = check_privacy(frame, DIGEST, policy(), ledger, "sha256:policy", "bob")
    assert result.status is Status.BLOCKED and profile is None
    assert [f.id for f in result.findings] == [f"{GATE}.budget_exceeded"]
    assert result.metrics["epsilon_spent"] == 0.0 and PROFILE_METRIC not in result.metrics
    assert result.metrics["epsilon_total_after"] == pytest.approx(3.0)
    assert result.metrics["epsilon_requested"] == pytest.approx(3.0)
    assert ledger.spent(DIGEST)[0] == pytest.approx(3.0) and len(ledger.history(DIGEST)) == 1


def test_budget_overrides_apply_to_their_digest_only(frame, ledger):
    config = policy(epsilon_budget=1.0, overrides={DIGEST: Budget(epsilon=10.0, delta=1e-5)})
    assert check_privacy(frame, DIGEST, config, ledger, "p", "alice")[0].status is Status.PASSED
    assert check_privacy(frame, "sha256:other", config, ledger, "p", "alice")[0].status is Status.BLOCKED


@pytest.mark.parametrize(("data", "digest"), [
    (pd.DataFrame({"age": [1, 2]}), DIGEST),
    (pd.DataFrame({"age": ["x", "y"], "plan": ["basic", "pro"]}), DIGEST),
    (pd.DataFrame({"age": [1, 2], "plan": ["basic", "pro"]}), ""),
], ids=["missing-column", "wrong-type", "no-digest"])
def test_bad_input_fails_before_anything_is_spent(ledger, data, digest):
    with pytest.raises(GateInputError):
        check_privacy(data, digest, policy(), ledger, "p", "alice")
    assert ledger.spent(DIGEST) == (0.0, 0.0)


def test_a_policy_without_a_release_publishes_nothing_and_spends_nothing(frame, ledger):
    config = PrivacyPolicy(budgets=Budgets(default=Budget(epsilon=5.0, delta=1e-5)))  # budgets for DP-SGD only
    with pytest.raises(GateInputError, match="declares no release"):
        check_privacy(frame, DIGEST, config, ledger, "p", "alice")
    assert ledger.spent(DIGEST) == (0.0, 0.0)
