"""``model.artifact``: each malicious corpus file blocks, naming its global and offset; benign ones pass."""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import model_corpus as corpus  # noqa: E402

from mlgate.core.digests import tree_digest  # noqa: E402
from mlgate.core.errors import GateInputError  # noqa: E402
from mlgate.core.results import Status  # noqa: E402
from mlgate.gates.model.artifacts import Allowlist, ArtifactPolicy, check_artifact, scan_path  # noqa: E402

pytestmark = pytest.mark.unit

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    cases = [c for c in corpus.CASES if not c.needs or HAS_TORCH]
    return corpus.build_corpus(tmp_path_factory.mktemp("corpus"), cases)


def _case_param(case: corpus.Case):
    marks = [pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")] if case.needs else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_case_param(c) for c in corpus.CASES if not c.malicious])
def test_benign_files_pass(built, case):
    assert scan_path(built[case.name]) == []


@pytest.mark.parametrize("case", [_case_param(c) for c in corpus.CASES if c.malicious])
def test_malicious_files_block_naming_global_and_offset(built, case):
    findings = scan_path(built[case.name])
    if "." in case.expect:  # a global: named in the message, located by file and opcode offset
        hits = [f for f in findings if f.id == "model.artifact.unsafe_global" and case.expect in f.message]
        assert hits, findings
        assert re.fullmatch(rf"{re.escape(built[case.name].name)}(::\S+)?@\d+", hits[0].location)
        assert str(hits[0].severity) == "critical"
    else:
        assert any(f.id == f"model.artifact.{case.expect}" for f in findings), findings


def test_joblib_payload_offset_is_after_the_arrays(built):
    [finding] = scan_path(built["joblib_after_arrays"])
    assert int(finding.location.rsplit("@", 1)[1]) > 5000 * 8 + 300 * 4  # past both arrays' raw bytes


def test_torch_finding_names_the_archive_member(built):
    if not HAS_TORCH:
        pytest.skip("torch not installed")
    [finding] = scan_path(built["torch_zip_payload"])
    assert "::torch_payload/data.pkl@" in finding.location


def test_scanning_never_runs_the_payload(tmp_path):
    marker = tmp_path / "pwned"
    target = tmp_path / "payload.pkl"
    target.write_bytes(pickle.dumps(corpus.Payload(os.mkdir, str(marker)), protocol=4))
    assert [f.id for f in scan_path(target)] == ["model.artifact.unsafe_global"]
    assert not marker.exists()


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("stack_global_of_ints.pkl", b"\x80\x04K\x01K\x02\x93)R.", "unresolved_global"),
    ("notes.txt", b"cos\nsystem\n(S'true'\ntR.", "unsafe_global"),
    ("empty.pkl", b"", "unknown_format"),
    ("trailing.pkl", pickle.dumps([1, 2], 4) + b"\x00junk", "malformed"),
    ("model.onnx", b"\x08\x07\xff\xff" * 8, "invalid_format"),
    ("conf.json", b"{not json", "invalid_format"),
    ("w.safetensors", struct.pack("<Q", 60) + b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,99]}}    '
     + bytes(16), "invalid_format"),
    ("fake_wrapper.joblib",  # a NumpyArrayWrapper claiming more array bytes than the file holds
     b"\x80\x04\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81}(\x8c\x05shape"
     b"J\x00\x00\x00\x10\x85\x8c\x05dtype\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02f8\x89\x88\x87Rub.",
     "malformed"),
    ("frame_cross.pkl", b"\x80\x04\x95" + struct.pack("<Q", 3) + b"\x8c\x02os\x8c\x06system\x93)R.", "malformed"),
    ("frame_in_frame.pkl", b"\x80\x04\x95" + struct.pack("<Q", 20) + b"\x95" + struct.pack("<Q", 1) + b"N"
     + b"N" * 10 + b".", "malformed"),
    ("second_proto.pkl", b"\x80\x04N0\x80\x02N.", "malformed"),
    ("left_on_stack.pkl", b"\x80\x04NN.", "malformed"),
    ("self_list.pkl", b"\x80\x04]\x94h\x00a.", "resource"),
    ("self_dict.pkl", b"\x80\x04}\x94K\x01h\x00s.", "resource"),
    ("self_set.pkl", b"\x80\x04\x8f\x94(h\x00\x90.", "resource"),
    ("dup_bomb.pkl", b"\x80\x04(]" + b"2" * 150 + b"l.", "resource"),
    ("memo_bomb.pkl", b"\x80\x04]\x94(" + b"h\x00" * 70 + b"l0.", "resource"),
    ("huge_memo.pkl", b"\x80\x04Nr\xff\xff\xff\x7f.", "resource"),
    ("huge_bytes.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b".", "resource"),
    ("booster_call.pkl", b"\x80\x04\x8c\x0cxgboost.core\x8c\x07Booster\x93NN\x8c\x0a/etc/hosts\x87R.",
     "unsafe_global"),
], ids=["unresolved-stack-global", "protocol0-pickle-as-text", "empty", "trailing-garbage",
        "garbage-named-onnx", "bad-json", "safetensors-bad-offsets", "joblib-wrapper-past-eof", "frame-crossing",
        "frame-inside-frame", "second-proto", "values-left-at-stop", "list-holds-itself", "dict-holds-itself",
        "set-holds-itself", "dup-expansion", "memo-expansion", "memo-index-huge", "declared-size-huge",
        "file-reading-class-called"])
def test_crafted_streams_block(tmp_path, name, data, kind):
    path = tmp_path / name
    path.write_bytes(data)
    assert any(f.id == f"model.artifact.{kind}" for f in scan_path(path)), scan_path(path)


def test_opcode_table_is_cpythons():
    import pickletools

    from mlgate.gates.model import pickle_scan

    known = {i for i in range(256) if pickle_scan._KIND[i] != pickle_scan._BAD}
    assert known == {ord(op.code) for op in pickletools.opcodes}


@pytest.mark.parametrize("name", ["w.safetensors", "weights.bin"])
def test_safetensors_header_length_mimicking_zlib_magic_passes(tmp_path, name):
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'.ljust(0x178)  # 78 01: zlib magic
    path = tmp_path / name
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    assert scan_path(path) == []


def test_npy_object_array_payload_blocks(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([corpus.PRINT, 1], dtype=object), allow_pickle=True)
    assert any("builtins.print" in f.message for f in scan_path(path))
    np.save(tmp_path / "plain.npy", np.arange(10.0))
    assert scan_path(tmp_path / "plain.npy") == []


def test_code_inside_a_zip_blocks(tmp_path):
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", pickle.dumps({"a": 1}, 2))
        archive.writestr("m/data/0", bytes(16))
        archive.writestr("m/code/__torch__.py", "def forward(self): ...\n")
    assert [f.id for f in scan_path(path)] == ["model.artifact.unknown_format"]


@pytest.mark.parametrize(("module", "name", "allowed"), [
    ("sklearn.linear_model._logistic", "LogisticRegression", True),
    ("sklearn.tree._tree", "Tree", True),
    ("numpy._core.multiarray", "_reconstruct", True),
    ("builtins", "set", True),
    ("torch._utils", "_rebuild_tensor_v2", True),
    ("builtins", "eval", False),
    ("builtins", "exec", False),
    ("builtins", "getattr", False),
    ("builtins", "__import__", False),
    ("sklearn.utils._testing", "assert_run_python_script_without_output", False),
    ("sklearn.datasets", "fetch_openml", False),
    ("sklearn.linear_model.tests.test_base", "helper", False),
    ("sklearn.pipeline", "Pipeline", True),
    ("sklearn.utils._testing", "ignore_warnings", False),
    ("torch.storage", "_load_from_bytes", False),
    ("numpy", "load", False),
    ("pandas", "read_pickle", False),
    ("sklearn.linear_model._logistic", "np", False),
    ("sklearn.linear_model._logistic", "LogisticRegression.__init__.__globals__", False),
    ("sklearn.pipeline", "attrgetter", False),
    ("sklearn.pipeline", "__builtins__", False),
], ids=lambda v: str(v))
def test_allowlist_is_precise(module, name, allowed):
    assert Allowlist().allows(module, name) is allowed


def test_check_artifact_passes_an_mlflow_dir(built):
    model_dir = built["mlflow_dir"]
    result = check_artifact(model_dir, ArtifactPolicy(), "sha256:policy")
    assert result.status is Status.PASSED, result.findings
    assert (result.gate, result.subject.kind) == ("model.artifact", "model")
    assert result.subject.digest == tree_digest(model_dir)
    assert result.metrics["files"] == 6 and result.metrics["globals"] > 0
    assert result.metrics["bytes"] == sum(p.stat().st_size for p in model_dir.iterdir())


def test_check_artifact_blocks_and_extra_globals_allow(built):
    path = built["reduce_p4"]
    assert check_artifact(path, ArtifactPolicy(), "sha256:p").status is Status.BLOCKED
    assert check_artifact(path, ArtifactPolicy(extra_allowed_globals=["posix.system"]), "sha256:p").passed



@pytest.mark.parametrize("name", ["os system", "posix.*", "sklearn.*", "posix"])
def test_policy_rejects_prefixes_and_malformed_global_names(name):
    with pytest.raises(ValidationError):
        ArtifactPolicy(extra_allowed_globals=[name])


def test_every_builtin_global_is_a_class_or_reviewed():
    from mlgate.gates.model.safe_globals import REVIEWED_CALLABLES, derived_classes

    assert derived_classes() and not any(name.endswith("*") for name in derived_classes())
    assert all(reason.strip() for reason in REVIEWED_CALLABLES.values())
    assert not {"builtins.getattr", "builtins.eval", "functools.partial", "builtins.type"} & Allowlist().exact


def test_missing_path_and_symlink_are_input_errors(tmp_path):
    with pytest.raises(GateInputError):
        scan_path(tmp_path / "absent")
    (tmp_path / "link.pkl").symlink_to(tmp_path / "absent")
    with pytest.raises(GateInputError):
        check_artifact(tmp_path, ArtifactPolicy(), "sha256:p")


def _skops_file(tmp_path, inject=None):
    import json as _json
    import zipfile as _zipfile

    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    path = tmp_path / "model.skops"
    dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    if inject is not None:
        with _zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        schema = _json.loads(members["schema.json"])
        schema["content"]["payload"] = inject
        members["schema.json"] = _json.dumps(schema).encode()
        with _zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return path


def test_a_skops_model_as_mlflow_3_writes_it_passes(tmp_path):
    assert scan_path(_skops_file(tmp_path)) == []


@pytest.mark.parametrize("node", [
    {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode", "content": "true"},
    {"__class__": "Popen", "__module__": "subprocess", "__loader__": "ObjectNode", "content": {}},
], ids=["function-node", "object-node"])
def test_a_skops_schema_naming_an_unsafe_type_blocks(tmp_path, node):
    findings = scan_path(_skops_file(tmp_path, inject=node))
    assert [f.id for f in findings] == ["model.artifact.unsafe_global"]
    assert f"{node['__module__']}.{node['__class__']}" in findings[0].message
    assert findings[0].location.endswith("model.skops::schema.json")


def _mlmodel_dir(tmp_path, flavors: str, files: dict[str, bytes]) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text(f"flavors:\n{flavors}")
    for name, data in files.items():
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(data)
    return model_dir


_PROTO0_PAYLOAD = b"cos\nsystem\n(S'true'\ntR."


@pytest.mark.parametrize(("flavors", "files", "kind"), [
    ("  sklearn:\n    pickled_model: notes.txt\n    serialization_format: cloudpickle\n",
     {"notes.txt": _PROTO0_PAYLOAD + b"\nsome trailing text that is not a pickle"}, "unsafe_global"),
    ("  python_function:\n    loader_module: evil_loader\n", {}, "mlmodel"),
    ("  python_function:\n    loader_module: mlflow.sklearn\n    code: code\n",
     {"code/helper.txt": b"harmless looking"}, "code_at_load"),
    ("  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_model: python_model.pkl\n",
     {"python_model.pkl": pickle.dumps({"a": 1}, 4)}, "code_at_load"),
    ("  sklearn:\n    pickled_model: ../outside.pkl\n", {}, "mlmodel"),
    ("  pytorch:\n    model_data: data\n", {"data/pickle_module_info.txt": b"evil_pickle_module\n"}, "code_at_load"),
    ("  keras:\n    data: data\n", {"data/keras_module.txt": b"evil\n"}, "code_at_load"),
    ("  sklearn:\n    pickled_model: model.pkl\n", {"model.pkl": pickle.dumps({"a": 1}, 4),
                                                       "loader.py": b"print('hi')\n"}, "code_at_load"),
    ("  python_function:\n    loader_module: mlflow.sklearn\n    model_path: weights.safetensors\n",
     {"weights.safetensors": pickle.dumps(corpus.PRINT, 0)}, "unsafe_global"),
], ids=["protocol0-pickle-named-as-text", "loader-module", "code-dir", "python-model", "path-traversal",
        "torch-pickle-module", "keras-module", "py-file", "pyfunc-model-path-without-flavor"])
def test_mlmodel_decides_how_files_are_judged(tmp_path, flavors, files, kind):
    findings = scan_path(_mlmodel_dir(tmp_path, flavors, files))
    assert any(f.id == f"model.artifact.{kind}" for f in findings), findings


def test_code_allowed_by_digest_passes(tmp_path):
    from mlgate.core.digests import file_digest

    model_dir = _mlmodel_dir(tmp_path, "  python_function:\n    loader_module: mlflow.sklearn\n    code: code\n",
                             {"code/helper.py": b"X = 1\n"})
    assert scan_path(model_dir)
    assert scan_path(model_dir, allowed_code_digests=[file_digest(model_dir / "code" / "helper.py")]) == []


def test_text_probe_judges_a_pickle_before_its_anomaly(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(_PROTO0_PAYLOAD[:-1] + b"\x00\xff not a pickle any more")
    assert any("os.system" in f.message for f in scan_path(path))
    (tmp_path / "conda.yaml").write_text("channels:\n- conda-forge\ndependencies:\n- python=3.11\n")
    assert scan_path(tmp_path / "conda.yaml") == []


def test_legacy_torch_and_whole_module_save(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    torch.save(model, tmp_path / "module.pt")
    assert scan_path(tmp_path) == []
    torch.save({"w": model.state_dict(), "x": corpus.PRINT}, tmp_path / "bad.bin", _use_new_zipfile_serialization=False)
    assert [f.location.split("@")[0] for f in scan_path(tmp_path)] == ["bad.bin"]


def test_keras_lambda_blocks_and_plain_keras_passes(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "ok.keras")
    assert scan_path(tmp_path / "ok.keras") == []
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    lam.save(tmp_path / "lam.keras")
    findings = scan_path(tmp_path / "lam.keras")
    assert any(f.id == "model.artifact.code_at_load" and "Lambda" in f.message for f in findings)


def test_a_pickled_keras_model_is_judged_by_the_archive_it_carries(tmp_path):
    """Keras 3 pickles a model as ``getattr(Model, "_unpickle_model")(BytesIO(<.keras archive>))``, loaded with
    safe mode off (modelscan's keras fixture): only that exact stream is read so, and its archive decides."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")

    def scanned(name: str, data: bytes) -> set[str]:
        (tmp_path / name).write_bytes(data)
        return {f.id.rsplit(".", 1)[-1] for f in scan_path(tmp_path / name)}

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for protocol in (3, 4, 5):
        assert scanned(f"plain{protocol}.pkl", pickle.dumps(plain, protocol=protocol)) == set()
    inputs = keras.Input((3,))
    assert scanned("functional.pkl", pickle.dumps(keras.Model(inputs, keras.layers.Dense(1)(inputs)))) == set()
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    assert scanned("lambda.pkl", pickle.dumps(lam)) == {"code_at_load"}
    wrapped = keras.Sequential([keras.Input((4,)), keras.layers.TorchModuleWrapper(torch.nn.Linear(4, 2))])
    assert scanned("torch_module.pkl", pickle.dumps(wrapped)) == {"code_at_load"}  # torch.load at load
    stream = pickle.dumps(plain, protocol=3)  # unframed: same-length edits keep it a valid pickle
    for variant in (stream[:-1] + b"0N.",  # one opcode more
                    stream.replace(b"\nSequential\n", b"\nSequentia1\n"),  # another class's _unpickle_model
                    stream + pickle.dumps(1, protocol=3)):  # a second pickle after it
        assert "unsafe_global" in scanned("variant.pkl", variant)


def test_folder_scan_reports_every_file_and_encrypted_members_block(tmp_path):
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(corpus.PRINT, 4))
    (tmp_path / "junk.dat").write_bytes(b"\x00\x01junk" * 10)
    with zipfile.ZipFile(tmp_path / "locked.zip", "w") as archive:
        archive.writestr("m.pkl", b"x")
    raw = bytearray((tmp_path / "locked.zip").read_bytes())
    raw[6] |= 1  # local header: encrypted
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 8] |= 1  # central directory: encrypted
    (tmp_path / "locked.zip").write_bytes(bytes(raw))
    (tmp_path / "z.pkl").write_bytes(pickle.dumps(corpus.SYSTEM, 4))
    findings = scan_path(tmp_path)
    by_file = {f.location.split("@")[0].split("::")[0]: f for f in findings}
    assert set(by_file) == {"a.pkl", "junk.dat", "locked.zip", "z.pkl"}
    assert "not a model file" in by_file["junk.dat"].message
    assert by_file["locked.zip"].id == "model.artifact.cannot_inspect"


def _save_mlflow_model(flavor: str, path: Path) -> None:
    """``mlflow.<flavor>.save_model`` with MLflow 3.17's default format (what log_model writes under the run)."""
    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    reqs = {"pip_requirements": ["mlflow"]}
    if flavor == "sklearn":
        import mlflow.sklearn
        from sklearn.linear_model import LogisticRegression

        mlflow.sklearn.save_model(LogisticRegression().fit(x, y), path, **reqs)
    elif flavor == "xgboost":
        import mlflow.xgboost
        import xgboost

        mlflow.xgboost.save_model(xgboost.XGBClassifier(n_estimators=2).fit(x, y), path, **reqs)
    elif flavor == "lightgbm":
        import lightgbm
        import mlflow.lightgbm

        mlflow.lightgbm.save_model(lightgbm.LGBMClassifier(n_estimators=2, verbose=-1).fit(x, y), path, **reqs)
    elif flavor == "pytorch-pickle":
        import mlflow.pytorch
        import torch

        mlflow.pytorch.save_model(torch.nn.Sequential(torch.nn.Linear(4, 2)), path, serialization_format="pickle",
                                  **reqs)
    elif flavor == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        import mlflow.keras

        mlflow.keras.save_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), str(path), **reqs)


@pytest.mark.parametrize(("flavor", "library"), [
    ("sklearn", "sklearn"), ("xgboost", "xgboost"), ("lightgbm", "lightgbm"), ("pytorch-pickle", "torch"),
    ("keras", "keras"),
])
def test_mlflow_default_formats_scan_clean(tmp_path, flavor, library):
    """pt2 (MLflow's default for PyTorch) is the corpus case ``mlflow_pt2``."""
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    _save_mlflow_model(flavor, tmp_path / "model")
    assert scan_path(tmp_path / "model") == []
