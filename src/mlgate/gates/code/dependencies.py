"""``code.dependencies``: vulnerable dependencies (trivy fs / rootfs) with policy exceptions, and an SBOM.

``trivy fs`` reads lock and requirements files of a source tree; ``trivy rootfs`` reads installed
distributions (``*.dist-info``), which also carry licenses. The CycloneDX SBOM is written by a second,
vulnerability-free trivy run and kept as evidence next to the result.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.results import GateResult, Status, error_result, utcnow
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy, check_trivy, find_trivy, run_trivy, scan_argv

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


def check_dependencies(path: str | Path, connection: TrivyConnection, config: TrivyPolicy,
                       exceptions: Sequence[PolicyException], policy_digest: str, out_dir: str | Path, *,
                       command: SourceKind = "fs", today: datetime.date | None = None) -> GateResult:
    """Scan ``path``'s dependencies, apply the policy and its exceptions, and keep an SBOM as evidence."""
    if command not in ("fs", "rootfs"):
        raise GateInputError(f"code.dependencies scans with trivy fs or rootfs, not {command!r}")
    clock = time.perf_counter()
    result = check_trivy(command, path, connection, config, policy_digest, exceptions=exceptions, today=today)
    if result.status is Status.ERROR:
        return result
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        sbom = write_sbom(command, Path(path), connection, config, out / SBOM_NAME)
        metrics = sbom_metrics(sbom.read_text())
    except (ToolError, OSError) as exc:
        return error_result(GATE, result.subject, policy_digest, result.tool, result.started_at, exc)
    return replace(result, finished_at=utcnow(), artifacts=(str(sbom),),
                   metrics={**result.metrics, **metrics, "seconds": round(time.perf_counter() - clock, 3)})
