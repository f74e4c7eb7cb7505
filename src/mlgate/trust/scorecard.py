"""The security scorecard: one self-contained HTML page per model version, for the person who signs off.

It shows only what the GateResults, the decision history, the threat-model coverage and the compliance
mapping hold (findings never carry sensitive values), escapes all of it (Jinja2 autoescape), and embeds
images as data URIs so the file can be attached to a ticket or opened offline.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Severity, Status, utcnow
from mlgate.trust.compliance import GateCompliance
from mlgate.trust.threat_model import Coverage

# Gates whose metrics get their own summary card, with the card's title.
SUMMARIES = {
    "data.pii": "PII and secrets",
    "code.dependencies": "Dependency CVEs",
    "deploy.container": "Container CVEs",
    "model.robustness": "Adversarial robustness",
    "monitor.drift": "Drift",
}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
KEY_NUMBERS = 4
SUMMARY_ROWS = 14


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _scalars(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Scalar entries, with one level of nested mappings flattened as ``outer.inner``."""
    rows = []
    for name, value in values.items():
        if isinstance(value, Mapping) and not prefix:
            rows += _scalars(value, f"{name}.")
        elif isinstance(value, int | float | str | bool) and value is not None:
            rows.append((f"{prefix}{name}", _format(value)))
    return rows


def _gate_row(result: GateResult) -> dict[str, Any]:
    return {
        "gate": result.gate, "status": str(result.status),
        "numbers": _scalars({k: v for k, v in result.metrics.items() if not isinstance(v, Mapping)})[:KEY_NUMBERS],
        "findings": result.top_failures(3), "tool": f"{result.tool.name} {result.tool.version}",
        "subject": f"{result.subject.kind} {result.subject.digest[:19]}…", "subject_uri": result.subject.uri,
        "finished": result.finished_at,
    }


def _summary(result: GateResult) -> dict[str, Any]:
    severities = Counter(f.severity for f in result.findings)
    return {
        "title": SUMMARIES[result.gate], "gate": result.gate, "status": str(result.status),
        "metrics": _scalars(result.metrics)[:SUMMARY_ROWS],
        "thresholds": _scalars(result.thresholds)[:SUMMARY_ROWS],
        "severities": [(str(s), severities[s]) for s in reversed(Severity) if severities[s]],
    }


def _data_uri(path: Path) -> str:
    kind = IMAGE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise GateInputError(f"{path}: scorecard images must be one of {sorted(IMAGE_TYPES)}")
    try:
        return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the image: {exc.strerror}") from None


def _compliance_rows(compliance: Mapping[str, GateCompliance], status: Mapping[str, str]) -> list[dict[str, Any]]:
    def mark(ids: Iterable[str], unverified: tuple[str, ...]) -> list[str]:
        return [f"{i} (unverified)" if i in unverified else i for i in ids]

    return [{"gate": gate, "evidence": status.get(gate, "no evidence"),
             "nist_functions": ", ".join(m.nist_functions), "nist": mark(m.nist_ai_rmf, m.unverified),
             "art15": ", ".join(m.eu_ai_act_art15), "owasp": mark(m.owasp_ml_top10, m.unverified),
             "atlas": mark(m.mitre_atlas, m.unverified)}
            for gate, m in compliance.items()]


def _decision_rows(decisions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each decision: ``at``, ``version``, ``decision``, ``by``, ``alias_before``, ``alias_after``, ``reasons``."""
    rows = []
    for d in decisions:
        reasons = d.get("reasons", ())
        rows.append({"at": str(d.get("at", "")), "version": str(d.get("version", "")),
                     "decision": str(d.get("decision", "unknown")), "by": str(d.get("by", "")),
                     "alias": f"{d.get('alias_before') or '—'} → {d.get('alias_after') or '—'}",
                     "reasons": reasons.splitlines() if isinstance(reasons, str) else [str(r) for r in reasons]})
    return rows


def render_scorecard(model_name: str, version: str, results: Iterable[GateResult],
                     decisions: Iterable[Mapping[str, Any]], coverage: Coverage,
                     compliance: Mapping[str, GateCompliance], images: Mapping[str, Path] | None = None, *,
                     required_gates: Iterable[str] | None = None, generated_at: str | None = None,
                     attestation_problems: Iterable[str] = ("the attestation was not verified",)) -> str:
    """The scorecard HTML. PROMOTABLE only when the version's signed attestation verified
    (``attestation_problems`` empty: the caller verified it), every result passed and every required gate
    has evidence; results read from the store alone never make a version PROMOTABLE (ADR 0013)."""
    from jinja2 import Environment, StrictUndefined

    results = sorted(results, key=lambda r: (r.status is Status.PASSED, r.gate))  # failures first
    missing = [g for g in (required_gates or ()) if g not in {r.gate for r in results}]
    reasons = [f"{r.gate} is {r.status}" for r in results if r.status is not Status.PASSED]
    reasons += [f"{gate} has no evidence" for gate in missing] + ([] if results else ["no gate evidence at all"])
    reasons += [f"attestation: {problem}" for problem in attestation_problems]
    template = (files("mlgate") / "templates" / "scorecard.html.j2").read_text()
    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(template).render(
        model_name=model_name, version=str(version), generated_at=generated_at or utcnow(),
        promotable=not reasons, reasons=reasons,
        gates=[_gate_row(r) for r in results], missing=missing,
        summaries=[_summary(r) for r in results if r.gate in SUMMARIES],
        images=[(name, _data_uri(Path(path))) for name, path in (images or {}).items()],
        coverage=coverage, compliance=_compliance_rows(compliance, {r.gate: str(r.status) for r in results}),
        decisions=_decision_rows(decisions),
    )
