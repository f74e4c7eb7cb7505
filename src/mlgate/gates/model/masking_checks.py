"""Is the robustness number real? The gradient-masking checks of Carlini et al. 2019.

A defence that hides the gradient (defensive distillation's saturated softmax, a non-differentiable input
transformation, randomness) makes a gradient attack *fail* rather than the model robust. The evaluated
attack is then checked against what must hold for a working attack (§ 5 of "On Evaluating Adversarial
Robustness"); each check that fails is a HIGH finding named for it, whatever the robust accuracy:

* ``large_eps``: at a large ε the attack must bring accuracy to about 0;
* ``attack_not_converged`` / ``stronger_attack_weaker``: more steps, random restarts and the logit-margin
  loss (with BPDA and EOT against a declared input defence) must neither beat the evaluated attack by more
  than the tolerance (it had not converged) nor do worse than it (more iterations must not weaken an attack);
* ``black_box_beats_white_box``: a transfer attack from an undefended surrogate trained on the training rows,
  or a policy HopSkipJump attack, must not beat the white-box attack;
* ``single_step_beats_iterative``: FGSM must not beat PGD at the same ε.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlgate.core.results import Finding, Severity
from mlgate.gates.model.policies import AttackSpec, MaskingChecks

GATE = "model.robustness"


def stronger(spec: AttackSpec, checks: MaskingChecks, *, torch_model: bool, defended: bool,
             randomized: bool) -> tuple[AttackSpec, ...]:
    """The adaptive versions of a PGD attack: more steps, restarts, EOT against a randomized defence; for
    torch both cross-entropy and the margin loss, and against a declared defence both its own gradient and
    BPDA (a differentiable transform, such as a median filter, is attacked better through its own gradient).
    A sample is robust to the stronger attack only when it is robust to every version."""
    strong = spec.model_copy(update={
        "steps": spec.steps * checks.steps_factor, "restarts": max(spec.restarts, checks.restarts),
        "eps_step": 2 * spec.step_size(spec.eps) / checks.steps_factor,
        **({"eot_samples": max(spec.eot_samples, 8)} if randomized else {}),
    })
    losses = ("ce", "margin") if torch_model else (spec.loss,)
    gradients = (False, True) if defended else (spec.bpda,)
    return tuple(strong.model_copy(update={"loss": loss, "bpda": bpda}) for loss in losses for bpda in gradients)


def surrogate_examples(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, y: np.ndarray, spec: AttackSpec,
                       clip: tuple[float, float], n_classes: int, epochs: int, seed: int) -> np.ndarray:
    """PGD examples crafted on an undefended MLP trained on the training rows (the attacker's copy)."""
    import torch

    from mlgate.gates.model.fitting import fit_torch
    from mlgate.gates.model.model_eval import torch_device
    from mlgate.gates.model.torch_attacks import examples

    torch.manual_seed(seed)
    width = int(np.prod(x_train.shape[1:]))
    surrogate = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(width, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, n_classes))
    fit_torch(surrogate, x_train, y_train, epochs=epochs, batch_size=64, learning_rate=1e-3, seed=seed)
    surrogate.to(torch_device())
    return examples(surrogate, x, y, eps=spec.eps, eps_step=spec.step_size(spec.eps), steps=spec.steps * 2,
                    norm=spec.order, clip=clip, loss="margin", seed=seed)


def _finding(check: str, message: str, key: str) -> Finding:
    return Finding(f"{GATE}.masking.{check}", Severity.HIGH, message, key)


def run_checks(policy_attacks: dict[str, tuple[AttackSpec, float]], checks: MaskingChecks,
               attack: Callable[[AttackSpec, float], np.ndarray], transfer: Callable[[AttackSpec], float] | None,
               *, torch_model: bool, defended: bool, randomized: bool) -> tuple[dict[str, Any], list[Finding]]:
    """Run the checks. ``policy_attacks`` maps each evaluated attack's key to (spec, robust accuracy);
    ``attack(spec, eps)`` returns which of the same samples are robust to an attack at ε; ``transfer(spec)``
    the robust accuracy under the surrogate's examples."""
    evidence: dict[str, Any] = {}
    findings: list[Finding] = []
    tol = checks.tolerance
    for key, (spec, robust) in policy_attacks.items():
        if spec.name != "pgd":
            continue
        entry: dict[str, Any] = {}
        at_large = float(attack(spec, checks.large_eps).mean())
        entry["large_eps"] = {"eps": checks.large_eps, "robust_accuracy": round(at_large, 4)}
        if at_large > checks.max_large_eps_accuracy:
            findings.append(_finding("large_eps", f"at ε={checks.large_eps:g} accuracy is still {at_large:.3f} > "
                                     f"{checks.max_large_eps_accuracy}: the attack does not work on this model", key))
        variants = stronger(spec, checks, torch_model=torch_model, defended=defended, randomized=randomized)
        at_strong = float(np.logical_and.reduce([attack(variant, spec.eps) for variant in variants]).mean())
        strong, name = variants[-1], " + ".join(v.key for v in variants)
        entry["stronger"] = {"attacks": [v.key for v in variants], "steps": strong.steps,
                             "restarts": strong.restarts, "robust_accuracy": round(at_strong, 4)}
        if at_strong < robust - tol:
            findings.append(_finding("attack_not_converged", f"{name} finds robust accuracy {at_strong:.3f}, "
                                     f"{robust - at_strong:.3f} below the evaluated {robust:.3f}", key))
        elif at_strong > robust + tol:
            findings.append(_finding("stronger_attack_weaker", f"{name} is weaker ({at_strong:.3f}) than "
                                     f"the evaluated attack ({robust:.3f})", key))
        if transfer is not None:
            at_transfer = transfer(spec)
            entry["transfer"] = {"robust_accuracy": round(at_transfer, 4)}
            if at_transfer < robust - tol:
                findings.append(_finding("black_box_beats_white_box", f"transfer from an undefended surrogate: "
                                         f"{at_transfer:.3f} < white-box {robust:.3f}", key))
        evidence[key] = entry
    for key, (spec, robust) in policy_attacks.items():
        same = [(other, r) for other, r in policy_attacks.values()
                if other.norm == spec.norm and other.eps == spec.eps and other.name == "pgd"]
        if spec.name == "pgd" or not same:
            continue
        best_pgd = min(r for _, r in same)
        check = "black_box_beats_white_box" if spec.name == "hopskipjump" else "single_step_beats_iterative"
        if robust < best_pgd - tol:
            findings.append(_finding(check, f"{key} finds robust accuracy {robust:.3f} < PGD's {best_pgd:.3f}", key))
    return evidence, findings


MAX_ZERO_GRADIENT_SHARE = 0.5


def zero_gradient(model: Any, x: np.ndarray, y: np.ndarray, key: str) -> tuple[dict[str, Any], list[Finding]]:
    """Always run, masking checks configured or not: the share of samples whose logit-margin gradient with
    respect to the input is exactly zero (or not finite). A network that quantises, rounds, takes a sign or an
    argmax inside its own ``forward`` (an undeclared defence) leaves FGSM and PGD nothing to follow, so their
    robust accuracy is its clean accuracy; the margin of logits, unlike a saturated softmax, has a gradient
    wherever the network is differentiable. A declared defence is crossed by BPDA, as the attacks cross it."""
    import torch

    from mlgate.gates.model.input_transforms import is_defended
    from mlgate.gates.model.model_eval import evaluating
    from mlgate.gates.model.torch_attacks import margin_loss

    device = next(model.parameters()).device
    xs = torch.as_tensor(x, device=device).clone().requires_grad_(True)
    defended = is_defended(model)
    if defended:
        model.bpda = True
    try:
        with evaluating(model), torch.enable_grad():
            (gradient,) = torch.autograd.grad(margin_loss(model(xs), torch.as_tensor(y, device=device)), xs,
                                              allow_unused=True)
    finally:
        if defended:
            model.bpda = False
    if gradient is None:
        share = 1.0
    else:
        flat = gradient.detach().flatten(1)
        share = float(((flat == 0).all(1) | ~torch.isfinite(flat).all(1)).float().mean())
    findings = []
    if share > MAX_ZERO_GRADIENT_SHARE:
        findings.append(_finding("zero_gradient", f"the input gradient vanishes on {share:.2f} of the samples "
                                 f"(> {MAX_ZERO_GRADIENT_SHARE}): gradient attacks cannot work on this model, so "
                                 "their robust accuracy says nothing (a defence inside forward must be declared)",
                                 key))
    return {"zero_gradient_share": round(share, 4)}, findings
