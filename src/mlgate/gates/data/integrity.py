"""``data.integrity``: pin a file or directory as a manifest of per-file digests, then compare.

The manifest digest is the data version every later gate, the training run and promotion refer to. A
PostgreSQL table (``postgresql://…?table=``) is pinned as one entry, ``table:<name>``, whose digest the
database computes over the table's rows (``Source.table_digest``, ADR 0042) and whose size is its row count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlgate.core.digests import ALGORITHMS, digest_files, json_digest, list_files
from mlgate.core.errors import GateInputError
from mlgate.core.policy import Policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.data.sources import Source, is_table, open_source, redacted

GATE = "data.integrity"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    algorithm: str
    files: dict[str, tuple[str, int]]  # relative path -> (digest, size in bytes)

    @property
    def digest(self) -> str:
        return json_digest({"algorithm": self.algorithm,
                            "files": {path: digest for path, (digest, _) in self.files.items()}})

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files.values())

    def to_dict(self) -> dict:
        return {"version": MANIFEST_VERSION, "algorithm": self.algorithm, "digest": self.digest,
                "files": {p: {"digest": d, "size": s} for p, (d, s) in sorted(self.files.items())}}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(Path(path).read_text())
            if data["version"] != MANIFEST_VERSION or data["algorithm"] not in ALGORITHMS:
                raise ValueError(f"unsupported version {data['version']!r} or algorithm {data['algorithm']!r}")
            manifest = cls(data["algorithm"],
                           {p: (e["digest"], int(e["size"])) for p, e in data["files"].items()})
        except OSError as exc:
            raise GateInputError(f"{path}: cannot read the pinned manifest: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GateInputError(f"{path}: not a valid mlgate manifest: {exc!r}") from None
        if data.get("digest") != manifest.digest:
            raise GateInputError(f"{path}: the manifest's recorded digest does not match its entries "
                                 "(the manifest itself was edited)")
        return manifest


def build_manifest(root: Path | str, algorithm: str = "sha256",
                   progress: Callable[[int, int], None] | None = None) -> Manifest:

    if is_table(str(root)):
        return table_manifest(open_source(str(root)), algorithm)
    root = Path(root)
    if not root.exists():
        raise GateInputError(f"{root}: no such file or directory to pin")
    try:
        files = list_files(root)
    except ValueError as exc:
        raise GateInputError(str(exc)) from None
    base = root.parent if root.is_file() else root
    digests = digest_files(files, algorithm, progress)
    return Manifest(algorithm, {p.relative_to(base).as_posix(): (d, p.stat().st_size)
                                for p, d in zip(files, digests, strict=True)})


def table_manifest(source: Source, algorithm: str = "sha256") -> Manifest:
    """The manifest of a table ``Source``: a gate that read a ``pinned`` source names the rows it read."""
    digest, rows = source.table_digest()
    return Manifest(algorithm, {f"table:{source.table}": (digest, rows)})


def compare(actual: Manifest, pinned: Manifest) -> list[Finding]:
    findings = []
    for path in sorted(pinned.files.keys() - actual.files.keys()):
        findings.append(Finding(f"{GATE}.missing", Severity.HIGH, "file in the pinned manifest is missing", path))
    for path in sorted(actual.files.keys() - pinned.files.keys()):
        findings.append(Finding(f"{GATE}.extra", Severity.HIGH, "file not in the pinned manifest", path))
    for path in sorted(actual.files.keys() & pinned.files.keys()):
        if actual.files[path][0] != pinned.files[path][0]:
            findings.append(Finding(f"{GATE}.changed", Severity.HIGH,
                                    "content differs from the pinned digest", path))
    return findings


def check_integrity(data: Path | str, manifest_path: Path, policy: Policy,
                    progress: Callable[[int, int], None] | None = None) -> GateResult:
    """Hash ``data`` with the pinned manifest's algorithm and report changed, missing and extra files."""
    started, clock = utcnow(), time.perf_counter()
    pinned = Manifest.load(Path(manifest_path))
    algorithm = policy.section(GATE).algorithm
    if pinned.algorithm != algorithm:
        raise GateInputError(f"{manifest_path}: pinned with {pinned.algorithm}, but the policy's "
                             f"gates.data.integrity.algorithm is {algorithm}; re-pin")
    actual = build_manifest(data, pinned.algorithm, progress)
    seconds = time.perf_counter() - clock
    findings = compare(actual, pinned)
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if findings else Status.PASSED,
        subject=Subject("dataset", redacted(str(data)), actual.digest),
        policy_digest=policy.digest,
        tool=ToolInfo(pinned.algorithm, "hashlib" if pinned.algorithm == "sha256" else "blake3"),
        started_at=started,
        finished_at=utcnow(),
        metrics={"files": len(actual.files), "bytes": actual.total_bytes, "seconds": round(seconds, 4),
                 "changed": sum(f.id.endswith("changed") for f in findings),
                 "missing": sum(f.id.endswith("missing") for f in findings),
                 "extra": sum(f.id.endswith("extra") for f in findings)},
        thresholds={"pinned_digest": pinned.digest},
        findings=tuple(findings),
    )
