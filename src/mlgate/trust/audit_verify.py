"""``mlgate audit --verify`` and ``mlgate alias resign``: the audit trail checked against the signed alias state.

Re-signing lives here because it must not launder a replayed state: it refuses unless the audit trail
verifies, explains every alias, and no audited decision is newer than the state being re-signed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.trust.alias_state import AliasState, AliasStateError, parse_state
from mlgate.trust.alias_store import _open, resign, stored_states
from mlgate.trust.audit import AuditRecord, verify_decisions
from mlgate.trust.keys import KeyRing, keyring_from_env

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _signed_origins(client: MlflowClient, model: str, trusted: tuple[str, ...]) -> tuple[dict[str, int], list[str]]:
    origins, problems = {}, []
    for alias, envelope in sorted(stored_states(client, model).items()):
        try:
            origins[alias] = parse_state(_open(envelope, trusted, f"{model}@{alias} alias state")).origin
        except AliasStateError as exc:
            problems.append(str(exc))
    return origins, problems


def verify_audit(client: MlflowClient, model: str, public_keys: Iterable[str | Path] = (), *,
                 keys: KeyRing | None = None) -> tuple[list[AuditRecord], list[str]]:
    """The verified records of ``model`` and every problem with its trail (empty: intact)."""
    trusted = (keys or keyring_from_env(public_keys)).trusted_keys()
    origins, problems = _signed_origins(client, model, trusted)
    records, chain = verify_decisions(client, model, trusted, origins)
    return records, problems + chain


def resign_alias(client: MlflowClient, keys: KeyRing, model: str, alias: str,
                 now: datetime | None = None) -> AliasState:
    """Re-sign ``model@alias``'s state with a fresh expiry; refused when the audit trail does not verify."""
    records, problems = verify_audit(client, model, keys=keys)
    if problems:
        raise AliasStateError(f"{model}: not re-signing, the audit trail does not verify: " + "; ".join(problems[:5]))
    audited = max((r.state_sequence for r in records if r.alias == alias), default=0)
    return resign(client, keys, model, alias, now or datetime.now(UTC), audited)
