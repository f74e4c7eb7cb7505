"""``model.explainability``: a leaked target column dominates permutation importance and blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.explainability import CHART_FILE, ExplainabilityPolicy, check_explainability

pytestmark = pytest.mark.unit


def breast_cancer(leak: bool):
    data = load_breast_cancer(as_frame=True)
    x = data.data
    if leak:  # a field recorded after the diagnosis: the label with a little noise
        x = x.assign(followup_code=data.target + np.random.default_rng(0).normal(scale=0.05, size=len(x)))
    return train_test_split(x, data.target, test_size=0.4, random_state=0, stratify=data.target)


@pytest.mark.parametrize(("leak", "expected"), [(True, Status.BLOCKED), (False, Status.PASSED)],
                         ids=["leaked-target-blocks", "clean-passes"])
def test_dominant_feature(leak, expected, tmp_path):
    x_train, x_test, y_train, y_test = breast_cancer(leak)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_train, y_train)
    result = check_explainability(model, x_test, y_test, ExplainabilityPolicy(), "sha256:p",
                                  model_digest="sha256:m", out_dir=tmp_path)
    assert result.status is expected, (result.metrics["top_feature"], result.metrics["top_feature_share"])
    assert (tmp_path / CHART_FILE).read_bytes()[:4] == b"\x89PNG"
    assert set(result.metrics["importance"]) == set(x_test.columns)
    if leak:
        assert result.metrics["top_feature"] == "followup_code"
        assert [(f.id, f.location) for f in result.findings] == [
            ("model.explainability.dominant_feature", "followup_code")]
    else:
        assert result.metrics["top_feature_share"] <= 0.5


def test_a_model_that_uses_nothing_blocks():
    x_train, x_test, y_train, y_test = breast_cancer(False)
    model = DummyClassifier().fit(x_train, y_train)
    result = check_explainability(model, x_test, y_test, ExplainabilityPolicy(n_repeats=2), "p",
                                  model_digest="sha256:m")
    assert result.status is Status.BLOCKED
    assert result.findings[0].id == "model.explainability.no_signal"


def test_feature_names_for_arrays():
    x_train, x_test, y_train, y_test = breast_cancer(False)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x_train.to_numpy(), y_train)
    result = check_explainability(model, x_test.to_numpy(), y_test.to_numpy(), ExplainabilityPolicy(n_repeats=2),
                                  "p", model_digest="sha256:m")
    assert set(result.metrics["importance"]) == {str(i) for i in range(30)}
    with pytest.raises(GateInputError, match="feature names"):
        check_explainability(model, x_test.to_numpy(), y_test, ExplainabilityPolicy(), "p",
                             model_digest="sha256:m", feature_names=["a", "b"])


def test_nan_features_fail_closed():
    x_train, x_test, y_train, y_test = breast_cancer(False)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x_train, y_train)
    with pytest.raises(GateInputError, match="NaN"):
        check_explainability(model, pd.DataFrame(x_test).assign(**{"mean radius": np.nan}), y_test,
                             ExplainabilityPolicy(), "p", model_digest="sha256:m")


@pytest.mark.parametrize("data", [{"max_feature_share": 0}, {"n_repeats": 0}, {"extra": 1}],
                         ids=["zero-share", "no-repeats", "extra-key"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        ExplainabilityPolicy.model_validate(data)
