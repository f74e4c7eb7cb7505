"""Training code runs where it cannot reach a secret (ADR 0020).

The training callable is the code of attacker A2: run in the Airflow worker, it could read the signing key
(file, ``MLGATE_*`` variables, the signing connection) and sign anything. ``train_isolated`` hands its
import path, the data path and the options (as JSON) to ``run_isolated``, whose child calls ``train`` —
seed, call the callable, refuse what cannot be fitted, fit (plain, DP-SGD, adversarial), save an MLflow
model directory — and answers with the flavor, the loop's params and the metrics as data. The parent never
unpickles the model: it takes the directory as untrusted bytes (regular files only, copied without
following links) and logs it; ``model.artifact`` and the validation gates judge it like any model.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.isolation import SandboxPolicy, run_isolated

TARGET = "mlgate.gates.model.isolated_training:train"
MODEL_DIR = "model"
_CODE_VERSION = re.compile(r"git:[0-9a-f]{40,64}|tree:sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Trained:
    """What the child trained: the saved MLflow model directory (untrusted bytes), how, and its scores."""

    model_dir: Path
    flavor: Literal["pytorch", "sklearn"]
    params: dict[str, str]
    metrics: dict[str, float]
    sandbox: Literal["bwrap", "process"]
    note: str = ""


def _model_and_metrics(output: Any) -> tuple[Any, dict[str, float]]:
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
        return output
    return output, {}


def refuse_unusable(output: Any, dp_sgd: Any, adversarial: Any, torch_serialization: str,
                    distillation: Any = None, input_defence: Any = None) -> None:
    """Refuse, before anything is trained or spent, an output the gate could not fit or export."""
    from mlgate.gates.model.fitting import TrainingSet, preflight
    from mlgate.gates.model.model_eval import is_torch_module

    if input_defence is not None and not is_torch_module(getattr(output, "model", _model_and_metrics(output)[0])):
        raise GateInputError("an input defence is declared for torch modules only")
    if isinstance(output, TrainingSet):
        preflight(output, dp_sgd, adversarial, distillation)
        return
    if dp_sgd or adversarial or distillation:
        raise GateInputError("dp_sgd, adversarial_training and defensive_distillation need the training callable "
                             "to return a mlgate.gates.model.fitting.TrainingSet for the gate to fit; it returned "
                             f"{type(output).__name__}")
    if torch_serialization == "pt2" and is_torch_module(_model_and_metrics(output)[0]):
        raise GateInputError("a torch module is exported (pt2) at the input shape of a TrainingSet; return one, "
                             "or set torch_serialization='pickle'")


def _fitted(output: Any, seed: int, dp_sgd: Any, adversarial: Any, distillation: Any = None) -> Any:
    """The model to save: the callable's own fitted model, or the gate's fit of its ``TrainingSet``."""
    from mlgate.gates.model.fitting import Fitted, TrainingSet, fit, flavor_of

    if isinstance(output, TrainingSet):
        return fit(output, seed=seed, dp_sgd=dp_sgd, adversarial=adversarial, distillation=distillation)
    model, metrics = _model_and_metrics(output)
    return Fitted(model, flavor_of(model), {}, dict(metrics))


def _save(fitted: Any, path: Path, output: Any, torch_serialization: str, pip_requirements: list[str] | None,
          libraries: dict[str, str]) -> None:
    import numpy as np

    if fitted.flavor == "pytorch":
        import mlflow.pytorch

        example = None
        if torch_serialization == "pt2":
            # the traced graph needs an example input: zeros of the rows' shape, so no training row is stored
            example = np.zeros((2, *np.shape(output.x)[1:]), dtype=np.float32)
        mlflow.pytorch.save_model(fitted.model, str(path), serialization_format=torch_serialization,
                                  input_example=example,
                                  pip_requirements=pip_requirements or [f"torch=={libraries.get('torch', '')}"])
        return
    import mlflow.sklearn

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.")  # skops walks every loaded module while saving
        mlflow.sklearn.save_model(fitted.model, str(path), pip_requirements=pip_requirements or [
            f"scikit-learn=={libraries.get('scikit-learn', '')}"])


def train(*, training_callable: str, data_path: str, params: dict[str, Any], seed: int,
          dp_sgd: dict[str, Any] | None, adversarial: dict[str, Any] | None, torch_serialization: str,
          pip_requirements: list[str] | None, libraries: dict[str, str], out_dir: str,
          check_only: bool, distillation: dict[str, Any] | None = None,
          input_defence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Child side: call the training code, refuse what cannot be fitted (``check_only`` stops there), fit,
    save the MLflow model under ``out_dir`` with its declared input defence (ADR 0031); answer flavor,
    params and metrics."""
    import random

    import numpy as np

    from mlgate.core.callables import resolve_callable
    from mlgate.gates.model import input_defences
    from mlgate.gates.model.fitting import AdversarialOptions, DistillationOptions, DpSgdOptions

    dp, adv = DpSgdOptions.parse("dp_sgd", dp_sgd), AdversarialOptions.parse("adversarial_training", adversarial)
    distill = DistillationOptions.parse("defensive_distillation", distillation)
    defence = None if input_defence is None else input_defences.InputDefence.parse(input_defence)
    random.seed(seed)
    np.random.seed(seed)
    output = resolve_callable(training_callable, "training_callable")(data_path=data_path, params=params, seed=seed)
    refuse_unusable(output, dp, adv, torch_serialization, distill, defence)
    if check_only:
        return {}
    fitted = _fitted(output, seed, dp, adv, distill)
    _save(fitted, Path(out_dir) / MODEL_DIR, output, torch_serialization, pip_requirements, libraries)
    params = dict(fitted.params)
    if defence is not None:
        input_defences.save(defence, Path(out_dir) / MODEL_DIR)
        params["input_defence"] = defence.model_dump_json()
    return {"flavor": fitted.flavor, "params": {k: str(v) for k, v in params.items()},
            "metrics": {k: float(v) for k, v in fitted.metrics.items()}}


def _answer(value: Any) -> tuple[str, dict[str, str], dict[str, float]]:
    """The child's answer, refused unless it has the expected shape (the child runs untrusted code)."""
    if not isinstance(value, dict) or value.get("flavor") not in ("pytorch", "sklearn"):
        raise ToolError(f"model.training: the isolated child answered a malformed result: {str(value)[:200]}")
    params, metrics = value.get("params"), value.get("metrics")
    if not (isinstance(params, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
            and isinstance(metrics, dict)
            and all(isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for k, v in metrics.items())):
        raise ToolError("model.training: the isolated child answered malformed params or metrics")
    posing = sorted(k for k in metrics if k.lower().startswith("mlgate."))
    if posing:  # the run's mlgate.<gate>.* metrics are the gates' own: training code may not pre-fill them
        raise ToolError(f"model.training: the isolated child answered metrics named like a gate's: {posing[:3]}")
    return value["flavor"], params, {k: float(v) for k, v in metrics.items()}


def copy_model_dir(produced: Path, target: Path) -> None:
    """Copy the child's model directory: directories and regular files only, never following a link (a
    link could point the upload at a file the parent can read and the child could not)."""
    if produced.is_symlink():  # resolved here, in the worker's view of the files, not the child's
        raise ToolError("model.training: the isolated child saved its model directory as a link")
    if not (produced / "MLmodel").is_file() or (produced / "MLmodel").is_symlink():
        raise ToolError("model.training: the isolated child saved no MLmodel file")
    for root, dirs, files in os.walk(produced, followlinks=False):
        here = Path(root)
        (target / here.relative_to(produced)).mkdir(parents=True, exist_ok=True)
        for name in [*dirs, *files]:
            mode = os.lstat(here / name).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ToolError(f"model.training: the isolated child saved {name!r}, which is neither a regular "
                                "file nor a directory")
        for name in files:
            fd = os.open(here / name, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as source, (target / here.relative_to(produced) / name).open("wb") as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)


def train_isolated(training_callable: str, *, data_path: str, params: dict[str, Any], seed: int,
                   dp_sgd: dict[str, Any] | None, adversarial: dict[str, Any] | None, torch_serialization: str,
                   pip_requirements: list[str] | None, libraries: dict[str, str], limits: SandboxPolicy,
                   out_dir: Path | None = None, distillation: dict[str, Any] | None = None,
                   input_defence: dict[str, Any] | None = None) -> Trained | None:
    """Train in an isolated child and copy its model directory to ``out_dir``; with ``out_dir=None`` only
    check (call the code, refuse what cannot be fitted) and return ``None``."""
    with tempfile.TemporaryDirectory(prefix="mlgate-training-") as tmp:
        produced = Path(tmp)
        run = run_isolated(TARGET, {
            "training_callable": training_callable, "data_path": str(data_path), "params": params, "seed": int(seed),
            "dp_sgd": dp_sgd, "adversarial": adversarial, "torch_serialization": torch_serialization,
            "pip_requirements": pip_requirements, "libraries": libraries, "out_dir": str(produced),
            "check_only": out_dir is None, "distillation": distillation, "input_defence": input_defence,
        }, limits, readable=[Path(data_path).resolve()], writable=[produced], label=f"training {training_callable}")
        if out_dir is None:
            return None
        flavor, how, metrics = _answer(run.value)
        copy_model_dir(produced / MODEL_DIR, out_dir)
    return Trained(out_dir, flavor, how, metrics, run.sandbox, run.note)


def code_version_isolated(path: Path, limits: SandboxPolicy) -> str:
    """``code_version`` (``git rev-parse``/``status``) run in an isolated child: git obeys the checkout's own
    ``.git/config`` (``core.fsmonitor``, filter drivers), which can name any command, and whoever supplies
    the training code may supply that directory too."""
    run = run_isolated("mlgate.gates.model.training:code_version", {"path": str(path.resolve())}, limits,
                       readable=[path.resolve()], label=f"reading the code version of {path}")
    if not isinstance(run.value, str) or not _CODE_VERSION.fullmatch(run.value):
        raise ToolError(f"model.training: the code version of {path} came back malformed: {str(run.value)[:80]}")
    return run.value
