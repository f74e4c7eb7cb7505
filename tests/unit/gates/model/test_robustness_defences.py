"""Defences that mask gradients, judged by ``model.robustness`` on real digits CNNs (Carlini et al. 2019).

Defensive distillation and feature squeezing look robust to naive PGD; the masking checks block the
distilled model, BPDA undoes the squeezing, and an adversarially trained CNN of the same size passes.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.fitting import AdversarialOptions, DistillationOptions, TrainingSet, fit
from mlgate.gates.model.input_defences import InputDefence, apply_declared, save, serve_declared
from mlgate.gates.model.input_transforms import defended_module
from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness
from tests.fixtures.models import DigitsCNN, digits, digits_cnn

pytestmark = pytest.mark.unit
EPS = 0.1


@pytest.fixture(scope="module")
def data():
    return digits(images=True)


def masking_policy(**extra) -> RobustnessPolicy:
    return RobustnessPolicy(attacks=[{"name": "pgd", "eps": EPS, "steps": 10, "samples": 150}],
                            min_robust_accuracy=0.5, max_accuracy_drop=0.5, curve_factors=(),
                            masking_checks={"large_eps": 0.5, "surrogate_epochs": 15, "restarts": 3}, **extra)


def masking_findings(result) -> set[str]:
    return {f.id.rsplit(".", 1)[1] for f in result.findings if ".masking." in f.id}


def test_distilled_model_looks_robust_to_naive_pgd_and_is_blocked_by_the_masking_checks(data):
    x_train, x_test, y_train, y_test = data
    fitted = fit(TrainingSet(DigitsCNN(), x_train, y_train, epochs=10, learning_rate=3e-3), seed=0,
                 distillation=DistillationOptions(temperature=100))
    assert fitted.params["method"] == "defensive_distillation" and fitted.params["temperature"] == 100
    result = check_robustness(fitted.model, x_test, y_test, masking_policy(), "sha256:p", model_digest="sha256:m",
                              x_train=x_train, y_train=y_train)
    naive = result.metrics["attacks"][f"pgd_linf_eps{EPS:g}"]["robust_accuracy"]
    assert naive >= 0.5, result.metrics  # robust accuracy alone would pass the policy ...
    assert {f.id for f in result.findings if ".masking." not in f.id} == set()
    assert result.status is Status.BLOCKED  # ... the masking checks do not
    assert {"large_eps", "black_box_beats_white_box"} <= masking_findings(result), result.findings
    checks = result.metrics["masking_checks"][f"pgd_linf_eps{EPS:g}"]
    assert checks["transfer"]["robust_accuracy"] < naive - 0.05


def test_adversarially_trained_model_of_the_same_size_passes_the_masking_checks(data):
    x_train, x_test, y_train, y_test = data
    fitted = fit(TrainingSet(DigitsCNN(), x_train, y_train, epochs=12, learning_rate=3e-3), seed=0,
                 adversarial=AdversarialOptions(eps=EPS, steps=5, clip=(0.0, 1.0)))
    result = check_robustness(fitted.model, x_test, y_test, masking_policy(), "sha256:p", model_digest="sha256:m",
                              x_train=x_train, y_train=y_train)
    assert masking_findings(result) == set(), result.findings
    assert result.status is Status.PASSED, result.metrics
    checks = result.metrics["masking_checks"][f"pgd_linf_eps{EPS:g}"]
    assert checks["large_eps"]["robust_accuracy"] <= 0.05


def test_bpda_breaks_feature_squeezing_to_the_undefended_models_level(data, tmp_path):
    _, x_test, _, y_test = data
    plain = digits_cnn(epochs=10)
    save(InputDefence(name="feature_squeezing", bit_depth=5), tmp_path)
    squeezed = apply_declared(plain, tmp_path)  # as the validation gates load a version declaring it
    attacks = [{"name": "pgd", "eps": EPS, "steps": 20, "samples": 200, "loss": "margin"}]
    policy = RobustnessPolicy(attacks=attacks, min_robust_accuracy=0.0, max_accuracy_drop=1.0, curve_factors=())
    undefended = check_robustness(plain, x_test, y_test, policy, "sha256:p", model_digest="sha256:m")
    both = policy.model_copy(update={"attacks": (*policy.attacks, policy.attacks[0].model_copy(
        update={"bpda": True}))})
    defended = check_robustness(squeezed, x_test, y_test, both, "sha256:p", model_digest="sha256:m")
    base = undefended.metrics["attacks"][f"pgd_linf_eps{EPS:g}_margin"]["robust_accuracy"]
    naive = defended.metrics["attacks"][f"pgd_linf_eps{EPS:g}_margin"]["robust_accuracy"]
    bpda = defended.metrics["attacks"][f"pgd_linf_eps{EPS:g}_margin_bpda"]["robust_accuracy"]
    assert defended.metrics["input_defence"]["name"] == "feature_squeezing"
    assert naive >= base + 0.3, (naive, base)  # zero gradient: the naive attack goes nowhere
    assert abs(bpda - base) <= 0.05, (bpda, base)


def test_eot_attacks_a_randomized_defence_and_bpda_needs_a_declared_one(data):
    _, x_test, _, y_test = data
    plain = digits_cnn(epochs=10)
    noisy = defended_module(plain, InputDefence(name="gaussian_noise", sigma=0.1))
    spec = {"name": "pgd", "eps": EPS, "steps": 10, "samples": 100, "loss": "margin"}
    policy = RobustnessPolicy(attacks=[spec, {**spec, "eot_samples": 8}], min_robust_accuracy=0.0,
                              max_accuracy_drop=1.0, curve_factors=())
    result = check_robustness(noisy, x_test, y_test, policy, "sha256:p", model_digest="sha256:m")
    single = result.metrics["attacks"][f"pgd_linf_eps{EPS:g}_margin"]["robust_accuracy"]
    eot = result.metrics["attacks"][f"pgd_linf_eps{EPS:g}_margin_eot8"]["robust_accuracy"]
    assert eot <= single + 0.03, (eot, single)
    with pytest.raises(GateInputError, match="declared input defence"):
        check_robustness(plain, x_test, y_test, policy, "sha256:p", model_digest="sha256:m")


def test_declared_defences_fail_closed(tmp_path):
    from sklearn.linear_model import LogisticRegression

    (tmp_path / "input_defence.json").write_text('{"name": "jpeg_magic"}')
    with pytest.raises(GateInputError, match="input defence"):
        apply_declared(digits_cnn(epochs=1), tmp_path)
    save(InputDefence(name="feature_squeezing"), tmp_path)
    with pytest.raises(GateInputError, match="torch modules"):
        apply_declared(LogisticRegression(), tmp_path)
    assert apply_declared("model", tmp_path / "nothing-declared") == "model"


def test_distillation_refuses_what_it_cannot_train(data):
    from sklearn.linear_model import LogisticRegression

    x_train, _, y_train, _ = data
    options = DistillationOptions(temperature=50)
    with pytest.raises(GateInputError, match="torch modules"):
        fit(TrainingSet(LogisticRegression(), x_train.reshape(len(x_train), -1), y_train), seed=0,
            distillation=options)
    with pytest.raises(GateInputError, match="cannot be combined"):
        fit(TrainingSet(DigitsCNN(), x_train, y_train), seed=0, distillation=options,
            adversarial=AdversarialOptions(eps=EPS))
    with pytest.raises(GateInputError, match="temperature"):
        DistillationOptions.parse("defensive_distillation", {"temperature": 1})


def test_the_loaded_version_is_served_behind_its_declared_defence(data, tmp_path):
    import mlflow.pyfunc
    import mlflow.pytorch
    import torch

    _, x_test, _, _ = data
    plain = digits_cnn(epochs=3)
    mlflow.pytorch.save_model(plain, tmp_path / "model", serialization_format="pt2", input_example=x_test[:2],
                              pip_requirements=["torch"])
    defence = InputDefence(name="feature_squeezing", bit_depth=1)
    save(defence, tmp_path / "model")
    served = serve_declared(mlflow.pyfunc.load_model(str(tmp_path / "model")), tmp_path / "model")
    with torch.no_grad():
        binarized = plain(torch.as_tensor(np.round(x_test))).numpy()
    assert np.allclose(np.asarray(served.predict(x_test)), binarized, atol=1e-5)
    (tmp_path / "model" / "input_defence.json").write_text('{"name": "feature_squeezing", "bit_depth": 0}')
    with pytest.raises(GateInputError, match="bit_depth"):
        serve_declared(mlflow.pyfunc.load_model(str(tmp_path / "model")), tmp_path / "model")
