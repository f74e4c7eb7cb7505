"""Randomized smoothing (Cohen, Rosenfeld & Kolter, 2019): a certified L2 radius per sample, on the model's device.

The smoothed classifier ``g(x) = argmax_c P(f(x + N(0, σ²I)) = c)`` is robust at ``x`` within the L2 radius
``σ·Φ⁻¹(p_A)`` whenever the top class has probability at least ``p_A > 1/2``. ``certify`` is the paper's
CERTIFY: ``n0`` noisy draws select the class, ``n`` fresh draws estimate its probability, the one-sided
Clopper–Pearson bound at level ``1 - α`` gives ``p_A``, and the sample abstains (``-1``) when ``p_A ≤ 1/2``.
Each certificate is wrong with probability at most ``α``.

ART's ``RandomizedSmoothingMixin.certify`` computes the same thing one sample and one numpy round trip at a
time; here the noise is drawn on the device from a seeded ``torch.Generator`` and several samples share a
forward pass, so on a GPU nothing but the final counts crosses to the host. Imports torch, numpy and scipy
only (no pydantic, ART or mlgate policy), so the GPU benchmark runs it on a bare machine.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.gates.model.model_eval import evaluating

ABSTAIN = -1


def clopper_pearson_lower(successes: int, n: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` lower confidence bound of a binomial proportion (exact, Clopper–Pearson)."""
    from scipy.stats import beta

    if not 0 <= successes <= n or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    return 0.0 if successes == 0 else float(beta.ppf(alpha, successes, n - successes + 1))


def clopper_pearson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` exact interval of a binomial proportion."""
    from scipy.stats import beta

    if not 0 <= successes <= n or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


@dataclass(frozen=True)
class Certificates:
    """Per sample: the smoothed prediction (``ABSTAIN`` = -1), its certified L2 radius and ``p_A``."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray

    def certified_accuracy(self, y: np.ndarray, radius: float) -> tuple[int, int]:
        """(samples classified correctly with a certified radius ≥ ``radius``, samples)."""
        return int(((self.prediction == y) & (self.radius >= radius)).sum()), len(y)


class Deadline:
    """Raises ``TimeoutError`` once ``seconds`` have passed since it was made (checked between batches)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.until = None if seconds is None else time.monotonic() + seconds

    def check(self, what: str) -> None:
        if self.until is not None and time.monotonic() > self.until:
            raise TimeoutError(f"{what} timed out after {self.seconds:g} s")


def _classifier(model: Any) -> Callable[[Any], Any]:
    """Labels of a batch of noisy inputs (a tensor on the model's device); non-finite outputs are an error."""
    import torch

    def classify(batch: Any) -> Any:
        logits = model(batch)
        if not torch.isfinite(logits).all():
            raise ArithmeticError("the model returned NaN or infinite outputs on noisy inputs")
        return logits.argmax(dim=1)

    return classify


def class_counts(classify: Callable[[Any], Any], x: Any, draws: int, sigma: float, n_classes: int, *,
                 batch_size: int, generator: Any, deadline: Deadline) -> Any:
    """``(len(x), n_classes)`` counts of ``classify`` on ``draws`` Gaussian draws around each sample.

    Samples are grouped so that one forward pass holds about ``batch_size`` noisy inputs.
    """
    import torch

    counts = torch.zeros((len(x), n_classes), dtype=torch.long, device=x.device)
    per_pass = min(draws, batch_size)
    group = max(1, batch_size // per_pass)
    for start in range(0, len(x), group):
        xs = x[start:start + group]
        done = 0
        while done < draws:
            m = min(per_pass, draws - done)
            noise = torch.randn((len(xs), m, *xs.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
            labels = classify((xs.unsqueeze(1) + sigma * noise).flatten(0, 1)).view(len(xs), m)
            counts[start:start + len(xs)].scatter_add_(1, labels, torch.ones_like(labels))
            done += m
            deadline.check("randomized smoothing")
    return counts


def certify(model: Any, x: np.ndarray, *, sigma: float, n0: int, n: int, alpha: float, n_classes: int,
            seed: int = 0, batch_size: int = 1000, device: Any = None, max_seconds: float | None = None,
            classify: Callable[[Any], Any] | None = None) -> Certificates:
    """CERTIFY of Cohen et al. on every row of ``x`` (a torch module's inputs, or ``classify`` for any model).

    ``classify`` maps a float32 tensor batch to a tensor of labels; by default the argmax of ``model``'s logits.
    The noise comes from one ``torch.Generator`` seeded with ``seed`` on ``device``: the same seed on the same
    device gives the same certificates.
    """
    import torch
    from scipy.stats import norm

    device = torch.device(device if device is not None else next(model.parameters()).device)
    generator = torch.Generator(device=device).manual_seed(seed)
    deadline = Deadline(max_seconds)
    x_all = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    options = {"batch_size": batch_size, "generator": generator, "deadline": deadline}
    with evaluating(model) if classify is None else contextlib.nullcontext(), torch.no_grad():
        classify = classify or _classifier(model)
        selection = class_counts(classify, x_all, n0, sigma, n_classes, **options).argmax(dim=1)
        estimation = class_counts(classify, x_all, n, sigma, n_classes, **options)
        top = estimation.gather(1, selection[:, None]).squeeze(1).cpu().numpy()
    selection = selection.cpu().numpy()
    p_lower = np.array([clopper_pearson_lower(int(k), n, alpha) for k in top])
    certified = p_lower > 0.5
    radius = np.where(certified, sigma * norm.ppf(np.where(certified, p_lower, 0.5)), 0.0)
    return Certificates(np.where(certified, selection, ABSTAIN), radius, p_lower)
