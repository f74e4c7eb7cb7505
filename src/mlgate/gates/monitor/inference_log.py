"""The inference log: what serving code records per prediction, and what the monitoring gates read.

Schema (one JSON object per line in ``.jsonl`` files; the same fields as columns in ``.parquet`` files,
``features`` as a struct/map column):

=============  ==========================================================================
``timestamp``  ISO-8601 in UTC, e.g. ``2026-01-31T12:00:00.123456+00:00``
``client_id``  who asked (an API key id or tenant id; not PII in mlgate's threat model)
``features``   object: feature name -> value (number, string, bool or null)
``prediction`` the model's answer (number or string)
``confidence`` float in [0, 1]: the model's probability for ``prediction``
``label``      optional: the ground truth, when it arrives (enables concept-drift checks)
=============  ==========================================================================

``read_window`` expands ``features`` into one column per feature, so a window can be compared with the
training data column by column; a feature may therefore not be named like a schema field.
"""

from __future__ import annotations

import json
import math
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import GateInputError

if TYPE_CHECKING:
    import pandas as pd

RESERVED = ("timestamp", "client_id", "prediction", "confidence", "label")
_SUFFIXES = (".jsonl", ".parquet")
_REQUIRED = ("timestamp", "client_id", "features", "prediction", "confidence")


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 <= confidence <= 1.0:  # NaN fails too
        raise ValueError(f"confidence must be in [0, 1], found {confidence}")
    return confidence


class InferenceLogger:
    """Appends one JSON line per prediction; safe to share between threads.

    Each record is written with a single ``write`` to a file opened with ``O_APPEND``, so lines from
    several processes do not interleave either (on a local file system).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def log(self, client_id: str, features: dict[str, Any], prediction: Any, confidence: float,
            label: Any = None, timestamp: datetime | None = None) -> None:
        clash = [name for name in features if name in RESERVED]
        if clash:
            raise ValueError(f"feature name(s) {clash} clash with inference-log fields {list(RESERVED)}")
        when = (timestamp or datetime.now(UTC)).astimezone(UTC)
        record = {"timestamp": when.isoformat(timespec="microseconds"), "client_id": str(client_id),
                  "features": features, "prediction": prediction, "confidence": _check_confidence(confidence)}
        if label is not None:
            record["label"] = label
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> InferenceLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise GateInputError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(record, dict) or any(k not in record for k in _REQUIRED):
                raise GateInputError(f"{path}:{number}: an inference record needs {list(_REQUIRED)}")
            records.append(record)
    return records


def _utc(moment: datetime | str) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise GateInputError(f"window bound {moment!r} has no time zone; give it in UTC")
    return stamp.tz_convert("UTC")


def read_window(path: str | Path, start: datetime | str, end: datetime | str) -> pd.DataFrame:
    """The records with ``start <= timestamp < end`` from a log file or a directory of ``.jsonl``/``.parquet``
    files, ``features`` expanded to columns, sorted by timestamp."""
    import pandas as pd

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise GateInputError(f"{path}: no inference log (.jsonl or .parquet) found")
    frames = [pd.read_parquet(f) if f.suffix == ".parquet" else pd.DataFrame(_read_jsonl(f)) for f in files]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(columns=list(RESERVED))
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise GateInputError(f"{path}: inference log without the field(s) {missing}")
    try:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        frame["confidence"] = frame["confidence"].astype(float)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{path}: bad timestamp or confidence in the inference log: {exc}") from None
    if not frame["confidence"].between(0, 1).all():
        raise GateInputError(f"{path}: confidence outside [0, 1] in the inference log")
    frame = frame[(frame["timestamp"] >= _utc(start)) & (frame["timestamp"] < _utc(end))]
    features = pd.DataFrame([f if isinstance(f, dict) else dict(f) for f in frame["features"]],
                            index=frame.index)
    clash = [c for c in features.columns if c in RESERVED]
    if clash:
        raise GateInputError(f"{path}: feature name(s) {clash} clash with inference-log fields")
    if "label" not in frame.columns:
        frame = frame.assign(label=math.nan)
    window = pd.concat([frame[list(RESERVED)], features], axis=1)
    return window.sort_values("timestamp", kind="stable").reset_index(drop=True)
