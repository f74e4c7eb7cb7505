"""The input transformations of ``input_defences``, as torch operations on the model's device (so the
attacks stay on the GPU), and the module that puts one in front of a model. Torch only: no pydantic, so
the GPU benchmark runs where only torch is installed. ``defence`` is any object with the fields of
``input_defences.InputDefence``.

``Defended.bpda`` switches the backward pass to the identity (BPDA, Athalye et al. 2018) without changing
the forward pass; a randomized transform is attacked with EOT (the attack averages its gradient over
draws). Both are the *evaluator's* switches: the served model always runs the plain forward pass.
"""

from __future__ import annotations

from typing import Any

from mlgate.core.errors import GateInputError


def _median(x: Any, window: int, image_shape: tuple[int, int] | None) -> Any:
    import torch.nn.functional as functional

    shape = x.shape
    if image_shape is not None:
        x = x.reshape(shape[0], -1, *image_shape)
    if x.dim() < 3:
        raise GateInputError(f"spatial_smoothing needs images or image_shape; got rows of shape {tuple(shape[1:])}")
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    planes = x.reshape(-1, 1, h, w)
    before, after = (window - 1) // 2, window // 2
    padded = functional.pad(planes, (before, after, before, after), mode="reflect")
    patches = functional.unfold(padded, window)  # (planes, window², h·w)
    return patches.median(dim=1).values.reshape(*lead, h, w).reshape(shape)


def transform(defence: Any, x: Any) -> Any:
    """The defence's forward pass on a batch tensor."""
    import torch

    low, high = defence.clip
    if defence.name == "feature_squeezing":
        levels = 2 ** defence.bit_depth - 1
        return torch.round((x - low) / (high - low) * levels) / levels * (high - low) + low
    if defence.name == "spatial_smoothing":
        return _median(x, defence.window, defence.image_shape)
    return (x + torch.randn_like(x) * defence.sigma).clamp(low, high)


def defended_module(model: Any, defence: Any) -> Any:
    """``model`` behind ``defence``: an ``nn.Module`` whose forward transforms, then classifies."""
    import torch

    class Defended(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.defence, self.bpda = model, defence, False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shown = transform(self.defence, x)
            if self.bpda:  # forward as served, backward as if the transform were the identity
                shown = x + (shown - x).detach()
            return self.model(shown)

    return Defended()


def is_defended(model: Any) -> bool:
    """A module made by ``defended_module`` (duck-typed: no import of torch or pydantic)."""
    return hasattr(model, "defence") and hasattr(model, "bpda")
