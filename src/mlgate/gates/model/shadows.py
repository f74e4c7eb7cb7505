"""Shadow models for LiRA: the audited model's recipe trained again on halves of the population, in budget.

A scikit-learn estimator is ``clone``d (same class, same hyperparameters, unfitted). A torch module is
deep-copied and every layer re-initialised (``reset_parameters``, or PyTorch's default initialisation by shape
for a torch.export graph's class-less layers), then trained by the same loop the gate
trains with (``fit_torch``: Adam, cross-entropy) at the policy's ``lira.torch`` recipe, on the GPU when
there is one. A model that cannot be copied untrained cannot be audited: that is an input error, never a pass.

The budget is wall-clock: after each shadow the time so far plus the mean per shadow times those left is
checked against ``max_seconds``; an overrun is a ``PolicyError`` (the policy's budget cannot buy the audit),
raised as soon as it is foreseen, so the gate fails closed without running to the end.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError, PolicyError
from mlgate.gates.model.lira import logit_confidence
from mlgate.gates.model.model_eval import is_torch_module, predict_proba

log = logging.getLogger(__name__)
GATE = "model.privacy"


def torch_device(choice: str) -> Any:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise GateInputError(f"{GATE}: lira.device is cuda but torch sees no CUDA device")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def untrained_copy(model: Any, seed: int) -> Any:
    """The same architecture or hyperparameters, untrained; refused when that copy cannot be made."""
    if is_torch_module(model):
        import torch

        fresh = copy.deepcopy(model).cpu()
        torch.manual_seed(seed)
        for name, module in fresh.named_modules():
            own = dict(module.named_parameters(recurse=False))
            if not own:
                continue
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            else:
                _default_init(own, f"{type(module).__name__} '{name or 'model'}'")
        return fresh
    from sklearn.base import clone

    try:
        return clone(model)
    except (TypeError, RuntimeError) as exc:
        raise GateInputError(f"{GATE}: cannot clone {type(model).__name__} with its hyperparameters for LiRA's "
                             f"shadow models ({exc})") from None


def _default_init(parameters: dict[str, Any], where: str) -> None:
    """PyTorch's own defaults for a layer that lost its class (a torch.export graph, as MLflow's pt2 format
    loads): a matrix or kernel ``weight`` as Linear/Conv do (Kaiming-uniform, a = √5) and its ``bias``
    uniform in ±1/√fan_in; a vector ``weight``/``bias`` alone as a norm layer's (1, 0). Anything else is refused."""
    import math

    import torch

    matrix = next((p for n, p in parameters.items() if n == "weight" and p.dim() >= 2), None)
    with torch.no_grad():
        for name, parameter in parameters.items():
            if name == "weight" and parameter.dim() >= 2:
                torch.nn.init.kaiming_uniform_(parameter, a=math.sqrt(5))
            elif name == "bias" and parameter.dim() == 1 and matrix is not None:
                bound = 1 / math.sqrt(matrix[0].numel())
                torch.nn.init.uniform_(parameter, -bound, bound)
            elif name in ("weight", "bias") and parameter.dim() == 1:
                torch.nn.init.constant_(parameter, 1.0 if name == "weight" else 0.0)
            else:
                raise GateInputError(f"{GATE}: cannot re-initialise parameter '{name}' of {where} (no "
                                     "reset_parameters() and not a weight or bias); LiRA needs the architecture "
                                     "untrained to train shadow models")


def true_class_confidence(model: Any, x: np.ndarray, labels: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """φ of ``model`` on ``(x, labels)``, ``labels`` being indices into ``classes`` (the audited model's);
    a shadow that never saw a class (a rare one missing from its half) gives it probability 0."""
    probs = predict_proba(model, x)
    own = getattr(model, "classes_", None)
    if classes is not None and own is not None and not np.array_equal(own, classes):
        aligned = np.zeros((len(x), len(classes)))
        aligned[:, np.searchsorted(classes, own)] = probs
        probs = aligned
    return logit_confidence(probs, labels)


def train_shadows(model: Any, x: np.ndarray, y: np.ndarray, labels: np.ndarray, keep: np.ndarray, *,
                  lira: Any) -> np.ndarray:
    """φ of every population row under each shadow model i, trained on the rows ``keep[i]``: ``(shadows, rows)``.

    ``y`` are the labels as the model takes them, ``labels`` the same as indices of its outputs."""
    torch_model = is_torch_module(model)
    device = torch_device(lira.device) if torch_model else None
    classes = getattr(model, "classes_", None)
    started, phi = time.monotonic(), np.empty(keep.shape)
    for i, rows in enumerate(keep):
        shadow = untrained_copy(model, lira.seed + i)
        if torch_model:
            from mlgate.gates.model.fitting import fit_torch

            shadow = fit_torch(shadow, x[rows], labels[rows], epochs=lira.torch.epochs,
                               batch_size=lira.torch.batch_size, learning_rate=lira.torch.learning_rate,
                               seed=lira.seed + i, device=device)
        else:
            shadow.fit(x[rows], y[rows])
        phi[i] = true_class_confidence(shadow, x, labels, classes)
        elapsed = time.monotonic() - started
        projected = elapsed / (i + 1) * len(keep)
        log.info("%s: LiRA shadow model %d/%d trained (%.1fs elapsed, about %.0fs in all, budget %.0fs)",
                 GATE, i + 1, len(keep), elapsed, projected, lira.max_seconds)
        if projected > lira.max_seconds:
            raise PolicyError(f"{GATE}: LiRA's {len(keep)} shadow models would take about {projected:.0f}s "
                              f"({elapsed / (i + 1):.1f}s each), over gates.model.privacy.lira.max_seconds "
                              f"{lira.max_seconds:g}; the model is not promoted without the audit: raise "
                              "max_seconds, or audit on fewer rows")
    return phi
