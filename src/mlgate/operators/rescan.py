"""Scheduled re-scans of what is deployed: CVEs are published after a model is promoted.

The promoted version (the policy's alias) is re-checked: its recorded CycloneDX SBOM with ``trivy sbom``,
and its image with ``trivy image``. A finding over the policy tags the version with an incident
(``mlgate.incident.<gate>``) and fails the task; the alias is left to incident response.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject, utcnow
from mlgate.operators.trivy import DeployContainerGateOperator, TrivyGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

SBOM_ARTIFACT = "gates/code.dependencies/sbom.cdx.json"


class ChampionIncidentMixin:
    """Resolves the promoted version, and tags it with an incident when the re-scan does not pass."""

    def champion(self, client: Any) -> tuple[str, str]:
        from mlgate.core.errors import GateInputError
        from mlgate.trust.registry import current_alias_version

        name, alias = self.policy.promotion.model_name, self.policy.promotion.alias
        version = current_alias_version(client, name, alias)
        if version is None:
            raise GateInputError(f"no version of {name} holds the alias {alias!r}: nothing deployed to re-scan")
        return name, version

    def record_extra(self, client: Any, run_id: str, result: GateResult, context: Context) -> None:
        from mlgate.trust.registry import TAG_LIMIT, call

        if result.passed:
            return
        name, version = self.champion(client)
        reasons = "\n".join([f"{utcnow()} re-scan {result.status}", *result.top_failures()])[:TAG_LIMIT]
        call(client, "tagging the incident",
             lambda: client.set_model_version_tag(name, version, f"mlgate.incident.{result.gate}", reasons))


class ChampionSbomRescanOperator(ChampionIncidentMixin, TrivyGateOperator):
    """``code.dependencies`` again, on the SBOM recorded when the promoted version was validated."""

    gate_id = "code.dependencies"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(target=SBOM_ARTIFACT, **kwargs)

    def subject(self) -> Subject:
        return Subject("code", f"{self.policy.promotion.model_name}@{self.policy.promotion.alias}:{SBOM_ARTIFACT}",
                       "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.code.trivy import check_trivy
        from mlgate.trust.registry import call

        client = self.mlflow_hook.get_conn()
        name, version = self.champion(client)
        run_id = call(client, "reading the model version", lambda: client.get_model_version(name, version).run_id)
        sbom = call(client, "downloading the SBOM", lambda: client.download_artifacts(run_id, SBOM_ARTIFACT,
                                                                                       str(workdir)))
        return check_trivy("sbom", sbom, self.trivy_hook.get_conn(), self.policy.section(self.gate_id),
                           self.policy.digest, exceptions=self.policy.exceptions)


class ChampionImageRescanOperator(ChampionIncidentMixin, DeployContainerGateOperator):
    """``deploy.container`` again, on the image serving the promoted version (``target``)."""

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.core.errors import GateInputError

        if not self.target:
            raise GateInputError("no image to re-scan: set the DAG's image param (or MLGATE_SERVING_IMAGE)")
        return super().check(context, workdir)
