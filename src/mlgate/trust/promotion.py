"""The promotion decision, as a pure function of policy, evidence and the digests seen now.

Every reason is collected, not just the first, so one failed promotion tells the whole story. Anything
but a fresh ``passed`` result bound to exactly this model, data and code, under this policy, blocks
(ADR 0001, 0003).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlgate.core.errors import EvidenceError, UnverifiedEvidenceError
from mlgate.core.policy import Policy
from mlgate.core.results import GateResult, Status

GATE = "registry.promote"
MISMATCH = {"model": "model artifact changed since validation",
            "dataset": "evidence is for other data than the model was trained on",
            "code": "evidence is for other code than the model was trained with"}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    gates: dict[str, str]  # gate id -> status seen (or "missing" / "unreadable")


def _problems(gate: str, result: GateResult, policy: Policy, digests: Mapping[str, str], now: datetime,
              max_age_hours: float) -> list[str]:
    problems = []
    if result.status is not Status.PASSED:
        failures = "; ".join(result.top_failures(3)) or "no findings recorded"
        problems.append(f"{gate}: status {result.status} ({failures})")
    expected = digests.get(result.subject.kind)
    if expected is not None and result.subject.digest != expected:
        problems.append(f"{gate}: {MISMATCH.get(result.subject.kind, 'evidence is about something else')} "
                        f"(evidence {result.subject.digest[:19]}…, now {expected[:19]}…)")
    if result.policy_digest != policy.digest:
        problems.append(f"{gate}: the policy changed since this evidence was produced")
    try:
        age = now - datetime.fromisoformat(result.finished_at)
    except ValueError:
        problems.append(f"{gate}: evidence timestamp {result.finished_at!r} is unreadable")
    else:
        if age > timedelta(hours=max_age_hours):
            problems.append(f"{gate}: evidence is {age.total_seconds() / 3600:.1f} h old, older than the "
                            f"policy's {max_age_hours} h")
    return problems


def decide(policy: Policy, evidence: dict[str, GateResult | EvidenceError], *, digests: Mapping[str, str],
           now: datetime, max_age_hours: float | None = None) -> Decision:
    """``digests`` maps a subject kind (``model``, ``dataset``, ``code``) to the digest the model version
    records for it now; a result about that kind must carry exactly that digest. Results about other kinds
    (a deployment config, an image) are bound by living in the model version's own run. ``max_age_hours``
    defaults to the promotion policy's (incident response may allow older evidence when restoring).
    """
    max_age = policy.promotion.max_evidence_age_hours if max_age_hours is None else max_age_hours
    reasons: list[str] = []
    seen: dict[str, str] = {}
    for gate in policy.promotion.required_gates:
        item = evidence.get(gate)
        if item is None:
            seen[gate] = "missing"
            reasons.append(f"{gate}: required gate has no evidence for this model version")
        elif isinstance(item, EvidenceError):  # unsigned, untrusted or other-subject evidence counts as missing
            seen[gate] = "missing" if isinstance(item, UnverifiedEvidenceError) else "unreadable"
            reasons.append(f"{gate}: {item}")
        else:
            seen[gate] = str(item.status)
            reasons.extend(_problems(gate, item, policy, digests, now, max_age))
    return Decision(allowed=not reasons, reasons=tuple(reasons), gates=seen)
