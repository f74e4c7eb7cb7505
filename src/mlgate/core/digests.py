"""Content digests of files and trees, written as ``<algorithm>:<hex>``.

Speed matters (the integrity gate must hash at ≥ 0.9× raw hashlib/blake3): files are hashed with
``hashlib.file_digest`` / blake3's mmap path, which release the GIL, on a small thread pool.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ALGORITHMS = ("sha256", "blake3")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    if algorithm == "sha256":
        with path.open("rb") as handle:
            return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
    if algorithm == "blake3":
        from blake3 import blake3

        hasher = blake3(max_threads=1)
        if path.stat().st_size:  # mmap of an empty file fails
            hasher.update_mmap(path)
        return "blake3:" + hasher.hexdigest()
    raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")


# What a source tree produces or holds beside its code; left out of code digests (``code_digest``).
CODE_NOISE_DIRS = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def list_files(root: Path, skip_dirs: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under ``root`` (or ``root`` itself), sorted; symlinks are refused, not followed."""
    if root.is_symlink():
        raise ValueError(f"{root} is a symbolic link; pin the target instead")
    if root.is_file():
        return [root]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in dirnames:  # os.walk lists a linked directory but never enters it: its files would go unpinned
            if Path(dirpath, name).is_symlink():
                raise ValueError(f"{Path(dirpath, name)} is a symbolic link; symlinks are not pinned")
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                raise ValueError(f"{path} is a symbolic link; symlinks are not pinned")
            files.append(path)
    return sorted(files)


def digest_files(paths: Iterable[Path], algorithm: str,
                 progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Digests of ``paths`` in order; ``progress(done, total)`` is called as files finish."""
    paths = list(paths)
    workers = min(len(paths), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = []
        for done, digest in enumerate(pool.map(lambda p: file_digest(p, algorithm), paths), start=1):
            digests.append(digest)
            if progress:
                progress(done, len(paths))
    return digests


def json_digest(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def file_digests(root: Path, skip_dirs: frozenset[str] = frozenset()) -> dict[str, str]:
    """Relative path (POSIX) -> sha256 digest of every file under ``root`` (or of ``root`` itself)."""
    root = Path(root)
    files = [f for f in list_files(root, skip_dirs) if not (skip_dirs and f.suffix == ".pyc")]
    base = root.parent if root.is_file() else root
    digests = digest_files(files, "sha256")
    return {p.relative_to(base).as_posix(): d for p, d in zip(files, digests, strict=True)}


def tree_digest(root: Path, skip_dirs: frozenset[str] = frozenset()) -> str:
    """One digest for a file or directory: its relative paths and their sha256 digests."""
    return json_digest(file_digests(root, skip_dirs))


def code_digest(root: Path) -> str:
    """The digest of a source tree, stable across runs: bytecode caches and VCS/venv folders left out."""
    return tree_digest(root, CODE_NOISE_DIRS)
