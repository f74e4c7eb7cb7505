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
import posixpath
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
# trivy's pip analyzer reads files named exactly this; requirements-prod.txt, base.in or a file pulled in
# with -r are never matched against advisories.
TRIVY_REQUIREMENTS = "requirements.txt"
_REQUIREMENTS_NAME = re.compile(r"(?i)requirements.*\.(txt|in)$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(\s*=\s*|\s+)(?P<file>\S+)")
_EDITABLE = re.compile(r"^(-e|--editable)(\s*=\s*|\s+)\S")


def _finding(kind: str, message: str, location: str) -> TrivyFinding:
    return TrivyFinding(f"{GATE}.{kind}", Severity.HIGH, message, location,
                        kind="gate" if kind == "unscanned" else "unpinned")


def _requirement_hits(rel: str, text: str) -> tuple[list[TrivyFinding], list[str], int]:
    """One requirements file: its unpinned or editable requirements, the files it includes, how many
    requirements it lists."""
    findings, includes, count = [], [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        include = _INCLUDE.match(line)
        if include:
            includes.append(posixpath.normpath(posixpath.join(posixpath.dirname(rel), include["file"])))
            continue
        if _EDITABLE.match(line):  # the URL may carry a token: never quoted
            count += 1
            findings.append(_finding("unpinned", "an editable requirement (-e) is installed from a path or URL: "
                                                 "no advisory is matched against it", f"{rel}:{number}"))
            continue
        if not line or line.startswith(("#", "-")):  # comments and index options
            continue
        count += 1
        match = _REQUIREMENT.match(line)
        spec = match["spec"].split(";", 1)[0].strip() if match else ""
        if re.fullmatch(r"===?\s*[A-Za-z0-9._+!-]+", spec) is None:
            what = match["name"] if match else "a requirement"
            findings.append(_finding("unpinned", f"{what} is not pinned with ==: its installed version is not "
                                                 "scanned", f"{rel}:{number}"))
    return findings, includes, count


def unpinned_requirements(tree: SourceTree) -> list[TrivyFinding]:
    """Requirements trivy cannot match: without an exact ``==`` pin, editable, or in a requirements file
    trivy does not read (any name but requirements.txt, a ``-r``/``-c`` include, one outside the tree)."""
    findings: list[TrivyFinding] = []
    queue = [rel for rel in tree.files if _REQUIREMENTS_NAME.search(rel.rsplit("/", 1)[-1])]
    seen: set[str] = set()
    while queue:
        rel = queue.pop(0)
        if rel in seen:
            continue
        seen.add(rel)
        if rel not in tree.files:
            findings.append(_finding("unscanned", "a requirements file included with -r/-c is not in the scanned "
                                                  "tree: what it installs was not scanned", rel))
            continue
        hits, includes, count = _requirement_hits(rel, tree.files[rel].read_text(errors="replace"))
        findings += hits
        queue += includes
        if count and rel.rsplit("/", 1)[-1] != TRIVY_REQUIREMENTS:
            findings.append(_finding("unscanned", f"trivy reads only files named {TRIVY_REQUIREMENTS}: the "
                                                  "requirements in this file were not scanned", rel))
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
    requirements = unpinned_requirements(tree)
    unpinned = [f for f in requirements if f.kind == "unpinned"]
    own += requirements + db_findings(GATE, scan, config, connection)
    age = (datetime.datetime.now(datetime.UTC) - scan.db_updated_at).total_seconds() / 86400 \
        if scan.db_updated_at else None
    result = trivy_result(GATE, subject, tool, [*scan.findings, *own], config, policy_digest, started=started,
                          clock=clock, exceptions=exceptions, today=today,
                          metrics={**metrics, "components": scanned, "unpinned_requirements": len(unpinned),
                                   "unscanned_requirement_files": len(requirements) - len(unpinned),
                                   "db_updated_at": scan.db_updated_at.isoformat() if scan.db_updated_at
                                   else ("server" if connection.server else None),
                                   "db_age_days": round(age, 2) if age is not None else None,
                                   "db_bytes": _db_bytes(connection)})
    return replace(result, artifacts=(str(sbom),))
