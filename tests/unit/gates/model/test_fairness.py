"""``model.fairness``: fairlearn's MetricFrame on a model that learnt a group bias and on one that did not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.fairness import FairnessPolicy, check_fairness, group_metrics

pytestmark = pytest.mark.unit

POLICY = FairnessPolicy(sensitive_columns=("sex", "age_band"))


def loan_data(biased: bool, n: int = 3000, seed: int = 0):
    """A credit decision on two features; when ``biased``, history favours one sex and the model sees it."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], n)
    age = rng.choice(["18-30", "31-50", "51+"], n)
    income, debt = rng.normal(size=n), rng.normal(size=n)
    score = income - debt + rng.normal(scale=0.5, size=n) + (1.5 * (sex == "m") - 0.75 if biased else 0)
    features = np.c_[income, debt, (sex == "m").astype(float)] if biased else np.c_[income, debt]
    return features, (score > 0).astype(int), pd.DataFrame({"sex": sex, "age_band": age})


@pytest.mark.parametrize(("biased", "expected"), [(True, Status.BLOCKED), (False, Status.PASSED)],
                         ids=["biased-blocks", "unbiased-passes"])
def test_parity_and_equalized_odds(biased, expected):
    x, y, sensitive = loan_data(biased)
    model = LogisticRegression().fit(x[:2000], y[:2000])
    result = check_fairness(model, x[2000:], y[2000:], sensitive.iloc[2000:], POLICY, "sha256:p",
                            model_digest="sha256:m")
    assert result.status is expected, result.metrics
    sex = result.metrics["columns"]["sex"]
    assert set(sex["groups"]) == {"f", "m"} and set(result.metrics["columns"]["age_band"]["groups"]) == {
        "18-30", "31-50", "51+"}
    rates = [g["selection_rate"] for g in sex["groups"].values()]
    assert sex["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates), abs=1e-3)
    if biased:
        assert {(f.id, f.location) for f in result.findings} >= {
            ("model.fairness.demographic_parity_difference", "sex")}
        assert all(f.location == "sex" for f in result.findings)


def test_matches_fairlearn_reference_functions():
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    groups = rng.choice(["a", "b", "c"], 500)
    ours = group_metrics(y_true, y_pred, groups, min_group_size=1)
    assert ours["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-4)
    assert ours["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-4)


def test_small_groups_are_reported_not_measured():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    groups = np.array(["a"] * 145 + ["b"] * 145 + ["tiny"] * 10)
    y_pred[-10:] = 1  # the tiny group would dominate the difference
    report = group_metrics(y_true, y_pred, groups, min_group_size=30)
    assert report["small_groups"] == ["tiny"] and report["measured_groups"] == 2
    assert report["demographic_parity_difference"] < 0.2


@pytest.mark.parametrize(("case", "match"), [
    ("missing-column", "lacks the policy's column"),
    ("misaligned", "rows"),
    ("one-group", "fewer than two groups"),
    ("no-positives", "both positive"),
], ids=["missing-column", "misaligned", "one-group", "no-positives"])
def test_bad_input_fails_closed(case, match):
    x, y, sensitive = loan_data(False, n=400)
    model = LogisticRegression().fit(x, y)
    if case == "missing-column":
        sensitive = sensitive.drop(columns="sex")
    elif case == "misaligned":
        sensitive = sensitive.iloc[:-1]
    elif case == "one-group":
        sensitive = sensitive.assign(sex="f")
    else:
        y = np.zeros_like(y)
    with pytest.raises(GateInputError, match=match):
        check_fairness(model, x, y, sensitive, POLICY, "p", model_digest="sha256:m")


def test_missing_values_form_their_own_group():
    x, y, sensitive = loan_data(False, n=600)
    sensitive.loc[:99, "sex"] = None
    model = LogisticRegression().fit(x, y)
    result = check_fairness(model, x, y, sensitive, POLICY, "p", model_digest="sha256:m")
    assert result.metrics["columns"]["sex"]["groups"]["(missing)"]["size"] == 100


@pytest.mark.parametrize("data", [{"sensitive_columns": []}, {"sensitive_columns": ["a"], "extra": 1},
                                  {"sensitive_columns": ["a"], "max_demographic_parity_difference": 2}],
                         ids=["no-columns", "extra-key", "threshold-out-of-range"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        FairnessPolicy.model_validate(data)
