#!/bin/sh
# One-shot start of the stack (the compose service airflow-init, and the process stack of tests/e2e):
# migrate Airflow's metadata DB, give the simple auth manager the admin password, (re)create the
# mlflow_default and trivy_default connections, pin demo data once, and (when the environment configures
# no signing key, as in compose) keep the stack's own signing connection, which trusts exactly the shipped
# default policy, pinned by digest. Secrets come from the environment only: none is written to argv or a log.
set -eu

airflow db migrate

python - <<'PY'
import json
import os
from pathlib import Path

from airflow.models.connection import Connection
from airflow.utils.session import create_session

from mlgate.core.policy import load_policy
from mlgate.gates.data.integrity import build_manifest
from mlgate.trust.attestation import KEY_ENV
from mlgate.trust.keys import KEY_FILE_ENV
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

signing = "no signing connection (the environment configures the key)"
if not (os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV)):
    # The local stack's signing key: generated once, kept only as the connection's password (Fernet-encrypted
    # in the metadata DB). The signer trusts the shipped default policy by the digest it has at this start
    # (ADR 0013): a DAG run naming any other policy is refused at promotion.
    policy = Path(os.environ.get("MLGATE_POLICY", "/opt/mlgate/policies/default.yaml"))
    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == "mlgate_signing_default").one_or_none()
        if conn is None:
            from securesystemslib.signer import CryptoSigner

            conn = Connection(conn_id="mlgate_signing_default", conn_type="mlgate_signing",
                              password=CryptoSigner.generate_ecdsa().private_bytes.decode())
            session.add(conn)
        conn.set_extra(json.dumps({"trusted_policy_digests": [load_policy(policy).digest]}))
    signing = f"mlgate_signing_default trusting {policy}"

data = mlgate_home() / "data" / "loans.csv"
if not data.exists():  # the DAG's default params point here: "Trigger" works on a fresh stack
    write_loans(data)
    build_manifest(data).save(data.with_name("loans.manifest.json"))
print(f"airflow-init: metadata DB migrated, admin password set, connections mlflow_default, trivy_default; {signing}")
PY
