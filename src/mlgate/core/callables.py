"""Callables named by import path, so DAG files and CLI arguments stay free of heavy imports, and so
untrusted code (training, a data callable) can be handed to an isolated child by name (ADR 0015, 0020)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from mlgate.core.errors import GateInputError


def resolve_callable(target: str | Callable[..., Any], role: str = "callable") -> Callable[..., Any]:
    """A callable, or ``"package.module:function"``; ``role`` names the argument in the error."""
    if callable(target):
        return target
    module, _, name = str(target).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise GateInputError(f"{role} {target!r} cannot be imported: {exc}") from None


def import_path_of(target: str | Callable[..., Any], role: str) -> str:
    """``"module:function"`` for a callable a child can import by name; a closure, a lambda or a function
    of ``__main__`` cannot cross."""
    if isinstance(target, str):
        return target
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        raise GateInputError(f"{role} must be importable as 'package.module:function' to run isolated, got "
                             f"{target!r}")
    return f"{module}:{name}"


def module_file(target: str, role: str) -> Path:
    """The source file of ``"package.module:function"``'s module, found on the import path **without
    importing it or its packages** (importing runs their code, and that code is untrusted)."""
    module = target.partition(":")[0]
    spec, search = None, None
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else PathFinder.find_spec(name, search)
        if spec is None:
            break
        search = spec.submodule_search_locations
    if spec is None or not spec.origin or not spec.has_location:
        raise GateInputError(f"{role} {target!r}: no module {module!r} on the import path")
    return Path(spec.origin)
