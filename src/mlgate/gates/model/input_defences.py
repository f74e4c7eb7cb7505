"""Input transformations declared as a defence of a torch model version (ADR 0031).

A defence is data, never code: a ``InputDefence`` (one of a fixed set of transforms and its parameters)
saved as ``input_defence.json`` inside the model's MLflow directory, so the model digest — and every
gate result and signature bound to it — covers it. Whoever loads the version (the validation gates,
``mlgate serve``) wraps the module in ``Defended``, so the model is judged and served *as defended*.

The transforms are torch operations on the model's device, so the attacks stay on the GPU:

* ``feature_squeezing``: round to ``bit_depth`` bits (Xu et al. 2018) — zero gradient almost everywhere;
* ``spatial_smoothing``: a median filter over the last two axes (``image_shape`` for flat rows);
* ``gaussian_noise``: add N(0, σ²) at every call — randomized.

``Defended.bpda`` switches the backward pass to the identity (BPDA, Athalye et al. 2018) without changing
the forward pass; a randomized transform is attacked with EOT (the attack averages its gradient over
draws). Both are the *evaluator's* switches: the served model always runs the forward pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgate.core.errors import GateInputError

FILE = "input_defence.json"


class InputDefence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["feature_squeezing", "spatial_smoothing", "gaussian_noise"]
    clip: tuple[float, float] = Field((0.0, 1.0), description="valid input range; outputs are clipped to it")
    bit_depth: int = Field(4, ge=1, le=16, description="feature_squeezing: bits kept per value")
    window: int = Field(3, ge=2, le=9, description="spatial_smoothing: median window side")
    image_shape: tuple[int, int] | None = Field(None, description="spatial_smoothing: (H, W) of flat rows")
    sigma: float = Field(0.1, gt=0, allow_inf_nan=False, description="gaussian_noise: standard deviation")

    @property
    def randomized(self) -> bool:
        return self.name == "gaussian_noise"

    @classmethod
    def parse(cls, value: dict[str, Any]) -> InputDefence:
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(value)'}: {e['msg']}" for e in exc.errors())
            raise GateInputError(f"input defence: {problems}") from None


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


def transform(defence: InputDefence, x: Any) -> Any:
    """The defence's forward pass on a batch tensor."""
    import torch

    low, high = defence.clip
    if defence.name == "feature_squeezing":
        levels = 2 ** defence.bit_depth - 1
        return torch.round((x - low) / (high - low) * levels) / levels * (high - low) + low
    if defence.name == "spatial_smoothing":
        return _median(x, defence.window, defence.image_shape)
    return (x + torch.randn_like(x) * defence.sigma).clamp(low, high)


def defended_module(model: Any, defence: InputDefence) -> Any:
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
    return isinstance(getattr(model, "defence", None), InputDefence)


def save(defence: InputDefence, model_dir: Path) -> None:
    (Path(model_dir) / FILE).write_text(defence.model_dump_json())


def load(model_dir: Path) -> InputDefence | None:
    """The version's declared defence, or ``None``; a malformed declaration is an input error (fail closed)."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GateInputError(f"{path.name}: unreadable input defence: {exc}") from None
    if not isinstance(value, dict):
        raise GateInputError(f"{path.name}: an input defence is a JSON object")
    return InputDefence.parse(value)


def apply_declared(model: Any, model_dir: Path) -> Any:
    """The loaded model as its version declares it served: behind its defence, if it has one."""
    from mlgate.gates.model.model_eval import is_torch_module

    defence = load(model_dir)
    if defence is None:
        return model
    if not is_torch_module(model):
        raise GateInputError(f"{FILE}: input defences apply to torch modules; this model is "
                             f"{type(model).__name__}")
    return defended_module(model, defence)
