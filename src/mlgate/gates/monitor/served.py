"""The confidence baseline of the served model, read from its verified attestation.

``monitor.confidence`` tests a window against what the model did on held-out data when it was validated.
That number travels in the signed attestation (``model.robustness``'s result, itself signed by its task),
so it is read only after the attestation verifies for the very version the alias serves: a baseline
anyone could edit (a tag, a loose file) would let them silence the gate. Verification does not expire
(``expires=False``, as when a server loads the model) but needs the policy the model was attested under.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlgate.gates.monitor.confidence import ConfidenceBaseline, attested_baseline

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlgate.core.policy import Policy
    from mlgate.trust.keys import KeyRing


def served_model_uri(policy: Policy) -> str:
    """``models:/<name>@<alias>`` of the policy's promotion section (``PolicyError`` without one)."""
    return f"models:/{policy.promotion.model_name}@{policy.promotion.alias}"


def served_baseline(client: MlflowClient, policy: Policy, keys: KeyRing,
                    model_uri: str | None = None) -> ConfidenceBaseline:
    """The baseline attested for ``model_uri`` (default: the version the policy's alias serves), checked with
    ``keys``' trusted keys; raises ``AttestationError`` when the attestation does not verify and
    ``GateInputError`` when it carries none."""
    from mlgate.trust.attestation_store import verify_version
    from mlgate.trust.registry import resolve_version

    name, version = resolve_version(client, model_uri or served_model_uri(policy))
    verified = verify_version(client, policy, name, version, keys.trusted_keys(), datetime.now(UTC),
                              expires=False)
    return attested_baseline(verified.results, f"{name}/{version}")
