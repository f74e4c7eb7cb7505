"""The worker's side of isolated training (ADR 0020): what it accepts from the child, how it copies the
saved model, and git run where the checkout's own config cannot reach a key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlgate.core.errors import ToolError
from mlgate.core.isolation import SandboxPolicy, bwrap_status
from mlgate.gates.model.isolated_training import _answer, code_version_isolated, copy_model_dir

pytestmark = pytest.mark.unit


def saved_model(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "sub" / "model.pkl").write_bytes(b"\x80\x05N.")
    return root


def test_the_saved_directory_is_copied_as_regular_files(tmp_path):
    copy_model_dir(saved_model(tmp_path / "out"), tmp_path / "copy")
    assert sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*")) == [
        "MLmodel", "sub", "sub/model.pkl"]


@pytest.mark.parametrize("planted", ["file-link", "dir-link", "fifo", "no-mlmodel"])
def test_a_link_or_special_file_in_the_saved_model_is_refused(tmp_path, planted):
    """A link would make the worker upload a file only it can read (the key) into the model's artifacts."""
    out = saved_model(tmp_path / "out")
    secret = tmp_path / "signing.pem"
    secret.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    if planted == "file-link":
        (out / "sub" / "weights.bin").symlink_to(secret)
    elif planted == "dir-link":
        (out / "keys").symlink_to(tmp_path)
    elif planted == "fifo":
        os.mkfifo(out / "sub" / "pipe")
    else:
        (out / "MLmodel").unlink()
    with pytest.raises(ToolError, match="neither a regular file nor a directory|saved no MLmodel"):
        copy_model_dir(out, tmp_path / "copy")
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in (tmp_path / "copy").rglob("*") if p.is_file())


def test_a_model_directory_that_is_itself_a_link_is_refused(tmp_path):
    """Red team (A2): the child saves ``model`` as a link; the worker resolves it in its own view of the
    files, where any directory holding an MLmodel (a cached model, a key folder beside one) is uploaded."""
    elsewhere = saved_model(tmp_path / "worker-only")
    (elsewhere / "signing.pem").write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    (tmp_path / "produced").mkdir()
    (tmp_path / "produced" / "model").symlink_to(elsewhere)
    with pytest.raises(ToolError, match="link"):
        copy_model_dir(tmp_path / "produced" / "model", tmp_path / "copy")
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in (tmp_path / "copy").rglob("*") if p.is_file())


@pytest.mark.parametrize("answer", [
    None, {"flavor": "onnx", "params": {}, "metrics": {}}, {"flavor": "sklearn", "params": {"a": 1}, "metrics": {}},
    {"flavor": "sklearn", "params": {}, "metrics": {"a": "x"}},
    {"flavor": "sklearn", "params": {}, "metrics": {"a": True}},
    {"flavor": "sklearn", "params": {}, "metrics": {"a": float("nan")}},
    {"flavor": "sklearn", "params": {}, "metrics": {"mlgate.model.robustness.robust_accuracy": 0.99}},
], ids=["none", "flavor", "param-not-str", "metric-str", "metric-bool", "metric-nan", "posing-as-a-gate"])
def test_a_malformed_answer_is_a_tool_error(answer):
    with pytest.raises(ToolError, match="malformed|named like a gate"):
        _answer(answer)


@pytest.mark.skipif(not bwrap_status()[0], reason="bubblewrap cannot run here")
def test_git_config_of_the_training_code_runs_no_command_beside_the_key(tmp_path):
    """Red team: training code supplied with its own ``.git`` whose ``core.fsmonitor`` is a command; the
    worker's ``git status`` ran it (as this user, beside the key). Now git runs in the isolated child."""
    repo, marker = tmp_path / "code", tmp_path / "pwned"
    repo.mkdir()
    (repo / "train.py").write_text("def train(**_): pass\n")
    git = ["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"],
                 ["config", "core.fsmonitor", f"cat $MLGATE_SIGNING_KEY_FILE > {marker}; echo pwned >> {marker}"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    version = code_version_isolated(repo, SandboxPolicy(timeout_s=120))
    assert version.startswith(("git:", "tree:")) and not marker.exists()
