"""DP-SGD with Opacus: wrap a model, optimizer and data loader so training is (ε, δ)-DP per example.

Opacus clips each example's gradient to ``max_grad_norm`` and adds Gaussian noise whose multiplier is
calibrated so that ``epochs`` epochs of Poisson-sampled batches spend ``target_epsilon`` at
``target_delta`` (RDP accountant). The ε spent so far is read back from the accountant, and is what
the privacy ledger should be charged. ``secure_mode`` (a CSPRNG for the noise, needed against
floating-point attacks in production) needs the ``torchcsprng`` package; without it noise comes from
torch's ordinary generator.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from mlgate.core.errors import GateInputError


@dataclass(frozen=True)
class PrivateTraining:
    """The private triple to train with, and the accountant behind it."""

    model: Any  # opacus GradSampleModule
    optimizer: Any  # opacus DPOptimizer
    data_loader: Any  # Poisson-sampling DataLoader
    engine: Any  # opacus PrivacyEngine
    target_delta: float

    @property
    def noise_multiplier(self) -> float:
        return float(self.optimizer.noise_multiplier)

    def epsilon(self) -> float:
        """ε spent by the steps taken so far, at ``target_delta``."""
        if not self.engine.accountant.history:
            return 0.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            return float(self.engine.get_epsilon(self.target_delta))


def make_private(model, optimizer, data_loader, target_epsilon: float, target_delta: float, epochs: int,
                 max_grad_norm: float, secure_mode: bool = False) -> PrivateTraining:
    """Calibrate the noise for ``epochs`` epochs to spend at most ``target_epsilon`` and wrap the triple."""
    from opacus import PrivacyEngine

    if not (math.isfinite(target_epsilon) and target_epsilon > 0 and 0 < target_delta < 1 and epochs >= 1
            and math.isfinite(max_grad_norm) and max_grad_norm > 0):
        raise GateInputError(f"DP-SGD: invalid target ε={target_epsilon!r} δ={target_delta!r} epochs={epochs!r} "
                             f"max_grad_norm={max_grad_norm!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp", secure_mode=secure_mode)
    model, optimizer, data_loader = engine.make_private_with_epsilon(
        module=model, optimizer=optimizer, data_loader=data_loader, target_epsilon=target_epsilon,
        target_delta=target_delta, epochs=epochs, max_grad_norm=max_grad_norm)
    return PrivateTraining(model, optimizer, data_loader, engine, target_delta)
