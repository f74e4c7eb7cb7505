"""LiRA (``model.privacy``'s audit): the likelihood-ratio math on planted confidences, shadow models of real
scikit-learn and torch models, the budget that fails closed, and policy errors that teach."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError, PolicyError
from mlgate.gates.model.lira import (
    balanced_halves,
    logit_confidence,
    pooled_scores,
    summarise,
    tpr_at_fpr,
)
from mlgate.gates.model.membership import lira_audit, lira_findings, shadow_count
from mlgate.gates.model.policies import LiraPolicy, MembershipPolicy
from mlgate.gates.model.shadows import untrained_copy
from tests.fixtures.models import digits

pytestmark = pytest.mark.unit
COARSE = {"limits": [{"fpr": 0.01, "max_tpr": 0.05}, {"fpr": 0.05, "max_tpr": 0.15}]}  # small populations


def planted(gap: float, rows: int = 2000, shadows: int = 16, seed: int = 0):
    """Shadow confidences N(gap, 1) where a row was IN, N(0, 1) where OUT; a target trained on the first half."""
    rng = np.random.default_rng(seed)
    keep = balanced_halves(shadows, rows, seed)
    phi = rng.normal(0, 1, keep.shape) + gap * keep
    members = np.arange(rows) < rows // 2
    return rng.normal(0, 1, rows) + gap * members, members, phi, keep


@pytest.mark.parametrize(("gap", "flagged"), [(4.0, True), (0.0, False)], ids=["memorising", "independent"])
def test_planted_confidences(gap, flagged):
    target, members, phi, keep = planted(gap)
    alone, pooled = pooled_scores(target, members, phi, keep)
    assert pooled.targets == 17 and len(pooled.members) == 17 * 2000 and not pooled.per_row
    summary = summarise(pooled, (0.001, 0.01))
    for variant in ("online", "offline"):
        low = summary[variant]["at_fpr"][0]
        assert low["allowed_false_positives"] == 17  # 0.1 % of 17,000 pooled non-members
        assert (low["tpr"] > 0.5) is flagged and (low["tpr"] < 0.01) is not flagged, low
    findings = lira_findings({"pooled": summary, "audited_model": summarise(alone, (0.001, 0.01))}, LiraPolicy())
    assert bool(findings) is flagged
    assert {f.location for f in findings} >= ({"lira.pooled.online", "lira.pooled.offline"} if flagged else set())


def test_balanced_halves_put_every_row_in_exactly_half_the_shadows():
    keep = balanced_halves(8, 500, seed=3)
    assert (keep.sum(axis=0) == 4).all() and 200 < keep.sum(axis=1).min() <= keep.sum(axis=1).max() < 300


@pytest.mark.parametrize(("probs", "label", "expected"), [
    ([0.5, 0.25, 0.25], 0, 0.0),
    ([0.9, 0.1], 1, np.log(0.1 / 0.9)),
    ([1 - 2e-20, 1e-20, 1e-20], 0, np.log(1 / 2e-20)),  # 1 - p rounds to 0; the wrong classes' sum does not
    ([[1.0, 0.0], [0.75, 0.25]], 0, np.log(1 / 0.125)),  # a 0 is half the smallest positive output
], ids=["uniform-ish", "binary", "confident", "certain"])
def test_logit_confidence(probs, label, expected):
    probs = np.array(probs if isinstance(probs[0], list) else [probs])
    assert logit_confidence(probs, np.full(len(probs), label))[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("negatives", "positives", "fpr", "tpr", "allowed"), [
    (np.arange(1000), [999.5, 998.5, 10], 0.001, 2 / 3, 1),  # threshold 998: one non-member above it
    (np.arange(1000), [999.5, 998.5, 10], 0.0005, 1 / 3, 0),  # nothing allowed: above the top non-member
    (np.zeros(100), [0.0, 1.0], 0.05, 0.5, 5),  # ties at the threshold count as negatives
], ids=["one-allowed", "none-allowed", "ties"])
def test_tpr_at_fpr(negatives, positives, fpr, tpr, allowed):
    scores = np.r_[negatives, positives].astype(float)
    members = np.r_[np.zeros(len(negatives), bool), np.ones(len(positives), bool)]
    at = tpr_at_fpr(scores, members, fpr)
    assert (at["tpr"], at["allowed_false_positives"]) == (pytest.approx(tpr, abs=1e-4), allowed)
    assert at["false_positives"] <= allowed and at["tpr_ci95"][0] <= at["tpr"] <= at["tpr_ci95"][1]


@pytest.fixture(scope="module")
def small_digits():
    x_train, x_test, y_train, y_test = digits(seed=0, test_size=0.5)
    return x_train[:300], y_train[:300], x_test[:300], y_test[:300]


@pytest.mark.parametrize(("model", "flagged"), [
    (RandomForestClassifier(30, random_state=0), True),  # full depth: its training rows are its leaves
    (LogisticRegression(C=0.01, max_iter=1000), False),
], ids=["full-forest-memorises", "regularised-logistic"])
def test_audit_of_real_models(small_digits, model, flagged):
    x_train, y_train, x_test, y_test = small_digits
    model.fit(x_train, y_train)
    lira = LiraPolicy(**COARSE)
    audit = lira_audit(model, x_train, y_train, x_test, y_test, lira)
    assert audit["shadows"] == 16 and audit["population"] == 600 and audit["targets"] == 17
    assert bool(lira_findings(audit, lira)) is flagged, audit["pooled"]


def test_shadow_count_grows_to_resolve_the_lowest_fpr_and_refuses_beyond_the_budget():
    assert shadow_count(LiraPolicy(), population=4000, non_members=1000) == 16  # 16 × 2,000 + 1,000 ≫ 5,000
    assert shadow_count(LiraPolicy(), population=569, non_members=285) == 18  # breast cancer: 17 → even 18
    with pytest.raises(PolicyError, match=r"needs 18 shadow models on 569 rows.*max_shadows is 16: raise it to 18"):
        shadow_count(LiraPolicy(max_shadows=16), population=569, non_members=285)


def test_over_the_time_budget_fails_closed(small_digits):
    x_train, y_train, x_test, y_test = small_digits
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    with pytest.raises(PolicyError, match=r"would take about .*over gates.model.privacy.lira.max_seconds 1e-06"):
        lira_audit(model, x_train, y_train, x_test, y_test, LiraPolicy(max_seconds=1e-6, **COARSE))


class Scaled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


def test_torch_shadows_are_the_architecture_untrained(small_digits):
    x_train, y_train, x_test, y_test = small_digits
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    torch.nn.init.constant_(model[0].weight, 0.5)
    fresh = untrained_copy(model, seed=1)
    assert not torch.equal(fresh[0].weight, model[0].weight) and (model[0].weight == 0.5).all()
    lira = LiraPolicy(torch={"epochs": 2, "batch_size": 64, "learning_rate": 1e-2}, device="cpu", **COARSE)
    audit = lira_audit(model, x_train, y_train, x_test, y_test, lira)
    assert audit["shadows"] == 16 and 0.0 <= audit["pooled"]["online"]["auc"] <= 1.0
    with pytest.raises(GateInputError, match="cannot re-initialise parameter 'scale' of Scaled 'model'"):
        untrained_copy(Scaled(), seed=0)


def test_an_exported_torch_module_is_re_initialised_by_shape_and_audited(small_digits):
    """MLflow's pt2 format loads a torch.export graph: its layers are plain Modules without reset_parameters."""
    x_train, y_train, x_test, y_test = small_digits
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.LayerNorm(32),
                                torch.nn.Linear(32, 10))
    exported = torch.export.export(model, (torch.as_tensor(x_train[:2]),),
                                   dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    with torch.no_grad():
        for parameter in exported.parameters():
            parameter.fill_(0.25)
    fresh = untrained_copy(exported, seed=1)
    weight, bias = fresh.get_parameter("0.weight"), fresh.get_parameter("0.bias")
    assert weight.abs().max() <= 1 / 8 and bias.abs().max() <= 1 / 8 and weight.std() > 0.01  # ±1/√64
    assert (fresh.get_parameter("2.weight") == 1).all() and (fresh.get_parameter("2.bias") == 0).all()
    assert (exported.get_parameter("0.weight") == 0.25).all()
    lira = LiraPolicy(torch={"epochs": 1, "batch_size": 64, "learning_rate": 1e-2}, device="cpu", **COARSE)
    assert lira_audit(exported, x_train, y_train, x_test, y_test, lira)["shadows"] == 16


@pytest.mark.parametrize(("section", "message"), [
    ({"lira": {"shadows": 15}}, "must be even"),
    ({"lira": {"shadows": 32, "max_shadows": 16}}, r"max_shadows \(16\) must be at least shadows \(32\)"),
    ({"lira": {"limits": [{"fpr": 0.01, "max_tpr": 0.001}]}}, "max_tpr must be at least fpr"),
    ({"lira": {"limits": [{"fpr": 0.01, "max_tpr": 0.1}, {"fpr": 0.01, "max_tpr": 0.2}]}}, "each fpr once"),
    ({"lira": {"limits": []}}, "at least 1 item"),
    ({"lira": {"device": "tpu"}}, "'auto', 'cpu' or 'cuda'"),
    ({"lira": {"max_seconds": 0}}, "greater than 0"),
], ids=["odd-shadows", "budget-below-minimum", "limit-below-chance", "duplicate-fpr", "no-limits", "device",
        "no-time"])
def test_policy_errors_teach(section, message):
    with pytest.raises(ValidationError, match=message):
        MembershipPolicy.model_validate(section)
