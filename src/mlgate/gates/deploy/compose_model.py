"""The canonical Compose model of a file, as Docker Compose itself loads it (compose-go).

Reading compose YAML by hand misses what compose resolves (``extends`` from other files, merge keys,
list-or-mapping forms, ``env_file`` paths) and takes any YAML with a ``services:`` key for compose
(``azure.yaml`` has one). ``docker compose config`` of the ``compose-go`` package (a dependency) applies
the Compose specification's schema and renders the resolved model as JSON without a Docker daemon.

It runs with ``--no-interpolate``: the rules must see ``${VAR:-default}`` as written to tell a literal
secret from a variable, and a variable required with ``${VAR:?}`` must not make the file unreadable.
Where a rule needs the run-time value (``user: "${PUID:-0}"``) it interpolates with the ``.env`` beside
the file (``literals.interpolate``). The environment of the loader is emptied: the host's variables
(``COMPOSE_FILE``, ``COMPOSE_PROFILES``) must not change what is checked.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from mlgate.core.errors import ToolError
from mlgate.core.subprocess_tool import run_tool

PACKAGE = "compose-go"
TIMEOUT_S = 60
# File names Docker Compose looks for by default, and the usual variants (docker-compose.prod.yml).
COMPOSE_NAME = re.compile(r"(?i)^(docker-)?compose([._-][\w.-]*)?\.ya?ml$|^[\w.-]*[._-]compose\.ya?ml$")


def find_compose() -> Path:
    """The ``docker-compose`` binary compose-go ships, else one on PATH; missing is a tool error."""
    try:
        files = metadata.distribution(PACKAGE).files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "docker-compose" and file.parent.name == "compose":
            return Path(file.locate()).resolve()
    on_path = shutil.which("docker-compose")
    if on_path:
        return Path(on_path)
    raise ToolError(f"docker-compose (package {PACKAGE}) not found: compose files cannot be loaded")


def may_be_compose(name: str, document: Any) -> bool:
    """Worth asking compose: a mapping with a ``services`` mapping (the schema then decides)."""
    return isinstance(document, dict) and isinstance(document.get("services"), dict) and (
        bool(COMPOSE_NAME.match(name)) or all(key in COMPOSE_TOP_LEVEL or str(key).startswith("x-")
                                              for key in document))


# Top-level keys of the Compose specification; a file with others is compose only if named like one.
COMPOSE_TOP_LEVEL = frozenset({"version", "name", "include", "services", "networks", "volumes", "configs",
                               "secrets", "models"})


def load(path: Path, binary: Path) -> dict[str, Any]:
    """The canonical model of ``path`` (``extends`` and ``env_file`` paths resolved, not interpolated).

    Raises ToolError with compose's own message when the file is not valid compose (syntax or schema).
    """
    argv = [str(binary), "--project-directory", str(path.parent), "-f", str(path), "config", "--format", "json",
            "--no-interpolate", "--no-env-resolution"]
    text = run_tool(argv, TIMEOUT_S, name="docker compose config", env={"PATH": "/usr/bin:/bin"})
    try:
        model = json.loads(text)
        if not isinstance(model, dict) or not isinstance(model.get("services", {}), dict):
            raise ValueError("no services mapping")
    except ValueError as exc:
        raise ToolError(f"docker compose config printed malformed output: {exc}") from None
    return model
