"""Session fixtures of the integration tests that run trivy: the binary, an offline DB, source trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.core.trivy import find_trivy
from tests.fixtures.oci_image import FIXED, VULNERABLE
from tests.fixtures.trivy_db import write_trivy_db


@pytest.fixture(scope="session")
def trivy_binary() -> Path:
    return find_trivy(None)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return write_trivy_db(tmp_path_factory.mktemp("trivy-cache"))


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    trees = {}
    for name, version in (("vulnerable", VULNERABLE), ("fixed", FIXED)):
        (root / name).mkdir()
        (root / name / "requirements.txt").write_text(f"requests=={version['requests']}\n")
        trees[name] = root / name
    return trees
