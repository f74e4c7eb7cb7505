"""Loading a model only after its attestation verifies, from the very files that were verified.

The files are downloaded once, hashed, checked against the signed attestation (trusted key, the policy's
required gates passed, under this policy, evidence fresh when signed), and only then handed to
``mlflow.pyfunc.load_model``: nothing is loaded from a second download an attacker could swap in between.
A model promoted long ago stays loadable: the attestation's own age is not bounded at load.

Before any download, the model's signed alias state is checked (ADR 0014): by alias, the registry must
serve exactly the version the unexpired signed state names, with a sequence no lower than this client
has trusted before; by alias or by version, a revoked version is refused. What was trusted is
remembered under ``MLGATE_HOME`` only after every check passed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgate.core.digests import file_digests, json_digest
from mlgate.core.policy import Policy
from mlgate.core.shipped import load_chosen_policy
from mlgate.trust.alias_state import AliasState, AliasStateError
from mlgate.trust.alias_store import check_revocation_tag, save_seen, trusted_view
from mlgate.trust.attestation import AttestationError
from mlgate.trust.attestation_store import verify_version
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.registry import call, default_tracking_uri, download_model, resolve_version


class UntrustedModelError(AttestationError):
    """The model's attestation is missing or does not vouch for the files that would be loaded."""


def load_verified_model(model_uri: str, *, trusted_keys: Iterable[str | Path] | None = None,
                        policy: Policy | str | Path | None = None, tracking_uri: str | None = None,
                        prepare: Callable[[Any, Path], Any] | None = None) -> Any:
    """A pyfunc model from ``models:/name/version`` or ``models:/name@alias``, or ``UntrustedModelError``.
    ``prepare(model, files)`` finishes the loaded model from its verified files (the input defence it
    declares) before they are deleted.

    ``trusted_keys``: PEM texts or paths (default ``MLGATE_TRUSTED_KEYS``); ``policy``: a Policy or its
    path (default ``MLGATE_POLICY``, else ``./policies/default.yaml``, else the shipped default).
    """
    import mlflow

    if not isinstance(policy, Policy):
        policy = load_chosen_policy(policy)[0]
    trusted = keyring_from_env(trusted_keys or ()).trusted_keys()
    client = mlflow.MlflowClient(tracking_uri or default_tracking_uri())
    name, version = resolve_version(client, model_uri)
    alias = model_uri.split("@", 1)[1] if "@" in model_uri else None
    refusal = f"refusing to load {model_uri} ({name}/{version})"
    try:
        view, state = check_alias_state(client, trusted, name, version, alias)
    except AliasStateError as exc:
        raise UntrustedModelError([refusal, str(exc)]) from None
    with tempfile.TemporaryDirectory(prefix="mlgate-load-") as tmp:
        local = download_model(client, f"models:/{name}/{version}", Path(tmp))
        digests = file_digests(local)
        try:
            verify_version(client, policy, name, version, trusted, datetime.now(UTC),
                           artifact_digests=digests, expires=False)
        except AttestationError as exc:
            raise UntrustedModelError([refusal, *exc.reasons]) from None
        if state is not None and json_digest(digests) != state.model_digest:
            raise UntrustedModelError([refusal, f"the files are not the ones the signed alias state names "
                                                f"({state.model_digest[:19]}…)"])
        save_seen(client.tracking_uri, name, view.seen())
        model = mlflow.pyfunc.load_model(str(local))
        return prepare(model, local) if prepare else model


def servable_version(model_uri: str, *, trusted_keys: Iterable[str | Path] | None = None,
                     tracking_uri: str | None = None) -> str:
    """The version ``model_uri`` may be served as now, by the signed alias state and revocations, without
    downloading anything; else ``UntrustedModelError``. A server re-checks with this between loads (ADR 0029):
    a changed answer means load again through :func:`load_verified_model`."""
    import mlflow

    trusted = keyring_from_env(trusted_keys or ()).trusted_keys()
    client = mlflow.MlflowClient(tracking_uri or default_tracking_uri())
    name, version = resolve_version(client, model_uri)
    alias = model_uri.split("@", 1)[1] if "@" in model_uri else None
    try:
        check_alias_state(client, trusted, name, version, alias)
    except AliasStateError as exc:
        raise UntrustedModelError([f"refusing to serve {model_uri} ({name}/{version})", str(exc)]) from None
    return version


def check_alias_state(client: Any, trusted: tuple[str, ...], name: str, version: str,
                      alias: str | None) -> tuple[Any, AliasState | None]:
    """The verified view of the model's signed alias states; the alias's state when loading by alias.
    Monitoring reads the served version through it too (``gates.monitor.served``)."""
    view = trusted_view(client, name, trusted, datetime.now(UTC), aliases=[alias] if alias else None)
    tags = call(client, f"reading {name}/{version}", lambda: client.get_model_version(name, version)).tags or {}
    check_revocation_tag(view, tags, trusted, version)
    if alias:
        return view, view.check_serves(alias, version)
    view.check_not_revoked(version)
    return view, None
