"""FGSM and PGD for PyTorch classifiers, kept on the model's device.

ART's ``ProjectedGradientDescentPyTorch`` copies every batch to numpy and back at every step; on a GPU
that round trip dominates. This loop moves the sample to the device once, takes gradients with
``torch.autograd.grad`` with respect to the input only, and does the step, the projection onto the
ε-ball and the clip to the data range in place under ``no_grad``. The update rule is ART's (sign step
for L∞, unit-L2 step for L2, then clip, then project), so robust accuracy matches ART's on the same
samples (cross-checked in the tests). FGSM is PGD with one step of size ε and no random start.

Adaptive options (Carlini et al. 2019): ``loss="margin"`` ascends the C&W logit margin
max_{j≠y} z_j − z_y, whose gradient survives where a saturated softmax makes cross-entropy's vanish
(defensive distillation); ``eot_samples`` averages the gradient over draws of a randomized model (EOT);
``restarts`` repeats the attack from fresh random starts and keeps, per sample, the first that fools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.gates.model.model_eval import evaluating

TOL = 1e-7  # ART's tolerance when normalising an L2 gradient


@dataclass(frozen=True)
class AttackOutcome:
    clean_pred: np.ndarray
    adv_pred: np.ndarray
    perturbation_norm: np.ndarray


def _flat_norm(t: Any, norm: float) -> Any:
    flat = t.flatten(1)
    return flat.abs().amax(dim=1) if norm == np.inf else flat.norm(p=2, dim=1)


def _per_sample(values: Any, like: Any) -> Any:
    return values.view(-1, *([1] * (like.dim() - 1)))


def _project(delta: Any, eps: float, norm: float) -> Any:
    if norm == np.inf:
        return delta.clamp_(-eps, eps)
    factor = (eps / (_flat_norm(delta, 2.0) + TOL)).clamp(max=1.0)
    return delta.mul_(_per_sample(factor, delta))


def _random_start(x: Any, eps: float, norm: float, generator: Any) -> Any:
    import torch

    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
    if norm == np.inf:
        return noise * eps
    direction = noise / (_per_sample(_flat_norm(noise, 2.0), noise) + TOL)
    radius = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=x.dtype) ** (1 / x[0].numel())
    return direction * _per_sample(radius * eps, noise)


def margin_loss(logits: Any, y: Any) -> Any:
    """Sum over the batch of max_{j≠y} z_j − z_y (positive once the sample is misclassified)."""
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (others - true).sum()


def _loss(model: Any, x_adv: Any, y: Any, loss: str, eot_samples: int) -> Any:
    import torch.nn.functional as functional

    total = 0
    for _ in range(eot_samples):
        logits = model(x_adv)
        total = total + (margin_loss(logits, y) if loss == "margin"
                         else functional.cross_entropy(logits, y, reduction="sum"))
    return total / eot_samples


def perturb(model: Any, x: Any, y: Any, *, eps: float, eps_step: float, steps: int, norm: float,
            clip: tuple[float, float], random_start: bool = False, generator: Any = None, loss: str = "ce",
            eot_samples: int = 1) -> Any:
    """Untargeted L∞/L2 PGD on one batch (tensors on the model's device); returns the adversarial batch."""
    import torch

    x_adv = x.clone()
    if random_start:
        x_adv = (x + _random_start(x, eps, norm, generator)).clamp_(*clip)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(_loss(model, x_adv, y, loss, eot_samples), x_adv)
        with torch.no_grad():
            if norm == np.inf:
                step = grad.sign()
            else:
                step = grad / (_per_sample(_flat_norm(grad, 2.0), grad) + TOL)
            x_adv = x_adv.detach().add_(step, alpha=eps_step).clamp_(*clip)
            x_adv = x.add(_project(x_adv.sub_(x), eps, norm))
    return x_adv.detach()


def attack(model: Any, x: np.ndarray, y: np.ndarray, *, eps: float, eps_step: float, steps: int, norm: float,
           clip: tuple[float, float], batch_size: int = 256, random_start: bool = False, seed: int = 0,
           device: Any = None, loss: str = "ce", eot_samples: int = 1, restarts: int = 1) -> AttackOutcome:
    """Attack ``x`` in batches on ``device`` (default: the model's); only predictions and norms come back.

    With ``restarts`` > 1 every run after the first starts at random; a sample counts as fooled when any
    run fooled it, and its reported prediction and norm are those of the first run that did.
    """
    import torch

    device = device or next(model.parameters()).device
    torch.manual_seed(seed)  # a randomized (defended) model draws from the global generator
    generator = torch.Generator(device=device).manual_seed(seed) if random_start or restarts > 1 else None
    x_all = torch.as_tensor(x, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(y, dtype=torch.long, device=device)
    clean, adv, norms = [], [], []
    with evaluating(model):
        for start in range(0, len(x_all), batch_size):
            xb, yb = x_all[start:start + batch_size], y_all[start:start + batch_size]
            with torch.no_grad():
                clean.append(model(xb).argmax(dim=1))
            best_pred, best_norm = None, None
            for run in range(restarts):
                x_adv = perturb(model, xb, yb, eps=eps, eps_step=eps_step, steps=steps, norm=norm, clip=clip,
                                random_start=random_start or run > 0, generator=generator, loss=loss,
                                eot_samples=eot_samples)
                with torch.no_grad():
                    pred, dist = model(x_adv).argmax(dim=1), _flat_norm(x_adv - xb, norm)
                if best_pred is None:
                    best_pred, best_norm = pred, dist
                else:
                    newly = (best_pred == yb) & (pred != yb)
                    best_pred, best_norm = torch.where(newly, pred, best_pred), torch.where(newly, dist, best_norm)
            adv.append(best_pred)
            norms.append(best_norm)
    return AttackOutcome(*(torch.cat(parts).cpu().numpy() for parts in (clean, adv, norms)))


def examples(model: Any, x: np.ndarray, y: np.ndarray, *, eps: float, eps_step: float, steps: int, norm: float,
             clip: tuple[float, float], batch_size: int = 256, loss: str = "ce", seed: int = 0) -> np.ndarray:
    """The adversarial examples themselves (for a transfer attack on another model), as numpy."""
    import torch

    device = next(model.parameters()).device
    torch.manual_seed(seed)
    x_all = torch.as_tensor(x, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(y, dtype=torch.long, device=device)
    with evaluating(model):
        parts = [perturb(model, x_all[i:i + batch_size], y_all[i:i + batch_size], eps=eps, eps_step=eps_step,
                         steps=steps, norm=norm, clip=clip, loss=loss).cpu()
                 for i in range(0, len(x_all), batch_size)]
    return torch.cat(parts).numpy()
