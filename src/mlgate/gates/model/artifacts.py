"""``model.artifact``: find unsafe serialization in model files before anything loads them.

Every file is read as data only — pickles are walked opcode by opcode (``pickle_scan``), never
unpickled, and no module they name is imported. A pickle may only import globals from an exact allowlist
(``safe_globals``: the classes real estimators need and a few reviewed reconstructors); anything else blocks, and the
finding names the global, its opcode's byte offset and the file (and archive member) it sits in.
Containers are opened the way their loaders open them: torch zip archives, torch.export ``.pt2``
archives (raw tensor records skipped only where their payload config says torch reads them as
numbers; every record it would unpickle is judged as a pickle), ``.npz``, skops, joblib files plain
or compressed (zlib, gzip, bz2, lzma/xz, lz4, joblib's legacy ``ZF``). Formats that hold no code
(safetensors, ONNX, ``.npy``, JSON/YAML/text metadata) are structure-checked. A file of unknown
format, or one that cannot be parsed, blocks: the gate fails closed.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import mmap
import pickle
import re
import struct
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlgate.core.digests import file_digest, list_files, tree_digest
from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.model import environment, keras_format, mlmodel, model_formats
from mlgate.gates.model.pickle_scan import Malformed, PickleScan, Problem, scan_pickles, walk_pickle
from mlgate.gates.model.policies import ArtifactPolicy
from mlgate.gates.model.safe_globals import NEW_ONLY_CLASSES, builtin_allowlist

GATE = "model.artifact"
TOOL = ToolInfo("mlgate.pickle_scan", "1")
MAX_EXPANDED_BYTES = 64 * 1024**3  # a compressed or zipped member larger than this once expanded blocks
MAX_NESTING = 4  # archives inside compressed files inside archives...

# numpy scalar types a skops schema names as dtypes (TypeNode); constructing one runs no code.
SKOPS_NUMPY_SCALARS = frozenset(f"numpy.{t}" for t in (
    "bool", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "str_", "bytes_", "object_"))

_TEXT_KINDS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".txt": "text", ".md": "text"}
_TEXT_NAMES = {"MLmodel": "yaml", "registered_model_meta": "yaml"}  # the latter: written by MLflow's download
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".dill"}
# Short text records below a torch or pt2 archive's root, read by torch as text, never unpickled.
_ARCHIVE_META = re.compile(r"(version|byteorder|archive_format|archive_version|\.format_version"
                           r"|\.storage_alignment|\.data/version|\.data/serialization_id)")
_TORCH_STORAGE = re.compile(r"data/\d+")
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, NotImplementedError)


@dataclass(frozen=True)
class Allowlist:
    """Exact ``module.qualname`` globals (``safe_globals``, ADR 0016): a name is allowed or it is not."""

    exact: frozenset[str] = field(default_factory=builtin_allowlist)

    @classmethod
    def with_extra(cls, extra: Iterable[str]) -> Allowlist:
        return cls(builtin_allowlist() | set(extra))

    def allows(self, module: str, name: str) -> bool:
        return f"{module}.{name}" in self.exact


@dataclass
class _Scan:
    """Findings and counters of one ``scan_path`` run."""

    allowlist: Allowlist
    code_digests: frozenset[str] = frozenset()
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    globals: int = 0

    def add(self, kind: str, severity: Severity, message: str, location: str) -> None:
        self.findings.append(Finding(f"{GATE}.{kind}", severity, message, location))

    def judge_pickles(self, scan: PickleScan, where: str) -> None:
        self.globals += len(scan.globals)
        if not scan.pickles and not scan.problems:
            self.add("malformed", Severity.HIGH, "empty: no pickle in the stream", where)
        first: dict[str, tuple[int, str, int]] = {}
        for ref in scan.globals:
            if not self.allowlist.allows(ref.module, ref.name):
                offset, opcode, count = first.get(ref.qualname, (ref.offset, ref.opcode, 0))
                first[ref.qualname] = (offset, opcode, count + 1)
        for ref in scan.calls:
            if ref.qualname in NEW_ONLY_CLASSES and ref.qualname not in first:
                first[ref.qualname] = (ref.offset, f"{ref.opcode}, then called: its constructor reads files", 1)
        for qualname, (offset, opcode, count) in first.items():
            times = f" ({count} times)" if count > 1 else ""
            self.add("unsafe_global", Severity.CRITICAL,
                     f"imports {qualname} ({opcode}){times}: not an allowed global", f"{where}@{offset}")
        for problem in scan.problems:
            kind = {"unresolved": "unresolved_global", "extension": "extension_global",
                    "resource": "resource"}.get(problem.kind, "malformed")
            severity = Severity.HIGH if kind in ("malformed", "resource") else Severity.CRITICAL
            self.add(kind, severity, problem.message, f"{where}@{problem.offset}")


@contextlib.contextmanager
def _mapped(handle: IO[bytes]) -> Iterator[Any]:
    """A read-only buffer over a real file (``b''`` when it is empty)."""
    size = handle.seek(0, 2)
    if size == 0:
        yield b""
        return
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        yield buf


@contextlib.contextmanager
def _spooled(reader: IO[bytes]) -> Iterator[Any]:
    """Copy a stream (a decompressor, a zip member) to a temporary file and map it."""
    with tempfile.TemporaryFile() as spool:
        copied = 0
        while chunk := reader.read(1024 * 1024):
            copied += len(chunk)
            if copied > MAX_EXPANDED_BYTES:
                raise ValueError(f"expands past {MAX_EXPANDED_BYTES} bytes")
            spool.write(chunk)
        spool.flush()
        with _mapped(spool) as buf:
            yield buf


class _ZlibReader:
    """A file-like reader of a raw zlib stream (joblib's ``zlib`` compression, which gzip cannot read)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw, self._inflate, self._done = raw, zlib.decompressobj(15), False

    def read(self, size: int) -> bytes:
        while not self._done:
            chunk = self._raw.read(64 * 1024)  # small input chunks bound the expanded size per read
            data = self._inflate.decompress(chunk) if chunk else self._inflate.flush()
            self._done = not chunk or self._inflate.eof
            if data:
                return data
        return b""


def _lz4_reader(raw: IO[bytes]) -> IO[bytes]:
    import lz4.frame

    return lz4.frame.LZ4FrameFile(raw, "rb")


def _zf_reader(raw: IO[bytes]) -> _ZlibReader:
    """joblib < 0.10's ``ZF`` files: ``ZF``, the hex length padded to 19 bytes, maybe a space, zlib data."""
    int(raw.read(2 + 19)[2:], 16)  # a ValueError here means it is no ZF header
    if raw.read(1) != b" ":
        raw.seek(-1, 1)
    return _ZlibReader(raw)


_CODECS: list[tuple[str, Callable[[bytes], bool], Callable[[IO[bytes]], Any]]] = [
    ("gzip", lambda h: h.startswith(b"\x1f\x8b"), lambda raw: gzip.GzipFile(fileobj=raw)),
    ("bz2", lambda h: h.startswith(b"BZh"), lambda raw: bz2.BZ2File(raw)),
    ("xz", lambda h: h.startswith(b"\xfd7zXZ\x00"), lambda raw: lzma.LZMAFile(raw)),
    ("lzma", lambda h: h.startswith(b"\x5d\x00\x00"), lambda raw: lzma.LZMAFile(raw)),
    ("lz4", lambda h: h.startswith(b"\x04\x22\x4d\x18"), _lz4_reader),
    ("zlib", lambda h: len(h) > 1 and h[0] == 0x78 and (h[0] * 256 + h[1]) % 31 == 0, _ZlibReader),
    ("joblib-zf", lambda h: h.startswith(b"ZF") and h[2:4] == b"0x", _zf_reader),
]


def _scan_buffer(scan: _Scan, buf: Any, where: str, name: str, depth: int) -> None:
    """Recognise one file's format from its bytes (and its name where no magic exists) and check it."""
    head = bytes(buf[:8])
    suffix = Path(name).suffix.lower()
    if depth > MAX_NESTING:
        scan.add("unknown_format", Severity.HIGH, "archives nested too deeply to scan", where)
    elif _is_tar(scan, buf, where):
        pass
    elif suffix == ".safetensors":
        _invalid_if(scan, model_formats.check_safetensors(buf), "safetensors", where)
        _probe_as_pickle(scan, buf, where)
    elif model_formats.looks_like_safetensors(buf) and model_formats.check_safetensors(buf) is None:
        _probe_as_pickle(scan, buf, where)  # first: a header length can mimic a magic number below
    elif head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        _scan_zip(scan, buf, where, depth)
    elif codec := next((c for c in _CODECS if c[1](head)), None):
        _scan_compressed(scan, buf, where, codec[0], codec[2])
    elif head.startswith(model_formats.NPY_MAGIC):
        _scan_npy(scan, buf, where)
    elif bytes(buf[:_LEGACY_TORCH_HEAD]) in _LEGACY_TORCH:
        _scan_legacy_torch(scan, buf, where)
    elif head == keras_format.HDF5_MAGIC:
        _judge_keras(scan, buf, where)
    elif len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        scan.judge_pickles(scan_pickles(buf), where)
    elif suffix in _PICKLE_SUFFIXES:
        _scan_unknown(scan, buf, where)  # a pickle by name: judged as one, or not a model file at all
    elif suffix == ".onnx":
        _invalid_if(scan, model_formats.check_onnx(buf), "ONNX", where)
        _probe_as_pickle(scan, buf, where)
    elif kind := _TEXT_NAMES.get(Path(name).name) or _TEXT_KINDS.get(suffix):
        reason = model_formats.check_text(buf, kind)
        _invalid_if(scan, reason, kind, where)
        _probe_as_pickle(scan, buf, where)
        if reason is None and Path(name).name in environment.ENVIRONMENT_FILES:
            for problem in environment.problems(Path(name).name, bytes(buf).decode("utf-8")):
                scan.add("code_at_install", Severity.CRITICAL, f"{problem}: MLflow installs it to serve the model",
                         where)
    else:
        _scan_unknown(scan, buf, where)


# torch.save's legacy (non-zip) format opens with its magic number pickled (protocol 2 by default).
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_TORCH = frozenset(pickle.dumps(_LEGACY_TORCH_MAGIC, protocol=p) for p in (2, 3))
_LEGACY_TORCH_HEAD = len(next(iter(_LEGACY_TORCH)))
_LEGACY_PICKLES = 5  # magic, protocol version, sys info, the object, the storage keys; raw storages follow


def _scan_legacy_torch(scan: _Scan, buf: Any, where: str) -> None:
    """Legacy ``torch.save``: five pickles back to back, then raw storage bytes torch reads as numbers."""
    result = PickleScan()
    pos = 0
    try:
        for _ in range(_LEGACY_PICKLES):
            pos = walk_pickle(buf, pos, len(buf), result, joblib=False)
    except Malformed as exc:
        result.problems.append(Problem(exc.kind, str(exc), exc.offset))
    scan.judge_pickles(result, where)


def _judge_keras(scan: _Scan, buf: Any, where: str, archive: zipfile.ZipFile | None = None) -> None:
    """A Keras model's layer config (``.keras`` zip or HDF5): Lambda layers and custom objects block."""
    try:
        config = json.loads(archive.read("config.json")) if archive else keras_format.h5_config(buf)
    except ImportError:
        scan.add("cannot_inspect", Severity.HIGH, "an HDF5 file, and h5py is not installed to read it", where)
        return
    except Exception as exc:  # noqa: BLE001 - h5py and json raise many types for malformed input
        scan.add("invalid_format", Severity.HIGH, f"unreadable Keras model: {type(exc).__name__}", where)
        return
    for problem in keras_format.config_problems(config):
        scan.add("code_at_load", Severity.CRITICAL, problem, where)


def _invalid_if(scan: _Scan, reason: str | None, kind: str, where: str) -> None:
    if reason:
        scan.add("invalid_format", Severity.HIGH, f"invalid {kind} file: {reason}", where)


_IMPORTABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _probe_as_pickle(scan: _Scan, buf: Any, where: str) -> None:
    """A code-free file may also be a pickle (a polyglot; protocol 0 is plain text) that a loader told
    to unpickle it would run up to where it fails. Every global the first pickle imports before any
    anomaly is judged, whatever comes after; names that cannot be imported (ordinary text) are not.
    An anomaly CPython reads past (a list holding itself, a second PROTO) is no end: it blocks."""
    as_pickle = PickleScan()
    try:
        walk_pickle(buf, 0, len(buf), as_pickle, joblib=False)
    except Malformed as exc:
        if exc.loads:  # the loader would go on to whatever the walk did not judge
            as_pickle.problems.append(Problem(exc.kind, str(exc), exc.offset))
        # otherwise the loader fails here too: the globals read before the anomaly are still judged
    refs = [g for g in as_pickle.globals if _IMPORTABLE.fullmatch(g.module) and _IMPORTABLE.fullmatch(g.name)]
    refused = [g for g in refs if not scan.allowlist.allows(g.module, g.name)]
    if refused or as_pickle.problems or as_pickle.calls:
        scan.judge_pickles(PickleScan(globals=refused, calls=as_pickle.calls, problems=as_pickle.problems,
                                      pickles=1), where)


def _scan_unknown(scan: _Scan, buf: Any, where: str) -> None:
    """No magic and no known name: only a complete pickle (protocol 0/1 has no header) passes."""
    as_pickle = scan_pickles(buf)
    if as_pickle.pickles and not any(p.offset == 0 for p in as_pickle.problems):
        scan.judge_pickles(as_pickle, where)
    else:
        _probe_as_pickle(scan, buf, where)
        scan.add("unknown_format", Severity.HIGH, "not a model file: no recognised model format (pickle, zip, "
                 "safetensors, ONNX, numpy, Keras, compressed joblib or text metadata)", where)


def _scan_compressed(scan: _Scan, buf: Any, where: str, codec: str, opener: Callable) -> None:
    """joblib's compressed files: the decompressed stream is a joblib pickle, arrays and all."""
    inner = f"{where}::{codec}"
    try:
        with _spooled(opener(_BufferFile(buf))) as expanded:
            scan.judge_pickles(scan_pickles(expanded), inner)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, RuntimeError, ImportError) as exc:
        scan.add("malformed", Severity.HIGH, f"cannot decompress as {codec}: {type(exc).__name__}: {exc}",
                 inner)


def _scan_zip(scan: _Scan, buf: Any, where: str, depth: int, keras: bool = False) -> None:
    try:
        archive = zipfile.ZipFile(_BufferFile(buf))
        members = [m for m in archive.infolist() if not m.is_dir()]
        pt2_roots = {m.filename[:-len("archive_format")] for m in members
                     if re.fullmatch(r"[^/]+/archive_format", m.filename) and m.file_size == 3
                     and archive.read(m) == b"pt2"}
    except _ZIP_ERRORS as exc:
        scan.add("malformed", Severity.HIGH, f"invalid zip archive: {exc}", where)
        return
    if any(m.filename == "schema.json" for m in members):
        _judge_skops_schema(scan, archive, where)
    if keras or keras_format.is_keras_archive([m.filename for m in members]):
        _judge_keras(scan, buf, f"{where}::config.json", archive)
    torch_roots = {m.filename[:-len("data.pkl")] for m in members
                   if re.fullmatch(r"[^/]+/data\.pkl", m.filename)}
    raw_records = _pt2_raw_records(scan, archive, members, pt2_roots, where)
    for member in members:
        inner = f"{where}::{member.filename}"
        if member.flag_bits & 0x1:
            scan.add("cannot_inspect", Severity.HIGH, "cannot inspect: an encrypted archive member", inner)
            continue
        if member.filename in raw_records or _below(torch_roots, member.filename, _TORCH_STORAGE):
            continue  # raw tensor bytes, read by torch as numbers only
        try:
            if _below(torch_roots | pt2_roots, member.filename, _ARCHIVE_META):
                if member.file_size > 65 or not model_formats.ARCHIVE_TEXT.fullmatch(archive.read(member)):
                    scan.add("invalid_format", Severity.HIGH, "archive metadata is not short text", inner)
                continue
            with archive.open(member) as stream, _spooled(stream) as data:
                _scan_buffer(scan, data, inner, member.filename, depth + 1)
        except _ZIP_ERRORS as exc:
            scan.add("malformed", Severity.HIGH, f"cannot read archive member: {type(exc).__name__}", inner)


def _below(roots: set[str], name: str, pattern: re.Pattern[str]) -> bool:
    """``name`` is an archive root followed by a path matching ``pattern``."""
    return any(name.startswith(root) and pattern.fullmatch(name[len(root):]) for root in roots)


def _pt2_raw_records(scan: _Scan, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], pt2_roots: set[str],
                     where: str) -> set[str]:
    """The records pt2 payload configs declare raw tensor bytes and none declares pickled; an
    unreadable config blocks (its records are then scanned, and block, as what they are)."""
    raw: set[str] = set()
    pickled: set[str] = set()
    for member in members:
        if not _below(pt2_roots, member.filename, model_formats.PT2_PAYLOAD_CONFIG):
            continue
        try:
            declared_raw, declared_pickled = model_formats.pt2_payload_records(member.filename, archive.read(member))
        except _ZIP_ERRORS as exc:
            scan.add("malformed", Severity.HIGH, f"unreadable pt2 payload config: {type(exc).__name__}: {exc}",
                     f"{where}::{member.filename}")
            continue
        raw |= declared_raw
        pickled |= declared_pickled
    return raw - pickled


def _skops_types(node: Any) -> Iterator[tuple[str, str, str]]:
    """Every ``(module, class, loader)`` a skops schema asks its loader to resolve."""
    if isinstance(node, dict):
        if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
            yield node["__module__"], node["__class__"], str(node.get("__loader__", ""))
        for value in node.values():
            yield from _skops_types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _skops_types(value)


def _judge_skops_schema(scan: _Scan, archive: zipfile.ZipFile, where: str) -> None:
    """A skops archive (MLflow 3's default for scikit-learn) names in ``schema.json`` every type and
    function its loader will import and call: each must pass the same allowlist as a pickle global."""
    inner = f"{where}::schema.json"
    try:
        schema = json.loads(archive.read("schema.json"))
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        scan.add("malformed", Severity.HIGH, f"unreadable skops schema: {type(exc).__name__}", inner)
        return
    refused: dict[str, str] = {}
    for module, name, loader in _skops_types(schema):
        scan.globals += 1
        qualname = f"{module}.{name}"
        if qualname not in SKOPS_NUMPY_SCALARS and not scan.allowlist.allows(module, name):
            refused.setdefault(qualname, loader)
    for qualname, loader in refused.items():
        scan.add("unsafe_global", Severity.CRITICAL, f"skops {loader or 'node'} imports {qualname}: "
                 "not an allowed global", inner)


class _BufferFile:
    """A seekable read-only file over an mmap, for ``zipfile`` (which wants a file object)."""

    def __init__(self, buf: Any) -> None:
        self._buf, self._pos = buf, 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = (0, self._pos, len(self._buf))[whence] + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        stop = len(self._buf) if size is None or size < 0 else self._pos + size
        data = self._buf[self._pos:stop]
        self._pos += len(data)
        return data


def _scan_npy(scan: _Scan, buf: Any, where: str) -> None:
    """``.npy``: raw array bytes, unless the dtype holds objects — then a pickle follows the header."""
    import numpy as np

    try:
        header, data_start = model_formats.npy_header(buf)
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        count = 1
        for n in header["shape"]:
            count *= int(n)
    except (ValueError, TypeError, SyntaxError, struct.error, IndexError) as exc:
        scan.add("invalid_format", Severity.HIGH, f"invalid .npy header: {type(exc).__name__}", where)
        return
    if dtype.hasobject:
        scan.judge_pickles(scan_pickles(buf, data_start), where)
    elif len(buf) - data_start != count * dtype.itemsize:
        scan.add("invalid_format", Severity.HIGH, "invalid .npy file: data size does not match its header",
                 where)


def _is_tar(scan: _Scan, buf: Any, where: str) -> bool:
    """torch.load opens any file as a tar archive first (its pre-0.4 format) and unpickles the members named
    storages, tensors and pickle, whatever the file looked like to a format check (a legacy torch.save
    prefix, a safetensors header): a buffer tarfile can open blocks, whatever else it also is."""
    try:
        with tarfile.open(fileobj=_BufferFile(buf), mode="r:") as tar:
            if tar.firstmember is None:  # zero blocks: an empty tar, torch finds no member to unpickle
                return False
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return False
    scan.add("code_at_load", Severity.CRITICAL, "a tar archive: torch.load reads it as its legacy tar format and "
             "unpickles its members (not judged)", where)
    return True


def _scan_as(scan: _Scan, buf: Any, where: str, name: str, kind: str) -> None:
    """A file MLmodel names, judged as what its flavor's loader does with it, whatever its name."""
    if _is_tar(scan, buf, where):
        return
    if kind == "pickle":
        scan.judge_pickles(scan_pickles(buf), where)
    elif kind in ("skops", "pt2", "torch", "keras") and bytes(buf[:4]) == b"PK\x03\x04":
        _scan_zip(scan, buf, where, depth=0, keras=kind == "keras")
    elif kind == "torch":
        _scan_legacy_torch(scan, buf, where)
    elif kind == "keras" and bytes(buf[:8]) == b"\x89HDF\r\n\x1a\n":
        _judge_keras(scan, buf, where)
    elif kind.startswith("module:"):
        allowed = mlmodel.MODULE_FILES[kind[len("module:"):]]
        if bytes(buf).strip().decode("utf-8", "replace") not in allowed:
            scan.add("code_at_load", Severity.CRITICAL, f"names a module the loader imports that is not one of "
                     f"{sorted(allowed)}", where)
    elif kind == "data":  # a code-free format, by MLmodel's word: a pickle posing as one still blocks
        if Path(name).suffix.lower() == ".onnx":
            _invalid_if(scan, model_formats.check_onnx(buf), "ONNX", where)
        _probe_as_pickle(scan, buf, where)
    else:
        scan.add("invalid_format", Severity.HIGH, f"MLmodel names it as {kind}, which it is not", where)


_CODE_SUFFIXES = {".py", ".pyc", ".pyo", ".pyd", ".pyx", ".so", ".dylib", ".dll"}


def _scan_file(scan: _Scan, path: Path, where: str, kind: str | None) -> None:
    scan.files += 1
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read ({exc.strerror})") from None
    with handle, _mapped(handle) as buf:
        scan.bytes += len(buf)
        if kind is not None:
            _scan_as(scan, buf, where, path.name, kind)
        else:
            _scan_buffer(scan, buf, where, path.name, depth=0)


def _judge_code(scan: _Scan, path: Path, where: str, why: str) -> None:
    """Code that runs at load passes only when the policy allows that exact file by digest."""
    if file_digest(path) not in scan.code_digests:
        scan.add("code_at_load", Severity.CRITICAL, f"{why}; not allowed by digest "
                 "(gates.model.artifact.allowed_code_digests)", where)


def _plan_models(scan: _Scan, files: list[Path], base: Path) -> tuple[dict[Path, str], dict[Path, str]]:
    """Read every ``MLmodel``: how each named file is loaded, and which files are code run at load."""
    kinds: dict[Path, str] = {}
    code: dict[Path, str] = {}
    for mlmodel_file in (f for f in files if f.name == "MLmodel"):
        where = mlmodel_file.relative_to(base).as_posix()
        try:
            import yaml

            plan = mlmodel.plan_mlmodel(yaml.safe_load(mlmodel_file.read_bytes()))
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            scan.add("mlmodel", Severity.HIGH, f"unreadable MLmodel: {type(exc).__name__}", where)
            continue
        for problem in plan.problems:
            scan.add("mlmodel", Severity.CRITICAL, problem, where)
        model_dir = mlmodel_file.parent
        kinds.update(mlmodel.file_kinds(model_dir, plan, files))
        for relative, why in plan.code:
            target = model_dir / relative
            for file in files:
                if file == target or target in file.parents:
                    code[file] = why
    return kinds, code


def _run(path: Path, allowlist: Allowlist, code_digests: frozenset[str] = frozenset()) -> _Scan:
    """Scan every file; a file that cannot be judged is a finding, and the scan goes on to the next."""
    path = Path(path)
    if not path.exists():
        raise GateInputError(f"{path}: no such model file or directory")
    try:
        files = list_files(path)
    except (ValueError, OSError) as exc:
        raise GateInputError(str(exc)) from None
    scan = _Scan(allowlist, code_digests)
    base = path.parent if path.is_file() else path
    kinds, code = _plan_models(scan, files, base)
    for file in files:
        where = file.relative_to(base).as_posix()
        try:
            if file in code or file.suffix.lower() in _CODE_SUFFIXES:  # whatever MLmodel calls it: importable
                scan.files += 1  # code is judged by its digest alone: the policy allows it or it blocks
                _judge_code(scan, file, where, code.get(file) or f"a {file.suffix} file: Python code or a "
                                                                 "native library")
            else:
                _scan_file(scan, file, where, kinds.get(file))
        except GateInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - one file's failure must not hide the others
            scan.add("malformed", Severity.HIGH, f"cannot scan: {type(exc).__name__}", where)
    return scan


def scan_path(path: Path, extra_allowed_globals: Iterable[str] = (),
              allowed_code_digests: Iterable[str] = ()) -> list[Finding]:
    """Findings for a model file or directory; an empty list means every file is safe to load."""
    return _run(Path(path), Allowlist.with_extra(extra_allowed_globals), frozenset(allowed_code_digests)).findings


def check_artifact(path: Path, config: ArtifactPolicy, policy_digest: str) -> GateResult:
    """Scan every file under ``path`` statically; block on any unsafe global or unrecognised file."""
    started, clock = utcnow(), time.perf_counter()
    path = Path(path)
    scan = _run(path, Allowlist.with_extra(config.extra_allowed_globals), frozenset(config.allowed_code_digests))
    digest = tree_digest(path)
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if scan.findings else Status.PASSED,
        subject=Subject("model", str(path), digest),
        policy_digest=policy_digest,
        tool=TOOL,
        started_at=started,
        finished_at=utcnow(),
        metrics={"files": scan.files, "bytes": scan.bytes, "globals": scan.globals,
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds={"extra_allowed_globals": list(config.extra_allowed_globals),
                    "allowed_code_digests": list(config.allowed_code_digests)},
        findings=tuple(scan.findings),
    )
