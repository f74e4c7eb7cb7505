"""The files of a scanned source or configuration tree, symlinks included, and the tree's digest.

Real checkouts hold symlinks (KServe's, for one). Refusing them made the trivy gates crash on any such
tree; following them blindly would let a link read, and bind the evidence to, files outside the tree.
So a link is followed while its target stays inside the tree: a linked file is listed with its target's
content, a linked directory is not walked twice (its target is walked where it lies, which also ends
loops). A link that leaves the tree or dangles is listed in ``escaping`` for the gate to report as a
finding: never read, never a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlgate.core.digests import CODE_NOISE_DIRS, file_digest, json_digest


@dataclass(frozen=True)
class SourceTree:
    """``files``: relative POSIX path → the real file it reads; ``escaping``: links not followed."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    escaping: tuple[str, ...] = ()

    def digest(self) -> str:
        """The tree's digest: each relative path with its content's sha256, each escaping link by name.

        Without links (and with bytecode left out) it equals ``code_digest``, which training records.
        """
        entries = {rel: file_digest(real) for rel, real in self.files.items() if not rel.endswith(".pyc")}
        entries.update({rel: "symlink-outside-tree" for rel in self.escaping})
        return json_digest(entries)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def walk_tree(target: Path, skip_dirs: frozenset[str] = CODE_NOISE_DIRS) -> SourceTree:
    """Every regular file under ``target`` (or ``target`` itself), following links that stay inside it."""
    target = Path(target)
    root = target.resolve() if target.is_dir() else target.resolve().parent
    if target.is_file() or (target.is_symlink() and not target.is_dir()):
        real = target.resolve()
        if target.is_symlink() and not real.is_file():
            return SourceTree(root, {}, (target.name,))
        return SourceTree(root, {target.name: real})
    files: dict[str, Path] = {}
    escaping: list[str] = []
    for dirpath, dirnames, filenames in os.walk(target):
        here = Path(dirpath)
        for name in dirnames:  # os.walk does not descend into linked directories
            path = here / name
            if path.is_symlink() and not _inside(path.resolve(), root):
                escaping.append(path.relative_to(target).as_posix())
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(target).as_posix()
            real = path.resolve()
            if path.is_symlink() and (not _inside(real, root) or not real.is_file()):
                escaping.append(rel)
            elif real.is_file():
                files[rel] = real
    return SourceTree(root, dict(sorted(files.items())), tuple(sorted(escaping)))
