"""The data model validation gates evaluate on, and the view of a model they attack.

A user's ``data_callable(data_path=, seed=)`` returns ``ValidationData``: the training rows (members, for
membership inference) and held-out rows, both as the model takes them. Gates that need numbers
(gradients, permutation, clustering) evaluate a scikit-learn ``Pipeline`` in its *feature space*: the
final estimator on the output of the preprocessing steps — the standard way to attack a model whose
raw inputs include categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlgate.core.errors import GateInputError


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
