"""Running the model validation gates: the data they evaluate on, the view of the model they attack,
and loading a model only from files ``model.artifact`` passed.

A user's ``data_callable(data_path=, seed=)`` returns ``ValidationData``: the training rows (members, for
membership inference) and held-out rows, both as the model takes them. Gates that need numbers
(gradients, permutation, clustering) evaluate a scikit-learn ``Pipeline`` in its *feature space*: the
final estimator on the output of the preprocessing steps — the standard way to attack a model whose
raw inputs include categories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.policy import Policy
from mlgate.core.results import GateResult


@dataclass(frozen=True)
class ValidationData:
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    sensitive_test: Any = None  # DataFrame of sensitive attributes, row-aligned with x_test
    feature_names: list[str] | None = None


@dataclass(frozen=True)
class FeatureView:
    """What the numeric gates evaluate: an estimator and the data in its input space."""

    model: Any
    data: ValidationData


def feature_view(model: Any, data: ValidationData) -> FeatureView:
    """``model`` itself, or for a scikit-learn Pipeline its final step on the transformed features."""
    from sklearn.pipeline import Pipeline

    if not isinstance(data, ValidationData):
        raise GateInputError(f"the data callable must return ValidationData, got {type(data).__name__}")
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return FeatureView(model, data)
    prepare = model[:-1]

    def dense(x: Any) -> Any:
        out = prepare.transform(x)
        return out.toarray() if hasattr(out, "toarray") else out

    try:
        names = [str(n) for n in prepare.get_feature_names_out()]
    except (AttributeError, ValueError):
        names = None
    return FeatureView(model[-1], ValidationData(dense(data.x_train), data.y_train, dense(data.x_test),
                                                 data.y_test, data.sensitive_test, names))


def load_flavor(local: Path) -> Any:
    """The native model object (a scikit-learn estimator or a torch module), as its MLmodel file says,
    behind the input defence the version declares (ADR 0031). Call it only on files ``model.artifact``
    passed: loading runs whatever the files ask for."""
    from mlgate.gates.model.input_defences import apply_declared

    return apply_declared(_native(local), local)


def _native(local: Path) -> Any:
    import yaml

    flavors = yaml.safe_load((local / "MLmodel").read_text()).get("flavors", {})
    if "pytorch" in flavors:
        import mlflow.pytorch

        return mlflow.pytorch.load_model(str(local), map_location="cpu")
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))
    raise GateInputError(f"{local}: model flavors {sorted(flavors)} are neither sklearn nor pytorch")


def _robustness(view: FeatureView, policy: Policy, **bound: Any) -> GateResult:
    """Robustness, with the model's confidence baseline on every held-out row beside it: signed with the
    result, it reaches the attestation, where ``monitor.confidence`` reads it (ADR 0046)."""
    from mlgate.gates.model.model_eval import predict_proba
    from mlgate.gates.model.robustness import check_robustness
    from mlgate.gates.monitor.confidence import BASELINE_METRIC, measure_baseline

    d = view.data
    result = check_robustness(view.model, d.x_test, d.y_test, policy.section("model.robustness"), policy.digest,
                              x_train=d.x_train, y_train=d.y_train, **bound)
    confidences = predict_proba(view.model, np.asarray(d.x_test, dtype=np.float32)).max(axis=1)
    baseline = measure_baseline(confidences, policy.section("monitor.confidence").low_confidence)
    return replace(result, metrics={**result.metrics, BASELINE_METRIC: baseline.to_dict()})


def _certification(view: FeatureView, policy: Policy, **bound: Any) -> GateResult:
    from mlgate.gates.model.certification import check_certification

    return check_certification(view.model, view.data.x_test, view.data.y_test,
                               policy.section("model.certification"), policy.digest, **bound)


def _privacy(view: FeatureView, policy: Policy, *, out_dir: Path, **bound: Any) -> GateResult:
    from mlgate.gates.model.membership import check_membership

    d = view.data
    return check_membership(view.model, d.x_train, d.y_train, d.x_test, d.y_test, policy.section("model.privacy"),
                            policy.digest, **bound)


def _fairness(view: FeatureView, policy: Policy, *, out_dir: Path, **bound: Any) -> GateResult:
    from mlgate.gates.model.fairness import check_fairness

    if view.data.sensitive_test is None:
        raise GateInputError("model.fairness: the data callable returned no sensitive attributes")
    return check_fairness(view.model, view.data.x_test, view.data.y_test, view.data.sensitive_test,
                          policy.section("model.fairness"), policy.digest, **bound)


def _explainability(view: FeatureView, policy: Policy, **bound: Any) -> GateResult:
    from mlgate.gates.model.explainability import check_explainability

    return check_explainability(view.model, view.data.x_test, view.data.y_test,
                                policy.section("model.explainability"), policy.digest,
                                feature_names=view.data.feature_names, **bound)


def _poisoning(view: FeatureView, policy: Policy, **bound: Any) -> GateResult:
    """Poisoned training rows, in a torch model's activations or a scikit-learn model's feature space; the
    held-out rows are the trusted reference."""
    from mlgate.gates.model.poisoning import check_poisoning

    d = view.data
    return check_poisoning(view.model, d.x_train, d.y_train, d.x_test, d.y_test, policy.section("model.poisoning"),
                           policy.digest, **bound)


def _dos(model: Any, data: ValidationData, policy: Policy, *, out_dir: Path, **bound: Any) -> GateResult:
    """The model as served (featurizer included), on the held-out rows as clients would send them."""
    from mlgate.gates.model.dos import check_dos

    return check_dos(model, data.x_test, policy.section("model.dos"), policy.digest, **bound)


# Gates that judge the model as it is served, not its final estimator in feature space.
AS_SERVED: dict[str, Callable[..., GateResult]] = {"model.dos": _dos}

VALIDATIONS: dict[str, Callable[..., GateResult]] = {
    "model.robustness": _robustness,
    "model.privacy": _privacy,
    "model.fairness": _fairness,
    "model.explainability": _explainability,
    "model.poisoning": _poisoning,
    "model.certification": _certification,
}


def validate_model(gate: str, model: Any, data: ValidationData, policy: Policy, *, model_digest: str,
                   model_uri: str, out_dir: Path) -> GateResult:
    """Run one validation gate on a loaded model; the result is bound to ``model_digest``."""
    if gate in AS_SERVED:
        if not isinstance(data, ValidationData):
            raise GateInputError(f"the data callable must return ValidationData, got {type(data).__name__}")
        return AS_SERVED[gate](model, data, policy, model_digest=model_digest, model_uri=model_uri, out_dir=out_dir)
    return VALIDATIONS[gate](feature_view(model, data), policy, model_digest=model_digest, model_uri=model_uri,
                             out_dir=out_dir)
