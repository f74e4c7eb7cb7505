"""Operators for the model validation gates: robustness, membership inference, fairness, explainability
and poisoning. Each loads the model only after ``model.artifact`` passed for exactly its files in this
run, and loads it from the very bytes it re-digested."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Status, Subject
from mlgate.operators.model import ModelArtifactGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlgate.core.validation_data import FeatureView


def load_flavor(local: Path) -> Any:
    """The native model object (a scikit-learn estimator or a torch module), as its MLmodel file says."""
    import yaml

    flavors = yaml.safe_load((local / "MLmodel").read_text()).get("flavors", {})
    if "pytorch" in flavors:
        import mlflow.pytorch

        return mlflow.pytorch.load_model(str(local), map_location="cpu")
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))
    raise GateInputError(f"{local}: model flavors {sorted(flavors)} are neither sklearn nor pytorch")


class ModelValidationGateOperator(ModelArtifactGateOperator):
    """Base: ``data_callable(data_path=, seed=)`` → ``ValidationData``; subclasses implement ``evaluate``."""

    template_fields: Sequence[str] = (*ModelArtifactGateOperator.template_fields, "data_path", "seed")

    def __init__(self, *, data_callable: str, data_path: str, seed: int = 0,
                 artifact_task_id: str = "model_artifact", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_callable = data_callable
        self.data_path = data_path
        self.seed = seed
        self.artifact_task_id = artifact_task_id

    def scanned_model(self, context: Context, workdir: Path) -> tuple[Any, str, str]:
        """Download, re-digest and load the model, refusing unless ``model.artifact`` passed on this digest."""
        from mlgate.core.digests import tree_digest
        from mlgate.core.registry import download_model

        uri = self.resolve_model_uri(context)
        scanned = context["ti"].xcom_pull(task_ids=self.artifact_task_id, key="model.artifact") or {}
        local = download_model(self.mlflow_hook.get_conn(), uri, workdir / "model")
        digest = tree_digest(local)
        if scanned.get("status") != Status.PASSED or scanned.get("subject", {}).get("digest") != digest:
            raise GateInputError(f"refusing to load {uri}: model.artifact has not passed for these files in this "
                                 f"run (task {self.artifact_task_id!r}: {scanned.get('status', 'no result')})")
        return load_flavor(local), uri, digest

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.core.validation_data import feature_view
        from mlgate.operators.training import resolve_callable

        model, uri, digest = self.scanned_model(context, workdir)
        data = resolve_callable(self.data_callable)(data_path=self.data_path, seed=int(self.seed))
        return self.evaluate(feature_view(model, data), uri, digest, workdir)

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        raise NotImplementedError

    def subject(self) -> Subject:
        return Subject("model", str(self.model_uri or f"(registered by {self.training_task_id})"), "unknown")


class ModelRobustnessGateOperator(ModelValidationGateOperator):
    gate_id = "model.robustness"

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        from mlgate.core.robustness import check_robustness

        return check_robustness(view.model, view.data.x_test, view.data.y_test, self.policy.section(self.gate_id),
                                self.policy.digest, model_digest=digest, model_uri=uri, out_dir=workdir)


class ModelPrivacyGateOperator(ModelValidationGateOperator):
    """Membership inference: can an attacker tell training rows from held-out rows?"""

    gate_id = "model.privacy"

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        from mlgate.core.membership import check_membership

        d = view.data
        return check_membership(view.model, d.x_train, d.y_train, d.x_test, d.y_test,
                                self.policy.section(self.gate_id), self.policy.digest, model_digest=digest,
                                model_uri=uri)


class ModelFairnessGateOperator(ModelValidationGateOperator):
    gate_id = "model.fairness"

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        from mlgate.core.fairness import check_fairness

        if view.data.sensitive_test is None:
            raise GateInputError(f"{self.data_callable} returned no sensitive attributes for model.fairness")
        return check_fairness(view.model, view.data.x_test, view.data.y_test, view.data.sensitive_test,
                              self.policy.section(self.gate_id), self.policy.digest, model_digest=digest,
                              model_uri=uri)


class ModelExplainabilityGateOperator(ModelValidationGateOperator):
    gate_id = "model.explainability"

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        from mlgate.core.explainability import check_explainability

        return check_explainability(view.model, view.data.x_test, view.data.y_test,
                                    self.policy.section(self.gate_id), self.policy.digest, model_digest=digest,
                                    feature_names=view.data.feature_names, model_uri=uri, out_dir=workdir)


class ModelPoisoningGateOperator(ModelValidationGateOperator):
    """Backdoor detection on a PyTorch model's training data; the held-out rows are the trusted reference."""

    gate_id = "model.poisoning"

    def evaluate(self, view: FeatureView, uri: str, digest: str, workdir: Path) -> GateResult:
        from mlgate.core.poisoning import check_poisoning

        d = view.data
        return check_poisoning(view.model, d.x_train, d.y_train, d.x_test, d.y_test,
                               self.policy.section(self.gate_id), self.policy.digest, model_digest=digest,
                               model_uri=uri, out_dir=workdir)
