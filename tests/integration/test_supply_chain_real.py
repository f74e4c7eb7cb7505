"""code.static (real bandit), code.dependencies and deploy.config (real trivy, offline, fixture DB)."""

from __future__ import annotations

import copy
import datetime
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.results import Severity, Status
from mlgate.gates.code.bandit_scan import StaticPolicy, check_static
from mlgate.gates.code.dependencies import SBOM_NAME, check_dependencies
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy
from mlgate.gates.deploy.deploy_config import check_deploy_config
from tests.fixtures.oci_image import SITE_PACKAGES, VULNERABLE, layer_tar

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TODAY = datetime.date(2026, 3, 1)
PASSWORD = "-".join(("not", "a", "real", "password", "4242"))  # a literal the scanned code holds

INSECURE_CODE = f'''import pickle
import subprocess

PASSWORD = "{PASSWORD}"


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load(blob):
    return pickle.loads(blob)
'''
SAFE_CODE = '''import json
import subprocess


def run(args: list[str]) -> int:
    return subprocess.call(args)


def load(text: str) -> dict:
    return json.loads(text)
'''


# --- code.static ----------------------------------------------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(("files", "status", "ids"), [
    ({"pkg/app.py": INSECURE_CODE}, Status.BLOCKED, ["B602", "B301"]),
    ({"pkg/app.py": SAFE_CODE}, Status.PASSED, []),
    ({"pkg/app.py": SAFE_CODE, "pkg/py2.py": "print 'hello'\n"}, Status.BLOCKED, ["code.static.unscanned"]),
    ({"pkg/app.py": INSECURE_CODE, ".bandit": "[bandit]\nskips: B602,B301\n"}, Status.BLOCKED,
     ["B602", "B301"]),
    ({"pkg/app.py": SAFE_CODE, "node_modules/x/gen.py": INSECURE_CODE}, Status.PASSED, []),
], ids=["insecure-blocked", "safe-passes", "unparseable-file-blocks", "tree-bandit-ini-cannot-skip-tests",
        "excluded-dir-not-scanned"])
def test_static_scan(tmp_path, files, status, ids):
    result = check_static(_tree(tmp_path / "src", files), StaticPolicy(), "pd", tmp_path / "out")
    assert (result.status, [f.id for f in result.findings]) == (status, ids)
    assert result.subject.kind == "code" and result.subject.digest.startswith("sha256:")
    assert result.tool.name == "bandit" and result.tool.version[0].isdigit()


def test_static_evidence_never_quotes_the_code(tmp_path):
    result = check_static(_tree(tmp_path / "src", {"app.py": INSECURE_CODE}), StaticPolicy(), "pd",
                          tmp_path / "out")
    report, sarif = (Path(p) for p in result.artifacts)
    assert [r["test_id"] for r in json.loads(report.read_text())["results"]] == [
        "B403", "B404", "B105", "B602", "B301"]
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    for text in (report.read_text(), sarif.read_text(), result.to_json()):
        assert PASSWORD not in text and "shell=True)" not in text


def test_static_baseline_lets_known_issues_through_but_not_one_more(tmp_path):
    src = _tree(tmp_path / "src", {"pkg/app.py": INSECURE_CODE})
    first = check_static(src, StaticPolicy(), "pd", tmp_path / "out1")
    shutil.copy(first.artifacts[0], src / "bandit-baseline.json")
    policy = StaticPolicy(baseline="bandit-baseline.json")
    (src / "pkg/app.py").write_text("# moved down a line\n" + INSECURE_CODE)
    assert check_static(src, policy, "pd", tmp_path / "out2").status is Status.PASSED
    one_more = "\n\ndef again(c):\n    return subprocess.call(c, shell=True)\n"
    (src / "pkg/app.py").write_text(INSECURE_CODE + one_more)
    again = check_static(src, policy, "pd", tmp_path / "out3")
    assert again.status is Status.BLOCKED and [f.id for f in again.findings] == ["B602", "B602"]
    assert again.metrics["baselined"] == 4  # B403, B404, B105, B301 are still covered


# --- code.dependencies ----------------------------------------------------------------------------------

def _exception(expires: datetime.date, gate: str = "code.dependencies") -> PolicyException:
    return PolicyException(id="CVE-2018-18074", gate=gate, reason="no fixed build deployable yet",
                           owner="ml-platform@example.com", expires=expires)


@pytest.mark.parametrize(("exceptions", "status", "ids"), [
    ([], Status.BLOCKED, ["CVE-2018-18074"]),
    ([_exception(datetime.date(2026, 6, 30))], Status.PASSED, []),
    ([_exception(datetime.date(2026, 2, 1))], Status.BLOCKED,
     ["CVE-2018-18074", "code.dependencies.exception-expired"]),
    ([_exception(datetime.date(2026, 6, 30), gate="deploy.container")], Status.BLOCKED, ["CVE-2018-18074"]),
], ids=["no-exception-blocked", "active-exception-passes", "expired-exception-blocks-and-is-reported",
        "other-gates-exception-ignored"])
def test_dependencies_with_exceptions(cache_dir, sources, tmp_path, exceptions, status, ids):
    result = check_dependencies(sources["vulnerable"], TrivyConnection(cache_dir=cache_dir), TrivyPolicy(),
                                exceptions, "pd", tmp_path, today=TODAY)
    assert (result.gate, result.status, [f.id for f in result.findings]) == ("code.dependencies", status, ids)
    assert result.metrics["excepted"] == (status is Status.PASSED)
    assert result.artifacts == (str(tmp_path / SBOM_NAME),)


def test_dependencies_sbom_of_installed_packages_has_licenses(cache_dir, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(layer_tar(VULNERABLE))) as layer:
        layer.extractall(root, members=[m for m in layer if m.name.startswith(SITE_PACKAGES)], filter="data")
    result = check_dependencies(root, TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), [], "pd",
                                tmp_path / "out", command="rootfs")
    assert result.status is Status.BLOCKED and [f.id for f in result.findings] == ["CVE-2018-18074"]
    sbom = json.loads(Path(result.artifacts[0]).read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert [(c["name"], c["version"]) for c in sbom["components"]] == [("requests", "2.19.0")]
    assert (result.metrics["sbom_components"], result.metrics["sbom_licenses"],
            result.metrics["sbom_components_without_license"]) == (1, 1, 0)


# --- deploy.config --------------------------------------------------------------------------------------

SECRET_ENV = "-".join(("sk", "live", "0123456789abcdef"))
DOCKERFILES = {
    "insecure": f"FROM python:3.11-slim\nENV API_KEY={SECRET_ENV}\nRUN pip install flask\nCMD [\"python\", "
                "\"app.py\"]\n",
    "hardened": "FROM python:3.11-slim\nRUN useradd --uid 10001 --no-create-home app\n"
                "COPY --chown=10001:10001 app.py /app/app.py\nUSER 10001\n"
                "HEALTHCHECK CMD [\"python\", \"-c\", \"import sys\"]\nCMD [\"python\", \"/app/app.py\"]\n",
}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "model", "namespace": "serving"},
       "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "app", "image": "registry.example/model-server:1.4.2",
                                "securityContext": {"privileged": False, "allowPrivilegeEscalation": False,
                                                    "readOnlyRootFilesystem": True,
                                                    "capabilities": {"drop": ["ALL"]}},
                                "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                              "requests": {"cpu": "500m", "memory": "512Mi"}}}]}}
PRIVILEGED_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                           "securityContext": {"privileged": True}}]}}
SERVING = {"image": "registry.example/model-server:1.4.2", "user": "10001:10001", "read_only": True,
           "labels": {"mlgate.serving": "true", "mlgate.auth": "oidc", "mlgate.rate-limit": "60/m",
                      "mlgate.tls": "true"},
           "environment": {"MODEL_URI": "models:/fraud@champion", "API_TOKEN": "${API_TOKEN}"},
           "deploy": {"resources": {"limits": {"cpus": "1.0", "memory": "1g"}}}}


def _compose(**changes) -> dict:
    service = copy.deepcopy(SERVING)
    for key, value in changes.items():
        if value is None:
            service.pop(key)
        else:
            service[key] = value
    return {"services": {"model": service}}


def _labels(**changes) -> dict:
    return {k: v for k, v in {**SERVING["labels"], **changes}.items() if v is not None}


# One compose file per case, all scanned in one trivy run: name -> (compose document, expected check ids).
COMPOSE_CASES = {
    "hardened": (_compose(), set()),
    "list-forms-hardened": (_compose(labels=[f"{k}={v}" for k, v in SERVING["labels"].items()],
                                     environment=["API_TOKEN=$API_TOKEN", "LOG_LEVEL=info"]), set()),
    "mem-limit-and-cpus-hardened": (_compose(deploy=None, mem_limit="1g", cpus=1.0), set()),
    "not-serving-needs-no-auth": (_compose(labels={"team": "ml"}), set()),
    "required-secret-reference": (_compose(environment={"API_TOKEN": "${API_TOKEN:?set it}"}), set()),
    "no-user": (_compose(user=None), {"MLG-COMPOSE-001"}),
    "root-uid": (_compose(user="0:0"), {"MLG-COMPOSE-001"}),
    "privileged": (_compose(privileged=True), {"MLG-COMPOSE-002"}),
    "host-network": (_compose(network_mode="host"), {"MLG-COMPOSE-003"}),
    "host-pid": (_compose(pid="host"), {"MLG-COMPOSE-003"}),
    "docker-socket": (_compose(volumes=["/var/run/docker.sock:/var/run/docker.sock:ro"]),
                      {"MLG-COMPOSE-004"}),
    "docker-socket-long-form": (_compose(volumes=[{"type": "bind", "source": "/run/docker.sock",
                                                   "target": "/var/run/docker.sock"}]), {"MLG-COMPOSE-004"}),
    "writable-root": (_compose(read_only=None), {"MLG-COMPOSE-005"}),
    "no-limits": (_compose(deploy=None), {"MLG-COMPOSE-006"}),
    "literal-secret": (_compose(environment={"API_TOKEN": SECRET_ENV}), {"MLG-COMPOSE-007"}),
    "literal-secret-list": (_compose(environment=[f"DB_PASSWORD={SECRET_ENV}"]), {"MLG-COMPOSE-007"}),
    "no-auth": (_compose(labels=_labels(**{"mlgate.auth": None})), {"MLG-COMPOSE-008"}),
    "auth-none": (_compose(labels=_labels(**{"mlgate.auth": "none"})), {"MLG-COMPOSE-008"}),
    "no-rate-limit": (_compose(labels=_labels(**{"mlgate.rate-limit": "unlimited"})), {"MLG-COMPOSE-009"}),
    "no-tls": (_compose(labels=_labels(**{"mlgate.tls": None})), {"MLG-COMPOSE-010"}),
}


@pytest.fixture(scope="module")
def compose_scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("compose-cases")
    for name, (document, _) in COMPOSE_CASES.items():
        (root / f"{name}.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "pod.yaml").write_text(yaml.safe_dump(POD))  # a manifest the compose checks must leave alone
    return check_deploy_config(root, TrivyConnection(cache_dir=tmp_path_factory.mktemp("cache")),
                               TrivyPolicy(min_severity=Severity.LOW), "pd")


@pytest.mark.parametrize("case", list(COMPOSE_CASES))
def test_each_compose_check(compose_scan, case):
    ids = {f.id for f in compose_scan.findings if f.location.startswith(f"{case}.yml")}
    assert ids == COMPOSE_CASES[case][1]


def test_compose_findings_name_the_service_and_never_the_secret(compose_scan):
    secret = [f for f in compose_scan.findings if f.id == "MLG-COMPOSE-007"]
    assert {f.location for f in secret} == {"literal-secret.yml (services.model)",
                                            "literal-secret-list.yml (services.model)"}
    assert SECRET_ENV not in compose_scan.to_json()


@pytest.fixture(scope="module")
def deploy_scans(tmp_path_factory):
    """An insecure and a hardened tree, each with a Dockerfile, a Kubernetes pod and a compose file."""
    scans = {}
    for variant in ("insecure", "hardened"):
        root = tmp_path_factory.mktemp(variant)
        (root / "docker").mkdir()
        (root / "docker" / "Dockerfile").write_text(DOCKERFILES[variant])
        (root / "k8s").mkdir()
        pod = PRIVILEGED_POD if variant == "insecure" else POD
        (root / "k8s" / "pod.yaml").write_text(yaml.safe_dump(pod))
        (root / "compose").mkdir()
        document = _compose(privileged=True, user=None) if variant == "insecure" else _compose()
        (root / "compose" / "compose.yaml").write_text(yaml.safe_dump(document))
        connection = TrivyConnection(cache_dir=tmp_path_factory.mktemp("cache"))
        scans[variant] = check_deploy_config(root, connection, TrivyPolicy(), "pd")
    return scans


@pytest.mark.parametrize(("kind", "expected"), [
    ("docker/", {"DS-0002", "DS-0031", "MLG-DOCKER-001"}),  # trivy's root check and mlgate's final-stage one
    ("k8s/", {"KSV-0014", "KSV-0017", "KSV-0118", "MLG-K8S-005", "MLG-K8S-006", "MLG-K8S-007"}),
    ("compose/", {"MLG-COMPOSE-001", "MLG-COMPOSE-002"}),
], ids=["dockerfile-root-and-secret", "kubernetes-privileged-pod", "compose-privileged-root"])
def test_insecure_deploy_config_is_blocked_and_hardened_passes(deploy_scans, kind, expected):
    insecure, hardened = deploy_scans["insecure"], deploy_scans["hardened"]
    assert (insecure.gate, insecure.status) == ("deploy.config", Status.BLOCKED)
    assert hardened.status is Status.PASSED, hardened.top_failures()
    assert {f.id for f in insecure.findings if f.location.startswith(kind)} == expected
    assert all(f.severity.rank >= Severity.HIGH.rank for f in insecure.findings)
    assert SECRET_ENV not in insecure.to_json()
