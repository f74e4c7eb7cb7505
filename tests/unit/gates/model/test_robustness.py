"""``model.robustness`` on real models: ART on scikit-learn, the gate's own loop on a torch CNN, HopSkipJump."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.model_eval import predict_proba, wilson_interval
from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness
from mlgate.gates.model.torch_attacks import attack
from tests.fixtures.models import DigitsCNN, digits, digits_cnn

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def flat_digits():
    return digits()


@pytest.fixture(scope="module")
def logistic(flat_digits):
    x_train, _, y_train, _ = flat_digits
    return LogisticRegression(max_iter=2000).fit(x_train, y_train)


@pytest.fixture(scope="module")
def cnn():
    return digits_cnn()


def policy(eps: float, *names: str, **extra) -> RobustnessPolicy:
    return RobustnessPolicy(attacks=[{"name": n, "eps": eps, "samples": 200} for n in names],
                            min_robust_accuracy=0.8, max_accuracy_drop=0.15, **extra)


@pytest.mark.parametrize(("eps", "expected"), [(0.1, Status.BLOCKED), (0.005, Status.PASSED)],
                         ids=["eps0.1-blocks", "eps0.005-passes"])
def test_logistic_regression_under_art_fgsm_and_pgd(logistic, flat_digits, tmp_path, eps, expected):
    _, x_test, _, y_test = flat_digits
    result = check_robustness(logistic, x_test, y_test, policy(eps, "fgsm", "pgd"), "sha256:p",
                              model_digest="sha256:m", out_dir=tmp_path)
    assert result.status is expected, result.metrics
    pgd = result.metrics["attacks"][f"pgd_linf_eps{eps:g}"]
    low, high = pgd["robust_accuracy_ci95"]
    assert low <= pgd["robust_accuracy"] <= high
    assert pgd["mean_perturbation_norm"] <= eps + 1e-6
    assert result.subject.digest == "sha256:m" and result.subject.kind == "model"
    assert (tmp_path / "robustness_curve.png").read_bytes()[:4] == b"\x89PNG"
    curve = result.metrics["curves"][f"fgsm_linf_eps{eps:g}"]
    assert [point[0] for point in curve] == pytest.approx([0, eps / 4, eps / 2, eps, 2 * eps])
    if expected is Status.BLOCKED:
        assert {f.id for f in result.findings} == {"model.robustness.robust_accuracy", "model.robustness.accuracy_drop"}


@pytest.mark.parametrize(("eps", "expected"), [(0.1, Status.BLOCKED), (0.01, Status.PASSED)],
                         ids=["eps0.1-blocks", "eps0.01-passes"])
def test_torch_cnn_under_the_gates_own_pgd(cnn, eps, expected):
    _, x_test, _, y_test = digits(images=True)
    result = check_robustness(cnn, x_test, y_test, policy(eps, "pgd", curve_factors=()), "sha256:p",
                              model_digest="sha256:m")
    assert result.status is expected, result.metrics
    assert result.artifacts == () and result.metrics["curves"] == {}


def test_torch_cnn_as_mlflow_pt2_matches_the_eager_model(cnn, tmp_path):
    import mlflow.pytorch

    _, x_test, _, y_test = digits(images=True)
    mlflow.pytorch.save_model(cnn, tmp_path / "model", serialization_format="pt2", input_example=x_test[:2],
                              pip_requirements=["torch"])
    exported = mlflow.pytorch.load_model(str(tmp_path / "model"), map_location="cpu")
    with pytest.raises(NotImplementedError):
        exported.eval()  # frozen in the mode it was exported in: the gate must not need eval()
    config = RobustnessPolicy(attacks=[{"name": "pgd", "eps": 0.1, "samples": 60}], min_robust_accuracy=0.8,
                              max_accuracy_drop=0.15, curve_factors=())
    results = [check_robustness(m, x_test, y_test, config, "p", model_digest="sha256:m") for m in (cnn, exported)]
    eager, pt2 = (r.metrics["attacks"]["pgd_linf_eps0.1"] for r in results)
    assert pt2["samples"] == 60 and pt2["clean_accuracy"] > 0.9
    assert (pt2["clean_accuracy"], pt2["robust_accuracy"]) == (eager["clean_accuracy"], eager["robust_accuracy"])
    assert results[1].status is results[0].status


@pytest.mark.parametrize("training", [True, False], ids=["train-mode", "eval-mode"])
def test_predict_proba_runs_in_eval_mode_and_restores_the_callers_mode(training):
    model = DigitsCNN().train(training)
    modes = []
    model.register_forward_hook(lambda module, inputs, output: modes.append(module.training))
    probabilities = predict_proba(model, np.zeros((3, 1, 8, 8), dtype=np.float32))
    assert probabilities.shape == (3, 10) and modes == [False]
    assert model.training is training and all(m.training is training for m in model.modules())


def test_samples_are_reproducible_and_named_by_digest(logistic, flat_digits):
    _, x_test, _, y_test = flat_digits
    runs = [check_robustness(logistic, x_test, y_test, policy(0.05, "pgd", seed=seed, curve_factors=()), "p",
                             model_digest="sha256:m").metrics["attacks"]["pgd_linf_eps0.05"]
            for seed in (1, 1, 2)]
    assert runs[0]["sample_digest"] == runs[1]["sample_digest"] != runs[2]["sample_digest"]
    assert runs[0]["robust_accuracy"] == runs[1]["robust_accuracy"]


@pytest.mark.parametrize(("norm", "eps"), [(np.inf, 0.1), (2.0, 0.5)], ids=["linf", "l2"])
def test_own_pgd_matches_art_pgd_pytorch(cnn, norm, eps):
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    _, x, _, y = digits(images=True)
    x, y = x[:300], y[:300]
    classifier = PyTorchClassifier(cnn, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                                   clip_values=(0.0, 1.0))
    x_adv = ProjectedGradientDescentPyTorch(classifier, norm=norm, eps=eps, eps_step=eps / 4, max_iter=10,
                                            num_random_init=0, batch_size=128, verbose=False).generate(x, y=y)
    art_accuracy = ((classifier.predict(x).argmax(1) == y) & (classifier.predict(x_adv).argmax(1) == y)).mean()
    out = attack(cnn, x, y, eps=eps, eps_step=eps / 4, steps=10, norm=norm, clip=(0.0, 1.0), batch_size=128)
    own_accuracy = ((out.clean_pred == y) & (out.adv_pred == y)).mean()
    assert art_accuracy < 0.9  # the attack bites, so agreement means something
    assert abs(own_accuracy - art_accuracy) <= 0.01
    assert out.perturbation_norm.max() <= eps * (1 + 1e-5)


@pytest.mark.parametrize(("eps", "expected"), [(0.3, Status.PASSED), (6.0, Status.BLOCKED)],
                         ids=["eps0.3-passes", "eps6-blocks"])
def test_random_forest_under_hopskipjump_with_a_query_budget(flat_digits, eps, expected):
    x_train, x_test, y_train, y_test = flat_digits
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x_train, y_train)
    spec = {"name": "hopskipjump", "eps": eps, "norm": "2", "samples": 6, "steps": 3, "max_queries": 150}
    result = check_robustness(forest, x_test, y_test,
                              RobustnessPolicy(attacks=[spec], min_robust_accuracy=0.5, max_accuracy_drop=0.5), "p",
                              model_digest="sha256:m")
    assert result.status is expected, result.metrics
    entry = result.metrics["attacks"][f"hopskipjump_l2_eps{eps:g}"]
    assert 0 < entry["queries_per_sample"] < 1000


def test_fgsm_on_a_model_without_gradients_is_an_input_error(flat_digits):
    x_train, x_test, y_train, y_test = flat_digits
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x_train, y_train)
    with pytest.raises(GateInputError, match="hopskipjump"):
        check_robustness(forest, x_test, y_test, policy(0.1, "fgsm"), "p", model_digest="sha256:m")


@pytest.mark.parametrize(("change", "match"), [
    ({"model_digest": ""}, "model_digest"),
    ({"y": np.full(540, 42)}, "not trained on"),
    ({"x": np.full((540, 64), np.nan)}, "NaN"),
    ({"x": np.full((540, 64), 2.0), "config": policy(0.1, "pgd", clip=(0.0, 1.0))}, "outside the policy clip"),
], ids=["no-digest", "unknown-labels", "nan", "outside-clip"])
def test_bad_input_fails_closed(logistic, flat_digits, change, match):
    _, x_test, _, y_test = flat_digits
    args = {"x": x_test[:540], "y": y_test[:540], "config": policy(0.1, "pgd"), "model_digest": "sha256:m", **change}
    with pytest.raises(GateInputError, match=match):
        check_robustness(logistic, args["x"], args["y"], args["config"], "p", model_digest=args["model_digest"])


@pytest.mark.parametrize("data", [
    {"attacks": [], "min_robust_accuracy": 0.5, "max_accuracy_drop": 0.1},
    {"attacks": [{"name": "cw", "eps": 0.1}], "min_robust_accuracy": 0.5, "max_accuracy_drop": 0.1},
    {"attacks": [{"name": "pgd", "eps": 0.1, "typo": 1}], "min_robust_accuracy": 0.5, "max_accuracy_drop": 0.1},
    {"attacks": [{"name": "pgd", "eps": 0.1}], "min_robust_accuracy": 1.5, "max_accuracy_drop": 0.1},
], ids=["no-attacks", "unknown-attack", "extra-key", "threshold-out-of-range"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        RobustnessPolicy.model_validate(data)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == (0.0, 0.2775)
    assert wilson_interval(50, 100) == (0.4038, 0.5962)


def test_validation_measures_the_confidence_baseline_on_every_held_out_row(logistic, flat_digits, tmp_path):
    """The model validation step records what ``monitor.confidence`` later tests against (ADR 0046)."""
    from mlgate.core.policy import load_policy
    from mlgate.gates.model.model_validation import ValidationData, validate_model
    from tests.helpers import default_policy, write_policy

    data = default_policy()
    data["gates"]["model.robustness"]["attacks"] = [{"name": "fgsm", "eps": 0.01, "samples": 50}]
    data["gates"]["monitor.confidence"]["low_confidence"] = 0.9
    x_train, x_test, y_train, y_test = flat_digits
    result = validate_model("model.robustness", logistic, ValidationData(x_train, y_train, x_test, y_test),
                            load_policy(write_policy(tmp_path / "policy.yaml", data)), model_digest="sha256:m",
                            model_uri="models:/m/1", out_dir=tmp_path)
    low = int((predict_proba(logistic, x_test).max(axis=1) < 0.9).sum())
    assert 0 < low < len(x_test)
    assert result.metrics["confidence_baseline"] == {"low_confidence": 0.9, "low": low, "predictions": len(x_test)}
