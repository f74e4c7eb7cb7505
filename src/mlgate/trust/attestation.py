"""Signed attestations: the evidence of one model version as an in-toto Statement in a DSSE envelope.

Gate results logged as loose JSON files can be edited by anyone with write access to the tracking
store. The attestation binds them, the digest of every model artifact file and the policy digest into
one statement signed with an ECDSA P-256 key, so promotion (and the server loading the model) can
prove that *these* files passed *these* gates under *this* policy, and refuse anything else.

Statement: ``_type`` https://in-toto.io/Statement/v1; one ``subject`` per model artifact file
(``{name: <relative path>, digest: {sha256: <hex>}}``); ``predicateType`` :data:`PREDICATE_TYPE`,
whose ``predicate`` is ``{model: {name, version}, policyDigest, createdAt, toolVersions, gates: [GateResult],
gateEnvelopes: {gate id: DSSE envelope}}``: each gate result together with the envelope its producing task
signed, so a verifier re-checks who vouched for each gate (``trust.gate_evidence``, ADR 0013).

securesystemslib is imported inside functions: it costs ~0.2 s and DAG files import the operators.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgate.core.errors import EvidenceError, GateInputError
from mlgate.core.redaction import redact
from mlgate.core.results import GateResult, Status, utcnow

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner, SSlibKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://mlgate.dev/attestation/gates/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEY_ENV = "MLGATE_SIGNING_KEY"
CLOCK_SKEW = timedelta(minutes=5)
_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")


class AttestationError(EvidenceError):
    """The attestation is unsigned, untrusted, malformed, or does not vouch for what is being checked."""

    def __init__(self, reasons: str | Iterable[str]) -> None:
        self.reasons = tuple(redact(r) for r in ((reasons,) if isinstance(reasons, str) else reasons))
        super().__init__("; ".join(self.reasons))


# --- the statement -------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Subject(_Strict):
    name: str = Field(min_length=1)
    digest: dict[Literal["sha256"], str]


class _ModelRef(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class _Predicate(_Strict):
    model: _ModelRef
    policyDigest: str  # field names are the statement's JSON names
    createdAt: datetime
    toolVersions: dict[str, str]
    gates: list[dict[str, Any]]
    gateEnvelopes: dict[str, dict[str, Any]] = Field(default_factory=dict)


class _Statement(_Strict):
    type_: Literal[STATEMENT_TYPE] = Field(alias="_type")
    subject: list[_Subject] = Field(min_length=1)
    predicateType: Literal[PREDICATE_TYPE]
    predicate: _Predicate


def _hex(digest: str, what: str) -> str:
    match = _SHA256.match(digest)
    if not match:
        raise GateInputError(f"{what}: expected 'sha256:<64 hex digits>', found {digest[:80]!r}")
    return match.group(1)


def build_statement(model_name: str, version: str, artifact_digests: Mapping[str, str],
                    results: Iterable[GateResult], policy_digest: str, tool_versions: Mapping[str, str],
                    *, created_at: str | None = None, gate_envelopes: Mapping[str, str] | None = None,
                    ) -> dict[str, Any]:
    """The in-toto Statement for one model version; ``artifact_digests`` maps file path → ``sha256:<hex>``,
    ``gate_envelopes`` gate id → the JSON of the envelope its result was signed in."""
    results = list(results)
    if not artifact_digests:
        raise GateInputError("an attestation needs at least one model artifact file as its subject")
    gates = [r.gate for r in results]
    if len(set(gates)) != len(gates):
        raise GateInputError(f"each gate may appear once in an attestation; got {sorted(gates)}")
    foreign = sorted(r.gate for r in results if r.policy_digest != policy_digest)
    if foreign:
        raise GateInputError(f"results of {foreign} were produced under another policy than {policy_digest}")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _hex(digest, name)}}
                    for name, digest in sorted(artifact_digests.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "model": {"name": model_name, "version": str(version)},
            "policyDigest": policy_digest,
            "createdAt": created_at or utcnow(),
            "toolVersions": dict(tool_versions),
            "gates": [r.to_dict() for r in results],
            "gateEnvelopes": {gate: json.loads(envelope) for gate, envelope in sorted((gate_envelopes or {}).items())},
        },
    }


# --- keys ----------------------------------------------------------------------------------------

def _as_bytes(pem: str | bytes) -> bytes:
    return pem.encode() if isinstance(pem, str) else pem


def load_signer(private_pem: str | bytes, password: bytes | None = None) -> CryptoSigner:
    """A signer from a PEM (PKCS#8) ECDSA P-256 private key; any other key type is refused."""
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        key = load_pem_private_key(_as_bytes(private_pem), password)
    except (ValueError, TypeError) as exc:
        raise GateInputError(f"signing key: not a usable PEM private key ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None
    if not (isinstance(key, EllipticCurvePrivateKey) and isinstance(key.curve, SECP256R1)):
        raise GateInputError(f"signing key: expected an ECDSA P-256 key, found {type(key).__name__}")
    return CryptoSigner(key)


def signer_from_file(path: str | Path, password: bytes | None = None) -> CryptoSigner:
    try:
        return load_signer(Path(path).read_bytes(), password)
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the signing key: {exc.strerror}") from None


def signer_from_env(variable: str = KEY_ENV, password: bytes | None = None) -> CryptoSigner:
    """The signing key from an environment variable holding the PEM text (a secrets backend sets it)."""
    pem = os.environ.get(variable)
    if not pem:
        raise GateInputError(f"no signing key: environment variable {variable} is unset or empty")
    return load_signer(pem, password)


def public_key_pem(signer: CryptoSigner) -> str:
    return signer.public_key.keyval["public"]


def trusted_key(pem: str | bytes) -> SSlibKey:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        return SSlibKey.from_crypto(load_pem_public_key(_as_bytes(pem)))
    except (ValueError, TypeError) as exc:
        raise GateInputError(f"trusted public key: not a usable PEM public key ({str(exc)[:120]})") from None


def generate_key(path: str | Path) -> tuple[Path, Path]:
    """Write a new ECDSA P-256 private key to ``path`` (mode 0600, never overwritten) and ``<path>.pub``."""
    from securesystemslib.signer import CryptoSigner

    private, public = Path(path), Path(f"{path}.pub")
    signer = CryptoSigner.generate_ecdsa()
    private.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GateInputError(f"{private}: already exists; refusing to overwrite a signing key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(signer.private_bytes)
    public.write_text(public_key_pem(signer))
    return private, public


# --- signing and verifying -----------------------------------------------------------------------

def sign_statement(statement: Mapping[str, Any], signer: CryptoSigner) -> str:
    """The DSSE envelope (JSON text) over the canonical JSON of ``statement``."""
    from securesystemslib.dsse import Envelope

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(signer)
    return json.dumps(envelope.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class VerifiedAttestation:
    model_name: str
    version: str
    keyid: str
    created_at: datetime
    policy_digest: str
    artifact_digests: dict[str, str]  # file path -> sha256:<hex>
    results: tuple[GateResult, ...]
    gate_envelopes: dict[str, str]  # gate id -> the embedded envelope (JSON text) its result was signed in


def open_envelope(envelope_json: str | bytes, trusted_public_keys: Iterable[str | bytes]) -> tuple[bytes, str]:
    """The signed payload and the keyid that verified it; raises unless a trusted key signed it."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import FormatError, VerificationError

    keys = [trusted_key(pem) for pem in trusted_public_keys]
    if not keys:
        raise GateInputError("no trusted public keys configured; cannot verify any attestation")
    try:
        data = json.loads(envelope_json)
        envelope = Envelope.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError, FormatError) as exc:
        raise AttestationError(f"not a DSSE envelope: {type(exc).__name__}: {str(exc)[:120]}") from None
    if not envelope.signatures:
        raise AttestationError("the attestation is unsigned")
    trusted_ids = {key.keyid for key in keys}
    if not trusted_ids & envelope.signatures.keys():
        signers = ", ".join(sorted(k[:12] for k in envelope.signatures))
        raise AttestationError(f"signed only by untrusted key(s) {signers}; none of the trusted keys signed it")
    try:
        accepted = envelope.verify(keys, 1)
    except VerificationError:
        raise AttestationError("invalid signature: the payload or the signature was modified after "
                               "signing") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise AttestationError(f"wrong payload type {envelope.payload_type[:80]!r}; expected {PAYLOAD_TYPE}")
    return envelope.payload, next(iter(accepted))


def _parse_statement(payload: bytes) -> tuple[_Statement, tuple[GateResult, ...]]:
    try:
        statement = _Statement.model_validate_json(payload)
        results = tuple(GateResult.from_dict(g) for g in statement.predicate.gates)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise AttestationError(f"malformed statement: {where}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AttestationError(f"malformed statement: a gate result is unreadable ({exc!r})"[:200]) from None
    for subject in statement.subject:
        if not re.fullmatch(r"[0-9a-f]{64}", subject.digest["sha256"]):
            raise AttestationError(f"malformed statement: subject {subject.name!r} has no sha256 hex digest")
    if statement.predicate.createdAt.tzinfo is None:
        raise AttestationError("malformed statement: createdAt has no time zone")
    gates = [r.gate for r in results]
    if len(set(gates)) != len(gates):
        raise AttestationError(f"malformed statement: a gate appears more than once in {sorted(gates)}")
    return statement, results


def _artifact_problems(attested: dict[str, str], expected: Mapping[str, str]) -> list[str]:
    problems = []
    for name in sorted(expected.keys() - attested.keys()):
        problems.append(f"artifact {name} is not covered by the attestation (added after validation?)")
    for name in sorted(attested.keys() - expected.keys()):
        problems.append(f"artifact {name} was attested but is absent now (removed after validation?)")
    for name in sorted(attested.keys() & expected.keys()):
        if attested[name] != expected[name]:
            problems.append(f"artifact {name} changed since it was attested (attested {attested[name][:19]}…, "
                            f"now {expected[name][:19]}…)")
    return problems


def _age_problems(created: datetime, results: tuple[GateResult, ...], max_age: timedelta,
                  now: datetime, expires: bool) -> list[str]:
    """Each gate's evidence must have been fresh when the attestation was signed; the attestation itself
    must not come from the future and, when it ``expires``, must be fresh now."""
    problems = []
    if created - now > CLOCK_SKEW:
        problems.append(f"the attestation claims to be created in the future ({created.isoformat()})")
    elif expires and now - created > max_age:
        problems.append(f"the attestation is {(now - created).total_seconds() / 3600:.1f} h old, older than "
                        f"the allowed {max_age.total_seconds() / 3600:g} h")
    for result in results:
        try:
            age = created - datetime.fromisoformat(result.finished_at)
        except (ValueError, TypeError):
            problems.append(f"{result.gate}: evidence timestamp {result.finished_at[:40]!r} is unreadable")
            continue
        if age > max_age:
            problems.append(f"{result.gate}: evidence finished at {result.finished_at}, "
                            f"{age.total_seconds() / 3600:.1f} h before it was attested, older than the allowed "
                            f"{max_age.total_seconds() / 3600:g} h")
        elif -age > CLOCK_SKEW:
            problems.append(f"{result.gate}: evidence finished at {result.finished_at}, after it was attested")
    return problems


def verify_envelope(envelope_json: str | bytes, trusted_public_keys: Iterable[str | bytes], *,
                    expected_artifact_digests: Mapping[str, str], current_policy_digest: str,
                    required_gates: Iterable[str], max_age_hours: float, now: datetime,
                    expected_model: tuple[str, str] | None = None, expires: bool = True) -> VerifiedAttestation:
    """Verify signature, then everything the statement vouches for; raise ``AttestationError`` with every reason.

    Signature and format problems stop at once (an untrusted payload is never interpreted); content
    problems (artifacts, policy, age, gates) are all collected so one refusal tells the whole story.
    ``max_age_hours`` bounds how old each gate's evidence was when signed, and (unless ``expires`` is
    false, as when a server loads a model promoted long ago) how old the attestation is ``now``.
    """
    if now.tzinfo is None:
        raise GateInputError("verify_envelope: 'now' must be timezone-aware")
    for name, digest in expected_artifact_digests.items():
        _hex(digest, name)
    payload, keyid = open_envelope(envelope_json, trusted_public_keys)
    statement, results = _parse_statement(payload)
    predicate = statement.predicate
    attested = {s.name: f"sha256:{s.digest['sha256']}" for s in statement.subject}

    problems = _artifact_problems(attested, expected_artifact_digests)
    if expected_model and (predicate.model.name, predicate.model.version) != expected_model:
        problems.append(f"the attestation is for {predicate.model.name}/{predicate.model.version}, not "
                        f"{expected_model[0]}/{expected_model[1]}")
    for digest in sorted({predicate.policyDigest, *(r.policy_digest for r in results)} - {current_policy_digest}):
        problems.append(f"the policy changed since attestation (attested under {digest[:19]}…, "
                        f"current {current_policy_digest[:19]}…)")
    problems += _age_problems(predicate.createdAt, results, timedelta(hours=max_age_hours), now, expires)
    by_gate = {r.gate: r for r in results}
    for gate in required_gates:
        result = by_gate.get(gate)
        if result is None:
            problems.append(f"{gate}: required gate is missing from the attestation")
        elif result.status is not Status.PASSED:
            failures = "; ".join(result.top_failures(2)) or "no findings recorded"
            problems.append(f"{gate}: required gate is {result.status}, not passed ({failures})")
    if problems:
        raise AttestationError(problems)
    return VerifiedAttestation(
        model_name=predicate.model.name, version=predicate.model.version, keyid=keyid,
        created_at=predicate.createdAt.astimezone(UTC), policy_digest=predicate.policyDigest,
        artifact_digests=attested, results=results,
        gate_envelopes={gate: json.dumps(envelope) for gate, envelope in predicate.gateEnvelopes.items()},
    )
