"""Pieces every model validation gate shares: predictions, sampling, intervals, the result record.

The gates accept scikit-learn estimators (anything with ``predict_proba``) and PyTorch ``nn.Module``
classifiers that return logits. The model's digest is passed in by the caller, who binds it to the
registry artifact; these gates never hash the in-memory object (its pickle is not a stable identity).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Status, Subject, ToolInfo, utcnow

Z_95 = 1.959963984540054


def is_torch_module(model: object) -> bool:
    """True for an ``nn.Module``, without importing torch for scikit-learn models."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def torch_device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """Eval mode (no dropout, frozen batch-norm statistics) for the block, then the mode the caller left."""
    was_training = model.training
    try:
        model.eval()
    except NotImplementedError:  # a torch.export module: frozen in the mode it was exported in
        yield
    else:
        try:
            yield
        finally:
            model.train(was_training)


def predict_proba(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities, ``(n, n_classes)``; a torch module's logits go through a softmax."""
    if is_torch_module(model):
        import torch

        device = next(model.parameters()).device
        with evaluating(model), torch.no_grad():
            parts = [torch.softmax(model(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32,
                                                         device=device)), dim=1).cpu().numpy()
                     for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.empty((0, 0))
    if not hasattr(model, "predict_proba"):
        raise GateInputError(f"{type(model).__name__} has no predict_proba and is not a torch nn.Module")
    return np.asarray(model.predict_proba(x))


def label_indices(model: Any, y: np.ndarray) -> np.ndarray:
    """``y`` as column indices of ``predict_proba``; labels the model never saw are an input error."""
    y = np.asarray(y)
    classes = getattr(model, "classes_", None)
    if classes is None:
        if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise GateInputError("labels for a torch model must be non-negative class indices")
        return y.astype(np.int64)
    index = np.searchsorted(classes, y)
    index = np.clip(index, 0, len(classes) - 1)
    if not np.array_equal(classes[index], y):
        raise GateInputError("labels contain classes the model was not trained on")
    return index.astype(np.int64)


def check_xy(x: Any, y: Any, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise GateInputError(f"{name} and its labels must be non-empty and of equal length; "
                             f"got {len(x)} and {len(y)}")
    if not np.isfinite(x).all():
        raise GateInputError(f"{name} contains NaN or infinite values")
    return x, y


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    """The first ``size`` of one seeded permutation: the samples of a smaller budget are a subset of a larger."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:min(size, n)])


def indices_digest(indices: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: honest at small n and near 0 or 1."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def tool_info(distribution: str) -> ToolInfo:
    try:
        return ToolInfo(distribution, metadata.version(distribution))
    except metadata.PackageNotFoundError:
        return ToolInfo(distribution, "unknown")


def new_figure(width: float = 6.0, height: float = 4.0) -> Any:
    """A matplotlib figure on the Agg canvas, without pyplot's global state (safe in workers)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="tight")


def save_figure(figure: Any, out_dir: Path | None, name: str) -> tuple[str, ...]:
    if out_dir is None:
        return ()
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return (str(path),)


def model_result(gate: str, *, model_uri: str, model_digest: str, policy_digest: str, tool: ToolInfo,
                 started_at: str, metrics: dict[str, Any], thresholds: dict[str, Any],
                 findings: list[Finding], artifacts: tuple[str, ...] = ()) -> GateResult:
    if not model_digest:
        raise GateInputError(f"{gate}: model_digest is required; evidence must name what was checked")
    return GateResult(
        gate=gate, status=Status.BLOCKED if findings else Status.PASSED,
        subject=Subject("model", model_uri, model_digest), policy_digest=policy_digest, tool=tool,
        started_at=started_at, finished_at=utcnow(), metrics=metrics, thresholds=thresholds,
        findings=tuple(findings), artifacts=artifacts,
    )
