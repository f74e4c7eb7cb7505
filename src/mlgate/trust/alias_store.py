"""Signed alias state and revocations in MLflow, and the client's memory of them under ``MLGATE_HOME``.

Storage (an A1 attacker can overwrite or delete all of it, and forge none of it):

- registered-model tag ``mlgate.alias_state.<alias>``: the DSSE envelope of the alias state;
- model-version tag ``mlgate.revocation``: the DSSE envelope of the version's revocation (also listed in
  every later alias state, so removing the tag changes nothing, and putting back an older state that
  does not list it is a rollback).

The client remembers, per tracking URI and model, the highest sequence it trusted and every revocation
it saw (``<MLGATE_HOME>/trust/alias-state.json``), written atomically and only after every check passed.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.errors import EvidenceError, GateInputError, ToolError
from mlgate.trust.alias_state import (
    AliasState,
    AliasStateError,
    Kind,
    Revocation,
    Seen,
    TrustedAliasState,
    next_state,
    parse_revocation,
    parse_state,
    payload_digest,
)
from mlgate.trust.attestation import open_envelope, sign_statement
from mlgate.trust.registry import TAG_LIMIT, call, mlgate_home

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import RegisteredModel

    from mlgate.trust.keys import KeyRing

TAG_STATE = "mlgate.alias_state."
TAG_REVOCATION = "mlgate.revocation"


# --- signed envelopes ---------------------------------------------------------------------------

def _sign(payload: Mapping[str, object], keys: KeyRing) -> str:
    envelope = sign_statement(payload, keys.signer())
    if len(envelope) > TAG_LIMIT:
        raise AliasStateError(f"the signed metadata is {len(envelope)} characters, more than an MLflow tag holds "
                              f"({TAG_LIMIT})")
    return envelope


def _open(envelope: str, trusted: Iterable[str], where: str) -> bytes:
    try:
        return open_envelope(envelope, trusted)[0]
    except (EvidenceError, GateInputError) as exc:
        raise AliasStateError(f"{where}: {exc}") from None


# --- the client's memory ------------------------------------------------------------------------

def seen_path() -> Path:
    return mlgate_home() / "trust" / "alias-state.json"


@contextmanager
def _locked() -> Iterator[Path]:
    path = seen_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path


def _read_all(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # never silently forget what was trusted
        raise AliasStateError(f"{path}: the client's alias state memory is unreadable ({type(exc).__name__}); "
                              "repair or remove it deliberately") from None


def load_seen(tracking_uri: str, model: str) -> dict[str, Seen]:
    with _locked() as path:
        entry = _read_all(path).get(f"{tracking_uri}#{model}", {})
    try:
        return {alias: Seen(int(s["sequence"]), str(s["digest"]), tuple(s["revoked"])) for alias, s in entry.items()}
    except (KeyError, TypeError, ValueError):
        raise AliasStateError(f"{seen_path()}: malformed entry for {model}") from None


def save_seen(tracking_uri: str, model: str, seen: Mapping[str, Seen]) -> None:
    """Merge ``seen`` into the memory (sequences only grow, revocations only accumulate); atomic replace."""
    with _locked() as path:
        data = _read_all(path)
        entry = data.setdefault(f"{tracking_uri}#{model}", {})
        for alias, new in seen.items():
            old = entry.get(alias)
            if old and int(old["sequence"]) > new.sequence:
                continue
            revoked = sorted({*new.revoked, *(old["revoked"] if old else ())})
            entry[alias] = {**asdict(new), "revoked": revoked}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".alias-state-")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


# --- reading ------------------------------------------------------------------------------------

def registered_model(client: MlflowClient, model: str) -> RegisteredModel | None:
    """The registered model, or ``None`` when there is none by that name."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
            return None
        raise ToolError(f"MLflow at {client.tracking_uri} failed reading registered model {model}: "
                        f"{str(exc)[:300]}") from exc


def stored_states(client: MlflowClient, model: str) -> dict[str, str]:
    """alias -> stored envelope text, for every alias with a signed state."""
    registered = call(client, f"reading registered model {model}", lambda: registered_model(client, model))
    tags = registered.tags if registered is not None else {}
    return {key[len(TAG_STATE):]: value for key, value in (tags or {}).items() if key.startswith(TAG_STATE)}


def trusted_view(client: MlflowClient, model: str, trusted: Iterable[str], now: datetime, *,
                 aliases: Iterable[str] | None = None) -> TrustedAliasState:
    """The model's signed alias states (those of ``aliases``, default all), each verified and checked
    against what this client trusted before; raises at the first problem."""
    trusted = tuple(trusted)
    view = TrustedAliasState(model, load_seen(client.tracking_uri, model), now)
    stored = stored_states(client, model)
    wanted = list(aliases) if aliases is not None else sorted(set(stored) | set(view.seen()))
    if not wanted:
        raise AliasStateError(f"{model} has no signed alias state (tag {TAG_STATE}<alias>): it was never promoted "
                              "by mlgate, or the state was removed; its revocations cannot be checked")
    for alias in wanted:
        if alias not in stored:
            raise AliasStateError(f"{model}@{alias}: the signed alias state (tag {TAG_STATE}{alias}) is missing")
        payload = _open(stored[alias], trusted, f"{model}@{alias} alias state")
        view.update_alias(parse_state(payload), payload_digest(payload))
    return view


def check_revocation_tag(view: TrustedAliasState, tags: Mapping[str, str], trusted: Iterable[str],
                         version: str) -> None:
    """A version's signed revocation tag, if any, must be listed by the trusted state (else rollback)."""
    envelope = tags.get(TAG_REVOCATION)
    if not envelope:
        return
    try:
        revocation = parse_revocation(_open(envelope, trusted, f"{view.model}/{version} revocation"))
    except AliasStateError:
        return  # an unsigned or forged revocation tag cannot revoke, nor un-revoke, anything
    if revocation.version == version:
        view.update_revocation(revocation)


# --- writing ------------------------------------------------------------------------------------

def _current(client: MlflowClient, model: str, alias: str, trusted: tuple[str, ...]) -> AliasState | None:
    """The stored state if it verifies; a missing or forged one counts as none (the writer's memory and
    the loaders' memories still hold the sequence)."""
    envelope = stored_states(client, model).get(alias)
    if not envelope:
        return None
    try:
        return parse_state(_open(envelope, trusted, f"{model}@{alias} alias state"))
    except AliasStateError:
        return None


def write_state(client: MlflowClient, keys: KeyRing, model: str, alias: str, kind: Kind, now: datetime, *,
                version: str | None = None, model_digest: str = "", revoke: Mapping[str, str] | None = None,
                planned: AliasState | None = None) -> AliasState:
    """Sign and store the next alias state (and a revocation tag per newly revoked version); returns it.
    ``planned`` (from :func:`plan_state`) is written as it is."""
    state = planned or plan_state(client, keys, model, alias, kind, now, version=version,
                                  model_digest=model_digest, revoke=revoke)
    envelope = _sign(state.to_payload(), keys)
    call(client, f"storing the alias state of {model}@{alias}",
         lambda: client.set_registered_model_tag(model, TAG_STATE + alias, envelope))
    previous = _current_revoked(client, model, alias, state)
    for revoked, incident in sorted(state.revoked.items()):
        if revoked in previous:
            continue
        tag = _sign(Revocation(model, revoked, incident, state.sequence, now).to_payload(), keys)
        call(client, f"storing the revocation of {model}/{revoked}",
             lambda v=revoked, t=tag: client.set_model_version_tag(model, v, TAG_REVOCATION, t))
    payload = json.dumps(state.to_payload(), sort_keys=True, separators=(",", ":")).encode()
    save_seen(client.tracking_uri, model, {alias: Seen(state.sequence, payload_digest(payload),
                                                        tuple(sorted(state.revoked)))})
    return state


def _current_revoked(client: MlflowClient, model: str, alias: str, state: AliasState) -> set[str]:
    """Versions already carrying a revocation tag (not re-tagged on every write)."""
    done = set()
    for version in state.revoked:
        tags = call(client, f"reading {model}/{version}", lambda v=version: client.get_model_version(model, v)).tags
        if (tags or {}).get(TAG_REVOCATION):
            done.add(version)
    return done


def plan_state(client: MlflowClient, keys: KeyRing, model: str, alias: str, kind: Kind, now: datetime, *,
               version: str | None = None, model_digest: str = "", revoke: Mapping[str, str] | None = None
               ) -> AliasState:
    """The state :func:`write_state` would sign next (its sequence goes into the audit record first)."""
    trusted = keys.trusted_keys()
    seen = load_seen(client.tracking_uri, model).get(alias, Seen())
    current = _current(client, model, alias, trusted)
    if current is not None and current.sequence < seen.sequence:
        current = None  # an older state put back: build on what this writer trusted, and its revocations
    known = current.revoked if current else {}
    revoked = {**{v: "seen before" for v in seen.revoked if v not in known}, **(revoke or {})}
    return next_state(current, seen.sequence, model=model, alias=alias, kind=kind, version=version,
                      model_digest=model_digest, revoke=revoked, now=now)


def resign(client: MlflowClient, keys: KeyRing, model: str, alias: str, now: datetime,
           audited_sequence: int) -> AliasState:
    """Re-sign the current state with a new sequence and expiry, unchanged otherwise. Refused when the state
    does not verify, has expired (a new promotion must decide), is older than this signer's memory, or
    older than the newest decision of the audit trail (``audited_sequence``): re-signing must never
    launder a replayed state."""
    view = trusted_view(client, model, keys.trusted_keys(), now, aliases=[alias])
    current = view.states[alias]
    if current.origin < audited_sequence:
        raise AliasStateError(f"{model}@{alias}: the signed state (origin {current.origin}) is older than the "
                              f"newest audited decision (sequence {audited_sequence}): refusing to re-sign a "
                              "replayed state")
    if not keys.has_signing_key:
        raise GateInputError("re-signing needs the signing key")
    return write_state(client, keys, model, alias, "resign", now,
                       planned=next_state(current, view.seen()[alias].sequence, model=model, alias=alias,
                                          kind="resign", now=now))
