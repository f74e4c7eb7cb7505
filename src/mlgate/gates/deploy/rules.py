"""The catalogue of mlgate's own deployment checks: one id, severity and title each (docs/checks.md).

The checks themselves live beside the model they read (``compose_rules``, ``kubernetes``); a finding's
message is the check's own, naming the service or container and the setting, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgate.core.results import Severity
from mlgate.gates.code.trivy import TrivyFinding

C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str

    def finding(self, message: str, location: str, *, gate: bool = False) -> TrivyFinding:
        """A finding of this check; ``gate``: the file was not checked, which blocks at any severity."""
        return TrivyFinding(self.id, self.severity, message, location, kind="gate" if gate else "misconfiguration")


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("MLG-CONFIG-001", C, "Configuration file cannot be parsed"),
    Rule("MLG-CONFIG-002", C, "Configuration file was not checked by trivy"),
    Rule("MLG-CONFIG-003", C, "Compose file reads a file outside the scanned tree"),
    Rule("MLG-COMPOSE-001", H, "Compose service runs as root"),
    Rule("MLG-COMPOSE-002", C, "Compose service runs privileged"),
    Rule("MLG-COMPOSE-003", H, "Compose service shares a host namespace"),
    Rule("MLG-COMPOSE-004", C, "Compose service mounts a container runtime socket"),
    Rule("MLG-COMPOSE-005", M, "Compose service has a writable root filesystem"),
    Rule("MLG-COMPOSE-006", H, "Compose service has no resource limits"),
    Rule("MLG-COMPOSE-007", C, "Compose service holds a literal secret in its environment"),
    Rule("MLG-COMPOSE-008", H, "Model-serving service requires no authentication"),
    Rule("MLG-COMPOSE-009", H, "Model-serving service has no rate limit"),
    Rule("MLG-COMPOSE-010", H, "Model-serving service does not use TLS"),
    Rule("MLG-COMPOSE-011", C, "Compose service adds a dangerous capability"),
    Rule("MLG-COMPOSE-012", H, "Compose service disables a security profile"),
    Rule("MLG-COMPOSE-013", C, "Compose service mounts a host system directory"),
    Rule("MLG-COMPOSE-014", C, "Compose service maps a raw host device"),
    Rule("MLG-COMPOSE-015", C, "Compose service holds a credential in a URL"),
    Rule("MLG-COMPOSE-016", C, "Compose service passes a literal secret on its command line"),
    Rule("MLG-COMPOSE-017", C, "Compose config holds a literal secret in its inline content"),
    Rule("MLG-DOCKER-001", H, "Dockerfile's final stage runs as root"),
    Rule("MLG-ENV-001", C, "Environment file holds a literal secret"),
    Rule("MLG-HELM-001", C, "Helm chart value holds a literal secret"),
    Rule("MLG-K8S-001", C, "Kubernetes container holds a literal secret in its environment"),
    Rule("MLG-K8S-002", H, "Kubernetes model server requires no authentication"),
    Rule("MLG-K8S-003", H, "Kubernetes model server has no rate limit"),
    Rule("MLG-K8S-004", H, "Kubernetes model server does not use TLS"),
    Rule("MLG-K8S-005", C, "Kubernetes workload runs with host access or privilege"),
    Rule("MLG-K8S-006", H, "Kubernetes workload may run as root"),
    Rule("MLG-K8S-007", H, "Kubernetes workload has no resource limits"),
    Rule("MLG-K8S-008", C, "Kubernetes Secret or ConfigMap manifest holds a literal secret"),
)}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
