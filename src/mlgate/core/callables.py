"""Callables named by import path, so DAG files and CLI arguments stay free of heavy imports."""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
