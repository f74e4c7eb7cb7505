from __future__ import annotations

import pytest

from mlgate.core.digests import code_digest, tree_digest

pytestmark = pytest.mark.unit


@pytest.fixture
def source(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text("print('hi')\n")
    return tmp_path / "pkg"


def test_code_digest_ignores_bytecode_caches_created_by_importing_the_code(source):
    before = code_digest(source)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00\x01")
    assert code_digest(source) == before
    assert tree_digest(source) != before  # data manifests keep every file


def test_code_digest_changes_with_the_code(source):
    before = code_digest(source)
    (source / "train.py").write_text("print('bye')\n")
    assert code_digest(source) != before
