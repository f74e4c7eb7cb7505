"""mlgate's compose checks: each Rego file is one documented check with trivy's METADATA annotations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlgate.gates.deploy.deploy_config import COMPOSE_CHECKS, COMPOSE_PASS
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

DOCS = ROOT / "docs" / "checks.md"
CHECK_FILES = sorted(p for p in COMPOSE_CHECKS.glob("*.rego") if p.name != "lib.rego")


def metadata(path: Path) -> dict:
    """The ``# METADATA`` comment block above the package line, as YAML."""
    lines = path.read_text().splitlines()
    assert lines[0] == "# METADATA", f"{path.name} does not start with a METADATA block"
    end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return yaml.safe_load("\n".join(line[2:] for line in lines[1:end]))


def test_there_are_ten_compose_checks_with_distinct_ids():
    ids = [metadata(p)["custom"]["id"] for p in CHECK_FILES]
    assert sorted(ids) == [f"MLG-COMPOSE-{n:03d}" for n in range(1, 11)]


@pytest.mark.parametrize("path", CHECK_FILES, ids=[p.stem for p in CHECK_FILES])
def test_each_check_has_metadata_a_user_namespace_and_a_docs_row(path):
    meta = metadata(path)
    custom = meta["custom"]
    assert meta["title"] and meta["description"] and custom["recommended_action"]
    assert custom["severity"] in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert custom["input"]["selector"] == [{"type": "yaml"}]
    assert re.search(rf"^package user\.compose\.{path.stem}$", path.read_text(), re.MULTILINE)
    row = next(line for line in DOCS.read_text().splitlines() if line.startswith(f"| {custom['id']} |"))
    assert f"| {custom['severity']} |" in row


def test_the_compose_pass_loads_the_shipped_checks_in_the_user_namespace():
    assert COMPOSE_PASS[COMPOSE_PASS.index("--config-check") + 1] == str(COMPOSE_CHECKS)
    assert COMPOSE_PASS[COMPOSE_PASS.index("--check-namespaces") + 1] == "user"
    assert COMPOSE_PASS[COMPOSE_PASS.index("--misconfig-scanners") + 1] == "yaml"
