"""mlgate as a new user gets it: the wheel built from this tree, installed into a fresh venv, run from an empty
folder (issue 15). Slow (minutes): it runs `mlgate init`, the gates that need no server, `airflow dags test`
of the scaffolded DAG (which must promote) and `mlgate demo`.

The wheel is installed with ``--no-deps``; its dependencies (Airflow, MLflow, torch, …) come from the test's
own venv through a ``.pth`` line, so nothing is downloaded. Only that venv's *library* directory is added: its
editable install of mlgate (another ``.pth``) is not processed, so every ``mlgate`` module, the console script
and every shipped file come from the wheel — the test asserts so.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mlgate.demo.dataset import write_loans
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, environment) with the freshly built wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run([uv, "build", "--wheel", "--offline", "-o", str(root / "dist"), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = (root / "dist").glob("mlgate-*.whl")
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "_mlgate_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = root / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLGATE_", "AIRFLOW", "MLFLOW_", "PYTHON"))}
    env.update({"PATH": f"{venv / 'bin'}:{env['PATH']}", "MLGATE_HOME": str(home),
                "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    where = subprocess.run([python, "-c", "import mlgate, mlgate.core.shipped as s; print(mlgate.__file__); "
                            "print(s.shipped('policies/default.yaml'))"], capture_output=True, text=True, env=env,
                           check=True).stdout.split()
    assert all(str(purelib) in line for line in where), where  # the wheel's code and files, not the checkout's
    return venv, env


def run(venv, env, cwd, *argv, timeout=600, **extra):
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env={**env, **extra}, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def project(installed, tmp_path_factory):
    venv, env = installed
    work = tmp_path_factory.mktemp("empty")
    write_loans(work / "loans.csv", 1500)
    run(venv, env, work, "mlgate", "init", "proj", "--data", "loans.csv", "--target", "defaulted")
    return work


def test_version_and_the_shipped_default_from_an_empty_folder(installed, tmp_path):
    venv, env = installed
    assert run(venv, env, tmp_path, "mlgate", "--version").stdout.startswith("mlgate 0.1.0")
    (tmp_path / "data.csv").write_text("x\n1\n")
    run(venv, env, tmp_path, "mlgate", "pin", "data.csv", "--out", "m.json")
    done = run(venv, env, tmp_path, "mlgate", "check", "data.integrity", "data.csv", "--manifest", "m.json")
    assert "(the default shipped with mlgate)" in done.stderr


def test_each_gate_that_needs_no_server_runs_on_the_scaffolded_project(installed, project):
    from sklearn.linear_model import LogisticRegression

    venv, env = installed
    (project / "model").mkdir(exist_ok=True)
    with (project / "model" / "model.pkl").open("wb") as handle:
        pickle.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), handle)
    (project / "deploy").mkdir(exist_ok=True)
    shutil.copy(ROOT / "Dockerfile", project / "deploy" / "Dockerfile")  # the image the user would ship
    cwd = project / "proj"  # its ./policies/default.yaml is the policy
    for argv in (["data.integrity", "../loans.csv", "--manifest", "data/loans.manifest.json"],
                 ["data.pii", "../loans.csv", "--out-dir", "reports"],
                 ["data.expectations", "../loans.csv"],
                 ["code.static", "training", "--out-dir", "reports", "--sarif", "reports/ci/bandit.sarif"],
                 ["model.artifact", "../model/model.pkl"],
                 ["monitor.drift", "../loans.csv", "--reference", "../loans.csv"],
                 ["deploy.config", "../deploy", "--offline"]):
        done = run(venv, env, cwd, "mlgate", "check", *argv, "--json", f"results/{argv[0]}.json")
        assert "./policies/default.yaml of the current directory" in done.stderr


def test_the_scaffolded_dag_promotes_under_airflow_dags_test(installed, project):
    venv, env = installed
    proj = project / "proj"
    extra = {"AIRFLOW__CORE__DAGS_FOLDER": str(proj / "dags"),
             "MLGATE_SIGNING_KEY_FILE": str(proj / "keys" / "signing.pem")}
    run(venv, env, project, venv / "bin" / "python", "-m", "airflow", "db", "migrate", **extra)
    run(venv, env, project, venv / "bin" / "python", "-m", "airflow", "dags", "test", "mlgate_loans", timeout=900,
        **extra)
    audit = run(venv, env, project, "mlgate", "audit", "loans", "--json", **extra)
    assert '"decision": "promoted"' in audit.stdout


def test_the_demo_runs_from_the_installed_wheel(installed, tmp_path):
    venv, env = installed
    done = run(venv, env, tmp_path, "mlgate", "demo", "--rows", "4000", timeout=1200,
               MLGATE_HOME=str(tmp_path / "demo-home"))
    assert "SUCCESS: clean run promoted, tampered run blocked" in done.stderr
