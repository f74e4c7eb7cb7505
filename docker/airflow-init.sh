#!/bin/sh
# One-shot start of the stack (the compose service airflow-init, and the process stack of tests/e2e):
# migrate Airflow's metadata DB, give the simple auth manager the admin password, (re)create the
# mlflow_default and trivy_default connections, and pin demo data once. Secrets come from the
# environment only: none is written to argv or to a log.
set -eu

airflow db migrate

python - <<'PY'
import json
import os
from pathlib import Path

from airflow.models.connection import Connection
from airflow.utils.session import create_session

from mlgate.gates.data.integrity import build_manifest
from mlgate.trust.registry import mlgate_home
from mlgate.demo.dataset import write_loans

passwords = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
passwords.touch(mode=0o600)
passwords.write_text(json.dumps({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}) + "\n")

connections = [
    Connection(conn_id="mlflow_default", conn_type="mlflow", host=os.environ["MLFLOW_TRACKING_URI"]),
    Connection(conn_id="trivy_default", conn_type="trivy",
               host=os.environ.get("TRIVY_SERVER_URL", "http://trivy:4954"),
               password=os.environ["TRIVY_TOKEN"], extra=json.dumps({"offline": False})),
]
with create_session() as session:
    for conn in connections:
        session.query(Connection).filter(Connection.conn_id == conn.conn_id).delete()
        session.add(conn)

data = mlgate_home() / "data" / "loans.csv"
if not data.exists():  # the DAG's default params point here: "Trigger" works on a fresh stack
    write_loans(data)
    build_manifest(data).save(data.with_name("loans.manifest.json"))
print("airflow-init: metadata DB migrated, admin password set, connections mlflow_default and trivy_default")
PY
