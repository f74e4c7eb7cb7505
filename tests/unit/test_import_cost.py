"""DAG parsing is on Airflow's hot path: operators and DAG files must not load heavy libraries,
and the core must not load Airflow (it also runs from the CLI in any CI system)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

HEAVY = ("great_expectations", "art", "torch", "mlflow", "sklearn", "pandas", "hypothesis")
PURE_MODULES = sorted(
    ".".join(p.relative_to(ROOT / "src").with_suffix("").parts)
    for package in ("core", "gates", "trust")
    for p in (ROOT / "src/mlgate" / package).rglob("*.py")
    if p.stem != "__init__"
)


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_core_gates_and_trust_never_load_airflow():
    """At run time, what the import-linter contract checks statically (tests/unit/test_layers.py)."""
    assert len(PURE_MODULES) > 50
    assert "airflow" not in loaded_after("\n".join(f"import {module}" for module in PURE_MODULES))


def test_importing_the_operators_loads_no_heavy_library():
    assert not loaded_after("import mlgate.operators, mlgate.hooks.mlflow, mlgate.hooks.trivy") & set(HEAVY)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (ROOT / "dags").glob("*.py")))
def test_importing_a_dag_file_loads_no_heavy_library(dag_file):
    statement = f"import runpy; runpy.run_path({str(ROOT / 'dags' / dag_file)!r})"
    assert not loaded_after(statement) & set(HEAVY)


def modules_after(statement: str) -> set[str]:
    """Every module (dotted name) loaded after ``statement`` in a fresh interpreter."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.splitlines()[-1]))


NOT_FOR_A_POLICY = {*HEAVY, "numpy", "pyarrow", "sqlalchemy", "phonenumbers", "stdnum", "scipy", "opendp"}


def test_validating_every_policy_section_loads_no_gate_library():
    """Every CLI check validates the whole policy for its digest: a section model lives where importing it
    costs pydantic only (``gates/<stage>/policies.py``), never in a module that loads numpy, pyarrow or trust."""
    loaded = modules_after(
        "from mlgate.core.policy import SECTIONS, load_policy\n"
        "policy = load_policy('policies/default.yaml')\n"
        "[policy.section(gate) for gate in SECTIONS]\n"
        "policy.digest")
    assert not {m.split(".")[0] for m in loaded} & NOT_FOR_A_POLICY
    assert not [m for m in loaded if m.startswith("mlgate.trust")]


def test_checking_one_model_file_loads_only_the_scanner(tmp_path):
    """``mlgate check model.artifact file`` (the start-up benchmark: benchmarks/startup.py) loads the scanner,
    the policy's section models and what they need: no other gate's logic, no trust, no heavy library."""
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04K\x01.")
    loaded = modules_after(
        "from mlgate.cli import main\n"
        f"assert main(['check', 'model.artifact', {str(model)!r}]) == 0")
    assert not {m.split(".")[0] for m in loaded} & NOT_FOR_A_POLICY
    assert not [m for m in loaded if m.startswith(("mlgate.gates.data.pii", "mlgate.gates.monitor.drift"))]
    assert not [m for m in loaded if m.startswith("mlgate.trust")]
