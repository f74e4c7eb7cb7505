"""``GateResult``: the one record every gate produces, and everything downstream reads.

The result is evidence: it names the digest of what was checked (``subject``) and of the policy that
was applied, so promotion can refuse evidence that belongs to anything else (ADR 0003). Findings
carry a location and a message, never the sensitive value itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mlgate.core.redaction import redact


class Status(StrEnum):
    PASSED = "passed"
    BLOCKED = "blocked"
    ERROR = "error"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Subject:
    """What a gate checked: ``kind`` is ``dataset``, ``model``, ``code`` or ``image``."""

    kind: str
    uri: str
    digest: str


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    message: str
    location: str = ""


@dataclass(frozen=True)
class ToolInfo:
    name: str
    version: str


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: Status
    subject: Subject
    policy_digest: str
    tool: ToolInfo
    started_at: str
    finished_at: str
    metrics: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    artifacts: tuple[str, ...] = ()
    # digests of what the gate consumed, by subject kind (model.training: the dataset and code it trained on);
    # signed with the result, so promotion takes them from here rather than from editable version tags
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def top_failures(self, limit: int = 5) -> list[str]:
        """The most severe findings as one-line strings, for exception messages and summaries."""
        ranked = sorted(self.findings, key=lambda f: -f.severity.rank)
        lines = [f"[{f.severity}] {f.id}: {f.message}" + (f" ({f.location})" if f.location else "")
                 for f in ranked[:limit]]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more")
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["findings"] = [{**asdict(f), "severity": str(f.severity)} for f in self.findings]
        data["artifacts"] = list(self.artifacts)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(
            gate=data["gate"],
            status=Status(data["status"]),
            subject=Subject(**data["subject"]),
            policy_digest=data["policy_digest"],
            tool=ToolInfo(**data["tool"]),
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            metrics=dict(data.get("metrics", {})),
            thresholds=dict(data.get("thresholds", {})),
            findings=tuple(
                Finding(id=f["id"], severity=Severity(f["severity"]), message=f["message"],
                        location=f.get("location", ""))
                for f in data.get("findings", [])
            ),
            artifacts=tuple(data.get("artifacts", [])),
            inputs={str(k): str(v) for k, v in dict(data.get("inputs", {})).items()},
        )


def error_result(gate: str, subject: Subject, policy_digest: str, tool: ToolInfo, started_at: str,
                 exc: BaseException) -> GateResult:
    """The result of a gate that could not decide: fail closed, and say what broke (type and message)."""
    return GateResult(
        gate=gate, status=Status.ERROR, subject=subject, policy_digest=policy_digest, tool=tool,
        started_at=started_at, finished_at=utcnow(),
        findings=(Finding(id=f"{gate}.error", severity=Severity.CRITICAL,
                          message=redact(f"{type(exc).__name__}: {exc}")),),
    )
