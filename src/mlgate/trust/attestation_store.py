"""A model version's attestation in MLflow: written at promotion, verified before the alias moves and at load.

The DSSE envelope is the artifact ``attestation.intoto.jsonl`` (one envelope per line, the in-toto
convention; mlgate writes one) on the version's run; the version carries tags with the sha256 of that
file, the signing key id and the creation time. Verification recomputes the per-file digests of the
model from a fresh download (or from the very files a loader is about to load).
"""

from __future__ import annotations

import hashlib
import platform
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.digests import json_digest
from mlgate.core.errors import UnverifiedEvidenceError
from mlgate.core.policy import Policy
from mlgate.core.results import GateResult
from mlgate.trust.attestation import (
    AttestationError,
    VerifiedAttestation,
    build_statement,
    sign_statement,
    verify_envelope,
)
from mlgate.trust.gate_evidence import functionaries, verify_gate_result
from mlgate.trust.promotion import GATE as PROMOTE_GATE
from mlgate.trust.registry import call, mlflow_errors, model_file_digests

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from securesystemslib.signer import CryptoSigner

ARTIFACT = "attestation.intoto.jsonl"
TAG_DIGEST = "mlgate.attestation.digest"
TAG_KEYID = "mlgate.attestation.keyid"
TAG_CREATED = "mlgate.attestation.created_at"


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("mlgate", "mlflow", "securesystemslib"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def attested_results(evidence: Mapping[str, object], policy_digest: str) -> list[GateResult]:
    """The results an attestation vouches for: every readable gate result of the run under this policy
    (promotion's own earlier decisions are not evidence)."""
    return [r for gate, r in sorted(evidence.items())
            if isinstance(r, GateResult) and gate != PROMOTE_GATE and r.policy_digest == policy_digest]


def attest_version(client: MlflowClient, name: str, version: str, run_id: str, artifact_digests: Mapping[str, str],
                   results: Iterable[GateResult], policy_digest: str, signer: CryptoSigner, *,
                   created_at: str | None = None, gate_envelopes: Mapping[str, str] | None = None) -> str:
    """Build, sign and store the attestation of ``name``/``version`` (embedding each result's signed
    envelope); returns the envelope file's digest."""
    statement = build_statement(name, version, artifact_digests, results, policy_digest, tool_versions(),
                                created_at=created_at, gate_envelopes=gate_envelopes)
    line = (sign_statement(statement, signer) + "\n").encode()
    digest = "sha256:" + hashlib.sha256(line).hexdigest()
    with mlflow_errors("storing the attestation", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        path.write_bytes(line)
        client.log_artifact(run_id, str(path))
        tags = {TAG_DIGEST: digest, TAG_KEYID: signer.public_key.keyid,
                TAG_CREATED: statement["predicate"]["createdAt"]}
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)
    return digest


def fetch_attestation(client: MlflowClient, name: str, version: str) -> tuple[str, str, str]:
    """The stored envelope (JSON text), the problem with its recorded digest ('' when it matches), and the
    version's run id."""
    model_version = call(client, f"reading model version {name}/{version}",
                         lambda: client.get_model_version(name, str(version)))
    run_id = model_version.run_id
    with mlflow_errors("downloading the attestation", client.tracking_uri):
        stored = run_id and ARTIFACT in {a.path for a in client.list_artifacts(run_id)}
        if not stored:
            raise AttestationError(f"{name}/{version} has no attestation ({ARTIFACT} on its run): it was never "
                                   "promoted by mlgate, or the attestation was removed")
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(client.download_artifacts(run_id, ARTIFACT, tmp)).read_bytes()
    lines = [line for line in raw.decode(errors="replace").splitlines() if line.strip()]
    if len(lines) != 1:
        raise AttestationError(f"{ARTIFACT} of {name}/{version} holds {len(lines)} envelopes; expected one")
    recorded = model_version.tags.get(TAG_DIGEST, "")
    actual = "sha256:" + hashlib.sha256(raw).hexdigest()
    mismatch = "" if recorded == actual else (
        f"the stored attestation is not the one promotion recorded (tag {TAG_DIGEST} "
        f"{recorded[:19] or 'absent'}…, file {actual[:19]}…)")
    return lines[0], mismatch, run_id


def verify_version(client: MlflowClient, policy: Policy, name: str, version: str, trusted_keys: Iterable[str],
                   now: datetime, *, artifact_digests: Mapping[str, str] | None = None,
                   expires: bool = True) -> VerifiedAttestation:
    """Verify the stored attestation of ``name``/``version``: a trusted signature over these very files
    (``artifact_digests``, else a fresh download), the required gates passed, under this policy, in time.
    Raises ``AttestationError`` naming every problem."""
    envelope, mismatch, run_id = fetch_attestation(client, name, version)
    digests = artifact_digests if artifact_digests is not None else model_file_digests(
        client, f"models:/{name}/{version}")
    try:
        verified = verify_envelope(envelope, trusted_keys, expected_artifact_digests=digests,
                                   current_policy_digest=policy.digest,
                                   required_gates=policy.promotion.required_gates,
                                   max_age_hours=policy.promotion.max_evidence_age_hours, now=now,
                                   expected_model=(name, str(version)), expires=expires)
    except AttestationError as exc:
        raise AttestationError([mismatch, *exc.reasons] if mismatch else exc.reasons) from None
    problems = [mismatch] if mismatch else []
    problems += embedded_evidence_problems(verified, functionaries(policy, tuple(trusted_keys)), run_id)
    if problems:
        raise AttestationError(problems)
    return verified


def embedded_evidence_problems(verified: VerifiedAttestation, keys_for: Callable[[str], tuple[str, ...]],
                               run_id: str) -> list[str]:
    """Each attested gate result must come with the envelope its producing task signed, by a key the
    policy trusts for that gate, for the version's run ``run_id``, about these very model files, saying
    exactly what the attestation says."""
    expected = {"model": json_digest(verified.artifact_digests)}
    problems = []
    for result in verified.results:
        try:
            signed = verify_gate_result(result.gate, verified.gate_envelopes.get(result.gate),
                                        keys_for(result.gate), expected, run_id)
        except UnverifiedEvidenceError as exc:
            problems.append(f"{result.gate}: {exc}")
            continue
        if signed.result != result:
            problems.append(f"{result.gate}: the attested result differs from the one its gate signed")
    return problems
