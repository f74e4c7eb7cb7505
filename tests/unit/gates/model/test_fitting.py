"""The loops the training gate runs itself: DP-SGD leaves a plain module and reports ε; bad options fail closed."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.gates.model.fitting import AdversarialOptions, DpSgdOptions, TrainingSet, fit
from tests.fixtures.models import DigitsCNN, digits

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def images():
    return digits(images=True)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dp_sgd_spends_at_most_the_target_and_leaves_a_plain_module(images, caplog):
    x_train, x_test, y_train, y_test = images
    options = DpSgdOptions(target_epsilon=2.0, target_delta=1e-5, max_grad_norm=1.0)
    with caplog.at_level(logging.INFO, logger="mlgate.gates.model.fitting"):
        fitted = fit(TrainingSet(DigitsCNN(), x_train, y_train, epochs=10, batch_size=128, learning_rate=1e-2),
                     seed=0, dp_sgd=options)
    assert len([m for m in caplog.messages if m.startswith("DP-SGD epoch ")]) == 10  # progress, epoch by epoch
    assert 0.5 < fitted.metrics["dp_epsilon"] <= 2.0 * 1.01
    assert fitted.params["method"] == "dp_sgd" and fitted.params["noise_multiplier"] > 0.3
    assert type(fitted.model) is DigitsCNN and not fitted.model.training
    assert b"opacus" not in pickle.dumps(fitted.model)  # no hooks or grad samples left behind
    with torch.no_grad():
        accuracy = (fitted.model(torch.as_tensor(x_test)).argmax(1).numpy() == y_test).mean()
    assert accuracy > 0.7  # learnt through the noise: 0.86 at seed 0 (chance is 0.1; 0.98 without DP)


def test_dp_sgd_refuses_layers_without_per_example_gradients(images):
    x_train, _, y_train, _ = images
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10))
    with pytest.raises(GateInputError, match="DP-SGD cannot train Sequential: .*BatchNorm"):
        fit(TrainingSet(model, x_train, y_train), seed=0, dp_sgd=DpSgdOptions(target_epsilon=1, target_delta=1e-5))


@pytest.mark.parametrize(("model", "options", "message"), [
    (DigitsCNN(), {"dp_sgd": DpSgdOptions(target_epsilon=1, target_delta=1e-5),
                   "adversarial": AdversarialOptions(eps=0.1)}, "cannot be combined"),
    (LogisticRegression(), {"dp_sgd": DpSgdOptions(target_epsilon=1, target_delta=1e-5)}, "trains torch modules"),
    (RandomForestClassifier(n_estimators=3), {"adversarial": AdversarialOptions(eps=0.1, rounds=1)}, "gradients"),
    ("not a model", {}, "neither a torch nn.Module nor a scikit-learn"),
], ids=["dp-and-adversarial", "dp-sklearn", "adversarial-trees", "no-model"])
def test_impossible_requests_are_input_errors(images, model, options, message):
    x_train, _, y_train, _ = images
    x = x_train if not hasattr(model, "fit") else x_train.reshape(len(x_train), -1)
    with pytest.raises(GateInputError, match=message):
        fit(TrainingSet(model, x, y_train), seed=0, **options)


@pytest.mark.parametrize(("value", "named"), [
    ({"target_epsilon": -1, "target_delta": 1e-5}, "target_epsilon"),
    ({"target_epsilon": 1.0}, "target_delta"),
    ({"target_epsilon": 1.0, "target_delta": 1e-5, "noise": 2}, "noise"),
    ({"target_epsilon": float("inf"), "target_delta": 1e-5}, "target_epsilon"),
])
def test_invalid_dp_options_name_the_option_and_key(value, named):
    with pytest.raises(GateInputError, match=rf"option dp_sgd: .*{named}"):
        DpSgdOptions.parse("dp_sgd", value)


def test_sklearn_fits_plainly_or_with_augmentation_and_reports_evaluation(images):
    x_train, x_test, y_train, y_test = (a.reshape(len(a), -1) if a.ndim > 1 else a for a in images)

    def evaluate(model):
        return {"accuracy": float(model.score(x_test, y_test))}

    plain = fit(TrainingSet(LogisticRegression(max_iter=1000), x_train, y_train, evaluate=evaluate), seed=0)
    augmented = fit(TrainingSet(LogisticRegression(max_iter=1000), x_train, y_train, evaluate=evaluate), seed=0,
                    adversarial=AdversarialOptions(eps=0.05, attack="fgsm", rounds=1))
    assert plain.params == {"method": "plain"} and plain.metrics["accuracy"] > 0.9
    assert augmented.params["method"] == "fgsm_augmentation" and augmented.params["clip"] == [0.0, 1.0]
    assert augmented.metrics["accuracy"] > 0.85
    assert not np.array_equal(plain.model.coef_, augmented.model.coef_)
