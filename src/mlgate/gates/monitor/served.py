"""What the served model's verified attestation says about monitoring it: its confidence baseline and the
digest of its training reference.

``monitor.confidence`` tests a window against what the model did on held-out data when it was validated.
That number travels in the signed attestation (``model.robustness``'s result, itself signed by its task),
so it is read only after the attestation verifies for the very version the alias serves: a baseline
anyone could edit (a tag, a loose file) would let them silence the gate. The same holds for the training
reference of ``monitor.drift`` and ``monitor.queries``: the file stays where ``data.privacy`` released it,
and the attestation vouches for its digest (ADR 0060). Verification does not expire (``expires=False``, as
when a server loads the model) but needs the policy the model was attested under.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlgate.gates.monitor.confidence import ConfidenceBaseline, attested_baseline
from mlgate.gates.monitor.monitoring import AttestedReference, attested_reference

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlgate.core.policy import Policy
    from mlgate.trust.attestation import VerifiedAttestation
    from mlgate.trust.keys import KeyRing


def served_model_uri(policy: Policy) -> str:
    """``models:/<name>@<alias>`` of the policy's promotion section (``PolicyError`` without one)."""
    return f"models:/{policy.promotion.model_name}@{policy.promotion.alias}"


def served_attestation(client: MlflowClient, policy: Policy, keys: KeyRing,
                       model_uri: str | None = None) -> tuple[str, VerifiedAttestation]:
    """``<name>/<version>`` of ``model_uri`` (default: the version the policy's alias serves) and its
    attestation, checked with ``keys``' trusted keys; ``AttestationError`` when it does not verify. The
    version must also be the one the signed alias state serves and not revoked (``AliasStateError``), as
    for a loader: a registry alias moved outside mlgate to an older version, whose attestation still
    verifies, would otherwise choose the baseline and reference the served model is judged against."""
    from mlgate.trust.attestation_store import verify_version
    from mlgate.trust.loading import check_alias_state
    from mlgate.trust.registry import resolve_version

    uri = model_uri or served_model_uri(policy)
    name, version = resolve_version(client, uri)
    trusted = keys.trusted_keys()
    verified = verify_version(client, policy, name, version, trusted, datetime.now(UTC), expires=False)
    check_alias_state(client, trusted, name, version, uri.split("@", 1)[1] if "@" in uri else None)
    return f"{name}/{version}", verified


def served_baseline(client: MlflowClient, policy: Policy, keys: KeyRing,
                    model_uri: str | None = None) -> ConfidenceBaseline:
    """The confidence baseline attested for ``model_uri`` (``served_attestation``); ``GateInputError`` when
    the attestation carries none."""
    model, verified = served_attestation(client, policy, keys, model_uri)
    return attested_baseline(verified.results, model)


def served_reference(client: MlflowClient, policy: Policy, keys: KeyRing,
                     model_uri: str | None = None) -> AttestedReference:
    """The digest of the training reference attested for ``model_uri`` (``served_attestation``);
    ``GateInputError`` when the attestation records none."""
    model, verified = served_attestation(client, policy, keys, model_uri)
    return attested_reference(verified.results, model)
