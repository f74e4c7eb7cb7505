"""Reading configuration YAML an attacker may have written: bounded in size, aliases refused.

A policy can arrive from anyone allowed to trigger a DAG with a config (A4 in ADR 0013), so reading it
must cost little whatever it holds. YAML aliases are refused while composing, before any object is built
(a billion-laughs document is nine anchors and never expands), and a file over the size cap is refused
before it is read. The cap defaults to 1 MB; ``MLGATE_POLICY_MAX_BYTES`` changes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mlgate.core.errors import PolicyError

MAX_BYTES_ENV = "MLGATE_POLICY_MAX_BYTES"
DEFAULT_MAX_BYTES = 1_000_000


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops at the first alias (``*name``)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in mlgate "
                                              "configuration", event.start_mark)
        return super().compose_node(parent, index)


def max_bytes() -> int:
    raw = os.environ.get(MAX_BYTES_ENV, "")
    try:
        return int(raw) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        raise PolicyError(f"{MAX_BYTES_ENV}: expected a number of bytes, found {raw[:40]!r}") from None


def load_yaml(path: str | Path, what: str) -> Any:
    """The data of the YAML file at ``path``; over the size cap, unreadable, not YAML or using an alias:
    a ``PolicyError`` that names the file (never the document's content beyond the problem's position)."""
    path, limit = Path(path), max_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            raise PolicyError(f"{path}: the {what} is {size} bytes, over the limit of {limit} ({MAX_BYTES_ENV})")
        with path.open("rb") as handle:
            text = handle.read(limit + 1)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if len(text) > limit:  # grew between stat and read
        raise PolicyError(f"{path}: the {what} is over the limit of {limit} bytes ({MAX_BYTES_ENV})")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {str(exc)[:500]}") from None
