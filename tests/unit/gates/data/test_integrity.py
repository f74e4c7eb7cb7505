from __future__ import annotations

import json

import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.gates.data.integrity import Manifest, build_manifest, check_integrity
from tests.helpers import default_policy

pytestmark = pytest.mark.unit


def policy(algorithm="sha256"):
    data = default_policy()
    data["gates"]["data.integrity"]["algorithm"] = algorithm
    return parse_policy(data)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    (root / "part").mkdir(parents=True)
    (root / "a.csv").write_text("x,y\n1,2\n")
    (root / "part" / "b.csv").write_text("x,y\n3,4\n")
    (root / "empty.txt").write_text("")
    return root


def pin(dataset, tmp_path, algorithm="sha256"):
    return build_manifest(dataset, algorithm).save(tmp_path / "manifest.json")


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_unchanged_data_passes_and_its_digest_is_the_pinned_one(dataset, tmp_path, algorithm):
    manifest = pin(dataset, tmp_path, algorithm)
    result = check_integrity(dataset, manifest, policy(algorithm))
    assert result.status is Status.PASSED
    assert result.subject.digest == Manifest.load(manifest).digest == result.thresholds["pinned_digest"]
    assert result.metrics["files"] == 3


def _flip_byte(d):
    raw = bytearray((d / "a.csv").read_bytes())
    raw[-2] ^= 1
    (d / "a.csv").write_bytes(bytes(raw))


@pytest.mark.parametrize(("change", "finding", "location"), [
    (_flip_byte, "data.integrity.changed", "a.csv"),
    (lambda d: (d / "part" / "b.csv").unlink(), "data.integrity.missing", "part/b.csv"),
    (lambda d: (d / "new.csv").write_text("z\n"), "data.integrity.extra", "new.csv"),
], ids=["one-byte-changed", "file-missing", "file-extra"])
def test_any_change_after_pinning_blocks_and_names_the_file(dataset, tmp_path, change, finding, location):
    manifest = pin(dataset, tmp_path)
    change(dataset)
    result = check_integrity(dataset, manifest, policy())
    assert result.status is Status.BLOCKED
    assert [(f.id, f.location) for f in result.findings] == [(finding, location)]


def test_a_single_file_is_pinned_by_name(dataset, tmp_path):
    manifest = build_manifest(dataset / "a.csv")
    assert list(manifest.files) == ["a.csv"]


def test_a_manifest_edited_by_hand_is_rejected(dataset, tmp_path):
    path = pin(dataset, tmp_path)
    data = json.loads(path.read_text())
    data["files"]["a.csv"]["digest"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(GateInputError, match="the manifest itself was edited"):
        check_integrity(dataset, path, policy())


def test_a_manifest_pinned_with_another_algorithm_than_the_policy_is_refused(dataset, tmp_path):
    with pytest.raises(GateInputError, match="pinned with blake3"):
        check_integrity(dataset, pin(dataset, tmp_path, "blake3"), policy("sha256"))


@pytest.mark.parametrize("content", ["not json", '{"version": 1}', '{"version": 9, "algorithm": "sha256"}'],
                         ids=["garbage", "no-files", "future-version"])
def test_a_malformed_manifest_is_an_input_error(dataset, tmp_path, content):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(GateInputError, match="not a valid mlgate manifest"):
        check_integrity(dataset, path, policy())


def test_symlinks_are_refused(dataset, tmp_path):
    (dataset / "link.csv").symlink_to(dataset / "a.csv")
    with pytest.raises(GateInputError, match="symbolic link"):
        build_manifest(dataset)


def test_missing_data_is_an_input_error(tmp_path):
    with pytest.raises(GateInputError, match="no such file or directory"):
        build_manifest(tmp_path / "absent")
