"""``mlgate demo``: the secure training pipeline through Airflow itself, twice.

First on freshly generated and pinned data (the model is promoted), then after one byte of the data
changed (promotion is refused and the reason printed). Airflow runs on a SQLite metadata DB and MLflow
on a SQLite store, both under ``MLGATE_HOME`` (default ``~/.mlgate``). Promotion signs its attestation
with a key generated on first use under ``MLGATE_HOME/keys/`` unless one is configured.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.policy import load_policy
from mlgate.core.shipped import shipped
from mlgate.demo.dataset import write_loans
from mlgate.demo.trivy_db import write_trivy_db
from mlgate.gates.data.integrity import build_manifest
from mlgate.trust.attestation import KEY_ENV, generate_key
from mlgate.trust.audit import format_table, read_decisions
from mlgate.trust.keys import KEY_FILE_ENV, POLICY_DIGESTS_ENV
from mlgate.trust.registry import (
    PIPELINE_TAG,
    current_alias_version,
    default_tracking_uri,
    download_evidence,
    mlgate_home,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

DAG_ID = "secure_training_pipeline"


def repo_root() -> Path:
    """The folder holding ``dags/`` and ``policies/``: the current directory when it is a checkout, else what
    mlgate ships (the wheel's resources or the package's checkout, ADR 0027)."""
    if (Path.cwd() / "dags" / f"{DAG_ID}.py").exists():
        return Path.cwd()
    return shipped(f"dags/{DAG_ID}.py").parents[1]


def offline_trivy_connection(home: Path) -> str:
    """A ``trivy`` connection on a small offline DB of real advisories (this machine cannot download
    trivy's DB; a real deployment points the connection at a trivy server or lets trivy download)."""
    cache = write_trivy_db(home / "trivy-cache")
    return json.dumps({"conn_type": "trivy", "extra": {"cache_dir": str(cache), "offline": True}})


def demo_signing_key(home: Path) -> Path:
    """The demo's signing key, generated on first use under ``home/keys/`` (0600). A real deployment keeps
    its key in a secrets backend (connection ``mlgate_signing_default``) and never generates one."""
    path = home / "keys" / "signing.pem"
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        generate_key(path)
    return path


def airflow_env(home: Path, root: Path) -> dict[str, str]:
    """The environment of the demo's Airflow: its one generated key signs every gate and the promotion,
    and the signer trusts exactly the shipped default policy, pinned by digest (ADR 0013)."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_CONN_TRIVY_DEFAULT", offline_trivy_connection(home))
    if not (env.get(KEY_ENV) or env.get(KEY_FILE_ENV)):
        env[KEY_FILE_ENV] = str(demo_signing_key(home))
    env.setdefault(POLICY_DIGESTS_ENV, load_policy(root / "policies" / "default.yaml").digest)
    env.update({
        "MLGATE_HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
        "MLFLOW_TRACKING_URI": default_tracking_uri(),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    })
    return env


def _say(message: str) -> None:
    print(f"\n=== mlgate demo: {message}", file=sys.stderr, flush=True)


def tamper(path: Path) -> None:
    """Change one byte in the middle of the file (a digit becomes another digit)."""
    data = bytearray(path.read_bytes())
    index = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isdigit())
    data[index] = ord("1") if data[index] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


def refusal_reasons(client: MlflowClient) -> list[str]:
    """What the latest pipeline run's promotion gate said."""
    experiment = client.get_experiment_by_name("mlgate")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{PIPELINE_TAG}` LIKE '{DAG_ID}/%'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiment else []
    result = download_evidence(client, runs[0].info.run_id).get("registry.promote") if runs else None
    return [f.message for f in getattr(result, "findings", ())] or ["(no promotion evidence found)"]


def run_pipeline(env: dict[str, str], conf: dict[str, str], log_path: Path) -> int:
    """``airflow dags test`` with the full log to ``log_path`` and each task's final state to stderr."""
    argv = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "-c", json.dumps(conf)]
    task = ""
    with log_path.open("w") as log, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            if match := re.search(r"\[DAG TEST\] starting task_id=(\S+)", line):
                task = match.group(1)
            elif match := re.search(r"new_state=(\w+)", line):
                print(f"  {task:<20} {match.group(1)}", file=sys.stderr, flush=True)
    print(f"  full log: {log_path}", file=sys.stderr)
    return proc.returncode


def run_demo(rows: int = 5000) -> int:
    import mlflow

    started = time.perf_counter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    home, root = mlgate_home(), repo_root()
    env = airflow_env(home, root)
    policy_path = root / "policies" / "default.yaml"
    policy = load_policy(policy_path)
    data, manifest = home / "data" / "loans.csv", home / "data" / "loans.manifest.json"
    _say(f"generating {rows} loan applications and pinning them under {home}")
    write_loans(data, rows)
    pinned = build_manifest(data)
    pinned.save(manifest)
    print(f"data version {pinned.digest}", file=sys.stderr)
    _say("migrating the Airflow metadata DB (SQLite)")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    conf = {"data_path": str(data), "manifest_path": str(manifest), "policy_path": str(policy_path)}
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    name, alias = policy.promotion.model_name, policy.promotion.alias

    _say("run 1: clean data")
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    clean_rc = run_pipeline(env, conf, logs / "run-1-clean.log")
    promoted = current_alias_version(client, name, alias)
    _say(f"run 1 finished with exit code {clean_rc}; {name}@{alias} -> version {promoted}")

    tamper(data)
    _say("run 2: one byte of the dataset changed after pinning")
    tampered_rc = run_pipeline(env, conf, logs / "run-2-tampered.log")
    after = current_alias_version(client, name, alias)
    _say(f"run 2 finished with exit code {tampered_rc}; {name}@{alias} -> version {after}")
    print("promotion refused because:\n  " + "\n  ".join(refusal_reasons(client)),
          file=sys.stderr)
    _say(f"audit trail of {name} (mlgate audit {name})")
    print(format_table(read_decisions(client, name)), file=sys.stderr)

    ok = clean_rc == 0 and promoted is not None and tampered_rc != 0 and after == promoted
    _say(("SUCCESS: clean run promoted, tampered run blocked" if ok else "UNEXPECTED OUTCOME")
         + f" ({time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1
