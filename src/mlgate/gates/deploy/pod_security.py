"""Least privilege of every pod spec (``MLG-K8S-005..007``), whatever trivy says of it.

Trivy's ``KSV-*`` checks read the built-in workload kinds only: a privileged container in a KServe
``InferenceService``, a Knative ``Service`` or an Argo ``Rollout`` passed with nothing checked. And where
they do read, they rate a pod running as uid 0 (KSV-0012) or adding NET_ADMIN (KSV-0022) MEDIUM and
missing limits LOW, so ``min_severity: high`` let them through. These checks cover what the threat model
names: privilege, host namespaces and paths, dangerous capabilities, root, and resource limits; a
container's ``securityContext`` overrides its pod's, as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlgate.gates.deploy import literals
from mlgate.gates.deploy.compose_rules import DANGEROUS_CAPS, Hit

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def _limit(value: Any) -> bool:
    number = re.match(r"^\s*([0-9]*\.?[0-9]+)", str(value)) if value is not None else None
    return bool(number) and float(number[1]) > 0


def _pod_hits(owner: str, pod: Mapping[str, Any]) -> Iterator[Hit]:
    for key in HOST_NAMESPACES:
        if _true(pod.get(key)):
            yield "MLG-K8S-005", f"{owner} sets {key}: true"
    for volume in pod.get("volumes") or []:
        if isinstance(volume, dict) and isinstance(volume.get("hostPath"), dict):
            yield "MLG-K8S-005", f"{owner} mounts hostPath {volume['hostPath'].get('path', '?')}"


def _container_hits(owner: str, pod: Mapping[str, Any], container: Mapping[str, Any]) -> Iterator[Hit]:
    name = container.get("name", "?")
    pod_context = pod.get("securityContext") if isinstance(pod.get("securityContext"), dict) else {}
    context = container.get("securityContext") if isinstance(container.get("securityContext"), dict) else {}
    if _true(context.get("privileged")):
        yield "MLG-K8S-005", f"container {name} of {owner} sets privileged: true"
    if _true(context.get("allowPrivilegeEscalation")):
        yield "MLG-K8S-005", f"container {name} of {owner} sets allowPrivilegeEscalation: true"
    for cap in (context.get("capabilities") or {}).get("add") or []:
        if str(cap).upper().removeprefix("CAP_") in DANGEROUS_CAPS:
            yield "MLG-K8S-005", f"container {name} of {owner} adds capability {str(cap).upper()}"
    user = context.get("runAsUser", pod_context.get("runAsUser"))
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    root = literals.is_root_user(str(user)) if user is not None else not _true(non_root)
    if root:
        yield "MLG-K8S-006", f"container {name} of {owner} may run as root (runAsUser 0, or no runAsNonRoot)"
    limits = (container.get("resources") or {}).get("limits") or {}
    missing = [what for what in ("memory", "cpu") if not _limit(limits.get(what))]
    if missing:
        yield "MLG-K8S-007", f"container {name} of {owner} sets no {' and no '.join(missing)} limit"


def hits(owner: str, pod: Mapping[str, Any], containers: list[dict[str, Any]]) -> Iterator[Hit]:
    """Every privilege finding of one pod spec and its containers, as (rule id, message)."""
    yield from _pod_hits(owner, pod)
    for container in containers:
        yield from _container_hits(owner, pod, container)
