"""The promotion decision, as a pure function of policy, evidence and the digests seen now.

Every reason is collected, not just the first, so one failed promotion tells the whole story. Anything
but a fresh ``passed`` result bound to exactly this model and data, under this policy, blocks (ADR 0001).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mlgate.core.errors import EvidenceError
from mlgate.core.policy import Policy
from mlgate.core.results import GateResult, Status

GATE = "registry.promote"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    gates: dict[str, str]  # gate id -> status seen (or "missing" / "unreadable")


def _problems(gate: str, result: GateResult, policy: Policy, model_digest: str, data_digest: str,
              now: datetime) -> list[str]:
    problems = []
    if result.status is not Status.PASSED:
        failures = "; ".join(result.top_failures(3)) or "no findings recorded"
        problems.append(f"{gate}: status {result.status} ({failures})")
    expected = {"model": model_digest, "dataset": data_digest}.get(result.subject.kind)
    if expected is None:
        problems.append(f"{gate}: evidence is about a {result.subject.kind!r}, which promotion cannot bind")
    elif result.subject.digest != expected:
        what = "model artifact changed since validation" if result.subject.kind == "model" else \
            "evidence is for other data than the model was trained on"
        problems.append(f"{gate}: {what} (evidence {result.subject.digest[:19]}…, now {expected[:19]}…)")
    if result.policy_digest != policy.digest:
        problems.append(f"{gate}: the policy changed since this evidence was produced")
    try:
        age = now - datetime.fromisoformat(result.finished_at)
    except ValueError:
        problems.append(f"{gate}: evidence timestamp {result.finished_at!r} is unreadable")
    else:
        if age > timedelta(hours=policy.promotion.max_evidence_age_hours):
            problems.append(f"{gate}: evidence is {age.total_seconds() / 3600:.1f} h old, older than the "
                            f"policy's {policy.promotion.max_evidence_age_hours} h")
    return problems


def decide(policy: Policy, evidence: dict[str, GateResult | EvidenceError], *, model_digest: str,
           data_digest: str, now: datetime) -> Decision:
    reasons: list[str] = []
    seen: dict[str, str] = {}
    for gate in policy.promotion.required_gates:
        item = evidence.get(gate)
        if item is None:
            seen[gate] = "missing"
            reasons.append(f"{gate}: required gate has no evidence for this model version")
        elif isinstance(item, EvidenceError):
            seen[gate] = "unreadable"
            reasons.append(f"{gate}: {item}")
        else:
            seen[gate] = str(item.status)
            reasons.extend(_problems(gate, item, policy, model_digest, data_digest, now))
    return Decision(allowed=not reasons, reasons=tuple(reasons), gates=seen)
