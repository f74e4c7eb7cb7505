"""The training loops the gate runs itself: plain, DP-SGD (Opacus), adversarial training and defensive
distillation.

A training callable that returns a fitted model keeps its own loop, and the gate can only record what
it was told. Differential privacy and adversarial robustness are properties of the loop, so for them the
callable returns a ``TrainingSet`` (the unfitted model and its rows) and the gate runs the loop: the ε in
the evidence is then the ε the model was trained under, not a claim (ADR 0010).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgate.core.errors import GateInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSet:
    """An unfitted model (a torch ``nn.Module`` or a scikit-learn estimator) and the rows to fit it on.

    ``epochs``, ``batch_size`` and ``learning_rate`` drive the torch loops (Adam); ``evaluate(model)``
    returns metrics of the fitted model on rows it did not train on.
    """

    model: Any
    x: Any
    y: Any
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    evaluate: Callable[[Any], dict[str, float]] | None = None


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, option: str, value: dict[str, Any] | None) -> Any:
        """``None`` stays ``None``; anything else must validate, or it is an input error naming the option."""
        if value is None:
            return None
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(value)'}: {e['msg']} (got {e['input']!r})"
                                 for e in exc.errors())
            raise GateInputError(f"model.training option {option}: {problems}") from None


class DpSgdOptions(_Options):
    """DP-SGD: per-example clipping to ``max_grad_norm`` and Gaussian noise calibrated to spend
    ``target_epsilon`` at ``target_delta`` over the training set's epochs."""

    target_epsilon: float = Field(gt=0, allow_inf_nan=False)
    target_delta: float = Field(gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0, allow_inf_nan=False)
    secure_mode: bool = False


class AdversarialOptions(_Options):
    """L∞ adversarial training: Madry PGD for torch modules, FGSM/PGD augmentation for scikit-learn."""

    eps: float = Field(gt=0, allow_inf_nan=False)
    steps: int = Field(7, ge=1)
    attack: Literal["pgd", "fgsm"] = "pgd"  # scikit-learn only; torch modules always train on PGD
    rounds: int = Field(2, ge=1)  # scikit-learn only: attack-and-refit rounds
    clip: tuple[float, float] | None = None  # valid input range; default: the training rows' range


class DistillationOptions(_Options):
    """Defensive distillation (Papernot et al. 2016): a teacher trained at softmax temperature T labels the
    rows with its soft probabilities; the student, same architecture, trains on them at T and is served at
    T=1. Known to mask gradients rather than add robustness (Carlini & Wagner 2017): ``model.robustness``'s
    masking checks are what judge it."""

    temperature: float = Field(gt=1, allow_inf_nan=False)
    teacher_epochs: int | None = Field(None, ge=1, description="default: the training set's epochs")


@dataclass(frozen=True)
class Fitted:
    model: Any
    flavor: Literal["pytorch", "sklearn"]
    params: dict[str, Any] = field(default_factory=dict)  # how it was trained, for the run's params
    metrics: dict[str, float] = field(default_factory=dict)


def flavor_of(model: Any) -> Literal["pytorch", "sklearn"]:
    from mlgate.gates.model.model_eval import is_torch_module

    if is_torch_module(model):
        return "pytorch"
    if hasattr(model, "fit") and hasattr(model, "predict"):
        return "sklearn"
    raise GateInputError(f"cannot train {type(model).__name__}: neither a torch nn.Module nor a scikit-learn "
                         "estimator")


def fit_torch(model: Any, x: Any, y: Any, *, epochs: int, batch_size: int, learning_rate: float,
              seed: int, temperature: float = 1.0, device: Any = None) -> Any:
    """Plain minibatch training with Adam and cross-entropy on ``logits / temperature``; ``y`` is class
    indices or, 2-D, class probabilities (soft labels). Returns the module in eval mode, on ``device`` when one
    is given (the rows move there once; the batch order is drawn on the CPU, the same anywhere)."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    if device is not None:
        model.to(device)
    soft = np.ndim(y) == 2
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.float32 if soft else torch.long, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    with contextlib.suppress(NotImplementedError):  # a torch.export module keeps the mode it was exported in
        model.train()
    for epoch in range(epochs):
        for batch in torch.randperm(len(xt), generator=generator).to(xt.device).split(batch_size):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[batch]) / temperature, yt[batch])
            loss.backward()
            optimizer.step()
        log.info("training epoch %d/%d done, last batch loss %.4f", epoch + 1, epochs, loss.item())
    with contextlib.suppress(NotImplementedError):
        model.eval()
    return model


def _dp_sgd(training: TrainingSet, options: DpSgdOptions, seed: int) -> Fitted:
    import torch

    from mlgate.gates.model.dp_sgd import make_private

    torch.manual_seed(seed)
    rows = torch.utils.data.TensorDataset(torch.as_tensor(training.x, dtype=torch.float32),
                                          torch.as_tensor(training.y, dtype=torch.long))
    loader = torch.utils.data.DataLoader(rows, batch_size=training.batch_size,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(training.model.parameters(), lr=training.learning_rate)
    with warnings.catch_warnings():
        # Opacus' per-sample hooks on the first layer (whose input needs no gradient) and its RDP order
        # search warn on every run; neither changes the accounting
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", message="Optimal order is the")
        private = make_private(training.model, optimizer, loader, options.target_epsilon, options.target_delta,
                               training.epochs, options.max_grad_norm, options.secure_mode)
        private.model.train()
        for epoch in range(training.epochs):
            for batch, target in private.data_loader:
                private.optimizer.zero_grad()
                torch.nn.functional.cross_entropy(private.model(batch), target).backward()
                private.optimizer.step()
            log.info("DP-SGD epoch %d/%d done, ε spent so far %.4f", epoch + 1, training.epochs, private.epsilon())
    params = {"method": "dp_sgd", **options.model_dump(), "noise_multiplier": private.noise_multiplier,
              "accountant": "rdp"}
    return Fitted(private.model.to_standard_module().eval(), "pytorch", params,
                  {"dp_epsilon": private.epsilon(), "dp_delta": options.target_delta})


def _adversarial(training: TrainingSet, options: AdversarialOptions, flavor: str, seed: int) -> Fitted:
    import numpy as np

    from mlgate.gates.model.adversarial_training import augment_sklearn, madry_pgd_torch

    x, y = np.asarray(training.x, dtype=np.float32), np.asarray(training.y)
    clip = options.clip or (float(x.min()), float(x.max()))
    if flavor == "pytorch":
        trained = madry_pgd_torch(training.model, x, y, eps=options.eps, steps=options.steps,
                                  epochs=training.epochs, batch_size=training.batch_size,
                                  lr=training.learning_rate, clip=clip, seed=seed)
        return Fitted(trained.model.cpu(), flavor, trained.params)
    trained = augment_sklearn(training.model, x, y, eps=options.eps, attack=options.attack, steps=options.steps,
                              rounds=options.rounds, clip=clip, seed=seed)
    return Fitted(trained.model, flavor, trained.params)


def _distill(training: TrainingSet, options: DistillationOptions, seed: int) -> Fitted:
    import copy

    import torch

    temperature, teacher_epochs = options.temperature, options.teacher_epochs or training.epochs
    teacher = copy.deepcopy(training.model)  # same architecture, still unfitted
    fit_torch(teacher, training.x, training.y, epochs=teacher_epochs, batch_size=training.batch_size,
              learning_rate=training.learning_rate, seed=seed, temperature=temperature)
    with torch.no_grad():
        soft = torch.softmax(teacher(torch.as_tensor(training.x, dtype=torch.float32)) / temperature, dim=1).numpy()
    student = fit_torch(training.model, training.x, soft, epochs=training.epochs, batch_size=training.batch_size,
                        learning_rate=training.learning_rate, seed=seed + 1, temperature=temperature)
    params = {"method": "defensive_distillation", "temperature": temperature, "teacher_epochs": teacher_epochs,
              "epochs": training.epochs, "batch_size": training.batch_size, "lr": training.learning_rate,
              "served_temperature": 1.0}
    return Fitted(student, "pytorch", params)


def preflight(training: TrainingSet, dp_sgd: DpSgdOptions | None = None,
              adversarial: AdversarialOptions | None = None, distillation: DistillationOptions | None = None) -> None:
    """Refuse what ``fit`` could not do, before any privacy budget is charged for it."""
    from importlib.util import find_spec

    flavor = flavor_of(training.model)
    if sum(option is not None for option in (dp_sgd, adversarial, distillation)) > 1:
        raise GateInputError("model.training: dp_sgd, adversarial_training and defensive_distillation cannot be "
                             "combined (each is its own loop; Opacus accounts only for its own)")
    if distillation and flavor != "pytorch":
        raise GateInputError(f"defensive distillation trains torch modules; {type(training.model).__name__} is "
                             "not one")
    if not dp_sgd:
        return
    if flavor != "pytorch":
        raise GateInputError(f"DP-SGD trains torch modules; {type(training.model).__name__} is not one")
    for package, needed_for in (("opacus", "DP-SGD"), ("torchcsprng", "DP-SGD's secure_mode")):
        if (package == "opacus" or dp_sgd.secure_mode) and find_spec(package) is None:
            raise GateInputError(f"{needed_for} needs the {package} package, which is not installed")
    from opacus.validators import ModuleValidator

    problems = ModuleValidator.validate(training.model, strict=False)
    if problems:
        raise GateInputError(f"DP-SGD cannot train {type(training.model).__name__}: "
                             + "; ".join(str(p) for p in problems[:3]))


def fit(training: TrainingSet, *, seed: int, dp_sgd: DpSgdOptions | None = None,
        adversarial: AdversarialOptions | None = None, distillation: DistillationOptions | None = None) -> Fitted:
    """Fit ``training.model`` the way the options ask; metrics include ``training.evaluate``'s."""
    preflight(training, dp_sgd, adversarial, distillation)
    flavor = flavor_of(training.model)
    if dp_sgd:
        fitted = _dp_sgd(training, dp_sgd, seed)
    elif distillation:
        fitted = _distill(training, distillation, seed)
    elif adversarial:
        fitted = _adversarial(training, adversarial, flavor, seed)
    elif flavor == "pytorch":
        fitted = Fitted(fit_torch(training.model, training.x, training.y, epochs=training.epochs,
                                  batch_size=training.batch_size, learning_rate=training.learning_rate, seed=seed),
                        flavor, {"method": "plain"})
    else:
        fitted = Fitted(training.model.fit(training.x, training.y), flavor, {"method": "plain"})
    if training.evaluate is not None:
        fitted.metrics.update(training.evaluate(fitted.model))
    return fitted
