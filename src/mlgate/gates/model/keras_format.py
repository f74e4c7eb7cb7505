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
# Code stored in the config, or loaded by a layer when safe mode is off (a pickled model is loaded so):
# TorchModuleWrapper torch.load()s a pickled module, TFSMLayer loads a TensorFlow SavedModel.
_CODE_CLASSES = frozenset({"Lambda", "__lambda__", "function", "TFOpLambda", "SlicingOpLambda",
                           "TorchModuleWrapper", "TFSMLayer"})


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


# A pickled Keras 3 model (``Model.__reduce__``, keras/src/saving/keras_saveable.py) is its ``.keras`` archive
# as bytes, loaded by ``getattr(ModelClass, "_unpickle_model")(BytesIO(archive))`` with safe_mode off: the
# archive is what runs, so it is judged as a ``.keras`` file. Only this exact stream is recognised (any other
# opcode, order, class or trailing byte: the file is judged as the pickle it is, and getattr blocks).
PICKLED_MODEL_CLASSES = frozenset({"keras.src.models.functional.Functional", "keras.src.models.sequential.Sequential",
                                   "keras.src.models.model.Model"})
_PICKLED_MODEL = ("global:builtins.getattr", "global:MODEL", "str:_unpickle_model", "TUPLE2", "REDUCE",
                  "global:_io.BytesIO", "EMPTY_TUPLE", "NEWOBJ", "bytes", "int", "NONE", "TUPLE3", "BUILD",
                  "TUPLE1", "REDUCE")
_NO_ARG = {ord("N"): "NONE", ord(")"): "EMPTY_TUPLE", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
           ord("R"): "REDUCE", 0x81: "NEWOBJ", ord("b"): "BUILD"}
_SIZED = {0x8C: ("str", 1), ord("X"): ("str", 4), ord("C"): ("bytes", 1), ord("B"): ("bytes", 4),
          0x8E: ("bytes", 8), ord("K"): ("int", 1), ord("M"): ("int", 2), ord("J"): ("int", 4)}
_SKIPPED = {0x95: 8, 0x94: 0, 0x71: 1}  # FRAME (its size), MEMOIZE, BINPUT (its index): memo stores


def pickled_model_archive(buf: Any) -> tuple[int, int] | None:
    """Where the ``.keras`` archive lies in ``buf`` when ``buf`` is exactly a pickled Keras 3 model (protocol
    3-5, as ``pickle.dumps(model)`` writes it); else ``None``. The caller has walked the stream without a
    problem (``pickle_scan``: framing as CPython reads it), so reading it straight through is CPython's
    reading; memo stores change nothing here and are skipped, and a memo read is no match."""
    if len(buf) < 2 or buf[0] != 0x80 or not 3 <= buf[1] <= 5:
        return None
    tokens: list[str] = []
    archive = None
    pos, end = 2, len(buf)
    while pos < end:
        op = buf[pos]
        pos += 1
        if op == 0x2E:  # STOP, which must be the file's last byte
            break
        if op in _SKIPPED:
            pos += _SKIPPED[op]
        elif op in _NO_ARG:
            tokens.append(_NO_ARG[op])
        elif op in _SIZED:
            kind, width = _SIZED[op]
            if kind == "int":  # BytesIO's position: its value decides nothing
                tokens.append("int")
                pos += width
                continue
            n = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
            if kind == "bytes":
                tokens.append("bytes")
                archive = (pos, pos + n)
            elif n > 64:  # no name of the template is that long
                return None
            else:
                tokens.append("str:" + bytes(buf[pos:pos + n]).decode("utf-8", "replace"))
            pos += n
        elif op == 0x93 and len(tokens) >= 2 and all(t.startswith("str:") for t in tokens[-2:]):  # STACK_GLOBAL
            name, module = tokens.pop()[4:], tokens.pop()[4:]
            tokens.append(f"global:{module}.{name}")
        elif op == ord("c"):  # GLOBAL: module and name on two short lines
            lines = bytes(buf[pos:pos + 130]).split(b"\n")
            if len(lines) < 3:
                return None
            tokens.append(f"global:{lines[0].decode('utf-8', 'replace')}.{lines[1].decode('utf-8', 'replace')}")
            pos += len(lines[0]) + len(lines[1]) + 2
        else:
            return None
    model = tokens[1][len("global:"):] if len(tokens) > 1 else ""
    if pos != end or model not in PICKLED_MODEL_CLASSES:
        return None
    return archive if tuple(tokens) == tuple(t.replace("MODEL", model) for t in _PICKLED_MODEL) else None
