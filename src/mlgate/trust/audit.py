"""The audit trail of a registered model: every promotion decision, appended, never rewritten.

Storage: one MLflow run per registered model in experiment ``mlgate-audit`` (tag ``mlgate.audit.model``),
and one small JSON artifact per decision under ``decisions/``, named by its UTC time (microseconds) and
a random suffix. Appending is creating a new file, so concurrent writers never overwrite each other
(a JSON-lines file or an index tag would be read-modify-write); reading lists the directory in name
order, which is time order. Each record is signed and chained to the ones before it (``audit_chain``,
ADR 0014); ``verify_decisions`` checks the chain and that every current alias is explained.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.trust.alias_store import registered_model
from mlgate.trust.audit_chain import heads, seal, unexplained_aliases, unseal, verify_chain
from mlgate.trust.registry import keyed_run, mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlgate.trust.keys import KeyRing

EXPERIMENT = "mlgate-audit"
MODEL_TAG = "mlgate.audit.model"
FOLDER = "decisions"


@dataclass(frozen=True)
class AuditRecord:
    at: str
    model: str
    version: str
    decision: str  # promoted | blocked | unreadable
    by: str
    alias: str = ""
    alias_before: str = ""
    alias_after: str = ""
    reasons: tuple[str, ...] = ()
    envelope_digest: str = ""  # sha256 of the attestation the decision rests on ("" when none was signed)
    keyid: str = ""
    policy_digest: str = ""
    state_sequence: int = 0  # the signed alias state this decision wrote (0: none)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "reasons": tuple(known.get("reasons", ()))})


def append_decision(client: MlflowClient, record: AuditRecord, keys: KeyRing | None) -> str:
    """Append ``record`` to its model's audit trail, signed with ``keys`` and chained to the current heads
    (unsigned without a key: ``verify_decisions`` then flags it); returns the artifact path."""
    run_id = keyed_run(client, EXPERIMENT, MODEL_TAG, record.model)
    prev = heads(_record_files(client, run_id))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-v{record.version}-{uuid.uuid4().hex[:8]}.json"
    with mlflow_errors("appending to the audit trail", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(seal(record.to_dict(), name, prev, keys))
        client.log_artifact(run_id, str(path), artifact_path=FOLDER)
    return f"{FOLDER}/{name}"


def _record_files(client: MlflowClient, run_id: str | None) -> list[tuple[str, bytes]]:
    """(file name, content) of every record, in name order."""
    if run_id is None:
        return []
    with mlflow_errors("reading the audit trail", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        if not client.list_artifacts(run_id, FOLDER):
            return []
        folder = Path(client.download_artifacts(run_id, FOLDER, tmp))
        return [(path.name, path.read_bytes()) for path in sorted(folder.glob("*.json"))]


def read_decisions(client: MlflowClient, model: str) -> list[AuditRecord]:
    """The model's decisions, oldest first, as stored (unverified: see ``verify_decisions``); a record that
    cannot be read is kept as ``unreadable``."""
    records = []
    for name, data in _record_files(client, keyed_run(client, EXPERIMENT, MODEL_TAG, model, create=False)):
        try:
            records.append(AuditRecord.from_dict(unseal(data)["record"]))
        except (ValueError, TypeError) as exc:
            records.append(AuditRecord(at="", model=model, version="?", decision="unreadable", by="",
                                       reasons=(f"{name}: {type(exc).__name__}",)))
    return records


def verify_decisions(client: MlflowClient, model: str, trusted: Iterable[str],
                     signed_origins: Mapping[str, int]) -> tuple[list[AuditRecord], list[str]]:
    """The verified records and every problem: a record edited, deleted, inserted or reordered, a current
    alias no record explains, a signed alias state (``alias -> origin sequence``) no record explains."""
    files = _record_files(client, keyed_run(client, EXPERIMENT, MODEL_TAG, model, create=False))
    entries, problems = verify_chain(files, trusted, model)
    registered = registered_model(client, model)
    aliases = {alias: str(version) for alias, version in ((registered and registered.aliases) or {}).items()}
    problems += unexplained_aliases([e.record for e in entries], aliases, signed_origins)
    return [AuditRecord.from_dict(e.record) for e in entries], problems


def format_table(records: list[AuditRecord]) -> str:
    """A fixed-width table for a terminal: one row per decision, reasons indented below it."""
    header = ("at", "version", "decision", "alias", "by", "evidence")
    rows = [(r.at, r.version, r.decision, f"{r.alias_before or '-'} -> {r.alias_after or '-'}", r.by,
             r.envelope_digest[:19] or "-") for r in records]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    for record, row in zip(records, rows, strict=True):
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        lines += [f"    - {reason}" for reason in record.reasons]
    return "\n".join(lines)
