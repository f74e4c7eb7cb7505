"""``model.privacy``: the ART pre-check (black-box and loss-threshold attacks), then LiRA, on real models."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.membership import MembershipPolicy, attack_scores, check_membership, rows_digest
from tests.fixtures.models import digits

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def halves():
    """Digits split 50/50: few training records per class, so an unregularised forest memorises them."""
    return digits(seed=0, test_size=0.5)


@pytest.mark.parametrize(("model", "expected", "blocked_by"), [
    (RandomForestClassifier(n_estimators=100, random_state=0), Status.BLOCKED, "pre-check"),
    # the old gate passed it (AUC 0.59, advantage 0.15); LiRA finds 7.6 % of its members at 1 % FPR
    (RandomForestClassifier(n_estimators=100, min_samples_leaf=10, random_state=0), Status.BLOCKED, "lira"),
    (LogisticRegression(C=0.1, max_iter=2000), Status.PASSED, None),
], ids=["overfit-forest-blocks", "min-leaf-forest-blocked-by-lira", "regularised-logistic-passes"])
def test_membership_attacks(halves, model, expected, blocked_by):
    x_train, x_test, y_train, y_test = halves
    model.fit(x_train, y_train)
    result = check_membership(model, x_train, y_train, x_test, y_test, MembershipPolicy(), "sha256:p",
                              model_digest="sha256:m")
    assert result.status is expected, [f.message for f in result.findings]
    assert set(result.metrics["attacks"]) == {"black_box", "loss_threshold"}
    assert result.metrics["samples_per_side"] == min(len(x_train), len(x_test))
    if blocked_by == "pre-check":
        assert {f.location for f in result.findings} == {"black_box", "loss_threshold"}
        assert result.metrics["attacks"]["black_box"]["auc"] > 0.7
        assert result.metrics["lira"] == {"skipped": "the pre-check already blocks"}  # no budget spent
        return
    assert result.metrics["lira"]["shadows"] == 16 and result.metrics["lira"]["targets"] == 17
    pooled = {f.location for f in result.findings if f.location.startswith("lira.pooled.")}
    assert (pooled == {"lira.pooled.online", "lira.pooled.offline"}) is (blocked_by == "lira")
    assert (result.metrics["lira_tpr_at_fpr_0.01"] > 0.05) is (blocked_by == "lira")


def test_result_is_reproducible_for_a_seed(halves):
    x_train, x_test, y_train, y_test = halves
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(x_train, y_train)
    runs = [check_membership(model, x_train, y_train, x_test, y_test, MembershipPolicy(samples=300), "p",
                             model_digest="sha256:m").metrics for _ in range(2)]
    assert runs[0]["attacks"] == runs[1]["attacks"]
    assert runs[0]["sample_member_digest"] == runs[1]["sample_member_digest"]


def test_evidence_names_the_member_and_non_member_rows(halves):
    """Equal-size sides sampled whole: the old gate's index digests were identical; the rows' are not."""
    x_train, x_test, y_train, y_test = halves
    x_train, y_train, x_test, y_test = x_train[:400], y_train[:400], x_test[:400], y_test[:400]
    model = LogisticRegression(C=0.01, max_iter=1000).fit(x_train, y_train)
    metrics = check_membership(model, x_train, y_train, x_test, y_test, MembershipPolicy(samples=400), "p",
                               model_digest="sha256:m").metrics
    assert metrics["member_digest"] == metrics["sample_member_digest"] == rows_digest(x_train, y_train)
    assert metrics["non_member_digest"] == metrics["sample_non_member_digest"] == rows_digest(x_test, y_test)
    assert metrics["member_digest"] != metrics["non_member_digest"]
    changed = x_train.copy()
    changed[7, 3] += 1 / 16
    assert rows_digest(changed, y_train) != metrics["member_digest"]
    assert rows_digest(x_train, np.roll(y_train, 1)) != metrics["member_digest"]


@pytest.mark.parametrize(("membership", "scores", "auc", "advantage"), [
    ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0, 1.0),
    ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], 0.5, 0.0),
    ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0, 0.0),
], ids=["perfect", "chance", "inverted"])
def test_attack_scores(membership, scores, auc, advantage):
    assert attack_scores(np.array(membership), np.array(scores)) == {"auc": auc, "advantage": advantage}


def test_mismatched_input_fails_closed(halves):
    x_train, x_test, y_train, y_test = halves
    model = LogisticRegression(max_iter=500).fit(x_train, y_train)
    with pytest.raises(GateInputError, match="equal length"):
        check_membership(model, x_train, y_train[:-1], x_test, y_test, MembershipPolicy(), "p", model_digest="m")


@pytest.mark.parametrize("data", [{"max_auc": 0.4}, {"attack_model": "nn"}, {"samples": 5}, {"extra": 1}],
                         ids=["auc-below-chance", "slow-attack-model", "too-few-samples", "extra-key"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        MembershipPolicy.model_validate(data)
