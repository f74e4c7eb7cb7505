"""Gate results signed where they are produced, and verified step by step before anything counts them.

Digests bind a result to a model, but anyone who can write to the tracking store can compute digests
(A1 in ADR 0013). So the task that produces a GateResult signs it at once: an in-toto Statement whose
subject is the result's subject digest and whose predicate is the result, in a DSSE envelope stored as
``gates/<gate-id>.dsse.json`` beside ``gates/<gate-id>.json``. Promotion reads only the signed
predicate; the loose JSON is a copy for people and dashboards.

Verification is an ordered list of small ``verify_*`` rules (in-toto verifylib style): the first that
fails stops it, and the error names it with the trace of the rules before it. Which keys may sign which
gate is the policy's ``promotion.functionaries`` (in-toto layout semantics: trusted functionaries per
step; ``"*"`` for every step; empty: the trusted keys sign every gate). Unsigned, wrongly signed,
untrusted-key or wrong-subject evidence becomes an :class:`UnverifiedEvidenceError`: it counts as missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import EvidenceError, GateInputError, UnverifiedEvidenceError
from mlgate.core.policy import Policy
from mlgate.core.results import GateResult
from mlgate.trust.attestation import STATEMENT_TYPE, AttestationError, open_envelope, sign_statement, trusted_key
from mlgate.trust.keys import public_keys
from mlgate.trust.promotion import MISMATCH
from mlgate.trust.registry import SIGNED_SUFFIX

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

PREDICATE_TYPE = "https://mlgate.dev/attestation/gate-result/v1"
_KEYID = re.compile(r"[0-9a-f]{64}")
RUN_FIELD = "mlflowRun"
_DIGEST = re.compile(r"([a-z0-9-]+):([0-9a-f]{16,128})")


def envelope_name(gate: str) -> str:
    return f"{gate}{SIGNED_SUFFIX}"


def digest_set(digest: str) -> dict[str, str]:
    """An in-toto digest set from ``<algorithm>:<hex>``; anything else (``unknown`` of an errored gate)
    under ``mlgate-opaque`` as the sha256 of the text, so it can never equal a real digest."""
    match = _DIGEST.fullmatch(digest)
    if match:
        return {match.group(1): match.group(2)}
    return {"mlgate-opaque": hashlib.sha256(digest.encode()).hexdigest()}


def result_statement(result: GateResult, run_id: str | None) -> dict[str, Any]:
    """The statement of ``result``; its predicate also names ``run_id``, the MLflow run the result is
    logged in, so a copy of the envelope in another run (same data, same policy, fresh) does not count."""
    subject = {"name": result.subject.uri or result.subject.kind, "digest": digest_set(result.subject.digest)}
    return {"_type": STATEMENT_TYPE, "subject": [subject], "predicateType": PREDICATE_TYPE,
            "predicate": {**result.to_dict(), RUN_FIELD: run_id}}


def sign_result(result: GateResult, signer: CryptoSigner, run_id: str | None) -> str:
    """The DSSE envelope (JSON text) of ``result``, signed by the task that produced it for the MLflow run
    ``run_id`` it is logged in (``None``: for no run; promotion then counts it as missing)."""
    return sign_statement(result_statement(result, run_id), signer)


# --- who may sign what ---------------------------------------------------------------------------

def functionaries(policy: Policy, trusted: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """gate id -> the PEM public keys allowed to sign its results. Entries are key ids of ``trusted`` keys
    or inline PEM public keys, so the policy's digest pins each key's content (a path would pin only the
    path; the policy model refuses one); a key id that is not trusted is an error."""
    by_id = {trusted_key(pem).keyid: pem for pem in trusted}
    steps: dict[str, tuple[str, ...]] = {}
    for gate, entries in policy.promotion.functionaries.items():
        keys: list[str] = []
        for entry in entries:
            if not _KEYID.fullmatch(entry):
                keys.extend(public_keys([entry]))
            elif entry in by_id:
                keys.append(by_id[entry])
            else:
                raise GateInputError(f"promotion.functionaries.{gate}: key id {entry[:16]}… is not among the "
                                     "trusted keys")
        steps[gate] = tuple(keys)
    if not steps:
        return lambda gate: trusted
    return lambda gate: steps.get(gate, steps.get("*", ()))


# --- verification rules --------------------------------------------------------------------------

@dataclass
class _Check:
    gate: str
    envelope: str | None
    keys: tuple[str, ...]
    expected: Mapping[str, str]  # subject kind -> the digest promotion sees now
    run_id: str  # the MLflow run the envelope was found in (the model version's run)
    found: dict[str, Any] = field(default_factory=dict)


def verify_signed(check: _Check) -> None:
    if check.envelope is None:
        raise AttestationError(f"no signed envelope gates/{envelope_name(check.gate)}: the result is unsigned")


def verify_functionaries(check: _Check) -> None:
    if not check.keys:
        raise AttestationError(f"no key is trusted to sign {check.gate} (promotion.functionaries)")


def verify_signature(check: _Check) -> None:
    payload, keyid = open_envelope(check.envelope or "", check.keys)
    check.found.update(payload=payload, keyid=keyid)


def verify_statement(check: _Check) -> None:
    try:
        statement = json.loads(check.found["payload"])
    except ValueError:
        raise AttestationError("the signed payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE \
            or statement.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"not an in-toto Statement of type {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    if not (isinstance(subjects, list) and len(subjects) == 1 and isinstance(subjects[0], dict)):
        raise AttestationError("a gate statement names exactly one subject")
    check.found["statement"] = statement


def verify_predicate(check: _Check) -> None:
    try:
        result = GateResult.from_dict(check.found["statement"]["predicate"])
    except (ValueError, KeyError, TypeError):
        raise AttestationError("the predicate is not a readable GateResult") from None
    if result.gate != check.gate:
        raise AttestationError(f"the signed result is of gate {result.gate}, not {check.gate}")
    check.found["result"] = result


def verify_subject(check: _Check) -> None:
    result: GateResult = check.found["result"]
    if check.found["statement"]["subject"][0].get("digest") != digest_set(result.subject.digest):
        raise AttestationError("the statement's subject digest is not the result's subject digest")
    expected = check.expected.get(result.subject.kind)
    # a signed result that did not pass blocks whatever it is about: promotion then reports its status
    if result.passed and expected is not None and result.subject.digest != expected:
        raise AttestationError(f"{MISMATCH.get(result.subject.kind, 'evidence is about something else')} "
                               f"(signed subject {result.subject.digest[:19]}…, now {expected[:19]}…)")


def verify_run(check: _Check) -> None:
    """Digests bind a result to data or code, not to this model: a data gate's envelope from another
    pipeline run over the same (or re-tagged) data, or a config/image result, would verify anywhere."""
    signed_run = check.found["statement"]["predicate"].get(RUN_FIELD)
    if signed_run != check.run_id:
        raise AttestationError(f"the result was signed for MLflow run {str(signed_run)[:32]!r}, not this "
                               f"version's run {check.run_id[:32]!r} (evidence copied from another run?)")


RULES = (verify_signed, verify_functionaries, verify_signature, verify_statement, verify_predicate, verify_subject,
         verify_run)


@dataclass(frozen=True)
class SignedResult:
    result: GateResult
    keyid: str
    envelope: str


def verify_gate_result(gate: str, envelope: str | None, keys: tuple[str, ...],
                       expected: Mapping[str, str], run_id: str) -> SignedResult:
    """Run :data:`RULES` in order over ``gate``'s envelope; ``expected`` maps a subject kind to the digest
    its result must name, ``run_id`` is the MLflow run it must have been signed for. Raises
    ``UnverifiedEvidenceError`` with the failing rule and the trace before it."""
    check = _Check(gate, envelope, keys, expected, run_id)
    trace: list[str] = []
    for rule in RULES:
        try:
            rule(check)
        except (AttestationError, GateInputError) as exc:
            done = " → ".join([*trace, f"{rule.__name__} FAILED"])
            raise UnverifiedEvidenceError(f"signed evidence counts as missing: {exc} (rules: {done})") from None
        trace.append(f"{rule.__name__} ok")
    return SignedResult(check.found["result"], check.found["keyid"], envelope or "")


def verify_gate_evidence(envelopes: Mapping[str, str], loose: Mapping[str, GateResult | EvidenceError],
                         keys_for: Callable[[str], tuple[str, ...]], expected: Mapping[str, str], run_id: str,
                         ) -> tuple[dict[str, GateResult | EvidenceError], dict[str, str]]:
    """Every gate a run holds evidence of (signed or loose): its verified result, or the reason it counts
    as missing; and the envelopes that verified (gate -> envelope JSON), for the attestation to embed."""
    evidence: dict[str, GateResult | EvidenceError] = {}
    verified: dict[str, str] = {}
    for gate in sorted(envelopes.keys() | loose.keys()):
        try:
            signed = verify_gate_result(gate, envelopes.get(gate), keys_for(gate), expected, run_id)
        except UnverifiedEvidenceError as exc:
            evidence[gate] = exc
            continue
        evidence[gate], verified[gate] = signed.result, signed.envelope
    return evidence, verified
