"""``incident.respond``: when monitoring alerts about the served model, stop serving it.

The alias moves back to the newest earlier version whose evidence passes promotion's checks *now*
(``promote.evaluate``: the same evidence, digests and policy) *and* whose signed attestation verifies,
skipping versions an earlier incident revoked (the signed alias state's list, not only the tag anyone
can remove). When no such version exists the alias is removed: serving nothing is safer than serving a
model known to misbehave or one whose evidence no longer holds (ADR 0007). The demoted version is
revoked in a newly signed alias state and tagged ``mlgate.incident``; the decision is appended to the
signed audit trail (ADR 0014); the incident is an MLflow run in its own experiment holding the alerting
GateResults, and the response's own result says whether retraining is due.

An alert is a *blocked* monitoring result. An ``error`` result (a window too small to test, an
unreadable log) says nothing about the model: it fails its own task, and demotes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlgate.core.digests import json_digest
from mlgate.core.errors import EvidenceError, GateInputError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.monitor.policies import IncidentPolicy
from mlgate.trust.alias_state import AliasState, AliasStateError
from mlgate.trust.alias_store import load_seen, plan_state, trusted_view, write_state
from mlgate.trust.attestation_store import verify_version
from mlgate.trust.audit import AuditRecord, append_decision
from mlgate.trust.keys import KeyRing, keyring_from_env
from mlgate.trust.promote import evaluate
from mlgate.trust.promotion import Decision
from mlgate.trust.registry import (
    TAG_LIMIT,
    TAG_MODEL_DIGEST,
    call,
    current_alias_version,
    log_result,
    pipeline_run,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlgate.core.policy import Policy

GATE = "incident.respond"
TAG = "mlgate.incident"
MONITOR_GATES = ("monitor.drift", "monitor.confidence", "monitor.queries")
def alerts(results: Iterable[GateResult]) -> tuple[GateResult, ...]:
    """The blocked monitoring results."""
    return tuple(r for r in results if r.gate in MONITOR_GATES and r.status is Status.BLOCKED)


def incident_id(model: str, version: str, key: str) -> str:
    """Stable for one responding run (a retried task records the same incident again, not a new one)."""
    return "inc-" + hashlib.sha256(f"{model}/{version}/{key}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Restore:
    """The version to serve instead (``None``: none passes), and why each skipped candidate was refused."""

    version: str | None
    refused: dict[str, tuple[str, ...]] = field(default_factory=dict)


def choose_restore(candidates: Sequence[str], verify: Callable[[str], Decision]) -> Restore:
    """The first candidate (newest first) that ``verify`` allows; a candidate that cannot be verified
    (evidence or model unreadable) is refused like one that fails."""
    refused: dict[str, tuple[str, ...]] = {}
    for version in candidates:
        try:
            decision = verify(version)
        except (EvidenceError, ToolError, GateInputError) as exc:
            refused[version] = (f"cannot be verified: {exc}",)
            continue
        if decision.allowed:
            return Restore(version, refused)
        refused[version] = decision.reasons
    return Restore(None, refused)


def restore_candidates(client: MlflowClient, name: str, below: str, limit: int,
                       revoked: Iterable[str] = ()) -> list[str]:
    """Versions older than ``below`` that no incident demoted (tagged or ``revoked``), newest first, at most
    ``limit``."""
    revoked = set(revoked)
    escaped = name.replace("'", "\\'")
    versions = call(client, f"listing the versions of {name}",
                    lambda: client.search_model_versions(f"name = '{escaped}'"))
    older = [v for v in versions
             if int(v.version) < int(below) and TAG not in (v.tags or {}) and str(v.version) not in revoked]
    return [str(v.version) for v in sorted(older, key=lambda v: -int(v.version))][:limit]


@dataclass(frozen=True)
class _Outcome:
    demote: bool
    served_before: str | None
    served_after: str | None
    restore: Restore
    unsigned: str = ""  # why the signed alias state could not be written ("" when it was)


@dataclass(frozen=True)
class _Signed:
    """What the model's signed alias state says now (empty when it is missing or does not verify)."""

    state: AliasState | None
    revoked: frozenset[str]


def _signed(client: MlflowClient, name: str, alias: str, trusted: tuple[str, ...], now: datetime) -> _Signed:
    try:
        view = trusted_view(client, name, trusted, now, aliases=[alias])
    except AliasStateError:  # remembered revocations still hold
        seen = load_seen(client.tracking_uri, name).get(alias)
        return _Signed(None, frozenset(seen.revoked if seen else ()))
    return _Signed(view.states[alias], frozenset(view.revoked))


def _verifier(client: MlflowClient, policy: Policy, name: str, trusted: tuple[str, ...], now: datetime,
              digests: dict[str, str]) -> Callable[[str], Decision]:
    """A candidate is restorable when its evidence passes now and its signed attestation verifies."""
    config: IncidentPolicy = policy.section(GATE)

    def verify(version: str) -> Decision:
        decision = evaluate(client, policy, name, version, config.max_evidence_age_hours)[0]
        if decision.allowed:
            verified = verify_version(client, policy, name, version, trusted, now, expires=False)
            digests[version] = json_digest(verified.artifact_digests)
        return decision

    return verify


def _demote(client: MlflowClient, policy: Policy, name: str, version: str, incident: str, keys: KeyRing,
            actor: str) -> _Outcome:
    """Revoke ``version``; if the alias serves it, move the alias to the last good version, or remove it."""
    config: IncidentPolicy = policy.section(GATE)
    alias, now = policy.promotion.alias, datetime.now(UTC)
    try:
        trusted = keys.trusted_keys()
    except GateInputError:  # no key at all: nothing verifies, so nothing is restored
        trusted = ()
    served = current_alias_version(client, name, alias)
    signed = _signed(client, name, alias, trusted, now)
    if served == version:
        digests: dict[str, str] = {}
        restore = choose_restore(
            restore_candidates(client, name, version, config.max_candidates, signed.revoked | {version}),
            _verifier(client, policy, name, trusted, now, digests))
        after, digest = restore.version, digests.get(restore.version or "", "")
    else:  # keep what the signed state serves, never bless a direct move
        restore = Restore(None)
        keep = signed.state and signed.state.version not in (None, version)
        after, digest = (signed.state.version, signed.state.model_digest) if keep else (None, "")
    state, unsigned = None, ""
    try:
        state = plan_state(client, keys, name, alias, "incident", now, version=after, model_digest=digest,
                           revoke={version: incident})
    except (EvidenceError, GateInputError) as exc:
        unsigned = str(exc)
    append_decision(client, AuditRecord(
        at=utcnow(), model=name, version=version, decision="demoted", by=actor, alias=alias,
        alias_before=served or "", alias_after=(restore.version or "") if served == version else (served or ""),
        reasons=(f"incident {incident}",), policy_digest=policy.digest,
        state_sequence=state.sequence if state else 0), keys)
    if state is not None:
        write_state(client, keys, name, alias, "incident", now, planned=state)
    if served != version:
        return _Outcome(True, served, served, restore, unsigned)
    if restore.version:
        call(client, f"moving alias {alias}",
             lambda: client.set_registered_model_alias(name, alias, restore.version))
        call(client, "tagging the restored version",
             lambda: client.set_model_version_tag(name, restore.version, f"{TAG}.restored_by", incident))
    else:
        call(client, f"removing alias {alias}", lambda: client.delete_registered_model_alias(name, alias))
    return _Outcome(True, served, restore.version, restore, unsigned)


def _findings(raised: Sequence[GateResult], reason: str, outcome: _Outcome, alias: str,
              version: str) -> list[Finding]:
    findings = [Finding(f"{GATE}.alert", Severity.HIGH, f"{r.gate}: {line}")
                for r in raised for line in r.top_failures(3) or [f"{r.status}, no findings recorded"]]
    if reason:
        findings.append(Finding(f"{GATE}.reported", Severity.HIGH, reason))
    if not outcome.demote:
        return findings
    if outcome.unsigned:
        findings.append(Finding(f"{GATE}.unsigned", Severity.HIGH,
                                f"the revocation could not be signed ({outcome.unsigned[:300]}): loaders refuse "
                                f"{alias} until a signed promotion"))
    for candidate, reasons in outcome.restore.refused.items():
        findings.append(Finding(f"{GATE}.not_restored", Severity.INFO, "; ".join(reasons)[:500],
                                f"version {candidate}"))
    if outcome.served_before != version:
        findings.append(Finding(f"{GATE}.not_served", Severity.INFO,
                                f"alias {alias} serves version {outcome.served_before}, not {version}: left as it is"))
    elif outcome.served_after:
        findings.append(Finding(f"{GATE}.restored", Severity.MEDIUM,
                                f"alias {alias} moved from version {version} to {outcome.served_after}"))
    else:
        findings.append(Finding(f"{GATE}.no_good_version", Severity.CRITICAL,
                                f"no earlier version passes promotion's checks: alias {alias} removed, nothing "
                                "is served until a new version is promoted"))
    return findings


def respond(client: MlflowClient, policy: Policy, name: str, version: str | None, raised: Sequence[GateResult],
            *, reason: str = "", key: str, keys: KeyRing | None = None) -> GateResult:
    """Respond to the alerts ``raised`` (or a reported ``reason``) about ``name``/``version``.

    ``version`` defaults to the one the alias serves. ``key`` names the responding run (a DAG run, a CLI
    call): it keys the incident's MLflow run. ``keys`` sign the revocation and the audit record (default:
    the environment's). BLOCKED means nothing is served any more.
    """
    started = utcnow()
    config: IncidentPolicy = policy.section(GATE)
    alias = policy.promotion.alias
    version = version or current_alias_version(client, name, alias)
    if not version:
        raise GateInputError(f"{name}@{alias} serves no version and none was named: nothing to respond to")
    if not raised and not reason:
        raise GateInputError("an incident needs an alert from a monitoring gate or a reported reason")
    incident = incident_id(name, version, key)
    model_version = call(client, f"reading model version {name}/{version}",
                         lambda: client.get_model_version(name, version))
    demote = bool(reason) or any(r.gate in config.demote_on for r in raised)
    if demote:
        outcome = _demote(client, policy, name, version, incident, keys or keyring_from_env(), f"incident:{key}")
    else:
        served = current_alias_version(client, name, alias)
        outcome = _Outcome(False, served, served, Restore(None))
    findings = _findings(raised, reason, outcome, alias, version)
    if demote:
        tags = {TAG: incident, f"{TAG}.reasons": "\n".join(f.message for f in findings)[:TAG_LIMIT]}
        for tag, value in tags.items():
            call(client, "tagging the demoted version",
                 lambda t=tag, v=value: client.set_model_version_tag(name, version, t, v))
    result = GateResult(
        gate=GATE,
        status=Status.BLOCKED if demote and outcome.served_after is None else Status.PASSED,
        subject=Subject("model", f"models:/{name}/{version}", model_version.tags.get(TAG_MODEL_DIGEST, "unknown")),
        policy_digest=policy.digest,
        tool=ToolInfo("mlgate", "incident"),
        started_at=started,
        finished_at=utcnow(),
        metrics={"incident": incident, "alerts": len(raised), "alerting_gates": sorted({r.gate for r in raised}),
                 "demoted": demote, "retrain": demote, "candidates_refused": len(outcome.restore.refused),
                 "alias_before": outcome.served_before, "alias_after": outcome.served_after},
        thresholds=config.model_dump(mode="json"),
        findings=tuple(findings),
    )
    record_incident(client, config.experiment, key, name, version, result, raised)
    return result


def record_incident(client: MlflowClient, experiment: str, key: str, name: str, version: str, result: GateResult,
                    raised: Sequence[GateResult]) -> str:
    """The incident's MLflow run: the alerting results and the response as evidence, tags to search by."""
    run_id = pipeline_run(client, experiment, key)
    for item in (*raised, result):
        log_result(client, run_id, item)
    tags = {TAG: result.metrics["incident"], f"{TAG}.model": name, f"{TAG}.bad_version": version,
            f"{TAG}.restored_version": result.metrics["alias_after"] or "", f"{TAG}.dag_run": key,
            f"{TAG}.demoted": str(result.metrics["demoted"]).lower(),
            f"{TAG}.reasons": "\n".join(f.message for f in result.findings)[:TAG_LIMIT]}
    for tag, value in tags.items():
        call(client, "tagging the incident run", lambda t=tag, v=value: client.set_tag(run_id, t, v))
    call(client, "closing the incident run", lambda: client.set_terminated(run_id))
    return run_id
