"""Signed alias state: which version a registry alias may serve, which versions are revoked, until when.

The registry's alias is a pointer anyone with write access to MLflow can move. The alias state is what
the key holder said it should be: ``{model, alias, version, model digest, revoked versions, sequence,
expires}``, signed (DSSE, the attestation key). A loader believes the registry only where it equals the
signed state; the sequence only grows, so an older signed state put back is a rollback; the expiry is
short and a scheduled task re-signs, so a store frozen in the past is noticed.

This module does no I/O. :class:`TrustedAliasState` is the client's state machine, after python-tuf's
``TrustedMetadataSet``: one update function per kind of metadata (alias state, revocation), each checking
ordering, then the sequence (``RollbackError`` for an older one, ``ReplayError`` for another state under a
sequence already seen), then expiry last (ADR 0014).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlgate.core.errors import EvidenceError

STATE_TYPE = "https://mlgate.dev/alias-state/v1"
REVOCATION_TYPE = "https://mlgate.dev/revocation/v1"
EXPIRY = timedelta(hours=24)  # re-signed every 6 h by the alias_resign DAG (ADR 0014)
Kind = Literal["promotion", "incident", "resign"]


class AliasStateError(EvidenceError):
    """The signed alias state is missing, malformed, or does not allow what is being done."""


class RollbackError(AliasStateError):
    """Signed metadata older than what this client already trusted (a lower sequence, a dropped revocation)."""


class ReplayError(AliasStateError):
    """A second, different signed state under a sequence this client already trusted."""


class ExpiredStateError(AliasStateError):
    """The newest signed state has expired: the store is frozen, or nobody re-signed it."""


class AliasMismatchError(AliasStateError):
    """The registry's alias points elsewhere than the signed state says (a direct move)."""


class RevokedError(AliasStateError):
    """The version was revoked by incident response."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StatePayload(_Strict):
    type_: Literal[STATE_TYPE] = Field(alias="_type")
    model: str = Field(min_length=1)
    alias: str = Field(min_length=1)
    version: str | None
    modelDigest: str
    revoked: dict[str, str]
    sequence: int = Field(ge=1)
    origin: int = Field(ge=1)
    kind: Kind
    issuedAt: datetime
    expires: datetime


class _RevocationPayload(_Strict):
    type_: Literal[REVOCATION_TYPE] = Field(alias="_type")
    model: str = Field(min_length=1)
    version: str = Field(min_length=1)
    incident: str
    sequence: int = Field(ge=1)
    issuedAt: datetime


@dataclass(frozen=True)
class AliasState:
    """``version`` None: incident response removed the alias. ``origin``: the sequence of the promotion or
    incident that chose ``version`` (re-signing keeps it), which the audit trail records."""

    model: str
    alias: str
    version: str | None
    model_digest: str
    sequence: int
    origin: int
    kind: Kind
    issued_at: datetime
    expires: datetime
    revoked: Mapping[str, str] = field(default_factory=dict)  # version -> incident id

    def to_payload(self) -> dict[str, Any]:
        return {"_type": STATE_TYPE, "model": self.model, "alias": self.alias, "version": self.version,
                "modelDigest": self.model_digest, "revoked": dict(sorted(self.revoked.items())),
                "sequence": self.sequence, "origin": self.origin, "kind": self.kind,
                "issuedAt": self.issued_at.isoformat(), "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class Revocation:
    model: str
    version: str
    incident: str
    sequence: int  # of the alias state that first lists it
    issued_at: datetime

    def to_payload(self) -> dict[str, Any]:
        return {"_type": REVOCATION_TYPE, "model": self.model, "version": self.version, "incident": self.incident,
                "sequence": self.sequence, "issuedAt": self.issued_at.isoformat()}


def _validated(cls: type[_Strict], payload: bytes, what: str) -> Any:
    try:
        parsed = cls.model_validate_json(payload)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise AliasStateError(f"malformed {what}: {where}") from None
    for stamp in ("issuedAt", "expires"):
        value = getattr(parsed, stamp, None)
        if value is not None and value.tzinfo is None:
            raise AliasStateError(f"malformed {what}: {stamp} has no time zone")
    return parsed


def parse_state(payload: bytes) -> AliasState:
    """An alias state from a verified envelope's payload."""
    p = _validated(_StatePayload, payload, "alias state")
    if p.origin > p.sequence:
        raise AliasStateError(f"malformed alias state: origin {p.origin} after sequence {p.sequence}")
    return AliasState(p.model, p.alias, p.version, p.modelDigest, p.sequence, p.origin, p.kind, p.issuedAt,
                      p.expires, dict(p.revoked))


def parse_revocation(payload: bytes) -> Revocation:
    p = _validated(_RevocationPayload, payload, "revocation")
    return Revocation(p.model, p.version, p.incident, p.sequence, p.issuedAt)


def payload_digest(payload: Mapping[str, Any] | bytes) -> str:
    data = payload if isinstance(payload, bytes) else json.dumps(payload, sort_keys=True,
                                                                 separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def next_state(current: AliasState | None, highest_seen: int, *, model: str, alias: str, kind: Kind,
               version: str | None = None, model_digest: str = "", revoke: Mapping[str, str] | None = None,
               now: datetime, expiry: timedelta = EXPIRY) -> AliasState:
    """The state a writer signs next: sequence above both the stored state and the highest the writer has
    seen; revocations are only ever added. ``kind="resign"`` keeps version, digest and origin."""
    sequence = max(current.sequence if current else 0, highest_seen) + 1
    revoked = {**(current.revoked if current else {}), **(revoke or {})}
    if kind == "resign":
        if current is None:
            raise AliasStateError(f"{model}@{alias} has no signed alias state to re-sign")
        return replace(current, sequence=sequence, kind=kind, issued_at=now, expires=now + expiry)
    return AliasState(model, alias, version, model_digest if version else "", sequence, sequence, kind, now,
                      now + expiry, revoked)


@dataclass(frozen=True)
class Seen:
    """What this client trusted last for one alias: the highest sequence, its payload digest, and every
    revocation it has seen (never forgotten)."""

    sequence: int = 0
    digest: str = ""
    revoked: tuple[str, ...] = ()


class TrustedAliasState:
    """A client's view of one model's signed metadata. No I/O: the caller verifies signatures, passes the
    parsed payloads in, and persists :meth:`seen` only after every check passed."""

    def __init__(self, model: str, seen: Mapping[str, Seen], now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("TrustedAliasState: 'now' must be timezone-aware")
        self.model = model
        self.now = now
        self._seen = dict(seen)
        self.states: dict[str, AliasState] = {}

    def update_alias(self, state: AliasState, digest: str) -> AliasState:
        """Trust ``state`` (its signature already verified; ``digest`` of its payload) or raise."""
        # ordering: the state must be about this model, and one per alias
        if state.model != self.model:
            raise AliasStateError(f"the alias state is for model {state.model!r}, not {self.model!r}")
        if state.alias in self.states:
            raise AliasStateError(f"{self.model}@{state.alias}: a second alias state in one update")
        # sequence: never below, and never a different state at, what was trusted before
        seen = self._seen.get(state.alias, Seen())
        if state.sequence < seen.sequence:
            raise RollbackError(f"{self.model}@{state.alias}: signed alias state sequence {state.sequence} is older "
                                f"than sequence {seen.sequence} this client already trusted (rollback)")
        if state.sequence == seen.sequence and digest != seen.digest:
            raise ReplayError(f"{self.model}@{state.alias}: a different signed alias state under sequence "
                              f"{state.sequence}, which this client already trusted (replayed or forked metadata)")
        dropped = sorted(set(seen.revoked) - set(state.revoked))
        if dropped:
            raise RollbackError(f"{self.model}@{state.alias}: the signed alias state no longer lists revoked "
                                f"version(s) {', '.join(dropped)} (rollback)")
        # expiry last: an expired state is not trusted (its sequence is not recorded either)
        if state.expires <= self.now:
            raise ExpiredStateError(f"{self.model}@{state.alias}: the signed alias state expired at "
                                    f"{state.expires.isoformat()} (frozen store, or nobody re-signed it)")
        self.states[state.alias] = state
        self._seen[state.alias] = Seen(state.sequence, digest, tuple(sorted(state.revoked)))
        return state

    def update_revocation(self, revocation: Revocation) -> Revocation:
        """A signed revocation found on a version: every trusted alias state must list it, else the state
        is older than the revocation (rolled back). Revocations do not expire."""
        if not self.states:
            raise AliasStateError("a revocation is checked against a trusted alias state; none is loaded")
        if revocation.model != self.model:
            raise AliasStateError(f"the revocation is for model {revocation.model!r}, not {self.model!r}")
        for state in self.states.values():
            if revocation.version not in state.revoked:
                raise RollbackError(f"{self.model}@{state.alias}: version {revocation.version} carries a signed "
                                    f"revocation (incident {revocation.incident}, sequence {revocation.sequence}) "
                                    f"that the signed alias state (sequence {state.sequence}) does not list "
                                    "(rollback)")
        return revocation

    @property
    def revoked(self) -> dict[str, str]:
        """Every version revoked by a trusted state or remembered from one seen before."""
        found = {v: "seen before" for s in self._seen.values() for v in s.revoked}
        for state in self.states.values():
            found.update(state.revoked)
        return found

    def check_serves(self, alias: str, registry_version: str | None) -> AliasState:
        """The trusted state of ``alias`` must say exactly what the registry serves, and not a revoked version."""
        state = self.states.get(alias)
        if state is None:
            raise AliasStateError(f"{self.model}@{alias} has no trusted signed alias state")
        if state.version != registry_version:
            said = f"version {state.version}" if state.version else "no version (removed by incident response)"
            raise AliasMismatchError(f"{self.model}@{alias}: the registry serves version {registry_version}, but "
                                     f"the signed alias state (sequence {state.sequence}) says {said}: the alias "
                                     "was moved outside mlgate")
        self.check_not_revoked(str(registry_version))
        return state

    def check_not_revoked(self, version: str) -> None:
        incident = self.revoked.get(version)
        if incident is not None:
            raise RevokedError(f"{self.model}/{version} was revoked by incident response ({incident})")

    def seen(self) -> dict[str, Seen]:
        return dict(self._seen)
