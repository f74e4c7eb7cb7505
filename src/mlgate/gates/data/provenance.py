"""Provenance: one JSON line per produced dataset, saying where its input came from, when, which
DAG run and task made it, from which upstream digests, by which transformation, and its digest.

Source URIs lose their user-info and query string before they are recorded: credentials and
pre-signed tokens live there, and provenance is logged to MLflow and Airflow in clear.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlgate.core.errors import GateInputError
from mlgate.core.redaction import redact_uri

PROVENANCE_VERSION = 1


@dataclass(frozen=True)
class Producer:
    dag_id: str
    run_id: str
    task_id: str


@dataclass(frozen=True)
class ProvenanceEntry:
    source_uri: str
    retrieved_at: str  # ISO 8601, UTC
    producer: Producer
    transformation: str  # what was applied, e.g. "dropna(subset=[income]) | one-hot(region)"
    output_digest: str
    upstream_digests: tuple[str, ...] = field(default_factory=tuple)
    version: int = PROVENANCE_VERSION

    def __post_init__(self) -> None:
        if not self.output_digest:
            raise GateInputError("a provenance entry needs the digest of what was produced")
        object.__setattr__(self, "source_uri", redact_uri(self.source_uri))
        object.__setattr__(self, "upstream_digests", tuple(self.upstream_digests))

    def to_json_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_json_line(cls, line: str) -> ProvenanceEntry:
        try:
            data = json.loads(line)
            if data.get("version") != PROVENANCE_VERSION:
                raise ValueError(f"unsupported provenance version {data.get('version')!r}")
            return cls(**{**data, "producer": Producer(**data["producer"])})
        except (ValueError, KeyError, TypeError) as exc:
            raise GateInputError(f"not a valid provenance entry: {exc!r}") from None


def append_provenance(path: Path, entries: list[ProvenanceEntry]) -> Path:
    """Append ``entries`` as JSON lines in one write, flushed to disk (a crash leaves whole lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(entry.to_json_line() for entry in entries))
        handle.flush()
        os.fsync(handle.fileno())
    return path


def read_provenance(path: Path) -> list[ProvenanceEntry]:
    return [ProvenanceEntry.from_json_line(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]
