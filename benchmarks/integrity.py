"""``data.integrity`` throughput against the raw hash of the same files (hashlib sha256, blake3).

The gate must hash at >= 0.9x the raw throughput. Both sides read the same files from a warm page cache;
the raw side is the plain single-file loop a person would write.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from blake3 import blake3

from mlgate.gates.data.integrity import build_manifest


def raw_sha256(files: list[Path]) -> None:
    for path in files:
        with path.open("rb") as handle:
            hashlib.file_digest(handle, "sha256")


def raw_blake3(files: list[Path]) -> None:
    for path in files:
        blake3(max_threads=1).update_mmap(path)


def best_seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MB instead of 512 MB")
    args = parser.parse_args()
    files_n, size = (8, 8 << 20) if args.quick else (16, 32 << 20)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = []
        for i in range(files_n):
            path = root / f"part-{i:03d}.bin"
            path.write_bytes(os.urandom(size))
            files.append(path)
        total_mb = files_n * size / 1e6
        print(f"{files_n} files, {total_mb:.0f} MB, {os.cpu_count()} CPUs, best of 3 (page cache warm)")
        print(f"{'algorithm':<10} {'raw MB/s':>10} {'gate MB/s':>10} {'ratio':>7}  goal >= 0.9")
        for algorithm, raw in (("sha256", raw_sha256), ("blake3", raw_blake3)):
            raw(files)  # warm the page cache for both sides
            raw_s = best_seconds(lambda raw=raw: raw(files), 3)
            gate_s = best_seconds(lambda a=algorithm: build_manifest(root, a), 3)
            ratio = raw_s / gate_s
            print(f"{algorithm:<10} {total_mb / raw_s:10.0f} {total_mb / gate_s:10.0f} {ratio:7.2f}  "
                  f"{'ok' if ratio >= 0.9 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
