"""Structure checks of the model formats that hold no code: safetensors, ONNX, ``.npy`` and text metadata,
and which records of a torch.export (``.pt2``) archive its loader reads as raw tensor bytes.

Each check returns ``None`` when the file is well formed, else a one-line reason. None of them
executes or imports anything from the file; a file that claims a format and fails its check blocks.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from typing import Any

_SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the reference implementation's own limit

# ModelProto and GraphProto field numbers (onnx.proto3) -> the wire type each must use.
_ONNX_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_ONNX_GRAPH_FIELDS = {1: 2, 2: 2, 5: 2, 10: 2, 11: 2, 12: 2, 13: 2, 14: 2, 15: 2}

NPY_MAGIC = b"\x93NUMPY"

# A torch or pt2 archive's metadata record (version, byteorder...): at most one newline (the GLOBAL
# opcode needs two) and ASCII only (binary opcodes need other bytes), so no pickle fits in it.
ARCHIVE_TEXT = re.compile(rb"[A-Za-z0-9._-]{1,64}\n?")
# The payload configs torch.export.load consults to read a weight or constant record.
PT2_PAYLOAD_CONFIG = re.compile(r"data/(weights|constants)/[^/]+_config\.json")
_PT2_RAW_PREFIXES = ("weight_", "tensor_")  # any other record (custom and opaque objects) is unpickled


def looks_like_safetensors(buf: Any) -> bool:
    """An 8-byte little-endian header length that fits the file, followed by a JSON object."""
    if len(buf) < 10:
        return False
    (size,) = struct.unpack_from("<Q", buf, 0)
    return 2 <= size <= len(buf) - 8 and buf[8] == ord("{")


def check_safetensors(buf: Any) -> str | None:
    if len(buf) < 8:
        return "shorter than the 8-byte header length"
    (size,) = struct.unpack_from("<Q", buf, 0)
    if size > min(len(buf) - 8, _MAX_SAFETENSORS_HEADER):
        return "header length runs past the end of the file"
    try:
        header = json.loads(bytes(buf[8:8 + size]))
    except (UnicodeDecodeError, ValueError):
        return "header is not valid JSON"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    data_len = len(buf) - 8 - size
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                return "__metadata__ must map strings to strings"
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            return f"tensor {name!r}: expected exactly dtype, shape and data_offsets"
        width = _SAFETENSORS_DTYPE_BYTES.get(entry["dtype"])
        shape, offsets = entry["shape"], entry["data_offsets"]
        if width is None:
            return f"tensor {name!r}: unknown dtype"
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            return f"tensor {name!r}: shape must be a list of non-negative integers"
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            return f"tensor {name!r}: data_offsets outside the data section"
        count = 1
        for n in shape:
            count *= n
        if offsets[1] - offsets[0] != count * width:
            return f"tensor {name!r}: data_offsets do not match shape and dtype"
        spans.append(offsets)
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        return "tensors overlap"
    return None


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def _proto_fields(buf: Any, pos: int, end: int, allowed: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Walk one protobuf message's fields; return the last (start, end) span of each field seen."""
    seen: dict[int, tuple[int, int]] = {}
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if allowed.get(number) != wire:
            raise ValueError(f"field {number} with wire type {wire} is not part of the message")
        start = pos
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            start, pos = pos, pos + length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        if pos > end:
            raise ValueError(f"field {number} runs past the end of the message")
        seen[number] = (start, pos)
    return seen


def check_onnx(buf: Any) -> str | None:
    """A protobuf ``ModelProto`` with an ``ir_version`` and a well-formed ``GraphProto``."""
    try:
        model = _proto_fields(buf, 0, len(buf), _ONNX_MODEL_FIELDS)
        if 1 not in model or 7 not in model:
            return "not an ONNX ModelProto (no ir_version or graph)"
        _proto_fields(buf, *model[7], _ONNX_GRAPH_FIELDS)
    except ValueError as exc:
        return f"not an ONNX ModelProto: {exc}"
    return None


def npy_header(buf: Any) -> tuple[dict[str, Any], int]:
    """The ``.npy`` header dict (parsed as a literal, never evaluated) and the offset of the data."""
    major = buf[6]
    width = 2 if major == 1 else 4
    if major not in (1, 2, 3) or len(buf) < 8 + width:
        raise ValueError(f"unsupported .npy version {major}")
    (size,) = struct.unpack_from("<H" if width == 2 else "<I", buf, 8)
    start = 8 + width
    header = ast.literal_eval(bytes(buf[start:start + size]).decode("utf-8" if major == 3 else "latin-1"))
    if not (isinstance(header, dict) and {"descr", "fortran_order", "shape"} <= header.keys()):
        raise ValueError(".npy header lacks descr, fortran_order or shape")
    return header, start + size


def check_text(buf: Any, kind: str) -> str | None:
    """UTF-8 text without NUL bytes; JSON and YAML must also parse (YAML with the safe loader)."""
    try:
        text = bytes(buf).decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if "\x00" in text:
        return "text contains NUL bytes"
    try:
        if kind == "json":
            json.loads(text)
        elif kind == "yaml":
            import yaml

            yaml.safe_load(text)
    except Exception as exc:  # json and yaml raise several types for malformed input
        return f"not valid {kind.upper()} ({type(exc).__name__})"
    return None


def pt2_payload_records(config_path: str, content: bytes) -> tuple[set[str], set[str]]:
    """The archive records one pt2 payload config declares, as ``(raw, pickled)``.

    torch.export.load reads a record as raw numbers only when its entry says ``use_pickle: false``
    and it is a weight or tensor constant; every other record it unpickles with ``weights_only=False``.
    Raises ``ValueError`` for anything but ``{"config": {name: {"path_name": str, ...}}}``.
    """
    config = json.loads(content)
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("path_name"), str) for e in entries.values()):
        raise ValueError("not a pt2 payload config: expected {'config': {name: {'path_name': ...}}}")
    directory = config_path.rsplit("/", 1)[0]
    raw: set[str] = set()
    pickled: set[str] = set()
    for entry in entries.values():
        name = entry["path_name"]
        is_raw = entry.get("use_pickle") is False and "/" not in name and name.startswith(_PT2_RAW_PREFIXES)
        (raw if is_raw else pickled).add(f"{directory}/{name}")
    return raw, pickled
