"""The audit trail's tamper evidence: every record is signed and names the records it follows.

A record file holds a DSSE envelope (the attestation key) over ``{_type, name, prev, record}``: ``name`` is
the file's own name (time-ordered), ``prev`` the sha256 of every record that was a head of the trail when
it was written (one, unless writers raced: concurrent appends make a short fork that the next record
joins). With the signing key out of reach, editing a record breaks its signature, inserting one means
signing it, deleting one leaves a later record pointing at nothing, and reordering (swapping file
contents) makes a name disagree with its signed name or a record follow a later one. A deleted *last*
record is seen only through the signed alias state, whose ``origin`` sequence a record must explain.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import EvidenceError, GateInputError
from mlgate.trust.attestation import PAYLOAD_TYPE, open_envelope, sign_statement

if TYPE_CHECKING:
    from mlgate.trust.keys import KeyRing

RECORD_TYPE = "https://mlgate.dev/audit-record/v1"


def record_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def seal(record: Mapping[str, Any], name: str, prev: Sequence[str], keys: KeyRing | None) -> bytes:
    """The file content of one record; unsigned (flagged by :func:`verify_chain`) when there is no usable key —
    a refused promotion is still recorded when its refusal is that the key cannot be read."""
    payload = {"_type": RECORD_TYPE, "name": name, "prev": sorted(prev), "record": dict(record)}
    signer = _usable_signer(keys)
    if signer is not None:
        return (sign_statement(payload, signer) + "\n").encode()
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    envelope = {"payload": base64.b64encode(raw).decode(), "payloadType": PAYLOAD_TYPE, "signatures": []}
    return (json.dumps(envelope, sort_keys=True) + "\n").encode()


def _usable_signer(keys: KeyRing | None) -> Any:
    if keys is None or not keys.has_signing_key:
        return None
    try:
        return keys.signer()
    except (GateInputError, EvidenceError):
        return None


def unseal(data: bytes) -> dict[str, Any]:
    """The payload of a record file, *unverified* (for display); a pre-chain record is its own payload."""
    outer = json.loads(data)
    if "payload" not in outer:
        return {"_type": "", "name": "", "prev": [], "record": outer}
    inner = json.loads(base64.b64decode(outer["payload"]))
    if not isinstance(inner, dict) or not isinstance(inner.get("record"), dict):
        raise ValueError("not an audit record")
    return inner


@dataclass(frozen=True)
class Entry:
    name: str
    hash: str
    prev: tuple[str, ...]
    record: dict[str, Any]


def verify_chain(files: Sequence[tuple[str, bytes]], trusted: Iterable[str], model: str,
                 ) -> tuple[list[Entry], list[str]]:
    """Check ``files`` ((name, content), in name order) as ``model``'s trail; returns the records that
    verified and every problem. A record signed for another model is a problem: the trail is found by a
    run tag anyone with an MlflowClient can move, so another model's intact trail could stand in for this one."""
    trusted = tuple(trusted)
    entries: list[Entry] = []
    problems: list[str] = []
    earlier: set[str] = set()
    for index, (name, data) in enumerate(files):
        digest = record_hash(data)
        try:
            payload = json.loads(open_envelope(data, trusted)[0])
            if payload.get("_type") != RECORD_TYPE or not isinstance(payload.get("record"), dict):
                raise EvidenceError("not an audit record")
        except (EvidenceError, ValueError, AttributeError) as exc:
            problems.append(f"record {name}: not signed by a trusted key, or edited after signing ({exc})"[:300])
            continue
        if payload["record"].get("model") != model:
            problems.append(f"record {name}: signed for model {str(payload['record'].get('model'))[:80]!r}, not "
                            f"{model!r} (another model's trail)")
            continue
        prev = tuple(payload.get("prev") or ())
        if payload.get("name") != name:
            problems.append(f"record {name}: signed as {str(payload.get('name'))[:80]!r} (moved or reordered)")
        if digest in earlier:
            problems.append(f"record {name}: a copy of an earlier record (inserted)")
        if index and not prev:
            problems.append(f"record {name}: follows no record, but is not the first")
        missing = [p for p in prev if p not in earlier]
        if missing:
            problems.append(f"record {name}: follows record(s) {', '.join(m[7:19] for m in missing)}… that are not "
                            "before it in the trail (deleted or reordered)")
        earlier.add(digest)
        entries.append(Entry(name, digest, prev, payload["record"]))
    return entries, problems


def heads(files: Sequence[tuple[str, bytes]]) -> list[str]:
    """Hashes of the records no other record follows (what the next record must name as ``prev``)."""
    followed: set[str] = set()
    hashes = []
    for _, data in files:
        hashes.append(record_hash(data))
        try:
            followed.update(unseal(data).get("prev") or ())
        except (ValueError, TypeError):
            continue
    return [h for h in hashes if h not in followed]


def unexplained_aliases(records: Sequence[Mapping[str, Any]], registry: Mapping[str, str],
                        signed_origins: Mapping[str, int]) -> list[str]:
    """Each current registry alias must be where the newest verified record about it left it, and each
    signed alias state's ``origin`` must be a recorded decision (else its record was deleted)."""
    last: dict[str, str] = {}
    sequences: dict[str, set[int]] = {}
    for record in records:
        alias = record.get("alias") or ""
        if alias and record.get("decision") != "blocked":
            last[alias] = record.get("alias_after") or ""
        if alias and record.get("state_sequence"):
            sequences.setdefault(alias, set()).add(int(record["state_sequence"]))
    problems = []
    for alias, version in sorted(registry.items()):
        if last.get(alias) != version:
            problems.append(f"alias {alias} -> version {version} is explained by no audit record (last recorded: "
                            f"{last.get(alias) or 'none'}): moved outside mlgate")
    for alias in sorted(set(last) - set(registry)):
        if last[alias]:
            problems.append(f"alias {alias} was removed outside mlgate (last recorded: version {last[alias]})")
    for alias, origin in sorted(signed_origins.items()):
        if origin not in sequences.get(alias, set()):
            problems.append(f"alias {alias}: the signed alias state (origin sequence {origin}) has no audit record "
                            "(deleted)")
    return problems
