"""``registry.promote``: decide, attest, verify, record, and only then move the alias.

0. The signer accepts only a policy it trusts (pinned digest or a policy owner's signature, ADR 0013).
1. ``decide`` over the *signed* evidence of the version's run (each result's envelope verified against
   the keys the policy trusts for its gate; anything else counts as missing) and the digests seen now.
2. If it allows: sign the in-toto attestation over every artifact file, every gate result (with its
   envelope embedded) and the policy digest, store it on the version, and verify what was stored against
   another fresh download. No signing key, an untrusted or invalid signature, a swapped file: refused.
3. Plan the next signed alias state (a revoked version is refused), append the decision to the model's
   signed audit trail (write-ahead: no alias move goes unrecorded), store the signed alias state, move
   the alias if allowed, tag the version with the decision (ADR 0014).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlgate.core.digests import json_digest
from mlgate.core.errors import EvidenceError, GateInputError
from mlgate.core.policy import Policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.trust.alias_state import AliasState
from mlgate.trust.alias_store import plan_state, write_state
from mlgate.trust.attestation import AttestationError
from mlgate.trust.attestation_store import attest_version, attested_results, verify_version
from mlgate.trust.audit import AuditRecord, append_decision
from mlgate.trust.gate_evidence import functionaries, verify_gate_evidence
from mlgate.trust.keys import KeyRing, keyring_from_env
from mlgate.trust.promotion import GATE, Decision, decide
from mlgate.trust.registry import (
    TAG_CODE_DIGEST,
    TAG_DATA_DIGEST,
    TAG_LIMIT,
    call,
    current_alias_version,
    download_envelopes,
    download_evidence,
    model_file_digests,
)
from mlgate.trust.trusted_policy import UntrustedPolicyError, trust_policy

if TYPE_CHECKING:
    from mlflow import MlflowClient

TAG_EVIDENCE = "mlgate.decision.evidence"


def _attest_and_verify(client: MlflowClient, policy: Policy, name: str, version: str, found: Assessment,
                       keys: KeyRing, now: datetime) -> tuple[str, str]:
    """Sign and store the attestation, then verify the stored one; returns (envelope digest, key id)."""
    if not found.run_id:
        raise GateInputError(f"{name}/{version} has no run to hold its attestation")
    signer = keys.signer()
    trusted = keys.trusted_keys()
    results = attested_results(found.evidence, policy.digest)
    envelope = attest_version(client, name, version, found.run_id, found.file_digests, results, policy.digest,
                              signer, created_at=now.isoformat(timespec="seconds"),
                              gate_envelopes={r.gate: found.envelopes[r.gate] for r in results})
    return envelope, verify_version(client, policy, name, version, trusted, now).keyid


def _plan(client: MlflowClient, keys: KeyRing, name: str, alias: str, version: str, digest: str, now: datetime,
          reasons: list[str]) -> AliasState | None:
    """The signed alias state promotion will write, or ``None`` with the reason appended."""
    try:
        state = plan_state(client, keys, name, alias, "promotion", now, version=version, model_digest=digest)
    except (EvidenceError, GateInputError) as exc:
        reasons.append(f"alias state: {exc}")
        return None
    if version in state.revoked:
        reasons.append(f"{name}/{version} was revoked by incident response ({state.revoked[version]})")
        return None
    return state


def _decision_tags(record: AuditRecord) -> dict[str, str]:
    return {
        "mlgate.decision": record.decision,
        "mlgate.decision.reasons": "\n".join(record.reasons)[:TAG_LIMIT] or "all required gates passed",
        "mlgate.decision.by": record.by[:TAG_LIMIT],
        "mlgate.decision.at": record.at,
        "mlgate.decision.alias_before": record.alias_before,
        "mlgate.decision.alias_after": record.alias_after,
        TAG_EVIDENCE: record.envelope_digest,
    }


def _attempt_tags(record: AuditRecord) -> dict[str, str]:
    """A refused re-promotion of the version the alias serves: recorded as ``mlgate.refused_attempt*`` beside
    its decision, which stands (the audit trail holds the attempt too)."""
    return {key.replace("mlgate.decision", "mlgate.refused_attempt", 1): value
            for key, value in _decision_tags(record).items() if key != TAG_EVIDENCE}


@dataclass(frozen=True)
class Assessment:
    decision: Decision
    run_id: str | None
    evidence: dict[str, GateResult | EvidenceError]  # verified results, or why each counts as missing
    file_digests: dict[str, str]  # the model's files, as downloaded now
    envelopes: dict[str, str]  # gate -> the signed envelope each verified result came from


def _signed_evidence(client: MlflowClient, policy: Policy, run_id: str | None, keys: KeyRing,
                     digests: dict[str, str]) -> tuple[dict[str, GateResult | EvidenceError], dict[str, str]]:
    """The run's gate results that verify against the keys the policy trusts for each gate (ADR 0013)."""
    if not run_id:
        return {}, {}
    loose = download_evidence(client, run_id)
    try:
        keys_for = functionaries(policy, keys.trusted_keys())
    except GateInputError as exc:
        return {gate: EvidenceError(f"signed evidence cannot be verified: {exc}") for gate in loose}, {}
    return verify_gate_evidence(download_envelopes(client, run_id), loose, keys_for, digests, run_id)


def _signed_inputs(evidence: dict[str, GateResult | EvidenceError], digests: dict[str, str]) -> dict[str, str]:
    """``digests`` with the dataset and code digests the verified ``model.training`` result signed (the
    version's tags are a copy anyone who writes the registry can edit); unchanged without one."""
    training = evidence.get("model.training")
    if not isinstance(training, GateResult) or not training.passed:
        return digests
    return {**digests, **{kind: training.inputs[kind] for kind in ("dataset", "code") if kind in training.inputs}}


def assess(client: MlflowClient, policy: Policy, name: str, version: str, now: datetime,
           max_age_hours: float | None = None, keys: KeyRing | None = None) -> Assessment:
    """Would ``name``/``version`` pass promotion now? Moves nothing: promotion and incident response
    (choosing a version to restore) both build on it. ``keys``: whose signatures count (default: the
    environment's)."""
    model_version = call(client, f"reading model version {name}/{version}",
                         lambda: client.get_model_version(name, str(version)))
    file_digests = model_file_digests(client, f"models:/{name}/{version}")
    digests = {"model": json_digest(file_digests), "dataset": model_version.tags.get(TAG_DATA_DIGEST, ""),
               "code": model_version.tags.get(TAG_CODE_DIGEST, "")}
    keys = keys or keyring_from_env()
    evidence, envelopes = _signed_evidence(client, policy, model_version.run_id, keys, digests)
    signed = _signed_inputs(evidence, digests)
    if signed != digests:  # the version's tags were edited: judge the data and code the model was trained on
        digests = signed
        evidence, envelopes = _signed_evidence(client, policy, model_version.run_id, keys, digests)
    decision = decide(policy, evidence, digests=digests, now=now, max_age_hours=max_age_hours)
    return Assessment(decision, model_version.run_id, evidence, file_digests, envelopes)


def evaluate(client: MlflowClient, policy: Policy, name: str, version: str,
             max_age_hours: float | None = None, keys: KeyRing | None = None) -> tuple[Decision, str]:
    """The decision promotion would take now, and the model digest it saw."""
    found = assess(client, policy, name, version, datetime.now(UTC), max_age_hours, keys)
    return found.decision, json_digest(found.file_digests)


def promote(client: MlflowClient, policy: Policy, name: str, version: str, actor: str, keys: KeyRing, *,
            now: datetime | None = None) -> GateResult:
    """Move the policy's alias to ``name``/``version`` only if the evidence holds and its attestation
    verifies; every decision is appended to the audit trail. The caller logs the returned result."""
    started = utcnow()
    now = now or datetime.now(UTC)
    alias, version = policy.promotion.alias, str(version)
    reasons, envelope, keyid = [], "", ""
    try:
        trust_policy(policy, keys)
    except (UntrustedPolicyError, GateInputError) as exc:
        reasons.append(f"policy: {exc}")
    found = assess(client, policy, name, version, now, keys=keys)
    decision, digest = found.decision, json_digest(found.file_digests)
    reasons += decision.reasons
    if not reasons:
        try:
            envelope, keyid = _attest_and_verify(client, policy, name, version, found, keys, now)
        except AttestationError as exc:
            reasons += [f"attestation: {reason}" for reason in exc.reasons]
        except GateInputError as exc:
            reasons.append(f"attestation: {exc}")
    state = None if reasons else _plan(client, keys, name, alias, version, digest, now, reasons)
    before = current_alias_version(client, name, alias)
    record = AuditRecord(at=utcnow(), model=name, version=version, decision="blocked" if reasons else "promoted",
                         by=actor, alias=alias, alias_before=before or "",
                         alias_after=(before or "") if reasons else version, reasons=tuple(reasons),
                         envelope_digest=envelope, keyid=keyid, policy_digest=policy.digest,
                         state_sequence=state.sequence if state else 0)
    append_decision(client, record, keys)
    if state is not None:
        write_state(client, keys, name, alias, "promotion", now, planned=state)
        call(client, f"setting alias {alias}", lambda: client.set_registered_model_alias(name, alias, version))
    tags = _attempt_tags(record) if reasons and before == version else _decision_tags(record)
    for key, value in tags.items():
        call(client, "tagging the decision", lambda k=key, v=value: client.set_model_version_tag(name, version, k, v))
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if reasons else Status.PASSED,
        subject=Subject("model", f"models:/{name}/{version}", digest),
        policy_digest=policy.digest,
        tool=ToolInfo("mlflow", _mlflow_version()),
        started_at=started,
        finished_at=utcnow(),
        metrics={"required_gates": len(policy.promotion.required_gates), "reasons": len(reasons)},
        thresholds={"required_gates": list(policy.promotion.required_gates), "alias": alias,
                    "max_evidence_age_hours": policy.promotion.max_evidence_age_hours,
                    "gates_seen": decision.gates, "alias_before": before, "alias_after": record.alias_after or None,
                    "attestation": envelope or None, "keyid": keyid or None},
        findings=tuple(Finding(f"{GATE}.refused", Severity.HIGH, reason) for reason in reasons),
    )


def _mlflow_version() -> str:
    import mlflow

    return mlflow.__version__
