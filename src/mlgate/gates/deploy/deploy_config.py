"""``deploy.config``: least privilege in Dockerfiles, Kubernetes manifests and docker-compose files.

Trivy's embedded checks cover Dockerfiles and Kubernetes (``trivy config`` falls back to them offline).
Trivy does not recognise compose files, so mlgate ships its own checks as Rego
(``mlgate/checks/compose``, ids ``MLG-COMPOSE-*``, documented in docs/checks.md) and runs them in a
second pass with the generic ``yaml`` misconfiguration scanner: enabling ``yaml`` in the first pass
would hide the Kubernetes checks.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.results import GateResult
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy, check_trivy

GATE = "deploy.config"
COMPOSE_CHECKS = Path(__file__).resolve().parents[2] / "checks" / "compose"
COMPOSE_PASS = ("--config-check", str(COMPOSE_CHECKS), "--check-namespaces", "user",
                "--misconfig-scanners", "yaml")


def check_deploy_config(path: str | Path, connection: TrivyConnection, config: TrivyPolicy,
                        policy_digest: str, *, exceptions: Sequence[PolicyException] = (),
                        today: datetime.date | None = None) -> GateResult:
    """Trivy's built-in checks, then mlgate's compose checks, over every config file under ``path``."""
    return check_trivy("config", path, connection, config, policy_digest, exceptions=exceptions, today=today,
                       passes=((), COMPOSE_PASS))
