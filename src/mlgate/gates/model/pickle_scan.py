"""A static pickle opcode walker: which globals a pickle would import, and where, without loading it.

It simulates the unpickler's stack symbolically (strings, ints, tuples, dicts and the few objects it
must understand), so ``STACK_GLOBAL`` operands that come from the memo or ``DUP`` are resolved, and
anything it cannot resolve is reported rather than guessed. Large byte payloads are skipped by length,
never copied, so a 200 MB pickle of arrays costs a handful of opcodes.

It also follows joblib's ``NumpyUnpickler``: after ``BUILD`` on a ``NumpyArrayWrapper`` joblib reads
the raw array bytes (or a nested pickle, for object arrays) straight from the file, so the walker
skips exactly what joblib would read — size from the wrapper's shape and dtype — and walks on.
joblib does this for *any* wrapper instance on the stack, however it was made, so the walker only
admits the ways joblib itself writes one (``NEWOBJ``/``REDUCE`` on the class, ``copyreg._reconstructor``
with ``object``) with plain attributes; the class or an instance reaching anything else (a call's
arguments, a container, a state) is ``malformed``: the walker could no longer tell where the bytes
it must skip begin and end, and an attacker could hide opcodes from it in that gap.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickletools
import re
import struct
from dataclasses import dataclass, field
from typing import Any

ARRAY_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_DTYPE = "numpy.dtype"
_RECONSTRUCTORS = frozenset({"copyreg._reconstructor"})
_WRAPPER_INIT_ARGS = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
_WRAPPER_INIT_DEFAULTS = {"allow_mmap": False, "numpy_array_alignment_bytes": 16}
_MAX_STR = 4096  # longer strings are kept opaque: no module or name is that long
_TYPESTR = re.compile(r"[a-zA-Z]\d{0,6}")
_MEMO_SLACK = 1024  # a memo index this far past the entries stored makes CPython allocate a huge memo table
_CONTAINERS = frozenset({dict, tuple})  # and _Seq, added below its definition
_MAX_REFS = 64  # container GET/DUP references beyond this, and above 1 in 8 opcodes, are an expansion bomb
_PLAIN_KEYS = frozenset({str, int, bool, type(None)})  # dict keys the walker keeps (it builds no subclasses)


class _Opaque:
    """A value the walker does not model (floats, bytes, lists, results of arbitrary calls)."""

    __slots__ = ()


OPAQUE = _Opaque()


@dataclass(frozen=True, slots=True)
class GlobalRef:
    """A global the unpickler would import: ``module``, ``name``, the opcode and its byte offset."""

    module: str
    name: str
    opcode: str
    offset: int

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that makes the stream unsafe to judge: ``malformed``, ``unresolved`` or ``extension``."""

    kind: str
    message: str
    offset: int


@dataclass
class PickleScan:
    globals: list[GlobalRef] = field(default_factory=list)
    calls: list[GlobalRef] = field(default_factory=list)  # globals called with arguments (REDUCE, INST, OBJ)
    problems: list[Problem] = field(default_factory=list)
    pickles: int = 0
    opcodes: int = 0


class _Global:
    __slots__ = ("ref", "qualname")

    def __init__(self, ref: GlobalRef) -> None:
        self.ref, self.qualname = ref, ref.qualname  # compared at every call the stream makes: built once


class _Obj:
    """An instance of a class the walker must follow (joblib's array wrapper, ``numpy.dtype``)."""

    __slots__ = ("cls", "args", "attrs", "state")

    def __init__(self, cls: str, args: Any, attrs: dict) -> None:
        self.cls, self.args, self.attrs, self.state = cls, args, attrs, None


class _Seq:
    """A list or set the stream builds: identity only, to catch a container that holds itself."""

    __slots__ = ()


_CONTAINERS = _CONTAINERS | {_Seq}


class Malformed(Exception):
    """The stream cannot be judged: ``malformed`` (CPython would fail, or could read it differently from
    this walker) or ``resource`` (a memo, reference or size anomaly that exhausts the loading process)."""

    def __init__(self, offset: int, message: str, kind: str = "malformed", loads: bool = False) -> None:
        super().__init__(message)
        self.offset, self.kind = offset, kind
        # CPython's unpickler reads on past this point (a resource anomaly, a second PROTO, frame quirks):
        # whatever follows would run, so a caller may not treat the stream as ending here.
        self.loads = loads or kind == "resource"


# Opcode kinds, dispatched in the walker's loop (grouped by what they do to the stack).
(_BAD, _PUSH_NONE, _PUSH_OPAQUE, _INT_FIXED, _STR_LEN, _BYTES_LEN, _SKIP, _LINE_OPAQUE, _INT_LINE,
 _STR_LINE, _MARK, _POP, _POP_MARK, _DUP, _APPEND, _APPENDS, _LIST, _EMPTY_TUPLE, _TUPLE, _TUPLE_N,
 _EMPTY_DICT, _DICT, _SETITEM, _SETITEMS, _ADDITEMS, _FROZENSET, _GET, _PUT, _MEMOIZE, _EXT, _GLOBAL,
 _STACK_GLOBAL, _INST, _OBJ, _REDUCE, _BUILD, _NEWOBJ, _NEWOBJ_EX, _PROTO, _STOP, _FRAME, _BINPERSID,
 _BOOL, _LONG_N, _STRING_LINE, _NEW_SEQ) = range(46)

_KIND = [_BAD] * 256
_ARG: list[Any] = [None] * 256  # struct format, length width, or the like, per opcode


for _code, _kind, _arg in [
    ("N", _PUSH_NONE, None), ("\x88", _BOOL, True), ("\x89", _BOOL, False),
    ("J", _INT_FIXED, struct.Struct("<i")), ("K", _INT_FIXED, struct.Struct("<B")),
    ("M", _INT_FIXED, struct.Struct("<H")),
    ("\x8a", _LONG_N, struct.Struct("<B")), ("\x8b", _LONG_N, struct.Struct("<i")),
    ("\x8c", _STR_LEN, struct.Struct("<B")), ("X", _STR_LEN, struct.Struct("<I")),
    ("\x8d", _STR_LEN, struct.Struct("<Q")), ("U", _STR_LEN, struct.Struct("<B")),
    ("T", _STR_LEN, struct.Struct("<i")),
    ("C", _BYTES_LEN, struct.Struct("<B")), ("B", _BYTES_LEN, struct.Struct("<I")),
    ("\x8e", _BYTES_LEN, struct.Struct("<Q")), ("\x96", _BYTES_LEN, struct.Struct("<Q")),
    ("G", _SKIP, 8), ("F", _LINE_OPAQUE, None), ("P", _LINE_OPAQUE, None),
    ("I", _INT_LINE, None), ("L", _INT_LINE, None), ("V", _STR_LINE, None), ("S", _STRING_LINE, None),
    ("\x97", _PUSH_OPAQUE, None), ("\x98", _BINPERSID, None), ("Q", _BINPERSID, None),
    ("(", _MARK, None), ("0", _POP, None), ("1", _POP_MARK, None), ("2", _DUP, None),
    ("]", _NEW_SEQ, None), ("a", _APPEND, None), ("e", _APPENDS, None), ("l", _LIST, None),
    (")", _EMPTY_TUPLE, None), ("t", _TUPLE, None),
    ("\x85", _TUPLE_N, 1), ("\x86", _TUPLE_N, 2), ("\x87", _TUPLE_N, 3),
    ("}", _EMPTY_DICT, None), ("d", _DICT, None), ("s", _SETITEM, None), ("u", _SETITEMS, None),
    ("\x8f", _NEW_SEQ, None), ("\x90", _ADDITEMS, None), ("\x91", _FROZENSET, None),
    ("g", _GET, None), ("h", _GET, struct.Struct("<B")), ("j", _GET, struct.Struct("<I")),
    ("p", _PUT, None), ("q", _PUT, struct.Struct("<B")), ("r", _PUT, struct.Struct("<I")),
    ("\x94", _MEMOIZE, None),
    ("\x82", _EXT, struct.Struct("<B")), ("\x83", _EXT, struct.Struct("<H")),
    ("\x84", _EXT, struct.Struct("<i")),
    ("c", _GLOBAL, None), ("\x93", _STACK_GLOBAL, None), ("i", _INST, None), ("o", _OBJ, None),
    ("R", _REDUCE, None), ("b", _BUILD, None), ("\x81", _NEWOBJ, None), ("\x92", _NEWOBJ_EX, None),
    ("\x80", _PROTO, None), (".", _STOP, None), ("\x95", _FRAME, struct.Struct("<Q")),
]:
    _KIND[ord(_code)], _ARG[ord(_code)] = _kind, _arg

# The table must cover exactly the opcodes CPython's pickle knows: a new opcode fails the import (closed).
if {i for i in range(256) if _KIND[i] != _BAD} != {ord(op.code) for op in pickletools.opcodes}:
    raise ImportError("pickle_scan's opcode table differs from this Python's pickletools.opcodes")


def scan_pickles(buf: Any, start: int = 0, end: int | None = None) -> PickleScan:
    """Walk every pickle stored back to back in ``buf[start:end]`` (bytes, mmap or memoryview).

    Anything after a pickle's ``STOP`` must be another complete pickle; a stream that cannot be
    walked to its end is reported as ``malformed`` (the caller fails closed on any problem).
    """
    end = len(buf) if end is None else end
    scan = PickleScan()
    pos = start
    try:
        while pos < end:
            pos = walk_pickle(buf, pos, end, scan, joblib=True)
    except Malformed as exc:
        scan.problems.append(Problem(exc.kind, str(exc), exc.offset))
    return scan


def _resolve(module: str, name: str, proto: int) -> tuple[str, str]:
    """The unpickler's ``fix_imports`` mapping of Python 2 names, applied for protocols < 3."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


def _call(fn: Any, args: Any, init: bool) -> Any:
    """The modelled result of calling ``fn(*args)`` (``init``) or ``fn.__new__`` (not ``init``)."""
    if not isinstance(fn, _Global):
        return OPAQUE
    name = fn.qualname
    if name == ARRAY_WRAPPER:
        attrs: dict = {}
        if init and isinstance(args, tuple):
            attrs = {**_WRAPPER_INIT_DEFAULTS, **dict(zip(_WRAPPER_INIT_ARGS, args, strict=False))}
        return _Obj(name, args, attrs)
    if name == _DTYPE and init:
        return _Obj(name, args, {})
    if name in _RECONSTRUCTORS and isinstance(args, tuple) and args and isinstance(args[0], _Global):
        return _call(args[0], (), init=False)
    return OPAQUE


def _is_wrapper(value: Any) -> bool:
    """joblib's array wrapper class or an instance of it (what makes joblib read raw bytes at BUILD)."""
    kind = type(value)
    return (kind is _Global and value.qualname == ARRAY_WRAPPER) or (kind is _Obj and value.cls == ARRAY_WRAPPER)


def _plain_state(state: Any) -> bool:
    """A BUILD state whose every key the walker knows: ``None``, a dict, or ``(dict|None, dict|None)``."""
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    return all(part is None or (type(part) is dict and OPAQUE not in part) for part in parts)


def _reconstructs_wrapper(args: Any) -> bool:
    """``copyreg._reconstructor(NumpyArrayWrapper, object, None)``: how protocols 0 and 1 write a wrapper."""
    return (type(args) is tuple and len(args) == 3 and type(args[0]) is _Global
            and args[0].qualname == ARRAY_WRAPPER and type(args[1]) is _Global
            and args[1].qualname == "builtins.object" and args[2] is None)


def _build(inst: Any, state: Any) -> None:
    if not isinstance(inst, _Obj):
        return
    if inst.cls == _DTYPE:
        inst.state = state
        return
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    for part in (state, slots):
        if isinstance(part, dict):
            inst.attrs.update(part)


def _numpy_dtype(value: Any, offset: int) -> Any:
    """The real ``numpy.dtype`` the unpickler would build (a copy; numpy parses it, nothing runs)."""
    import numpy as np

    def convert(item: Any) -> Any:
        if isinstance(item, _Obj) and item.cls == _DTYPE:
            return build(item)
        if isinstance(item, tuple):
            return tuple(convert(x) for x in item)
        if isinstance(item, dict):
            return {convert(k): convert(v) for k, v in item.items()}
        if isinstance(item, (_Obj, _Global, _Opaque)):
            raise Malformed(offset, "joblib array wrapper has a dtype the scan cannot model")
        return item

    def build(obj: _Obj) -> Any:
        args = obj.args
        if not (isinstance(args, tuple) and args and isinstance(args[0], str)
                and _TYPESTR.fullmatch(args[0])):
            raise Malformed(offset, "joblib array wrapper has a dtype the scan cannot model")
        dtype = np.dtype(args[0], bool(args[1]) if len(args) > 1 else False, True)
        if obj.state is not None:
            dtype.__setstate__(convert(obj.state))
        return dtype

    if not (isinstance(value, _Obj) and value.cls == _DTYPE):
        raise Malformed(offset, "joblib array wrapper without a numpy dtype")
    try:
        return build(value)
    except Malformed:
        raise
    except Exception as exc:
        raise Malformed(offset, f"joblib array wrapper has an invalid dtype ({type(exc).__name__})") from None


def _array_extent(buf: Any, pos: int, end: int, wrapper: _Obj, scan: PickleScan) -> int:
    """Skip what joblib's ``NumpyArrayWrapper.read`` consumes after ``BUILD``; return the new offset."""
    attrs = wrapper.attrs
    dtype = _numpy_dtype(attrs.get("dtype"), pos)
    if dtype.hasobject:
        return walk_pickle(buf, pos, end, scan, joblib=False)
    shape = attrs.get("shape")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise Malformed(pos, "joblib array wrapper without a valid shape")
    align = attrs.get("numpy_array_alignment_bytes")
    if not (align is None or type(align) is int):  # a call's result: joblib may or may not read padding
        raise Malformed(pos, "joblib array wrapper with an alignment the scan cannot model")
    if align is not None:
        if pos >= end:
            raise Malformed(pos, "joblib array padding past the end of the stream")
        pos += 1 + buf[pos]
    count = 1
    for n in shape:
        count *= n
    pos += count * dtype.itemsize
    if pos > end:
        raise Malformed(pos, "joblib array data runs past the end of the stream")
    return pos


def walk_pickle(buf: Any, pos: int, end: int, scan: PickleScan, joblib: bool) -> int:
    """Walk one pickle from ``pos`` up to its ``STOP``; return the offset after it.

    Records every global import in ``scan``; raises ``Malformed`` where the unpickler would fail.
    ``joblib`` follows joblib's array-wrapper reads (off for the nested pickle of an object array).
    """
    kinds, args_of, find = _KIND, _ARG, buf.find
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}
    proto = 0
    first = pos
    frame_end = pos
    opcodes = 0
    refs = 0  # GETs of containers and DUPs: how far the stream multiplies what it built
    fetched: set[int] = set()  # ids of containers pushed again by GET or DUP: only these can hold themselves

    def holds_itself(items: list[Any]) -> bool:
        target = stack[-1]
        return id(target) in fetched and any(item is target for item in items)

    # joblib mode: tuples that hold the array wrapper class or an instance (kept alive, keyed by id), and
    # whether the stream named the wrapper at all (before that, no value can be one: the checks are free).
    carriers: dict[int, tuple] = {}
    wrapper_named = False

    def carries(value: Any) -> bool:
        return _is_wrapper(value) or (type(value) is tuple and id(value) in carriers)

    def contained(items: Any, at: int) -> None:
        """joblib's wrapper passed where the walker cannot follow what becomes of it: malformed. Called only
        once the stream named the wrapper (``wrapper_named``): before that, no value can be one."""
        if any(carries(item) for item in items):
            raise Malformed(at, f"{ARRAY_WRAPPER} used other than the way joblib writes it: the scan cannot "
                            "tell which bytes joblib would read as array data")
    globals_, problems = scan.globals, scan.problems

    def line(start: int) -> int:
        nl = find(b"\n", start, end)
        if nl < 0:
            raise Malformed(start, "newline-terminated argument runs past the end of the stream")
        return nl

    def memo_key(arg: Any, at: int) -> tuple[int, int]:
        """The memo index of a PUT/GET (text for protocol 0, binary after), and where the next opcode is."""
        if arg is None:
            nl = line(at)
            key = int(buf[at:nl])
            if key < 0:
                raise Malformed(at, "negative memo index")
            return key, nl + 1
        return arg.unpack_from(buf, at)[0], at + arg.size

    def past_end(at: int, what: str, n: int) -> Malformed:
        """A declared length past the end: a truncated stream, or (longer than the whole stream) a
        size meant to make the loader allocate."""
        if n > 4 * (end - first) + (1 << 20):
            return Malformed(at, f"{what} declares {n} bytes, far more than the whole stream", "resource")
        return Malformed(at, f"{what} runs past the end of the stream (truncated)")

    def pop_mark(at: int) -> list[Any]:
        nonlocal stack
        if not metastack:
            raise Malformed(at, "MARK expected on the stack")
        items, stack = stack, metastack.pop()
        return items

    def passed(args: Any, skip_first: bool = False) -> None:
        """Globals handed to a call as arguments may be called by it (``_rebuild_from_type_v2(func, ...)``
        calls ``func(*args)``): record them as calls too (only the reconstructor's class is not called)."""
        todo = [args]
        while todo:
            item = todo.pop()
            if type(item) is _Global:
                scan.calls.append(item.ref)
            elif type(item) is tuple:
                todo.extend(item[1:] if skip_first and item is args else item)
            elif type(item) is dict:
                todo.extend(item.values())

    def record(module: str, name: str, opname: str, at: int) -> _Global:
        nonlocal wrapper_named
        module, name = _resolve(module, name, proto)
        ref = GlobalRef(module, name, opname, at)
        globals_.append(ref)
        value = _Global(ref)
        wrapper_named = wrapper_named or (joblib and value.qualname == ARRAY_WRAPPER)
        return value

    try:
        while True:
            if pos >= end:
                raise Malformed(pos, "pickle ends without STOP (truncated)")
            start = pos
            code = buf[pos]
            kind = kinds[code]
            arg = args_of[code]
            pos += 1
            opcodes += 1
            if kind == _GET:  # the commonest opcodes first
                if code == 0x68:  # BINGET: a one-byte index, read without struct
                    key = buf[pos]
                    pos += 1
                else:
                    key, pos = memo_key(arg, pos)
                if key not in memo:
                    raise Malformed(start, f"memo key {key} was never stored")
                value = memo[key]
                if type(value) is not str and type(value) in _CONTAINERS:  # str first: the common, cheap case
                    refs += 1
                    fetched.add(id(value))
                stack.append(value)
            elif kind == _PUT:
                if code == 0x71:  # BINPUT
                    key = buf[pos]
                    pos += 1
                else:
                    key, pos = memo_key(arg, pos)
                if key > len(memo) + _MEMO_SLACK:
                    raise Malformed(start, f"memo index {key} far past the {len(memo)} entries stored", "resource")
                memo[key] = stack[-1]
            elif kind == _MEMOIZE:
                memo[len(memo)] = stack[-1]
            elif kind == _STR_LEN:
                n = arg.unpack_from(buf, pos)[0]
                pos += arg.size
                if n < 0 or pos + n > end:
                    raise past_end(start, "string", n)
                stack.append(str(buf[pos:pos + n], "utf-8" if code in (0x8C, 0x58, 0x8D) else "latin-1")
                             if n <= _MAX_STR else OPAQUE)
                pos += n
            elif kind == _INT_FIXED:
                if code == 0x4B:  # BININT1
                    stack.append(buf[pos])
                    pos += 1
                else:
                    stack.append(arg.unpack_from(buf, pos)[0])
                    pos += arg.size
            elif kind == _MARK:
                metastack.append(stack)
                stack = []
            elif kind == _SETITEMS:
                items = pop_mark(start)
                if wrapper_named:
                    contained(items, start)
                if fetched and holds_itself(items):
                    raise Malformed(start, "a dict that contains itself", "resource")
                target = stack[-1]
                if type(target) is dict:
                    pairs = iter(items)  # an odd last item is ignored: CPython refuses the stream there
                    for key, value in zip(pairs, pairs, strict=False):
                        target[key if type(key) in _PLAIN_KEYS else OPAQUE] = value
            elif kind == _EMPTY_DICT:
                stack.append({})
            elif kind == _SKIP:
                pos += arg
                stack.append(OPAQUE)
            elif kind == _TUPLE_N:
                if len(stack) < arg:
                    raise Malformed(start, "stack underflow")
                value = tuple(stack[-arg:])
                del stack[-arg:]
                if wrapper_named and any(carries(item) for item in value):
                    carriers[id(value)] = value
                stack.append(value)
            elif kind == _EMPTY_TUPLE:
                stack.append(())
            elif kind == _TUPLE:
                value = tuple(pop_mark(start))  # rebinds ``stack``: pop before appending
                if wrapper_named and any(carries(item) for item in value):
                    carriers[id(value)] = value
                stack.append(value)
            elif kind == _PUSH_OPAQUE:
                stack.append(OPAQUE)
            elif kind == _PUSH_NONE:
                stack.append(None)
            elif kind == _BOOL:
                stack.append(arg)
            elif kind == _BYTES_LEN:
                n = arg.unpack_from(buf, pos)[0]
                pos += arg.size + n
                if pos > end:
                    raise past_end(start, "bytes", n)
                stack.append(OPAQUE)
            elif kind == _APPEND:
                if wrapper_named:
                    contained(stack[-1:], start)
                if stack.pop() is stack[-1]:
                    raise Malformed(start, "a list that contains itself", "resource")
            elif kind == _APPENDS or kind == _ADDITEMS:
                items = pop_mark(start)
                if wrapper_named:
                    contained(items, start)
                if not stack:
                    raise Malformed(start, "stack underflow")
                if fetched and holds_itself(items):
                    raise Malformed(start, "a list or set that contains itself", "resource")
            elif kind == _LIST or kind == _FROZENSET:
                items = pop_mark(start)
                if wrapper_named:
                    contained(items, start)
                stack.append(_Seq())
            elif kind == _NEW_SEQ:
                stack.append(_Seq())
            elif kind == _DICT:
                items = pop_mark(start)
                if wrapper_named:
                    contained(items, start)
                pairs = iter(items)
                stack.append({key if type(key) in _PLAIN_KEYS else OPAQUE: value
                              for key, value in zip(pairs, pairs, strict=False)})
            elif kind == _SETITEM:
                value = stack.pop()
                key = stack.pop()
                if wrapper_named:
                    contained((key, value), start)
                target = stack[-1]
                if (value is target or key is target) and id(target) in fetched:
                    raise Malformed(start, "a dict that contains itself", "resource")
                if isinstance(target, dict):
                    target[key if type(key) in _PLAIN_KEYS else OPAQUE] = value
            elif kind == _BUILD:
                state = stack.pop()
                inst = stack[-1]
                if type(inst) is _Global:  # never in a real pickle: BUILD follows the call that made an instance
                    raise Malformed(start, f"BUILD on {inst.qualname} itself: it would set attributes of a "
                                    "class or function for the whole loading process")
                if wrapper_named:
                    contained((state,) if type(inst) is _Obj else (state, inst), start)  # BUILD on a class: setattr
                wrapper = joblib and type(inst) is _Obj and inst.cls == ARRAY_WRAPPER
                if wrapper and not _plain_state(state):
                    raise Malformed(start, f"{ARRAY_WRAPPER} state the scan cannot read: joblib's array size "
                                    "would be unknown")
                _build(inst, state)
                if wrapper:
                    if frame_end > pos:
                        raise Malformed(start, "joblib array read inside an unfinished pickle frame")
                    pos = _array_extent(buf, pos, end, inst, scan)
                    stack[-1] = OPAQUE
                    continue  # the array bytes are read from the file, outside any frame
            elif kind == _REDUCE:
                fargs = stack.pop()
                fn = stack[-1]
                if type(fn) is _Global:
                    scan.calls.append(fn.ref)
                    passed(fargs, skip_first=fn.qualname in _RECONSTRUCTORS)
                if wrapper_named and not (type(fn) is _Global and fn.qualname in _RECONSTRUCTORS
                                          and _reconstructs_wrapper(fargs)):
                    contained((fargs,) if type(fn) is _Global else (fargs, fn), start)
                stack[-1] = _call(fn, fargs, init=True)
            elif kind == _NEWOBJ or kind == _NEWOBJ_EX:
                kwargs = stack.pop() if kind == _NEWOBJ_EX else None
                fargs = stack.pop()
                if wrapper_named:
                    contained((fargs, kwargs) if type(stack[-1]) is _Global else (fargs, kwargs, stack[-1]), start)
                stack[-1] = _call(stack[-1], fargs, init=False)
            elif kind == _STACK_GLOBAL:
                name = stack.pop()
                module = stack.pop()
                if type(module) is str and type(name) is str:
                    stack.append(record(module, name, "STACK_GLOBAL", start))
                else:
                    problems.append(Problem("unresolved", "STACK_GLOBAL operands are not plain strings the "
                                            "scan can resolve", start))
                    stack.append(OPAQUE)
            elif kind == _GLOBAL or kind == _INST:
                nl = line(pos)
                nl2 = line(nl + 1)
                module, name = str(buf[pos:nl], "utf-8"), str(buf[nl + 1:nl2], "utf-8")
                pos = nl2 + 1
                ref = record(module, name, "GLOBAL" if kind == _GLOBAL else "INST", start)
                if kind == _GLOBAL:
                    stack.append(ref)
                else:
                    fargs = tuple(pop_mark(start))
                    if wrapper_named:
                        contained(fargs, start)
                    scan.calls.append(ref.ref)
                    passed(fargs)
                    stack.append(_call(ref, fargs, init=bool(fargs)))
            elif kind == _OBJ:
                items = pop_mark(start)
                if not items:
                    raise Malformed(start, "OBJ without a class")
                if type(items[0]) is _Global:
                    scan.calls.append(items[0].ref)
                    passed(tuple(items[1:]))
                if wrapper_named:
                    contained(items[1:] if type(items[0]) is _Global else items, start)
                stack.append(_call(items[0], tuple(items[1:]), init=len(items) > 1))
            elif kind == _FRAME:
                if start < frame_end:
                    raise Malformed(start, "a FRAME begins before the current frame ends", loads=True)
                n = arg.unpack_from(buf, pos)[0]
                pos += 8
                frame_end = pos + n
                if frame_end > end:
                    raise past_end(start, "frame", n)
            elif kind == _PROTO:
                if start != first:
                    raise Malformed(start, "PROTO after the first opcode (a second PROTO)", loads=True)
                proto = buf[pos]
                pos += 1
                if proto > 5:
                    raise Malformed(start, f"unsupported pickle protocol {proto}")
            elif kind == _LONG_N:
                n = arg.unpack_from(buf, pos)[0]
                pos += arg.size
                if n < 0 or pos + n > end:
                    raise past_end(start, "long", n)
                stack.append(int.from_bytes(buf[pos:pos + n], "little", signed=True) if n <= 64 else OPAQUE)
                pos += n
            elif kind == _INT_LINE:
                nl = line(pos)
                text = bytes(buf[pos:nl])
                pos = nl + 1
                if code == 0x4C:  # LONG: decimal with an optional L, as PyLong_FromString(base 10) reads it
                    stack.append(int(text[:-1] if text.endswith(b"L") else text, 10))
                else:  # INT: strtol(base 0), with the protocol-0 booleans
                    stack.append(True if text == b"01" else False if text == b"00" else int(text, 0))
            elif kind == _STR_LINE or kind == _STRING_LINE:
                nl = line(pos)
                raw = bytes(buf[pos:nl])
                pos = nl + 1
                if kind == _STR_LINE:
                    stack.append(raw.decode("raw-unicode-escape"))
                elif len(raw) >= 2 and raw[0] == raw[-1] and raw[:1] in (b"'", b'"'):
                    stack.append(codecs.escape_decode(raw[1:-1])[0].decode("ascii"))
                else:
                    raise Malformed(start, "STRING argument is not quoted")
            elif kind == _LINE_OPAQUE:
                pos = line(pos) + 1
                stack.append(OPAQUE)
            elif kind == _BINPERSID:
                stack[-1] = OPAQUE
            elif kind == _POP:
                if stack:
                    stack.pop()
                else:
                    pop_mark(start)
            elif kind == _POP_MARK:
                pop_mark(start)
            elif kind == _DUP:
                refs += 1
                fetched.add(id(stack[-1]))
                stack.append(stack[-1])
            elif kind == _EXT:
                code_ = arg.unpack_from(buf, pos)[0]
                pos += arg.size
                problems.append(Problem("extension", f"copyreg extension code {code_} imports a global "
                                        "chosen by the loading process", start))
                stack.append(OPAQUE)
            elif kind == _STOP:
                stack.pop()
                if stack or metastack:
                    raise Malformed(start, "STOP leaves values or marks on the stack")
                if pos < frame_end:
                    raise Malformed(start, "STOP inside a frame that goes on")
                if refs > _MAX_REFS and refs * 8 > opcodes:
                    raise Malformed(start, f"{refs} DUP/GET references to containers in {opcodes} opcodes: "
                                    "a memo/DUP expansion bomb", "resource")
                scan.pickles += 1
                return pos
            else:
                raise Malformed(start, f"invalid opcode 0x{code:02x}")
            if pos > frame_end:
                if start < frame_end:
                    raise Malformed(start, "an opcode's argument crosses the end of its frame", loads=True)
                if pos > end:
                    raise Malformed(start, "argument runs past the end of the stream")
    except IndexError:
        raise Malformed(start, "stack underflow") from None
    except (struct.error, ValueError, TypeError, OverflowError) as exc:
        raise Malformed(start, f"invalid argument ({type(exc).__name__})") from None
    finally:
        scan.opcodes += opcodes
