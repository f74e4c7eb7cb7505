"""Writing and reading GateResults as evidence files (``gates/<gate-id>.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from mlgate.core.errors import EvidenceError
from mlgate.core.results import GateResult


def evidence_name(gate: str) -> str:
    return f"{gate}.json"


def write_evidence(result: GateResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / evidence_name(result.gate)
    path.write_text(result.to_json() + "\n")
    return path


def read_evidence(path: Path) -> GateResult:
    """A GateResult from a file; anything unreadable is an ``EvidenceError`` (which blocks promotion)."""
    try:
        return GateResult.from_dict(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read evidence: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{path}: malformed evidence: {exc!r}") from None
