"""Keras models (``.keras`` zip archives and legacy HDF5 files): the layer config that decides what runs.

Keras rebuilds a model from its JSON config by importing the module and class each layer names; a
``Lambda`` layer carries marshalled Python bytecode, and a custom object imports code registered by
whoever saved it. Only Keras' own built-in classes pass; everything else blocks by name.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_CODE_CLASSES = frozenset({"Lambda", "__lambda__", "function", "TFOpLambda", "SlicingOpLambda"})


def _nodes(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def config_problems(config: Any) -> list[str]:
    """Why a Keras model config would run code at load: Lambda layers, custom or non-Keras objects."""
    problems = []
    for node in _nodes(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        module, registered = node.get("module"), node.get("registered_name")
        if cls in _CODE_CLASSES:
            problems.append(f"a {cls} object: Python code stored in the model runs at load")
        elif isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            problems.append(f"{module}.{cls}: not a Keras built-in (its module is imported at load)")
        elif registered is not None and registered != cls:
            problems.append(f"custom object {registered!r}: registered code runs at load")
    return sorted(set(problems))


def is_keras_archive(names: list[str]) -> bool:
    return "config.json" in names and "metadata.json" in names


def h5_config(data: bytes | Any) -> Any:
    """The ``model_config`` attribute of a Keras HDF5 file, or ``None`` for a weights-only file."""
    import h5py

    with h5py.File(io.BytesIO(bytes(data)), "r") as handle:
        raw = handle.attrs.get("model_config")
    if raw is None:
        return None
    return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
