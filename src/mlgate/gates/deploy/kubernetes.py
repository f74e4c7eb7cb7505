"""mlgate's Kubernetes checks (``MLG-K8S-*``): what trivy's ``KSV-*`` checks do not see.

Trivy checks workload security contexts but not literal secrets in a container's ``env``, and it skips
inference resources (KServe ``InferenceService``/``ServingRuntime``, Seldon ``SeldonDeployment``), which
then passed with nothing checked. Here every workload's containers are found, inference resources
included (their predictor containers, model specs and auth annotations), and a model server, known by
its kind or by what it runs, must declare authentication, a rate limit and TLS. Every pod spec
also gets mlgate's own privilege checks (``pod_security``): trivy's KSV checks read only the built-in
workload kinds, and rate root and missing limits MEDIUM or LOW, below any sensible ``min_severity``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlgate.gates.code.trivy import TrivyFinding
from mlgate.gates.deploy import literals, pod_security, serving
from mlgate.gates.deploy.rules import rule

# Kinds whose pod template holds containers, and where.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"), "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")


def is_kubernetes(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("apiVersion"), str) and isinstance(
        document.get("kind"), str)


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _pod_containers(spec: Any) -> list[dict[str, Any]]:
    if not isinstance(spec, dict):
        return []
    return [c for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if isinstance(c, dict)]


def _found_pods(node: Any, seen: set[int] | None = None) -> list[dict[str, Any]]:
    """Pod specs anywhere in a resource of a kind not listed here (Knative ``Service``, Argo ``Rollout``,
    Seldon, ServingRuntime, any CRD): the mappings that hold a ``containers`` list. Each node is visited
    once: YAML aliases share objects, and every path through nested ones would never end."""
    seen = set() if seen is None else seen
    if not isinstance(node, dict | list) or id(node) in seen:
        return []
    seen.add(id(node))
    if isinstance(node, dict) and isinstance(node.get("containers"), list):
        return [node]
    return [pod for value in (node.values() if isinstance(node, dict) else node) for pod in _found_pods(value, seen)]


def pods(document: Mapping[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each pod spec a resource runs with its containers: pod templates of the built-in kinds, KServe
    components (their containers and model or framework specs, which are container specs), and for any
    other kind every mapping holding a ``containers`` list."""
    kind, spec = document.get("kind"), document.get("spec")
    if kind in POD_SPEC_PATHS:
        pod = _get(document, POD_SPEC_PATHS[kind])
        return [(pod, _pod_containers(pod))] if isinstance(pod, dict) else []
    if kind == "InferenceService" and isinstance(spec, dict):
        return [(component, _pod_containers(component) + [
                    v for k, v in component.items()
                    if isinstance(v, dict) and k not in ("containers", "initContainers", "logger", "batcher",
                                                         "securityContext")])
                for component in (spec.get(name) for name in KSERVE_COMPONENTS) if isinstance(component, dict)]
    return [(pod, _pod_containers(pod)) for pod in _found_pods(spec)]


def containers(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers a resource runs (``pods``)."""
    return [c for _, runs in pods(document) for c in runs]


def _env_secrets(owner: str, container: Mapping[str, Any]) -> Iterator[str]:
    name = container.get("name", "?")
    env = [e for e in container.get("env") or [] if isinstance(e, dict) and "value" in e]
    plain = []
    for entry in env:
        key, value = str(entry.get("name", "")), entry.get("value")
        if literals.is_literal_secret(key, value):
            yield f"container {name} of {owner} sets {key} to a literal value"
        elif value is not None and literals.url_with_password(str(value)):
            yield f"container {name} of {owner} sets {key} to a URL with a literal password"
        elif value is not None:
            plain.append((key, str(value)))
    argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    for option in literals.command_secrets(argv):
        yield f"container {name} of {owner} passes {option} a literal value on its command line"
    texts = [value for _, value in plain] + [" ".join(argv)]
    for (key, _), hit in zip([*plain, ("command", "")], literals.engine_hits(texts), strict=True):
        if hit:
            yield f"container {name} of {owner} {'sets ' + key + ' to' if key != 'command' else 'passes'} " \
                  "a value shaped like a secret"


def _stored_secrets(kind: str, document: Mapping[str, Any]) -> list[str]:
    """Keys of a ``Secret`` holding any value, and of a ``ConfigMap`` holding a literal secret: committed
    manifests of either put the value in version control."""
    data = {**(document.get("data") if isinstance(document.get("data"), dict) else {}),
            **(document.get("stringData") if isinstance(document.get("stringData"), dict) else {})}
    if kind == "Secret":
        return sorted(str(key) for key, value in data.items() if value not in (None, ""))
    if kind == "ConfigMap":
        keys = [(str(k), v) for k, v in data.items() if v not in (None, "")]
        named = {k for k, v in keys if literals.is_literal_secret(k, v)}
        rest = [(k, str(v)) for k, v in keys if k not in named]
        named |= {k for (k, _), hit in zip(rest, literals.engine_hits([v for _, v in rest]), strict=True) if hit}
        return sorted(named)
    return []


def kubernetes_findings(location: str, document: Mapping[str, Any]) -> list[TrivyFinding]:
    """The MLG-K8S checks over one Kubernetes document."""
    kind = str(document.get("kind"))
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    owner = f"{kind} {metadata.get('name', '?')}"
    where = f"{location} ({kind}/{metadata.get('name', '?')})"
    runs = containers(document)
    findings = [rule("MLG-K8S-008").finding(f"{owner} holds {key} literally in the repository", where)
                for key in _stored_secrets(kind, document)]
    findings += [rule("MLG-K8S-001").finding(message, where) for c in runs for message in _env_secrets(owner, c)]
    findings += [rule(rule_id).finding(message, where)
                 for pod, pod_containers in pods(document)
                 for rule_id, message in pod_security.hits(owner, pod, pod_containers)]
    labels = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    model_server = kind in serving.INFERENCE_KINDS or serving.labelled_serving(labels) or any(
        serving.runs_model_server(c.get("image"), [*(c.get("command") or []), *(c.get("args") or [])])
        for c in runs)
    if model_server:
        ids = {"auth": ("MLG-K8S-002", "authentication"), "rate-limit": ("MLG-K8S-003", "rate limit"),
               "tls": ("MLG-K8S-004", "TLS")}
        for missing in serving.missing_protection(labels):
            rule_id, what = ids[missing]
            findings.append(rule(rule_id).finding(f"model server {owner} declares no {what}", where))
    return findings
