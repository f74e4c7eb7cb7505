"""Loading a model only after its attestation verifies, from the very files that were verified.

The files are downloaded once, hashed, checked against the signed attestation (trusted key, the policy's
required gates passed, under this policy, evidence fresh when signed), and only then handed to
``mlflow.pyfunc.load_model``: nothing is loaded from a second download an attacker could swap in between.
A model promoted long ago stays loadable: the attestation's own age is not bounded at load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgate.core.digests import file_digests
from mlgate.core.policy import Policy, load_policy
from mlgate.trust.attestation import AttestationError
from mlgate.trust.attestation_store import verify_version
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.registry import default_tracking_uri, download_model, resolve_version

POLICY_ENV = "MLGATE_POLICY"


class UntrustedModelError(AttestationError):
    """The model's attestation is missing or does not vouch for the files that would be loaded."""


def load_verified_model(model_uri: str, *, trusted_keys: Iterable[str | Path] | None = None,
                        policy: Policy | str | Path | None = None, tracking_uri: str | None = None) -> Any:
    """A pyfunc model from ``models:/name/version`` or ``models:/name@alias``, or ``UntrustedModelError``.

    ``trusted_keys``: PEM texts or paths (default ``MLGATE_TRUSTED_KEYS``); ``policy``: a Policy or its
    path (default ``MLGATE_POLICY``, else ``policies/default.yaml``).
    """
    import mlflow

    if not isinstance(policy, Policy):
        policy = load_policy(policy or os.environ.get(POLICY_ENV, "policies/default.yaml"))
    trusted = keyring_from_env(trusted_keys or ()).trusted_keys()
    client = mlflow.MlflowClient(tracking_uri or default_tracking_uri())
    name, version = resolve_version(client, model_uri)
    with tempfile.TemporaryDirectory(prefix="mlgate-load-") as tmp:
        local = download_model(client, f"models:/{name}/{version}", Path(tmp))
        try:
            verify_version(client, policy, name, version, trusted, datetime.now(UTC),
                           artifact_digests=file_digests(local), expires=False)
        except AttestationError as exc:
            raise UntrustedModelError([f"refusing to load {model_uri} ({name}/{version})", *exc.reasons]) from None
        return mlflow.pyfunc.load_model(str(local))
