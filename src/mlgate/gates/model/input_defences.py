"""Input transformations declared as a defence of a torch model version (ADR 0031).

A defence is data, never code: a ``InputDefence`` (one of a fixed set of transforms and its parameters)
saved as ``input_defence.json`` inside the model's MLflow directory, so the model digest — and every
gate result and signature bound to it — covers it. Whoever loads the version (the validation gates,
``mlgate serve``) wraps the module in ``Defended``, so the model is judged and served *as defended*.

The transforms themselves are in ``input_transforms`` (torch only, no pydantic, so the GPU benchmark runs
where only torch is installed):

* ``feature_squeezing``: round to ``bit_depth`` bits (Xu et al. 2018) — zero gradient almost everywhere;
* ``spatial_smoothing``: a median filter over the last two axes (``image_shape`` for flat rows);
* ``gaussian_noise``: add N(0, σ²) at every call — randomized.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgate.core.errors import GateInputError
from mlgate.gates.model.input_transforms import defended_module

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


def serve_declared(pyfunc_model: Any, model_dir: Path) -> Any:
    """An MLflow pyfunc model as ``mlgate.load_model`` (and so ``mlgate serve``) hands it out: its torch module
    replaced by the module behind the declared defence; a defence on another flavor is refused."""
    from mlgate.gates.model.model_eval import is_torch_module

    defence = load(model_dir)
    if defence is None:
        return pyfunc_model
    impl = getattr(pyfunc_model, "_model_impl", None)  # mlflow.pytorch's wrapper calls impl.pytorch_model(x)
    if not is_torch_module(getattr(impl, "pytorch_model", None)):
        raise GateInputError(f"{FILE}: the version declares an input defence, which applies to torch modules; "
                             "this model has none")
    impl.pytorch_model = defended_module(impl.pytorch_model, defence)
    return pyfunc_model
