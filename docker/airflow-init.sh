#!/bin/sh
# One-shot start of the compose stack: migrate Airflow's metadata DB, give the simple auth manager the admin
# password from .env, create the mlflow_default and trivy_default connections, and pin demo data once.
set -eu

airflow db migrate

python - <<'PY'
import json
import os
from pathlib import Path

from mlgate.core.integrity import build_manifest
from mlgate.core.registry import mlgate_home
from mlgate.demo.dataset import write_loans

passwords = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
passwords.touch(mode=0o600)
passwords.write_text(json.dumps({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}) + "\n")

data = mlgate_home() / "data" / "loans.csv"
if not data.exists():  # the DAG's default params point here: "Trigger" works on a fresh stack
    write_loans(data)
    build_manifest(data).save(data.with_name("loans.manifest.json"))
PY

for conn in mlflow_default trivy_default; do
  airflow connections delete "$conn" >/dev/null 2>&1 || true
done
airflow connections add mlflow_default --conn-type mlflow --conn-host "$MLFLOW_TRACKING_URI"
airflow connections add trivy_default --conn-type trivy --conn-host http://trivy:4954 \
  --conn-password "$TRIVY_TOKEN" --conn-extra '{"offline": false}'
