"""deploy.config's own parts: the check catalogue and its docs, file classification, symlinks, Kubernetes."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from mlgate.core.results import Severity
from mlgate.gates.code.source_tree import walk_tree
from mlgate.gates.deploy.config_files import classify
from mlgate.gates.deploy.kubernetes import containers, kubernetes_findings
from mlgate.gates.deploy.rules import RULES
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

DOCS = ROOT / "docs" / "checks.md"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_each_check_has_a_docs_row_with_its_severity(rule_id):
    row = next((line for line in DOCS.read_text().splitlines() if line.startswith(f"| {rule_id} |")), None)
    assert row is not None, f"docs/checks.md has no row for {rule_id}"
    assert f"| {RULES[rule_id].severity.upper()} |" in row


def test_compose_ids_are_contiguous():
    compose = sorted(r for r in RULES if r.startswith("MLG-COMPOSE-"))
    assert compose == [f"MLG-COMPOSE-{n:03d}" for n in range(1, len(compose) + 1)]


def write(root, files: dict[str, str]):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return walk_tree(root)


def test_classify_sorts_files_by_kind_and_reports_broken_yaml(tmp_path):
    tree = write(tmp_path, {
        "Dockerfile": "FROM x\n", "svc/api.Dockerfile": "FROM x\n", "Containerfile.dev": "FROM x\n",
        "docker-compose.yml": "services:\n  a: {image: x}\n", "stack.yml": "services:\n  a: {image: x}\n",
        "azure.yaml": "name: x\nmetadata: {template: y}\nservices:\n  web: {project: .}\n",
        "k8s/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Service\n",
        "broken/compose.yaml": "services:\n  a:\n    image: x\n  b: [\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: c\n", "chart/templates/d.yaml": "name: {{ .Values.x }}\n",
        "k8s/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
        ".env": "A=1\n", ".env.example": "A=\n", ".github/workflows/ci.yml": "on: push\n", "README.md": "x",
    })
    files = classify(tree.files)
    assert sorted(files.dockerfile) == ["Containerfile.dev", "Dockerfile", "svc/api.Dockerfile"]
    assert sorted(files.compose) == ["docker-compose.yml"] and sorted(files.maybe_compose) == ["stack.yml"]
    assert list(files.kubernetes) == ["k8s/pod.yaml"] and len(files.kubernetes["k8s/pod.yaml"]) == 2
    assert sorted(files.helm) == ["chart/Chart.yaml", "chart/templates/d.yaml"]
    assert list(files.env) == [".env"] and list(files.kustomize) == ["k8s/kustomization.yaml"]
    assert sorted(files.other_yaml) == [".github/workflows/ci.yml", "azure.yaml"]
    assert list(files.unparseable) == ["broken/compose.yaml"]
    assert "YAML syntax error" in files.unparseable["broken/compose.yaml"]


def test_symlinks_inside_the_tree_are_followed_and_leaving_ones_reported(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("x: 1\n")
    root = tmp_path / "repo"
    write(root, {"real/compose.yaml": "services: {}\n"})
    (root / "linked").symlink_to(root / "real")
    (root / "alias.yaml").symlink_to(root / "real" / "compose.yaml")
    (root / "escape.yaml").symlink_to(outside / "secret.yaml")
    (root / "escape-dir").symlink_to(outside)
    (root / "dangling.yaml").symlink_to(root / "nowhere.yaml")
    (root / "real" / "loop").symlink_to(root)
    tree = walk_tree(root)
    assert set(tree.files) == {"real/compose.yaml", "alias.yaml"}  # linked/ is real/, walked once
    assert {p.resolve() for p in tree.files.values()} == {(root / "real" / "compose.yaml").resolve()}
    assert tree.escaping == ("dangling.yaml", "escape-dir", "escape.yaml")
    assert tree.digest().startswith("sha256:")


def test_a_tree_without_links_digests_like_code_digest(tmp_path):
    from mlgate.core.digests import code_digest

    write(tmp_path, {"a.py": "x = 1\n", "pkg/b.txt": "y", "pkg/__pycache__/b.cpython-311.pyc": "z"})
    assert walk_tree(tmp_path).digest() == code_digest(tmp_path)


KSERVE = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  annotations: {serving.kserve.io/enable-auth: "true"}
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://bucket/model
      env: [{name: AWS_SECRET_ACCESS_KEY, value: abc}]
"""


def doc(text: str) -> dict:
    return yaml.safe_load(textwrap.dedent(text))


def test_kserve_inference_service_containers_secrets_and_auth_annotation():
    document = doc(KSERVE)
    assert [c["modelFormat"]["name"] for c in containers(document)] == ["sklearn"]
    found = {(f.id, f.message) for f in kubernetes_findings("isvc.yaml", document)}
    assert found == {
        ("MLG-K8S-001", "container ? of InferenceService iris sets AWS_SECRET_ACCESS_KEY to a literal value"),
        ("MLG-K8S-003", "model server InferenceService iris declares no rate limit"),
        ("MLG-K8S-004", "model server InferenceService iris declares no TLS"),
        ("MLG-K8S-006", "container ? of InferenceService iris may run as root (runAsUser 0, or no runAsNonRoot)"),
        ("MLG-K8S-007", "container ? of InferenceService iris sets no memory and no cpu limit"),
    }  # authentication is KServe's own annotation; trivy does not read the kind, so mlgate checks privilege


def test_seldon_deployment_is_a_model_server_without_auth():
    document = doc("""
    apiVersion: machinelearning.seldon.io/v1
    kind: SeldonDeployment
    metadata: {name: s}
    spec:
      predictors:
      - name: default
        componentSpecs:
        - spec:
            containers:
            - name: classifier
              image: seldonio/sklearnserver
              env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: s, key: p}}}]
    """)
    assert {f.id for f in kubernetes_findings("s.yaml", document)} == {
        "MLG-K8S-002", "MLG-K8S-003", "MLG-K8S-004", "MLG-K8S-006", "MLG-K8S-007"}


@pytest.mark.parametrize(("container", "serving"), [
    ({"name": "c", "image": "pytorch/torchserve:0.12"}, True),
    ({"name": "c", "image": "python:3.12", "command": ["mlflow", "models", "serve", "-m", "/m"]}, True),
    ({"name": "c", "image": "python:3.12", "args": ["uvicorn", "app:api"]}, True),
    ({"name": "c", "image": "nginx:1.27"}, False),
])
def test_a_deployment_is_a_model_server_by_what_it_runs(container, serving):
    document = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [container]}}}}
    serving_ids = {"MLG-K8S-002", "MLG-K8S-003", "MLG-K8S-004"}  # (root and limits: MLG-K8S-006/007)
    found = {f.id for f in kubernetes_findings("d.yaml", document)} & serving_ids
    assert (found == serving_ids) is serving and (found == set()) is not serving


def test_literal_secrets_in_pod_env_but_not_references():
    document = doc("""
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers:
      - name: app
        image: x
        env:
        - {name: DB_PASSWORD, value: hunter2}
        - {name: API_TOKEN, value: $(TOKEN)}
        - {name: DATABASE_URL, value: "postgres://u:pw@db/x"}
        - {name: SECRET_KEY, valueFrom: {secretKeyRef: {name: s, key: k}}}
    """)
    found = [(f.id, f.severity, f.message) for f in kubernetes_findings("p.yaml", document) if f.id == "MLG-K8S-001"]
    assert sorted(found) == [
        ("MLG-K8S-001", Severity.CRITICAL, "container app of Pod p sets DATABASE_URL to a URL with a literal password"),
        ("MLG-K8S-001", Severity.CRITICAL, "container app of Pod p sets DB_PASSWORD to a literal value"),
    ]


def test_committed_env_files_and_compose_env_files_are_checked_for_literal_secrets(tmp_path):
    from mlgate.gates.deploy.deploy_config import own_findings

    key = "AKIA" + "Q7Z2XK4M3B5N6V8C"
    tree = write(tmp_path, {
        "compose.yaml": """
            services:
              app:
                image: x
                user: "1000"
                read_only: true
                mem_limit: 1g
                cpus: 1
                env_file: [config/app.vars]
            """,
        "config/app.vars": f"FERNET_KEY=abc\nPASSWORD_FILE=/run/secrets/p\nDEBUG=1\nAWS={key}\n",
        ".env": "DB_PASS=12345\nTOKEN=${FROM_HOST}\n",
        ".env.example": "DB_PASS=changeme\n",
    })
    found = sorted((f.id, f.message, f.location) for f in own_findings(classify(tree.files), tree.files))
    assert found == [
        ("MLG-ENV-001", ".env sets DB_PASS to a literal value", ".env:1"),
        ("MLG-ENV-001", "config/app.vars sets AWS to a value shaped like a secret", "config/app.vars:4"),
        ("MLG-ENV-001", "config/app.vars sets FERNET_KEY to a literal value", "config/app.vars:1"),
    ]
    assert not any(key in message or "12345" in message for _, message, _ in found)


KNATIVE = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: evil}
spec:
  template:
    spec:
      containers:
      - name: c
        image: nginx
        securityContext: {privileged: true}
        env: [{name: DB_PASSWORD, value: hunter2hunter2}]
"""
ISVC = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: evil
  annotations: {mlgate.auth: token, mlgate.rate-limit: 10/s, mlgate.tls: "true"}
spec:
  predictor:
    hostNetwork: true
    securityContext: {runAsUser: 0}
    containers:
    - name: kserve-container
      image: kserve/sklearnserver
      securityContext: {capabilities: {add: [SYS_ADMIN]}, allowPrivilegeEscalation: true}
    volumes: [{name: h, hostPath: {path: /var/run/docker.sock}}]
"""
ROLLOUT = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: evil}
spec:
  template:
    spec:
      hostPID: true
      containers: [{name: c, image: nginx}]
"""
HARDENED_ISVC = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  annotations: {mlgate.auth: token, mlgate.rate-limit: 10/s, mlgate.tls: "true"}
spec:
  predictor:
    securityContext: {runAsNonRoot: true, runAsUser: 1000}
    model:
      modelFormat: {name: sklearn}
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
      resources: {limits: {cpu: "1", memory: 1Gi}}
"""


@pytest.mark.parametrize(("manifest", "expected"), [
    (KNATIVE, {"MLG-K8S-001", "MLG-K8S-005", "MLG-K8S-006", "MLG-K8S-007"}),
    (ISVC, {"MLG-K8S-005", "MLG-K8S-006", "MLG-K8S-007"}),
    (ROLLOUT, {"MLG-K8S-005", "MLG-K8S-006", "MLG-K8S-007"}),
    (HARDENED_ISVC, set()),
], ids=["knative", "kserve", "argo-rollout", "hardened-kserve"])
def test_workloads_trivy_does_not_check_get_mlgate_s_privilege_checks(manifest, expected):
    """Red team: a privileged Knative Service, a KServe predictor on the host network with the docker
    socket and SYS_ADMIN, an Argo Rollout sharing the host PID namespace all passed (trivy's KSV checks
    know only the built-in workload kinds)."""
    found = kubernetes_findings("x.yaml", yaml.safe_load(manifest))
    assert {f.id for f in found} == expected
    messages = " ".join(f.message for f in found)
    assert "hunter2" not in messages


def test_the_privilege_messages_name_each_setting():
    found = {f.message for f in kubernetes_findings("x.yaml", yaml.safe_load(ISVC))}
    for setting in ("hostNetwork", "hostPath /var/run/docker.sock", "capability SYS_ADMIN",
                    "allowPrivilegeEscalation"):
        assert any(setting in message for message in found), (setting, found)


@pytest.mark.parametrize("setting", [
    "pull_policy: {secret}", "{secret}: 1", "cpus: [{secret}]",
], ids=["quoted-value", "quoted-key", "yaml-type-error"])
def test_compose_s_refusal_never_quotes_a_value_into_the_finding(tmp_path, setting):
    """Red team: compose quotes the offending value or key ('... does not match pattern'), and the
    finding carried compose's message verbatim, a pasted token included."""
    from mlgate.gates.deploy.deploy_config import load_compose

    secret = "ghp_" + "A1b2C3d4" * 4 + "Zz11"
    files = classify(write(tmp_path, {"compose.yaml": f"services:\n  app:\n    image: x\n    "
                                                      f"{setting.format(secret=secret)}\n"}).files)
    load_compose(files)
    assert list(files.unparseable) == ["compose.yaml"]
    why = files.unparseable["compose.yaml"]
    assert secret not in why and "services.app" in why and str(tmp_path) not in why


@pytest.mark.parametrize(("manifest", "expected"), [
    ("kind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2-s3cr3t}\n", 1),
    ("kind: Secret\nmetadata: {name: db}\ndata: {token: aHVudGVyMi1zM2NyM3Q=}\n", 1),
    ("kind: ConfigMap\nmetadata: {name: app}\ndata: {DB_PASSWORD: hunter2-s3cr3t, LOG_LEVEL: info}\n", 1),
    ("kind: Secret\nmetadata: {name: db}\ntype: kubernetes.io/service-account-token\n", 0),
    ("kind: ConfigMap\nmetadata: {name: app}\ndata: {LOG_LEVEL: info}\n", 0),
], ids=["secret-stringData", "secret-data", "configmap", "sa-token-secret", "plain-configmap"])
def test_a_committed_secret_or_configmap_with_literal_secrets_is_a_finding(manifest, expected):
    """Red team: a Secret manifest with its stringData in the repository passed with nothing checked."""
    found = [f for f in kubernetes_findings("s.yaml", yaml.safe_load("apiVersion: v1\n" + manifest))
             if f.id == "MLG-K8S-008"]
    assert len(found) == expected
    assert not any("hunter2" in f.message or "aHVudGVy" in f.message for f in found)


def test_a_billion_laughs_resource_is_walked_once_per_node():
    """Red team: pod specs are searched in any kind; nested aliases (9**12 paths) must not hang it."""
    lines = ["apiVersion: x.io/v1", "kind: Thing", "metadata: {name: t}", "spec:",
             '  a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"  {chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]" for i in range(1, 12)]
    lines += ["  pod: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}"]
    found = {f.id for f in kubernetes_findings("t.yaml", yaml.safe_load("\n".join(lines)))}
    assert "MLG-K8S-005" in found


HARDENED_CONTAINER = ("securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                      "capabilities: {drop: [ALL]}}\n          resources: {limits: {cpu: 500m, memory: 256Mi}}")


@pytest.mark.parametrize(("pod", "expected"), [
    ("securityContext: {runAsUser: 0}\n      containers:\n        - name: c\n          image: x\n"
     f"          {HARDENED_CONTAINER}\n", {"MLG-K8S-006"}),
    ("securityContext: {runAsNonRoot: true, runAsUser: 10001}\n      initContainers:\n        - name: i\n"
     "          image: x\n          securityContext: {runAsUser: 0, capabilities: {add: [NET_ADMIN]}}\n"
     "          resources: {limits: {cpu: 500m, memory: 256Mi}}\n      containers:\n        - name: c\n"
     f"          image: x\n          {HARDENED_CONTAINER}\n", {"MLG-K8S-005", "MLG-K8S-006"}),
    ("securityContext: {runAsNonRoot: true, runAsUser: 10001}\n      containers:\n        - name: c\n"
     "          image: x\n          securityContext: {allowPrivilegeEscalation: false}\n", {"MLG-K8S-007"}),
    ("securityContext: {runAsNonRoot: true, runAsUser: 10001}\n      containers:\n        - name: c\n"
     f"          image: x\n          {HARDENED_CONTAINER}\n", set()),
], ids=["pod-level-root", "root-init-container", "no-limits", "hardened"])
def test_root_and_limits_in_built_in_workloads_block_although_trivy_rates_them_medium(pod, expected):
    """Red team: a Deployment whose pod runs as uid 0 (KSV-0012: MEDIUM), a root init container adding
    NET_ADMIN (KSV-0022: MEDIUM) and missing limits (KSV-0011/0018: LOW) passed min_severity high."""
    manifest = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
                f"    spec:\n      {pod}")
    assert {f.id for f in kubernetes_findings("d.yaml", yaml.safe_load(manifest))} == expected


def test_a_kubernetes_manifest_written_as_json_gets_mlgate_s_checks(tmp_path):
    """Red team: kubectl applies JSON manifests and trivy checks them, but mlgate read only YAML: a JSON
    Deployment whose pod runs as uid 0 (trivy: MEDIUM) passed. Other JSON is not configuration."""
    from mlgate.gates.deploy.deploy_config import own_findings

    deployment = ('{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template":'
                  ' {"spec": {"securityContext": {"runAsUser": 0}, "containers": [{"name": "c", "image": "x",'
                  ' "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}}')
    tree = write(tmp_path, {"k8s/d.json": deployment, "package.json": '{"name": "x"}', "broken.json": "{"})
    files = classify(tree.files)
    assert list(files.kubernetes) == ["k8s/d.json"] and not files.unparseable
    assert {f.id for f in own_findings(files, tree.files)} == {"MLG-K8S-006"}


@pytest.mark.parametrize("reference", [
    "include: [../outside/compose.yaml]\n",
    "services:\n  app:\n    extends: {file: ../outside/compose.yaml, service: app}\n",
    "services:\n  app:\n    image: x\n    build: {context: ../outside}\n",
    "include:\n  - path: [/etc/compose.yaml]\n",
    "services:\n  app:\n    image: x\n    env_file: [{path: ../outside/app.env}]\n",
    "include: ['https://u:ghp_tok3n@example.com/compose.yaml']\n",
], ids=["include", "extends", "build-context", "absolute-include", "env-file", "remote"])
def test_a_compose_file_reading_outside_the_tree_blocks(tmp_path, reference):
    """Red team: compose resolves include/extends/build/env_file from outside the scanned tree, so the
    verdict rested on files the subject digest does not bind (swap them after the gate passed)."""
    from mlgate.gates.deploy.config_files import outside_references

    (tmp_path / "outside").mkdir()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "compose.yaml").write_text(reference)
    found = outside_references((tmp_path / "tree" / "compose.yaml"), tmp_path / "tree")
    assert found != [] and not any("ghp_tok3n" in ref for ref in found)
    (tmp_path / "tree" / "compose.yaml").write_text("include: [sub/compose.yaml]\nservices:\n  app:\n"
                                                    "    extends: {file: ./base.yaml, service: a}\n"
                                                    "    build: .\n    env_file: app.env\n")
    assert outside_references((tmp_path / "tree" / "compose.yaml"), tmp_path / "tree") == []
