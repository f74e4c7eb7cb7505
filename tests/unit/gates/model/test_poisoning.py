"""``model.poisoning``: backdoors planted in digits (our trigger and ART's attacks) and learnt by a small CNN or a
logistic regression are found; a clean model passes; a reference too small for the policy blocks and says how
many rows it needs; each detector finds what it is for on planted clusters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.poisoning import (
    ALL,
    SUSPECTS_FILE,
    PoisoningPolicy,
    activations,
    check_poisoning,
    detect,
)
from mlgate.gates.model.poisoning_stats import detection_power, power_check
from tests.fixtures.models import DigitsCNN, add_trigger, backdoored_digits, digits, train

pytestmark = pytest.mark.unit
HELD_OUT = 0.35  # at 30% the smallest label's 52 reference rows are too few for 1% poison in one label


@pytest.fixture(scope="module", params=[0, 3], ids=["train-seed0", "train-seed3"])
def scenario(request):
    """Two training seeds: with seed 3, 2-means splits the poisoned records across both clusters."""
    x, y, poisoned = backdoored_digits(rate=0.05, target=0, test_size=HELD_OUT)
    return x, y, poisoned, train(DigitsCNN(request.param), x, y, seed=request.param)


@pytest.fixture(scope="module")
def reference():
    _, x_test, _, y_test = digits(images=True, test_size=HELD_OUT)
    return x_test, y_test


def test_the_backdoor_is_real(scenario, reference):
    """The scenario means something only if the model really learnt the trigger."""
    _, _, _, model = scenario
    x_test, y_test = reference
    with torch.no_grad():
        hijacked = model(torch.as_tensor(add_trigger(x_test[y_test != 0]))).argmax(1).numpy() == 0
    assert hijacked.mean() > 0.8  # ART counts >= 0.6 as a working backdoor (issue 22)


@pytest.mark.parametrize("layer", [None, "features"], ids=["penultimate-default", "named-layer"])
def test_backdoor_is_found_with_high_recall_and_low_false_positives(scenario, reference, tmp_path, layer):
    x, y, poisoned, model = scenario
    result = check_poisoning(model, x, y, *reference, PoisoningPolicy(layer=layer), "sha256:p",
                             model_digest="sha256:m", out_dir=tmp_path)
    assert result.status is Status.BLOCKED
    suspects = json.loads((tmp_path / SUSPECTS_FILE).read_text())
    assert set(suspects) == {"0"}  # only the target label
    flagged = np.zeros(len(y), dtype=bool)
    flagged[suspects["0"]] = True
    recall = (flagged & poisoned).sum() / poisoned.sum()
    false_positive_rate = (flagged & ~poisoned).sum() / (~poisoned).sum()
    assert recall >= 0.9, recall
    assert false_positive_rate <= 0.05, false_positive_rate
    assert [f.location for f in result.findings] == ["label 0"]
    assert result.metrics["labels"]["0"]["p_value"] <= result.metrics["test_alpha"]


def test_clean_model_passes(reference):
    x_train, _, y_train, _ = digits(images=True, test_size=HELD_OUT)
    model = train(DigitsCNN(), x_train, y_train, seed=0)
    result = check_poisoning(model, x_train, y_train, *reference, PoisoningPolicy(), "sha256:p",
                             model_digest="sha256:m")
    assert result.status is Status.PASSED, result.metrics
    assert result.metrics["suspicious"] == 0 and len(result.metrics["labels"]) == 10
    assert result.metrics["power"]["power"] >= 0.8  # the held-out 35% is enough for 1% poison in one label


def test_a_label_too_small_to_cluster_blocks_as_unchecked(scenario, reference):
    """Fail closed: a label the gate could not cluster is not read as clean."""
    x, y, _, model = scenario
    keep = (y != 7) | (np.cumsum(y == 7) <= 5)  # five records of label 7 remain
    result = check_poisoning(model, x[keep], y[keep], *reference, PoisoningPolicy(), "sha256:p",
                             model_digest="sha256:m")
    assert result.status is Status.BLOCKED
    assert ("model.poisoning.unchecked", "label 7") in {(f.id, f.location) for f in result.findings}


def test_a_tolerated_fraction_passes_but_still_reports(scenario, reference):
    x, y, poisoned, model = scenario
    result = check_poisoning(model, x, y, *reference, PoisoningPolicy(max_suspicious_fraction=0.5), "p",
                             model_digest="sha256:m")
    assert result.status is Status.PASSED
    assert result.metrics["suspicious"] >= 0.9 * poisoned.sum()


def exported(model, x):
    """What MLflow's pt2 format loads: a torch.export graph of aten calls, batch size free."""
    return torch.export.export(model, (torch.as_tensor(x[:2]),),
                               dynamic_shapes=({0: torch.export.Dim("batch")},)).module()


def test_an_exported_graph_is_read_at_its_last_linear_call_like_the_eager_model(scenario, reference):
    x, y, _, model = scenario
    graph = exported(model, x)
    eager = activations(model, x[:300])
    assert eager.shape == (300, 64)
    np.testing.assert_allclose(activations(graph, x[:300]), eager, rtol=1e-5, atol=1e-6)
    results = [check_poisoning(m, x, y, *reference, PoisoningPolicy(), "p", model_digest="sha256:m")
               for m in (model, graph)]
    assert results[1].status == results[0].status == Status.BLOCKED
    assert results[1].metrics == results[0].metrics


@pytest.mark.parametrize(("case", "match"), [
    ("not-a-model", "torch nn.Module or a fitted scikit-learn"),
    ("layer-on-sklearn", "has no layers"),
    ("unknown-layer", "no module named"),
    ("reference-lacks-a-label", "no records of label"),
    ("exported-graph-layer", "layer 'head' never ran"),
], ids=["not-a-model", "layer-on-sklearn", "unknown-layer", "reference-lacks-a-label", "exported-graph-layer"])
def test_bad_input_fails_closed(scenario, reference, case, match):
    x, y, _, model = scenario
    x_ref, y_ref = reference
    config = PoisoningPolicy()
    if case == "not-a-model":
        model = object()
    elif case == "layer-on-sklearn":
        model, config = LogisticRegression(max_iter=200).fit(x.reshape(len(x), -1), y), PoisoningPolicy(layer="x")
    elif case == "unknown-layer":
        config = PoisoningPolicy(layer="nope")
    elif case == "exported-graph-layer":
        model, config = exported(model, x), PoisoningPolicy(layer="head")
    else:
        x_ref, y_ref = x_ref[y_ref != 3], y_ref[y_ref != 3]
    with pytest.raises(GateInputError, match=match):
        check_poisoning(model, x, y, x_ref, y_ref, config, "p", model_digest="sha256:m")


@pytest.mark.parametrize("data", [{"tail_quantiles": [0.6]}, {"tail_quantiles": []}, {"min_poison_fraction": 0},
                                  {"alpha": 0}, {"components": 1}, {"max_relative_size": 0.35}],
                         ids=["quantile-over-half", "no-quantile", "no-poison", "alpha-zero", "one-component",
                              "the-old-size-cap"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        PoisoningPolicy.model_validate(data)


def art_all_to_one(x, y, fraction, seed=0):
    """ART's PoisoningAttackBackdoor (add_pattern_bd) on ``fraction`` of all rows, relabelled 0."""
    from art.attacks.poisoning import PoisoningAttackBackdoor
    from art.attacks.poisoning.perturbations import add_pattern_bd

    rows = np.random.default_rng(seed).choice(np.flatnonzero(y != 0), round(fraction * len(y)), replace=False)
    attack = PoisoningAttackBackdoor(lambda batch: add_pattern_bd(batch[:, 0], pixel_value=1)[:, None])
    x, y = x.copy(), y.copy()
    x[rows], _ = attack.poison(x[rows], np.eye(10)[[0]])
    y[rows] = 0
    poisoned = np.zeros(len(y), dtype=bool)
    poisoned[rows] = True
    return x, y, poisoned


def test_a_backdoor_larger_than_the_clean_part_of_its_label_is_found(reference):
    """ART's all-to-one backdoor at 25%: poison is 70% of label 0. The gate before issue 22 (2-means, a cap of
    0.35 on the suspect cluster's share of its label) passed this model: cluster share 0.49, p = 1."""
    x_train, _, y_train, _ = digits(images=True, test_size=HELD_OUT)
    x, y, poisoned = art_all_to_one(x_train, y_train, 0.25)
    assert poisoned.sum() > (y_train == 0).sum()
    model = train(DigitsCNN(), x, y, seed=0)
    result = check_poisoning(model, x, y, *reference, PoisoningPolicy(), "p", model_digest="sha256:m")
    assert result.status is Status.BLOCKED
    assert "label 0" in {f.location for f in result.findings}
    assert result.metrics["labels"]["0"]["flagged"] >= 0.8 * poisoned.sum()


def test_a_reference_too_small_for_the_policy_blocks_and_names_the_rows_it_needs(reference):
    """Fail closed: 12 reference rows per label cannot show 1% poison in one label; the gate says so and how many
    rows would, and that many rows really reach the policy's power."""
    x_train, _, y_train, _ = digits(images=True, test_size=HELD_OUT)
    model = train(DigitsCNN(), x_train, y_train, seed=0)
    x_ref, y_ref = reference
    keep = np.concatenate([np.flatnonzero(y_ref == label)[:12] for label in range(10)])
    result = check_poisoning(model, x_train, y_train, x_ref[keep], y_ref[keep], PoisoningPolicy(), "p",
                             model_digest="sha256:m")
    assert result.status is Status.BLOCKED
    [finding] = [f for f in result.findings if f.id == "model.poisoning.underpowered"]
    power = result.metrics["power"]
    assert power["reference"] == 120 and power["power"] < 0.8
    assert power["reference_needed"] > 120 and f"needs about {power['reference_needed']:,}" in finding.message
    enough = np.concatenate([np.flatnonzero(y_ref == label)[:math.ceil(power["reference_needed"] / 10)]
                             for label in range(10)])
    assert len(enough) <= len(y_ref)  # the held-out rows hold that many
    again = check_poisoning(model, x_train, y_train, x_ref[enough], y_ref[enough], PoisoningPolicy(), "p",
                            model_digest="sha256:m")
    assert again.metrics["power"]["power"] >= 0.8, again.metrics["power"]
    assert "model.poisoning.underpowered" not in {f.id for f in again.findings}


def test_power_grows_with_the_reference_and_the_poison():
    alpha = 1e-4
    assert detection_power(126, 13, 540, 1, alpha) > 0.9 > detection_power(126, 13, 54, 1, alpha)
    assert detection_power(126, 40, 54, 1, alpha) > detection_power(126, 13, 54, 1, alpha)
    check = power_check(126, 13, 54, (0.0, 0.01), alpha, 0.8)
    assert not check.adequate and check.needed > 54
    assert power_check(126, 13, check.needed, (0.0, 0.01), alpha, 0.8).power >= 0.8
    assert power_check(126, 0, 54, (0.0,), alpha, 0.8).needed is None  # nothing to detect: never adequate


def blobs(rng, labels=3, train=150, ref=100, dims=8):
    """Gaussian rows per label, each label around its own centre; training and reference drawn alike."""
    centres = rng.normal(0, 6, (labels, dims))
    y_t, y_r = np.repeat(np.arange(labels), train), np.repeat(np.arange(labels), ref)
    return centres[y_t] + rng.normal(size=(len(y_t), dims)), y_t, centres[y_r] + rng.normal(size=(len(y_r), dims)), y_r


@pytest.mark.parametrize("planted", ["tight-cluster", "scattered-far", "half-the-label"])
def test_each_detector_finds_planted_rows(planted):
    """A tight far cluster, scattered far rows and a cluster as large as the clean rows: each detector fires."""
    rng = np.random.default_rng(1)
    x, y, x_ref, y_ref = blobs(rng)
    size = {"tight-cluster": 12, "scattered-far": 12, "half-the-label": 150}[planted]
    spread = 0.3 if planted != "scattered-far" else 4.0
    poison = x[y == 1].mean(0) + 8 + rng.normal(0, spread, (size, x.shape[1]))
    x, y = np.vstack([x, poison]), np.concatenate([y, np.full(size, 1)])
    found = detect(x, y, x_ref, y_ref, PoisoningPolicy(components=5))
    assert {t.detector for t in found.fired if t.label in (1, ALL)} == {"knn", "mahalanobis"}
    assert {t.label for t in found.fired} <= {1, ALL}
    flagged = np.zeros(len(y), dtype=bool)
    flagged[found.suspects[1]] = True
    assert flagged[-size:].mean() >= 0.9 and flagged[:-size].mean() <= 0.05


def test_clean_rows_raise_false_alarms_at_about_alpha():
    """The tail counts are exact under exchangeability: 200 clean draws at alpha 0.2 alarm at most about 20%."""
    rng = np.random.default_rng(0)
    config = PoisoningPolicy(alpha=0.2, components=4)
    alarms = sum(bool(detect(*blobs(rng, labels=2, train=60, ref=40, dims=4), config).fired) for _ in range(200))
    assert alarms <= 0.2 * 200 + 2 * np.sqrt(200 * 0.2 * 0.8), alarms


@pytest.fixture(scope="module")
def flat_digits():
    x_train, x_test, y_train, y_test = digits(test_size=HELD_OUT)
    return x_train, y_train, x_test, y_test


def corner_trigger(x):
    x = x.copy()
    x[:, [0, 7, 56]] = 1.0  # three corner pixels no clean digit inks
    return x


@pytest.mark.parametrize("attack", ["clean", "label-flip", "feature-trigger"])
def test_a_scikit_learn_model_is_audited_in_its_feature_space(flat_digits, attack):
    """Logistic regression on flattened digits: flipped labels (1 → 0) and ART's backdoor with a feature trigger
    at 5% of the rows are found with their rows; the clean model passes."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    x_train, y_train, x_test, y_test = flat_digits
    x, y = x_train.copy(), y_train.copy()
    rows = np.random.default_rng(0).choice(np.flatnonzero(y == 1 if attack == "label-flip" else y != 0), 60,
                                           replace=False)
    if attack != "clean":
        if attack == "feature-trigger":
            x[rows], _ = PoisoningAttackBackdoor(corner_trigger).poison(x[rows], np.eye(10)[[0]])
        y[rows] = 0
    model = LogisticRegression(max_iter=1000).fit(x, y)
    result = check_poisoning(model, x, y, x_test, y_test, PoisoningPolicy(), "p", model_digest="sha256:m")
    if attack == "clean":
        assert result.status is Status.PASSED, result.metrics["fired"]
        return
    if attack == "feature-trigger":
        assert (model.predict(corner_trigger(x_test[y_test != 0])) == 0).mean() > 0.9  # the backdoor works
    assert result.status is Status.BLOCKED
    assert {f.location for f in result.findings} == {"label 0"}
    assert result.metrics["labels"]["0"]["flagged"] >= 0.9 * len(rows)
