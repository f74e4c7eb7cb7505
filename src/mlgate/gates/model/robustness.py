"""``model.robustness``: accuracy under evasion attacks within an ε-ball, per attack the policy names.

* FGSM and PGD are white-box: differentiable scikit-learn models (logistic regression, SVMs) go through
  ART's ``SklearnClassifier`` and ART's attacks; PyTorch modules go through the gate's own on-device loop
  (``torch_attacks``), on CUDA when available.
* HopSkipJump is black-box (decision-based): any model with ``predict_proba`` (tree ensembles too), with
  ART's ``BlackBoxClassifier``. It searches for the *smallest* adversarial perturbation, so a sample is
  robust at ε when the attack failed or needed a perturbation larger than ε. Its queries are counted.

A model behind a declared input defence (``input_defences``) is attacked as defended: naively through the
transform's own gradient, or with ``bpda``/``eot_samples``; ``loss: margin`` and ``restarts`` are the other
adaptive options. With ``masking_checks`` the policy's PGD attacks are checked for gradient masking
(``masking_checks``): a failed check blocks, whatever the robust accuracy.

A sample counts as robust only when the model classifies it correctly both clean and attacked. Samples
are drawn from one seeded permutation; the seed and the indices' digest are in the evidence, so the
result can be reproduced exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    indices_digest,
    is_torch_module,
    label_indices,
    model_result,
    new_figure,
    predict_proba,
    sample_indices,
    save_figure,
    tool_info,
    torch_device,
    wilson_interval,
)
from mlgate.gates.model.policies import AttackSpec, RobustnessPolicy

GATE = "model.robustness"
CURVE_FILE = "robustness_curve.png"


@dataclass(frozen=True)
class Outcome:
    """Per sample: classified correctly clean, and the attack's prediction and perturbation norm.

    ``minimal`` marks an unbounded minimal-perturbation attack (HopSkipJump): there an adversarial
    example farther than ε from the sample does not count against robustness at ε.
    """

    correct: np.ndarray
    adv_correct: np.ndarray
    norm: np.ndarray
    minimal: bool = False
    queries: int = 0

    def robust(self, eps: float) -> np.ndarray:
        fooled = ~self.adv_correct
        if self.minimal:
            fooled &= self.norm <= eps
        return self.correct & ~fooled


def _white_box_sklearn(model: Any, x: np.ndarray, y: np.ndarray, spec: AttackSpec, eps: float,
                       clip: tuple[float, float], seed: int) -> Outcome:
    if spec.loss != "ce" or spec.bpda or spec.eot_samples > 1:
        raise GateInputError(f"{spec.key}: the margin loss, BPDA and EOT are for torch modules; ART attacks "
                             f"{type(model).__name__} with its own loss")
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentNumpy
    from art.estimators.classification import SklearnClassifier
    from art.estimators.estimator import LossGradientsMixin

    classifier = SklearnClassifier(model, clip_values=clip)
    if not isinstance(classifier, LossGradientsMixin):
        raise GateInputError(f"{spec.name} needs loss gradients, which ART has no wrapper for on "
                             f"{type(model).__name__}; use hopskipjump for this model")
    if spec.name == "fgsm":
        attack = FastGradientMethod(classifier, norm=spec.order, eps=eps, batch_size=256)
    else:
        np.random.seed(seed)  # ART draws its random start from numpy's global generator
        attack = ProjectedGradientDescentNumpy(classifier, norm=spec.order, eps=eps, eps_step=spec.step_size(eps),
                                               max_iter=spec.steps,
                                               num_random_init=spec.restarts if spec.restarts > 1
                                               else int(spec.random_start),
                                               batch_size=256, verbose=False)
    x_adv = attack.generate(x, y=y)
    clean = classifier.predict(x).argmax(1)
    adv = classifier.predict(x_adv).argmax(1)
    norm = np.linalg.norm((x_adv - x).reshape(len(x), -1), ord=spec.order, axis=1)
    return Outcome(clean == y, adv == y, norm)


def _white_box_torch(model: Any, x: np.ndarray, y: np.ndarray, spec: AttackSpec, eps: float,
                     clip: tuple[float, float], seed: int) -> Outcome:
    from mlgate.gates.model.input_transforms import is_defended
    from mlgate.gates.model.torch_attacks import attack

    if (spec.bpda or spec.eot_samples > 1) and not is_defended(model):
        raise GateInputError(f"{spec.key}: BPDA and EOT attack a declared input defence; this model has none")
    steps = 1 if spec.name == "fgsm" else spec.steps
    if is_defended(model):
        model.bpda = spec.bpda
    try:
        out = attack(model, x, y, eps=eps, eps_step=spec.step_size(eps), steps=steps, norm=spec.order, clip=clip,
                     random_start=spec.random_start and spec.name == "pgd", seed=seed, loss=spec.loss,
                     eot_samples=spec.eot_samples, restarts=spec.restarts if spec.name == "pgd" else 1)
    finally:
        if is_defended(model):
            model.bpda = False
    return Outcome(out.clean_pred == y, out.adv_pred == y, out.perturbation_norm)


def _hopskipjump(model: Any, x: np.ndarray, y: np.ndarray, spec: AttackSpec, clip: tuple[float, float],
                 n_classes: int) -> Outcome:
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    queries = [0]

    def counted(batch: np.ndarray) -> np.ndarray:
        queries[0] += len(batch)
        return predict_proba(model, batch)

    correct = predict_proba(model, x).argmax(1) == y
    queries[0] = 0  # the clean predictions are not the attack's queries
    max_eval = max(1, spec.max_queries // spec.steps)
    attack = HopSkipJump(BlackBoxClassifier(counted, x.shape[1:], n_classes, clip_values=clip),
                         norm=spec.order, max_iter=spec.steps, max_eval=max_eval, init_eval=min(max_eval, 100),
                         init_size=100, batch_size=256, verbose=False)
    norm = np.zeros(len(x))
    adv_correct = correct.copy()
    if correct.any():  # misclassified samples are not robust anyway: spend no queries on them
        x_adv = attack.generate(x[correct])
        adv_correct[correct] = predict_proba(model, x_adv).argmax(1) == y[correct]
        norm[correct] = np.linalg.norm((x_adv - x[correct]).reshape(len(x_adv), -1), ord=spec.order, axis=1)
    return Outcome(correct, adv_correct, norm, minimal=True, queries=queries[0])


def run_attack(model: Any, x: np.ndarray, y: np.ndarray, spec: AttackSpec, eps: float,
               clip: tuple[float, float], seed: int, n_classes: int) -> Outcome:
    if spec.name == "hopskipjump":
        return _hopskipjump(model, x, y, spec, clip, n_classes)
    if is_torch_module(model):
        return _white_box_torch(model, x, y, spec, eps, clip, seed)
    return _white_box_sklearn(model, x, y, spec, eps, clip, seed)


def _curve(model: Any, x: np.ndarray, y: np.ndarray, spec: AttackSpec, outcome: Outcome,
           policy: RobustnessPolicy, clip: tuple[float, float], n_classes: int) -> list[list[float]]:
    points = [[0.0, round(float(outcome.correct.mean()), 4)]]
    for factor in sorted(set(policy.curve_factors) - {0.0}):
        eps = spec.eps * factor
        if outcome.minimal or factor == 1.0:
            robust = outcome.robust(eps)
        else:
            robust = run_attack(model, x, y, spec, eps, clip, policy.seed, n_classes).robust(eps)
        points.append([round(eps, 6), round(float(robust.mean()), 4)])
    return points


def _plot(curves: dict[str, list[list[float]]], out_dir: Path | None) -> tuple[str, ...]:
    if out_dir is None or not curves:
        return ()
    figure = new_figure()
    axes = figure.add_subplot()
    for key, points in curves.items():
        axes.plot(*zip(*points, strict=True), marker="o", label=key)
    axes.set(xlabel="ε", ylabel="robust accuracy", ylim=(0, 1.02), title="Robustness curve")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, out_dir, CURVE_FILE)


def _masking(model: Any, x: np.ndarray, y: np.ndarray, policy: RobustnessPolicy, clip: tuple[float, float],
             n_classes: int, evaluated: dict[str, tuple[AttackSpec, float]],
             train: tuple[np.ndarray, np.ndarray] | None) -> tuple[dict, list[Finding]]:
    from mlgate.gates.model.input_transforms import is_defended
    from mlgate.gates.model.masking_checks import run_checks, surrogate_examples

    checks = policy.masking_checks

    def attacked(spec: AttackSpec, eps: float) -> np.ndarray:
        indices = sample_indices(len(x), spec.samples, policy.seed)
        return run_attack(model, x[indices], y[indices], spec, eps, clip, policy.seed, n_classes).robust(eps)

    def transferred(spec: AttackSpec) -> float:
        indices = sample_indices(len(x), spec.samples, policy.seed)
        xs, ys = x[indices], y[indices]
        x_adv = surrogate_examples(train[0], train[1], xs, ys, spec, clip, n_classes, checks.surrogate_epochs,
                                   policy.seed)
        torch_seed(policy.seed)
        correct = predict_proba(model, xs).argmax(1) == ys
        return float((correct & (predict_proba(model, x_adv).argmax(1) == ys)).mean())

    if checks.transfer and train is None:
        raise GateInputError("model.robustness masking_checks.transfer needs the training rows (x_train, y_train)")
    defended = is_defended(model)
    return run_checks(evaluated, checks, attacked, transferred if checks.transfer else None,
                      torch_model=is_torch_module(model), defended=defended,
                      randomized=defended and model.defence.randomized)


def torch_seed(seed: int) -> None:
    """Seed torch's global generator, which a randomized input defence draws from (no-op without torch)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _evaluate(model: Any, x: np.ndarray, y: np.ndarray, policy: RobustnessPolicy,
              clip: tuple[float, float], n_classes: int) -> tuple[dict, dict, list[Finding]]:
    attacks, curves, findings = {}, {}, []
    for spec in policy.attacks:
        indices = sample_indices(len(x), spec.samples, policy.seed)
        xs, ys = x[indices], y[indices]
        clock = time.perf_counter()
        outcome = run_attack(model, xs, ys, spec, spec.eps, clip, policy.seed, n_classes)
        seconds = time.perf_counter() - clock
        robust, clean = int(outcome.robust(spec.eps).sum()), float(outcome.correct.mean())
        accuracy = robust / len(indices)
        entry = {"samples": len(indices), "sample_digest": indices_digest(indices), "eps": spec.eps,
                 "norm": spec.norm, "clean_accuracy": round(clean, 4), "robust_accuracy": round(accuracy, 4),
                 "robust_accuracy_ci95": list(wilson_interval(robust, len(indices))),
                 "accuracy_drop": round(clean - accuracy, 4),
                 "mean_perturbation_norm": round(float(outcome.norm.mean()), 6), "seconds": round(seconds, 3)}
        if spec.name == "hopskipjump":
            entry["queries_per_sample"] = round(outcome.queries / max(1, int(outcome.correct.sum())), 1)
        attacks[spec.key] = entry
        entry["spec"] = spec
        if accuracy < policy.min_robust_accuracy:
            findings.append(Finding(f"{GATE}.robust_accuracy", Severity.HIGH,
                                    f"robust accuracy {accuracy:.3f} < {policy.min_robust_accuracy}", spec.key))
        if clean - accuracy > policy.max_accuracy_drop:
            findings.append(Finding(f"{GATE}.accuracy_drop", Severity.HIGH,
                                    f"accuracy drop {clean - accuracy:.3f} > {policy.max_accuracy_drop}", spec.key))
        if policy.curve_factors:
            curves[spec.key] = _curve(model, xs, ys, spec, outcome, policy, clip, n_classes)
    return attacks, curves, findings


def _zero_gradient(model: Any, x: np.ndarray, y: np.ndarray, policy: RobustnessPolicy) -> tuple[dict, list]:
    """The vanishing-gradient check on the first gradient attack's samples."""
    from mlgate.gates.model.masking_checks import zero_gradient

    spec = next((s for s in policy.attacks if s.name != "hopskipjump"), None)
    if spec is None:  # a black-box attack only: it needs no gradient
        return {}, []
    indices = sample_indices(len(x), spec.samples, policy.seed)
    return zero_gradient(model, x[indices], y[indices], spec.key)


def _defence_of(model: Any) -> dict | None:
    from mlgate.gates.model.input_transforms import is_defended

    return model.defence.model_dump() if is_defended(model) else None


def check_robustness(model: Any, x: Any, y: Any, config: RobustnessPolicy, policy_digest: str, *,
                     model_digest: str, model_uri: str = "", out_dir: Path | None = None,
                     x_train: Any = None, y_train: Any = None) -> GateResult:
    """Attack ``model`` on ``(x, y)`` (held-out data, in the model's input layout) with each policy attack;
    ``x_train``/``y_train`` train the masking checks' transfer surrogate."""
    started = utcnow()
    x, y = check_xy(x, y)
    clip = config.clip or (float(x.min()), float(x.max()))
    if clip[0] >= clip[1] or x.min() < clip[0] or x.max() > clip[1]:
        raise GateInputError(f"data range [{x.min():g}, {x.max():g}] lies outside the policy clip {clip}")
    device_state, gradient = None, {}
    if is_torch_module(model):
        device_state = next(model.parameters()).device
        model.to(torch_device())
    try:
        n_classes = predict_proba(model, x[:1]).shape[1]
        y_index = label_indices(model, y)
        attacks, curves, findings = _evaluate(model, x, y_index, config, clip, n_classes)
        evaluated = {key: (entry.pop("spec"), entry["robust_accuracy"]) for key, entry in attacks.items()}
        masking: dict = {}
        if device_state is not None:
            gradient, found = _zero_gradient(model, x, y_index, config)
            findings += found
        if config.masking_checks:
            train = None if x_train is None else (check_xy(x_train, y_train, "x_train")[0],
                                                  label_indices(model, np.asarray(y_train)))
            masking, found = _masking(model, x, y_index, config, clip, n_classes, evaluated, train)
            findings += found
    finally:
        if device_state is not None:
            model.to(device_state)
    artifacts = _plot(curves, out_dir)
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("adversarial-robustness-toolbox"), started_at=started,
        metrics={"robust_accuracy": min(a["robust_accuracy"] for a in attacks.values()),
                 "accuracy_drop": max(a["accuracy_drop"] for a in attacks.values()),
                 "seed": config.seed, "clip": list(clip), "device": str(torch_device()) if device_state else "cpu",
                 "attacks": attacks, "curves": curves, "input_defence": _defence_of(model),
                 **({"masking_checks": masking} if config.masking_checks else {}), **gradient},
        thresholds={"min_robust_accuracy": config.min_robust_accuracy,
                    "max_accuracy_drop": config.max_accuracy_drop},
        findings=findings, artifacts=artifacts,
    )
