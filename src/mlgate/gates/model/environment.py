"""A model's environment files: what ``mlflow models serve`` / ``env_manager="virtualenv"|"conda"`` installs.

MLflow builds the serving environment from ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` beside
the model, so whoever wrote the model chooses what pip and conda install — and installing a source
distribution runs its build code. Only named packages with versions from the configured index pass: no
URLs, direct references, local paths, editable installs, pip options (other index, find-links, includes
other than python_env.yaml's own ``-r requirements.txt``) or conda channels that are URLs or paths.
"""

from __future__ import annotations

import re
from typing import Any

ENVIRONMENT_FILES = frozenset({"requirements.txt", "python_env.yaml", "conda.yaml"})

_UNSAFE = re.compile(r"://|@|/|\\|^\.|^-|^file:", re.IGNORECASE)


def _requirement_problem(line: str, allow_include: bool) -> str | None:
    line = line.split(" #")[0].strip()
    if not line or line.startswith("#"):
        return None
    if allow_include and line == "-r requirements.txt":
        return None
    if _UNSAFE.search(line):
        return f"installs {line[:80]!r}: not a plain package requirement (URL, path, option or direct reference)"
    return None


def problems(name: str, text: str) -> list[str]:
    """Why this environment file would make MLflow install something other than named index packages."""
    import yaml

    if name == "requirements.txt":
        lines: list[Any] = text.splitlines()
        include = False
    else:
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict):
            return [f"{name} is not a mapping"]
        include = name == "python_env.yaml"
        lines = []
        for key in ("dependencies", "build_dependencies"):
            for entry in doc.get(key) or []:
                if isinstance(entry, dict):  # conda's {pip: [...]}
                    lines.extend(entry.get("pip") or [])
                else:
                    lines.append(entry)
        found = [f"conda channel {c!r} is a URL or path" for c in doc.get("channels") or []
                 if not isinstance(c, str) or _UNSAFE.search(c)]
        if found:
            return found
    return [p for line in lines if (p := _requirement_problem(str(line), include))]
