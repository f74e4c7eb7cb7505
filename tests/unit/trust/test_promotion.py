from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mlgate.core.errors import EvidenceError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo
from mlgate.trust.promotion import decide
from tests.helpers import default_policy

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICY = parse_policy({**default_policy(), "promotion": {
    **default_policy()["promotion"], "required_gates": ["data.integrity", "data.expectations", "model.training"]}})
MODEL, DATA, CODE = "sha256:model", "sha256:data", "sha256:code"


def result(gate: str, kind: str, **overrides) -> GateResult:
    an_hour_ago = (NOW - timedelta(hours=1)).isoformat()
    digest = {"model": MODEL, "dataset": DATA, "code": CODE}[kind]
    base = GateResult(gate=gate, status=Status.PASSED, subject=Subject(kind, "uri", digest),
                      policy_digest=POLICY.digest, tool=ToolInfo("t", "1"), started_at=an_hour_ago,
                      finished_at=an_hour_ago)
    return replace(base, **overrides)


def evidence(**changes):
    items = {"data.integrity": result("data.integrity", "dataset"),
             "data.expectations": result("data.expectations", "dataset"),
             "model.training": result("model.training", "model")}
    items.update(changes)
    return {k: v for k, v in items.items() if v is not None}


def test_fresh_passing_evidence_bound_to_this_model_and_data_allows_promotion():
    decision = decide(POLICY, evidence(), digests={"model": MODEL, "dataset": DATA}, now=NOW)
    assert decision.allowed and decision.reasons == ()


def test_code_evidence_is_bound_to_the_code_the_model_was_trained_with():
    static = {"model.training": result("model.training", "code")}
    assert decide(POLICY, evidence(**static), digests={"model": MODEL, "dataset": DATA, "code": CODE}, now=NOW).allowed
    decision = decide(POLICY, evidence(**static), digests={"model": MODEL, "dataset": DATA, "code": "sha256:new"},
                      now=NOW)
    assert decision.reasons == ("model.training: evidence is for other code than the model was trained with "
                                "(evidence sha256:code…, now sha256:new…)",)


blocked = result("data.expectations", "dataset", status=Status.BLOCKED,
                 findings=(Finding("data.expectations.x", Severity.HIGH, "3 values unexpected"),))


@pytest.mark.parametrize(("changes", "model", "data", "reason"), [
    ({"model.training": None}, MODEL, DATA, "model.training: required gate has no evidence"),
    ({"data.expectations": blocked}, MODEL, DATA, "data.expectations: status blocked ([high] data.expectations.x"),
    ({"data.integrity": result("data.integrity", "dataset", status=Status.ERROR)}, MODEL, DATA,
     "data.integrity: status error"),
    ({}, "sha256:swapped", DATA, "model.training: model artifact changed since validation"),
    ({}, MODEL, "sha256:other", "data.integrity: evidence is for other data than the model was trained on"),
    ({"model.training": result("model.training", "model", policy_digest="sha256:old")}, MODEL, DATA,
     "model.training: the policy changed since this evidence was produced"),
    ({"data.integrity": result("data.integrity", "dataset", finished_at=(NOW - timedelta(hours=30)).isoformat())},
     MODEL, DATA, "data.integrity: evidence is 30.0 h old, older than the policy's 24.0 h"),
    ({"model.training": EvidenceError("gates/model.training.json: malformed evidence")}, MODEL, DATA,
     "model.training: gates/model.training.json: malformed evidence"),
], ids=["missing-gate", "blocked-gate", "error-gate", "artifact-swapped", "other-data", "policy-changed", "stale",
        "unreadable"])
def test_each_kind_of_bad_evidence_blocks_with_its_reason(changes, model, data, reason):
    decision = decide(POLICY, evidence(**changes), digests={"model": model, "dataset": data}, now=NOW)
    assert not decision.allowed
    assert any(r.startswith(reason) or reason in r for r in decision.reasons), decision.reasons


def test_every_reason_is_reported_not_just_the_first():
    decision = decide(POLICY, {}, digests={"model": MODEL, "dataset": DATA}, now=NOW)
    assert len(decision.reasons) == 3
    assert decision.gates == dict.fromkeys(POLICY.promotion.required_gates, "missing")


def test_incident_response_may_accept_older_evidence_than_promotion():
    stale = evidence(**{"data.integrity": result("data.integrity", "dataset",
                                                 finished_at=(NOW - timedelta(hours=30)).isoformat())})
    assert not decide(POLICY, stale, digests={"model": MODEL, "dataset": DATA}, now=NOW).allowed
    assert decide(POLICY, stale, digests={"model": MODEL, "dataset": DATA}, now=NOW, max_age_hours=48).allowed
