"""Which files of a tree are deployment configuration, of which kind, and which cannot be read.

The gate must account for every file it was asked to check: trivy skips a file it cannot parse without
saying so (a compose file with a YAML syntax error used to pass with nothing checked). So every YAML file
is parsed here first; a syntax error is a finding, never a silent skip. Files trivy checks (Dockerfiles,
Kubernetes manifests, Helm charts, Terraform) are later matched against trivy's report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlgate.gates.deploy import compose_model, kubernetes

DOCKERFILE = re.compile(r"(?i)^(dockerfile|containerfile)([._-].*)?$|^.+\.(dockerfile|containerfile)$")
YAML = re.compile(r"(?i)\.ya?ml$")
# Committed environment files (``.env``, ``app.env``, ``.env.prod``); examples and templates are not.
ENV_FILE = re.compile(r"(?i)^(\.env(\..+)?|.+\.env)$")
ENV_EXAMPLE = re.compile(r"(?i)example|sample|template|dist|defaults?$")
TERRAFORM = re.compile(r"(?i)\.tf(\.json)?$")
JSON = re.compile(r"(?i)\.json$")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class ConfigFiles:
    """Relative path → real file, per kind; ``unparseable``: relative path → why."""

    dockerfile: dict[str, Path] = field(default_factory=dict)
    compose: dict[str, Path] = field(default_factory=dict)
    kubernetes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    helm: dict[str, Path] = field(default_factory=dict)
    terraform: dict[str, Path] = field(default_factory=dict)
    env: dict[str, Path] = field(default_factory=dict)
    kustomize: dict[str, Path] = field(default_factory=dict)  # build instructions: no workload of their own
    other_yaml: dict[str, Path] = field(default_factory=dict)
    unparseable: dict[str, str] = field(default_factory=dict)
    maybe_compose: dict[str, Path] = field(default_factory=dict)  # has services:, not named compose

    def counts(self) -> dict[str, int]:
        return {"dockerfile": len(self.dockerfile), "compose": len(self.compose),
                "kubernetes": len(self.kubernetes), "helm": len(self.helm), "terraform": len(self.terraform),
                "env": len(self.env), "kustomize": len(self.kustomize), "other_yaml": len(self.other_yaml),
                "unparseable": len(self.unparseable)}

    def checked(self) -> int:
        """Deployment configuration files checked (env files and unrelated YAML are not)."""
        return (len(self.dockerfile) + len(self.compose) + len(self.kubernetes) + len(self.helm)
                + len(self.terraform))


def _charts(files: dict[str, Path]) -> list[str]:
    return [rel.rsplit("/", 1)[0] + "/" if "/" in rel else "" for rel in files
            if rel.rsplit("/", 1)[-1] == "Chart.yaml"]


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"YAML syntax error: {problem}" + (f" at line {mark.line + 1}" if mark else "")


def classify(files: dict[str, Path]) -> ConfigFiles:
    """Sort ``files`` (relative path → real path) by kind, parsing every YAML file once."""
    found = ConfigFiles()
    charts = _charts(files)
    seen: set[Path] = set()
    for rel, real in files.items():
        name = rel.rsplit("/", 1)[-1]
        if real in seen:  # a link inside the tree to a file already listed
            continue
        seen.add(real)
        if charts and any(rel.startswith(chart) for chart in charts):
            found.helm[rel] = real
        elif DOCKERFILE.match(name):
            found.dockerfile[rel] = real
        elif TERRAFORM.search(name):
            found.terraform[rel] = real
        elif ENV_FILE.match(name) and not ENV_EXAMPLE.search(name):
            found.env[rel] = real
        elif YAML.search(name):
            _classify_yaml(found, rel, real, name)
        elif JSON.search(name):
            _classify_json(found, rel, real)
    return found


def _classify_json(found: ConfigFiles, rel: str, real: Path) -> None:
    """kubectl applies (and trivy checks) JSON manifests; any other JSON is not configuration."""
    try:
        document = json.loads(real.read_text(errors="replace"))
    except ValueError:
        return
    items = document.get("items") if isinstance(document, dict) and document.get("kind") == "List" else [document]
    if isinstance(items, list) and any(kubernetes.is_kubernetes(d) for d in items):
        found.kubernetes[rel] = [d for d in items if kubernetes.is_kubernetes(d)]


def _classify_yaml(found: ConfigFiles, rel: str, real: Path, name: str) -> None:
    try:
        documents = [d for d in yaml.load_all(real.read_text(errors="replace"), Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        found.unparseable[rel] = _yaml_error(exc)
        return
    if compose_model.COMPOSE_NAME.match(name):
        if len(documents) == 1 and isinstance(documents[0], dict):
            found.compose[rel] = real
        else:
            found.unparseable[rel] = "named like a compose file but is not one YAML mapping"
    elif len(documents) == 1 and compose_model.may_be_compose(name, documents[0]):
        found.maybe_compose[rel] = real
    elif any(str(d.get("apiVersion", "")).startswith("kustomize.config.k8s.io/") for d in documents
             if isinstance(d, dict)):
        found.kustomize[rel] = real  # trivy does not read these, and they run nothing themselves
    elif any(kubernetes.is_kubernetes(d) for d in documents):
        found.kubernetes[rel] = [d for d in documents if kubernetes.is_kubernetes(d)]
    else:
        found.other_yaml[rel] = real


def _paths(value: Any, *keys: str) -> list[str]:
    """File references of a compose entry: a string, a list of them, or mappings holding them at ``keys``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [p for item in value for p in _paths(item, *keys)]
    if isinstance(value, dict):
        return [p for key in keys for p in _paths(value.get(key), *keys)]
    return []


def outside_references(real: Path, root: Path) -> list[str]:
    """Files and directories a compose file makes compose read (``include``, ``extends.file``, ``build``
    context and dockerfile, ``env_file``) that lie outside ``root``: the verdict would rest on files the
    subject digest does not bind, which could be swapped after the gate passed."""
    try:
        document = next(iter(yaml.load_all(real.read_text(errors="replace"), Loader=_Loader)), None)
    except yaml.YAMLError:
        return []  # reported as unparseable
    if not isinstance(document, dict):
        return []
    refs = _paths(document.get("include"), "path", "project_directory", "env_file")
    for svc in (document.get("services") or {}).values() if isinstance(document.get("services"), dict) else []:
        if isinstance(svc, dict):
            refs += _paths(svc.get("extends"), "file") + _paths(svc.get("env_file"), "path")
            build = svc.get("build")
            refs += _paths(build, "context") if not isinstance(build, dict) or "context" in build else []
    root = root.resolve()
    outside = []
    for ref in refs:
        if "://" in ref or ref.startswith("git@"):  # a remote URL may carry a token: never quoted
            outside.append("a remote file")
            continue
        target = (real.parent / ref).resolve()
        if not (target == root or root in target.parents):
            outside.append(ref)
    return outside
