from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def airflow_db(scratch):
    """A migrated Airflow metadata DB (the one configured in tests/conftest.py), and a ``trivy_default``
    connection on the offline vulnerability DB, as ``mlgate demo`` sets up."""
    from mlgate.demo.run import offline_trivy_connection

    os.environ["AIRFLOW_CONN_TRIVY_DEFAULT"] = offline_trivy_connection(scratch)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def dag_bag(airflow_db, repo_root):
    """The repository's DAG files, parsed once by Airflow; none may fail to import."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo_root / "dags"))
    assert bag.import_errors == {}
    return bag
