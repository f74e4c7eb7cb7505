"""The layer contract (ADR 0012), checked by import-linter: entry points → gates → trust → core, no Airflow below
operators/hooks. The second test proves the contract bites: a copy of the tree with a bad import must break it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_the_layer_contracts_hold():
    run = lint_imports(ROOT / "src")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout


@pytest.mark.parametrize(("module", "bad_import", "broken"), [
    ("core/results.py", "import mlgate.gates.data.pii", "mlgate.core is not allowed to import mlgate.gates"),
    ("trust/audit.py", "import mlgate.gates.model.artifacts", "mlgate.trust is not allowed to import mlgate.gates"),
    ("gates/data/pii.py", "import airflow", "Gates, trust and core never import Airflow BROKEN"),
], ids=["core-imports-gate", "trust-imports-gate", "gate-imports-airflow"])
def test_a_bad_import_breaks_the_contract(tmp_path, module, bad_import, broken):
    shutil.copytree(ROOT / "src/mlgate", tmp_path / "mlgate", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "mlgate" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # deliberate layer violation\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert broken in run.stdout, run.stdout
