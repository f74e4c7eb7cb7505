"""``code.dependencies``: vulnerable dependencies (trivy fs / rootfs) with policy exceptions, and an SBOM.

``trivy fs`` reads lock and requirements files of a source tree; ``trivy rootfs`` reads installed
distributions (``*.dist-info``), which also carry licenses. The CycloneDX SBOM is written by a second,
vulnerability-free trivy run and kept as evidence next to the result. A clean report is only evidence
when something was scanned against a fresh DB: components scanned, unpinned requirements and the DB's
build time are metrics, and zero components, an unpinned requirement or a stale DB block.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.results import GateResult, Severity, Subject, ToolInfo, error_result, utcnow
from mlgate.gates.code.source_tree import SourceTree
from mlgate.gates.code.trivy import (
    Scan,
    TrivyConnection,
    TrivyFinding,
    TrivyPolicy,
    db_findings,
    find_trivy,
    run_scan,
    run_trivy,
    scan_argv,
    scanned_tree,
    trivy_result,
)

GATE = "code.dependencies"
SBOM_NAME = "sbom.cdx.json"
SourceKind = Literal["fs", "rootfs"]


def write_sbom(command: SourceKind, path: Path, connection: TrivyConnection, config: TrivyPolicy,
               out_file: Path) -> Path:
    """A CycloneDX SBOM of ``path`` at ``out_file`` (components and their licenses, no vulnerabilities)."""
    argv = scan_argv(find_trivy(connection.binary), command, path, connection, config, scanners=("license",),
                     output_format="cyclonedx", extra=("--output", str(out_file)))
    run_trivy(argv, timeout_s=config.timeout_s + 30)
    return out_file


def _license_names(component: dict[str, Any]) -> set[str]:
    names = set()
    for entry in component.get("licenses") or []:
        lic = entry.get("license") or {}
        name = entry.get("expression") or lic.get("id") or lic.get("name")
        if name:
            names.add(name)
    return names


def sbom_metrics(sbom_text: str) -> dict[str, int]:
    """Library components, distinct licenses, and components whose license is unknown."""
    try:
        sbom = json.loads(sbom_text)
        if sbom.get("bomFormat") != "CycloneDX":
            raise ValueError("not a CycloneDX document")
        libraries = [c for c in sbom.get("components") or [] if c.get("type") == "library"]
        licenses = [_license_names(c) for c in libraries]
    except (ValueError, TypeError, AttributeError) as exc:
        raise ToolError(f"trivy wrote a malformed SBOM: {type(exc).__name__}: {str(exc)[:200]}") from None
    return {"sbom_components": len(libraries), "sbom_licenses": len(set().union(*licenses)),
            "sbom_components_without_license": sum(not names for names in licenses)}


# A requirements line names a distribution, optionally with extras, then a version specifier.
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>.*)$")


def unpinned_requirements(tree: SourceTree) -> list[TrivyFinding]:
    """Requirements without an exact ``==`` pin: trivy skips them, so no advisory is matched against them."""
    findings = []
    for rel, real in tree.files.items():
        name = rel.rsplit("/", 1)[-1]
        if not (name.startswith("requirements") and name.endswith(".txt")):
            continue
        for number, raw in enumerate(real.read_text(errors="replace").splitlines(), start=1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "-")):  # comments, -r/-c/-e and index options
                continue
            match = _REQUIREMENT.match(line)
            spec = match["spec"].split(";", 1)[0].strip() if match else ""
            pinned = re.fullmatch(r"===?\s*[A-Za-z0-9._+!-]+", spec) is not None
            if not pinned:
                what = match["name"] if match else "a requirement"
                findings.append(TrivyFinding(f"{GATE}.unpinned", Severity.HIGH,
                                             f"{what} is not pinned with ==: its installed version is not scanned",
                                             f"{rel}:{number}", kind="unpinned"))
    return findings


def components(scan: Scan) -> int:
    """Packages trivy found across its results (its JSON lists every package, vulnerable or not)."""
    return sum(len(result.get("Packages") or []) for report in scan.reports
               for result in report.get("Results") or [])


def _db_bytes(connection: TrivyConnection) -> int | None:
    """Size of the vulnerability DB file scanned against (a test or truncated DB is small), when known."""
    db = Path(connection.cache_dir or "") / "db" / "trivy.db"
    return db.stat().st_size if connection.cache_dir and db.is_file() else None


def check_dependencies(path: str | Path, connection: TrivyConnection, config: TrivyPolicy,
                       exceptions: Sequence[PolicyException], policy_digest: str, out_dir: str | Path, *,
                       command: SourceKind = "fs", today: datetime.date | None = None) -> GateResult:
    """Scan ``path``'s dependencies, apply the policy and its exceptions, and keep an SBOM as evidence.

    Fails closed on what a clean report cannot prove: zero components scanned, requirements trivy cannot
    match (unpinned), a missing or stale vulnerability DB.
    """
    if command not in ("fs", "rootfs"):
        raise GateInputError(f"code.dependencies scans with trivy fs or rootfs, not {command!r}")
    started, clock = utcnow(), time.perf_counter()
    tool = ToolInfo("trivy", "unknown")
    out = Path(out_dir)
    try:
        tree, own = scanned_tree(path, GATE)
        subject = Subject("code", str(path), tree.digest())
        scan = run_scan(command, path, connection, config)
        tool = scan.tool
        out.mkdir(parents=True, exist_ok=True)
        sbom = write_sbom(command, Path(path), connection, config, out / SBOM_NAME)
        metrics = sbom_metrics(sbom.read_text())
    except (ToolError, OSError) as exc:
        return error_result(GATE, Subject("code", str(path), ""), policy_digest, tool, started, exc)
    scanned = components(scan)
    if not scanned:
        own.append(TrivyFinding(f"{GATE}.no-components", Severity.CRITICAL,
                                "no dependency was found in a lock, requirements or package file: nothing was "
                                "matched against advisories", str(path), kind="gate"))
    unpinned = unpinned_requirements(tree)
    own += unpinned + db_findings(GATE, scan, config, connection)
    age = (datetime.datetime.now(datetime.UTC) - scan.db_updated_at).total_seconds() / 86400 \
        if scan.db_updated_at else None
    result = trivy_result(GATE, subject, tool, [*scan.findings, *own], config, policy_digest, started=started,
                          clock=clock, exceptions=exceptions, today=today,
                          metrics={**metrics, "components": scanned, "unpinned_requirements": len(unpinned),
                                   "db_updated_at": scan.db_updated_at.isoformat() if scan.db_updated_at
                                   else ("server" if connection.server else None),
                                   "db_age_days": round(age, 2) if age is not None else None,
                                   "db_bytes": _db_bytes(connection)})
    return replace(result, artifacts=(str(sbom),))
