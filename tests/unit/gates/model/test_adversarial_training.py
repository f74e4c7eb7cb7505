"""Adversarial training turns a blocked model into a passing one under the same robustness policy."""

from __future__ import annotations

import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.adversarial_training import augment_sklearn, madry_pgd_torch
from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness
from tests.fixtures.models import DigitsCNN, digits, train

pytestmark = pytest.mark.unit

POLICY = RobustnessPolicy(attacks=[{"name": "pgd", "eps": 0.1, "steps": 10, "samples": 300}],
                          min_robust_accuracy=0.7, max_accuracy_drop=0.25, curve_factors=())


def test_one_policy_blocks_the_plain_cnn_and_passes_the_madry_trained_one():
    x_train, x_test, y_train, y_test = digits(images=True)
    torch.manual_seed(0)
    plain = train(DigitsCNN(), x_train, y_train, epochs=10, seed=0)
    torch.manual_seed(0)
    trained = madry_pgd_torch(DigitsCNN(), x_train, y_train, eps=0.1, epochs=10, lr=3e-3, seed=0)
    results = [check_robustness(model, x_test, y_test, POLICY, "sha256:p", model_digest="sha256:m")
               for model in (plain, trained.model)]
    assert [r.status for r in results] == [Status.BLOCKED, Status.PASSED], [r.metrics for r in results]
    assert results[1].metrics["robust_accuracy"] > results[0].metrics["robust_accuracy"] + 0.2
    assert trained.params == {"method": "madry_pgd", "eps": 0.1, "eps_step": pytest.approx(2.5 * 0.1 / 7),
                              "steps": 7, "epochs": 10, "batch_size": 64, "lr": 3e-3, "clip": [0.0, 1.0], "seed": 0,
                              "norm": "inf"}


def test_sklearn_augmentation_fits_a_clone_and_reports_its_parameters():
    x_train, x_test, y_train, y_test = digits()
    base = LogisticRegression(max_iter=1000)
    trained = augment_sklearn(base, x_train, y_train, eps=0.05, attack="fgsm", rounds=1)
    assert not hasattr(base, "coef_")  # the caller's estimator is left untouched
    assert trained.model.score(x_test, y_test) > 0.9
    assert trained.params["method"] == "fgsm_augmentation" and trained.params["clip"] == [0.0, 1.0]


def test_sklearn_augmentation_needs_gradients():
    x_train, _, y_train, _ = digits()
    with pytest.raises(GateInputError, match="loss gradients"):
        augment_sklearn(RandomForestClassifier(n_estimators=5), x_train, y_train, eps=0.1, rounds=1)
