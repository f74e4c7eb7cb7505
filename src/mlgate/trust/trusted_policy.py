"""The policies a signer accepts: pinned by digest, or signed by a policy owner.

Whoever may trigger a DAG with a config can name any policy file (A4 in ADR 0013); a policy that
requires nothing would let promotion sign anything. So the signer refuses a policy unless its digest is
pinned in the signing connection (extra ``trusted_policy_digests``) or ``MLGATE_TRUSTED_POLICY_DIGESTS``,
or the file ``<policy>.dsse.json`` beside it is an in-toto Statement over the policy digest signed by a
policy owner's key (``policy_owner_keys`` / ``MLGATE_POLICY_OWNER_KEYS``; default: the trusted keys).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.errors import GateInputError, PolicyError
from mlgate.core.policy import Policy
from mlgate.trust.attestation import STATEMENT_TYPE, AttestationError, open_envelope, sign_statement
from mlgate.trust.keys import POLICY_DIGESTS_ENV, KeyRing

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

PREDICATE_TYPE = "https://mlgate.dev/policy/v1"
MAX_SIGNATURE_BYTES = 64_000


class UntrustedPolicyError(PolicyError):
    """The signer does not trust this policy: neither pinned nor signed by a policy owner."""


def signature_path(policy: Policy) -> Path:
    return Path(f"{policy.source}.dsse.json")


def policy_statement(policy: Policy) -> dict:
    return {"_type": STATEMENT_TYPE, "subject": [{"name": Path(policy.source).name,
                                                  "digest": {"sha256": policy.digest.removeprefix("sha256:")}}],
            "predicateType": PREDICATE_TYPE, "predicate": {"modelName": policy.promotion.model_name}}


def sign_policy(policy: Policy, signer: CryptoSigner) -> Path:
    """Write ``<policy>.dsse.json``: the policy owner's signature over the policy's digest."""
    path = signature_path(policy)
    path.write_text(sign_statement(policy_statement(policy), signer) + "\n")
    return path


def _signed_by_owner(policy: Policy, keys: KeyRing) -> str:
    """The owner key id that signed this very policy; raises ``AttestationError`` saying why not."""
    path = signature_path(policy)
    try:
        if path.stat().st_size > MAX_SIGNATURE_BYTES:
            raise AttestationError(f"{path.name} is over {MAX_SIGNATURE_BYTES} bytes")
        envelope = path.read_text()
    except OSError:
        raise AttestationError(f"no owner signature {path.name} beside it") from None
    try:
        owners = keys.policy_owner_keys()
    except GateInputError as exc:
        raise AttestationError(f"no policy owner keys: {exc}") from None
    payload, keyid = open_envelope(envelope, owners)
    try:
        statement = json.loads(payload)
        subject = statement["subject"][0]["digest"]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AttestationError(f"{path.name} is not a policy statement") from None
    if statement.get("predicateType") != PREDICATE_TYPE or f"sha256:{subject}" != policy.digest:
        raise AttestationError(f"{path.name} was signed for another policy (digest sha256:{str(subject)[:12]}…)")
    return keyid


def trust_policy(policy: Policy, keys: KeyRing) -> str:
    """How the signer trusts ``policy`` (for the audit trail), or ``UntrustedPolicyError``."""
    if policy.digest in keys.trusted_policy_digests:
        return f"policy {policy.digest[:19]}… pinned in {keys.source}"
    try:
        return f"policy signed by owner key {_signed_by_owner(policy, keys)[:16]}"
    except AttestationError as exc:
        raise UntrustedPolicyError(
            f"the signer does not trust policy {policy.source} ({policy.digest[:19]}…): its digest is not "
            f"pinned ({POLICY_DIGESTS_ENV} or the signing connection's trusted_policy_digests) and it is not "
            f"signed by a policy owner ({exc})") from None
