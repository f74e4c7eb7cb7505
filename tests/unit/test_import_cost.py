"""DAG parsing is on Airflow's hot path: operators and DAG files must not load heavy libraries,
and the core must not load Airflow (it also runs from the CLI in any CI system)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

HEAVY = ("great_expectations", "art", "torch", "mlflow", "sklearn", "pandas")
CORE_MODULES = sorted(f"mlgate.core.{p.stem}" for p in (ROOT / "src/mlgate/core").glob("*.py") if p.stem != "__init__")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_never_import_airflow(module):
    assert "airflow" not in loaded_after(f"import {module}")


def test_importing_the_operators_loads_no_heavy_library():
    assert not loaded_after("import mlgate.operators, mlgate.hooks.mlflow, mlgate.hooks.trivy") & set(HEAVY)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (ROOT / "dags").glob("*.py")))
def test_importing_a_dag_file_loads_no_heavy_library(dag_file):
    statement = f"import runpy; runpy.run_path({str(ROOT / 'dags' / dag_file)!r})"
    assert not loaded_after(statement) & set(HEAVY)
