"""Faults of in-process libraries, injectable in this process and in the model-validation child.

The validation gates and ``code.dynamic`` run their tool in a spawned child (ADR 0015), where a monkeypatch of
the test process cannot reach. ``child_target`` names an entry for that child: ``tests.faults.child_faults:
<fault>|<module>|<target>|<malformed>|<real entry>``; the module's ``__getattr__`` turns that name into a
function that patches ``target`` inside the child and then runs the gate's real entry. Nothing here imports
Airflow (the child has none).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class MalformedOutput:
    """What an in-process tool returns in the ``malformed`` cell: an object of no expected shape."""

    def __init__(self, *_call: Any, **_kwargs: Any) -> None:
        """Takes (and ignores) the arguments the tool was called with."""

    def __repr__(self) -> str:
        return "<MalformedOutput>"


def nan_importances(_model: Any, x: Any, *_rest: Any, **_kwargs: Any) -> Any:
    """Permutation importance that is NaN for every feature (as from a scorer that returned NaN)."""
    import numpy as np
    from sklearn.utils import Bunch

    nan = np.full(np.shape(x)[1], np.nan)
    return Bunch(importances_mean=nan, importances_std=nan, importances=nan[:, None])


def malformed_predictor(*_args: Any, **_kwargs: Any) -> Callable[[Any], Any]:
    """A predictor whose answers have no shape, as from a broken model wrapper (``model.dos``)."""
    return lambda _row: MalformedOutput()


def broken(fault: str, module: str, malformed: Callable[..., Any]) -> Callable[..., Any]:
    """The stand-in for a library call in the given fault cell."""
    def call(*args: Any, **kwargs: Any) -> Any:
        if fault == "missing":
            raise ModuleNotFoundError(f"No module named '{module}'", name=module)
        if fault == "crash":
            raise RuntimeError(f"{module} crashed (injected fault)")
        if fault == "timeout":
            raise TimeoutError(f"{module} timed out (injected fault)")
        return malformed(*args, **kwargs)

    return call


def _resolve(dotted: str) -> tuple[Any, str]:
    """(owner, attribute) of a dotted name such as ``pkg.mod.Class.method``."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise ImportError(f"cannot resolve {dotted}")


def _of(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def child_target(fault: str, module: str, target: str, malformed: Callable[..., Any], real: str) -> str:
    return f"{__name__}:{fault}|{module}|{target}|{malformed.__module__}:{malformed.__qualname__}|{real}"


def __getattr__(name: str) -> Callable[..., Any]:
    try:
        fault, module, target, malformed, real = name.split("|")
    except ValueError:
        raise AttributeError(name) from None

    def entry(**kwargs: Any) -> Any:
        owner, attribute = _resolve(target)
        setattr(owner, attribute, broken(fault, module, _of(malformed)))
        return _of(real)(**kwargs)

    return entry
