"""Literal secrets in Helm charts (``MLG-HELM-001``, and ``MLG-K8S-001`` in templates).

Trivy renders a chart for its KSV checks, and those look for privilege, not secrets: a chart whose
``values.yaml`` holds ``db.password: hunter2`` passed. Values files are read for secret-named keys
with literal values; templates are read with their ``{{ ... }}`` actions blanked (which keeps most
manifests valid YAML) and their containers' literal environment checked like any manifest. A
template that is not YAML even then is rendered by trivy only (its privilege checked, not its secrets).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from mlgate.gates.code.trivy import TrivyFinding
from mlgate.gates.deploy import kubernetes, literals
from mlgate.gates.deploy.rules import rule

VALUES = re.compile(r"(?i)(^|/)values[\w.-]*\.ya?ml$")
_ACTION = re.compile(r"\{\{.*?\}\}", re.S)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _leaves(node: Any, path: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) of a YAML tree, each mapping or list once: an alias is the same object, and
    walking every path through nested aliases (a "billion laughs" file) would never end."""
    seen = set() if seen is None else seen
    if isinstance(node, Mapping | list):
        if id(node) in seen:
            return
        seen.add(id(node))
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key), seen)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _leaves(item, f"{path}[{i}]", seen)
    else:
        yield path, node


def _values_findings(rel: str, text: str) -> list[TrivyFinding]:
    try:
        values = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return []  # config_files reports an unparseable values file already
    leaves = [(path.split("]", 1)[-1].lstrip("."), value) for path, value in _leaves(values)
              if value is not None and value != ""]
    named = [(path, v) for path, v in leaves if literals.is_literal_secret(path.rsplit(".", 1)[-1], v)]
    rest = [(path, str(v)) for path, v in leaves if (path, v) not in named and isinstance(v, str)]
    shaped = [path for (path, _), hit in zip(rest, literals.engine_hits([v for _, v in rest]), strict=True) if hit]
    return [rule("MLG-HELM-001").finding(f"chart value {path} holds a literal secret", f"{rel} ({path})")
            for path in [*(p for p, _ in named), *shaped]]


def _template_findings(rel: str, text: str) -> list[TrivyFinding]:
    try:
        documents = list(yaml.load_all(_ACTION.sub("", text), Loader=_Loader))
    except yaml.YAMLError:
        return []
    return [f for d in documents if kubernetes.is_kubernetes(d)
            for f in kubernetes.kubernetes_findings(rel, d) if f.id == "MLG-K8S-001"]


def helm_findings(files: Mapping[str, Path]) -> list[TrivyFinding]:
    """Literal secrets in the values files and templates of the charts in ``files``."""
    findings = []
    for rel, real in sorted(files.items()):
        text = real.read_text(errors="replace")
        if "/templates/" in f"/{rel}" and rel.endswith((".yaml", ".yml")):
            findings += _template_findings(rel, text)
        elif VALUES.search(rel):
            findings += _values_findings(rel, text)
    return findings
