"""The exact globals a model pickle may import: ``(module, qualified name)`` pairs, never a module prefix.

Two sources, both reviewed in git:

- ``safe_globals.json``: the *classes* that real estimators' pickles import, recorded by
  ``scripts/derive_allowlist.py`` per library release (scikit-learn, numpy, pandas, scipy, torch,
  xgboost, lightgbm...). A class is admitted only if the script could import it and it is a class.
  The gate admits the union over every recorded release: a model may come from an older release than
  the one installed here, and nothing is imported at scan time.
- ``REVIEWED_CALLABLES`` below: the few non-class globals (reconstructor functions, constants) real
  pickles need, each with the reason it cannot reach attribute access, import, eval or I/O on
  attacker-chosen names. The derivation script refuses any other non-class global it meets.

A policy may add exact names (``gates.model.artifact.extra_allowed_globals``), never prefixes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA = Path(__file__).with_name("safe_globals.json")

_NUMPY_CORE = ("numpy.core", "numpy._core")

REVIEWED_CALLABLES: dict[str, str] = {
    **{f"{core}.multiarray._reconstruct": "ndarray.__new__ of an allowlisted subtype; shape and dtype only"
       for core in _NUMPY_CORE},
    **{f"{core}.multiarray.scalar": "a numpy scalar from an allowlisted dtype and raw bytes" for core in _NUMPY_CORE},
    **{f"{core}.numeric._frombuffer": "numpy.frombuffer of bytes with an allowlisted dtype" for core in _NUMPY_CORE},
    "numpy.ma.core._mareconstruct": "MaskedArray.__new__ of allowlisted classes and dtype",
    "numpy.random._pickle.__randomstate_ctor": "RandomState(bit generator name looked up in a fixed dict)",
    "numpy.random._pickle.__bit_generator_ctor": "bit generator by name from numpy's fixed dict",
    "numpy.random._pickle.__generator_ctor": "Generator(bit generator from numpy's fixed dict)",
    "copyreg._reconstructor": "base.__new__(cls) and base.__init__(state): cls and base are themselves globals "
                              "the allowlist judged",
    "copyreg.__newobj__": "cls.__new__(cls, *args) of a judged class",
    "_codecs.encode": "str -> bytes (protocol 2 bytes); codec names resolve only in the stdlib encodings package",
    "builtins.len": "len() of an already-built object",
    "collections.abc.Iterable": "an abstract base class: calling it raises, nothing runs",
    "__future__.annotations": "a constant (a _Feature instance), nothing to call",
    "torch._utils._rebuild_tensor": "tensor view of an allowlisted storage",
    "torch._utils._rebuild_tensor_v2": "tensor view of an allowlisted storage (torch.save's tensor path)",
    "torch._utils._rebuild_tensor_v3": "tensor view of an allowlisted storage with a dtype",
    "torch._utils._rebuild_parameter": "Parameter(tensor, requires_grad)",
    "torch._utils._rebuild_parameter_with_state": "Parameter plus a state dict set by setattr on itself",
    "torch._utils._rebuild_qtensor": "quantized tensor from storage and numbers",
    "torch._utils._rebuild_sparse_tensor": "sparse tensor from tensors",
    "torch._utils._rebuild_meta_tensor_no_storage": "empty meta tensor",
    "torch._utils._rebuild_nested_tensor": "nested tensor from tensors",
    "torch._utils._rebuild_device_tensor_from_numpy": "tensor from an ndarray",
    "torch._utils._rebuild_wrapper_subclass": "tensor subclass __new__ of a judged class",
    "torch._tensor._rebuild_from_type_v2": "func(*args) then as_subclass: func is itself a judged global",
    "torch.serialization._get_layout": "torch layout looked up by name in a fixed table",
    **{f"torch.{dtype}": "a torch.dtype or layout constant, nothing to call" for dtype in (
        "float16", "float32", "float64", "bfloat16", "complex64", "complex128", "uint8", "int8", "int16",
        "int32", "int64", "bool", "strided", "sparse_coo", "per_tensor_affine", "float8_e4m3fn", "float8_e5m2",
        "uint16", "uint32", "uint64", "complex32", "sparse_csr")},
    "pandas.core.indexes.base._new_Index": "cls.__new__(cls, **data) of a judged Index class",
    "pandas._libs.internals._unpickle_block": "Block from an ndarray and a slice",
    "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked": "Cython: checks a checksum, sets fields of a judged class",
    "sklearn.neighbors._kd_tree.newObj": "obj.__new__(obj) of a judged tree class",
    "numpy.mean": "a reduction over an array (FeatureAgglomeration's pooling function, stored, not called)",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": "Cython: sets integer fields of a SeedSequence",
    "pandas.NA": "a constant, nothing to call",
    "pandas.core.indexes.datetimes._new_DatetimeIndex": "cls.__new__ / _simple_new of a judged Index class",
    "pandas.core.indexes.interval._new_IntervalIndex": "cls.from_arrays of a judged Index class",
    "pyarrow.lib._restore_array": "an Arrow array from buffers and a type (pandas' Arrow-backed strings)",
    "pyarrow.lib.py_buffer": "an Arrow buffer over bytes",
    "pyarrow.lib.type_for_alias": "an Arrow type looked up by name in a fixed table",
    "scipy._lib.array_api_compat.numpy._aliases.asarray": "numpy.asarray (SplineTransformer), stored",
    "sklearn.cluster._kmeans._kmeans_single_lloyd": "a k-means step (BisectingKMeans' algorithm), stored",
    "sklearn.feature_selection._univariate_selection.f_classif": "a statistics function (score_func), stored",
    "sklearn.metrics._dist_metrics.newObj": "obj.__new__(obj) of a judged metric class",
}


# Admitted classes whose constructor reads files (``model_file=``): real pickles create them with
# ``cls.__new__`` (NEWOBJ, copyreg) and ``__setstate__``; a pickle that calls them with arguments blocks.
NEW_ONLY_CLASSES = frozenset({"xgboost.core.Booster", "lightgbm.basic.Booster"})


@functools.cache
def derived_classes() -> frozenset[str]:
    """Every class recorded in ``safe_globals.json``, over all recorded library releases."""
    releases = json.loads(DATA.read_text())["releases"]
    return frozenset(name for release in releases.values() for name in release["classes"])


@functools.cache
def builtin_allowlist() -> frozenset[str]:
    return derived_classes() | REVIEWED_CALLABLES.keys()
