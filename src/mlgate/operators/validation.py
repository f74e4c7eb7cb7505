"""Operators for the model validation gates: robustness, membership inference, fairness, explainability,
poisoning, the worst-case cost of an input and certified robustness. Each loads the model only after
``model.artifact`` passed for exactly its files in this run, from the very bytes it re-digested, and only in
an isolated child process (ADR 0015)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Status
from mlgate.operators.model import ModelArtifactGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelValidationGateOperator(ModelArtifactGateOperator):
    """Base: ``data_callable(data_path=, seed=)`` returns ``mlgate.gates.model.model_validation.ValidationData``."""

    template_fields: Sequence[str] = (*ModelArtifactGateOperator.template_fields, "data_path", "seed")

    def __init__(self, *, data_callable: str, data_path: str, seed: int = 0,
                 artifact_task_id: str = "model_artifact", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_callable = data_callable
        self.data_path = data_path
        self.seed = seed
        self.artifact_task_id = artifact_task_id

    def scanned_model(self, context: Context, workdir: Path) -> tuple[Path, str, str]:
        """Download and re-digest the model, refusing unless ``model.artifact`` passed on this digest."""
        from mlgate.core.digests import tree_digest
        from mlgate.trust.registry import download_model

        uri = self.resolve_model_uri(context)
        scanned = context["ti"].xcom_pull(task_ids=self.artifact_task_id, key="model.artifact") or {}
        local = download_model(self.mlflow_hook.get_conn(), uri, workdir / "model")
        digest = tree_digest(local)
        if scanned.get("status") != Status.PASSED or scanned.get("subject", {}).get("digest") != digest:
            raise GateInputError(f"refusing to load {uri}: model.artifact has not passed for these files in this "
                                 f"run (task {self.artifact_task_id!r}: {scanned.get('status', 'no result')})")
        return local, uri, digest

    def check(self, context: Context, workdir: Path) -> GateResult:
        """The gate runs in an isolated child (ADR 0015): this worker holds the signing connection."""
        from mlgate.gates.model.isolated import validate_isolated

        local, uri, digest = self.scanned_model(context, workdir)
        return validate_isolated(self.gate_id, local, self.policy, data_callable=self.data_callable,
                                 data_path=self.data_path, seed=int(self.seed), model_digest=digest, model_uri=uri,
                                 out_dir=workdir)


class ModelRobustnessGateOperator(ModelValidationGateOperator):
    """Accuracy under FGSM/PGD (white-box) and HopSkipJump (black-box) evasion attacks, of the model behind
    its declared input defence; with ``masking_checks`` a model on which the attack is shown not to work
    (gradient masking, Carlini et al. 2019) is blocked whatever its robust accuracy."""

    gate_id = "model.robustness"


class ModelPrivacyGateOperator(ModelValidationGateOperator):
    """Membership inference: can an attacker tell training rows from held-out rows?"""

    gate_id = "model.privacy"


class ModelFairnessGateOperator(ModelValidationGateOperator):
    """Demographic parity and equalized odds across the policy's sensitive columns."""

    gate_id = "model.fairness"


class ModelExplainabilityGateOperator(ModelValidationGateOperator):
    """Permutation importance; one feature carrying too much of it is a shortcut or a target leak."""

    gate_id = "model.explainability"


class ModelPoisoningGateOperator(ModelValidationGateOperator):
    """Poisoned training rows (backdoors, flipped labels) of a torch or scikit-learn model, against the trusted
    held-out rows; blocks too when those rows are too few to detect the policy's minimum poison."""

    gate_id = "model.poisoning"


class ModelDosGateOperator(ModelValidationGateOperator):
    """Worst-case latency and peak memory of one prediction on adversarially searched inputs."""

    gate_id = "model.dos"


class ModelCertificationGateOperator(ModelValidationGateOperator):
    """Certified robust accuracy: randomized smoothing (L2) and interval bound propagation (L∞)."""

    gate_id = "model.certification"
