"""``model.poisoning``: a backdoor planted in digits and learnt by a small CNN is found; a clean model passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.poisoning import SUSPECTS_FILE, PoisoningPolicy, activations, check_poisoning
from tests.fixtures.models import DigitsCNN, add_trigger, backdoored_digits, digits, train

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=[0, 3], ids=["train-seed0", "train-seed3"])
def scenario(request):
    """Two training seeds: with seed 3, 2-means splits the poisoned records across both clusters."""
    x, y, poisoned = backdoored_digits(rate=0.05, target=0)
    return x, y, poisoned, train(DigitsCNN(request.param), x, y, seed=request.param)


@pytest.fixture(scope="module")
def reference():
    _, x_test, _, y_test = digits(images=True)
    return x_test, y_test


def test_the_backdoor_is_real(scenario, reference):
    """The scenario means something only if the model really learnt the trigger."""
    _, _, _, model = scenario
    x_test, y_test = reference
    with torch.no_grad():
        hijacked = model(torch.as_tensor(add_trigger(x_test[y_test != 0]))).argmax(1).numpy() == 0
    assert hijacked.mean() > 0.9


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
    assert result.metrics["classes"]["0"]["reference_share"] < 0.05


def test_clean_model_passes(reference):
    x_train, _, y_train, _ = digits(images=True)
    model = train(DigitsCNN(), x_train, y_train, seed=0)
    result = check_poisoning(model, x_train, y_train, *reference, PoisoningPolicy(), "sha256:p",
                             model_digest="sha256:m")
    assert result.status is Status.PASSED, result.metrics["classes"]
    assert result.metrics["suspicious"] == 0 and len(result.metrics["classes"]) == 10


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
    ("sklearn-model", "torch nn.Module"),
    ("unknown-layer", "no module named"),
    ("reference-lacks-a-label", "no records of label"),
    ("exported-graph-layer", "layer 'head' never ran"),
], ids=["sklearn-model", "unknown-layer", "reference-lacks-a-label", "exported-graph-layer"])
def test_bad_input_fails_closed(scenario, reference, case, match):
    x, y, _, model = scenario
    x_ref, y_ref = reference
    config = PoisoningPolicy()
    if case == "sklearn-model":
        model = LogisticRegression(max_iter=200).fit(x.reshape(len(x), -1), y)
    elif case == "unknown-layer":
        config = PoisoningPolicy(layer="nope")
    elif case == "exported-graph-layer":
        model, config = exported(model, x), PoisoningPolicy(layer="head")
    else:
        x_ref, y_ref = x_ref[y_ref != 3], y_ref[y_ref != 3]
    with pytest.raises(GateInputError, match=match):
        check_poisoning(model, x, y, x_ref, y_ref, config, "p", model_digest="sha256:m")


@pytest.mark.parametrize("data", [{"max_relative_size": 0.6}, {"alpha": 0}, {"components": 1}, {"extra": 1}],
                         ids=["size-over-half", "alpha-zero", "one-component", "extra-key"])
def test_policy_rejects_bad_sections(data):
    with pytest.raises(ValidationError):
        PoisoningPolicy.model_validate(data)
