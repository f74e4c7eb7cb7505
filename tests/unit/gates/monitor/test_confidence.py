import json
import math

import numpy as np
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Status, Subject, ToolInfo
from mlgate.gates.monitor.confidence import (
    BASELINE_GATE,
    BASELINE_METRIC,
    ConfidenceBaseline,
    ConfidencePolicy,
    attested_baseline,
    check_confidence,
    measure_baseline,
)

pytestmark = pytest.mark.unit

POLICY = ConfidencePolicy(low_confidence=0.6, alpha=0.01, min_predictions=50)
# a model measured at 10 % low-confidence predictions on 100,000 held-out rows: its Wilson bound is ~0.1
TENTH = ConfidenceBaseline(0.6, 10_000, 100_000)


def window(rng, n, low_share):
    low = rng.random(n) < low_share
    return np.where(low, rng.uniform(0.3, 0.6, n), rng.uniform(0.6, 1.0, n))


@pytest.mark.parametrize(("low_share", "status"), [
    (0.25, Status.BLOCKED), (0.1, Status.PASSED), (0.02, Status.PASSED),
], ids=["spike", "baseline", "below-baseline"])
def test_spike_blocks_and_normal_window_passes(low_share, status):
    result = check_confidence(window(np.random.default_rng(1), 500, low_share), POLICY, "sha256:p", baseline=TENTH)
    assert result.status is status
    assert len(result.findings) == (status is Status.BLOCKED)
    assert result.metrics["predictions"] == 500


def test_false_alarm_rate_stays_within_alpha():
    # 300 healthy windows: alarms ~ Binomial(300, <= alpha); allow alpha + 3 standard errors.
    rng, windows = np.random.default_rng(2), 300
    alarms = sum(check_confidence(window(rng, 400, 0.1), POLICY, "p", baseline=TENTH).status is Status.BLOCKED
                 for _ in range(windows))
    assert alarms / windows <= POLICY.alpha + 3 * math.sqrt(POLICY.alpha * (1 - POLICY.alpha) / windows)


@pytest.mark.parametrize(("values", "match"), [
    ([0.5] * 10, "fewer than min_predictions"),
    ([0.5] * 60 + [float("nan")], r"\[0, 1\]"),
    ([0.5] * 60 + [1.5], r"\[0, 1\]"),
    (["high"] * 60, r"\[0, 1\]"),
], ids=["too-few", "nan", "above-one", "not-numbers"])
def test_bad_input_fails_closed(values, match):
    with pytest.raises(GateInputError, match=match):
        check_confidence(values, POLICY, "p", baseline=TENTH)


def test_subject_digest_names_the_window():
    values = window(np.random.default_rng(3), 100, 0.1)
    first, second = (check_confidence(v, POLICY, "p", baseline=TENTH) for v in (values, values[::-1]))
    assert first.subject.digest.startswith("sha256:") and first.subject.digest != second.subject.digest


def test_the_window_is_judged_against_the_models_measured_baseline():
    rng = np.random.default_rng(4)
    baseline = measure_baseline(window(rng, 5000, 0.3), 0.6)  # this model is unsure 30 % of the time
    assert 0.27 < baseline.share < 0.33
    assert ConfidenceBaseline.from_dict(json.loads(json.dumps(baseline.to_dict()))) == baseline
    current = window(rng, 1000, 0.3)
    assert check_confidence(current, POLICY, "p", baseline=TENTH).status is Status.BLOCKED  # another model's
    result = check_confidence(current, POLICY, "p", baseline=baseline)
    assert result.status is Status.PASSED and result.metrics["baseline_evidence"] == baseline.to_dict()
    assert check_confidence(window(rng, 1000, 0.45), POLICY, "p", baseline=baseline).status is Status.BLOCKED


def test_the_policy_holds_no_baseline_share():
    with pytest.raises(ValueError, match="baseline_share"):
        ConfidencePolicy(baseline_share=0.2)


def validation_result(metrics) -> GateResult:
    return GateResult(BASELINE_GATE, Status.PASSED, Subject("model", "models:/m/1", "sha256:m"), "p",
                      ToolInfo("t", "1"), "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00", metrics=metrics)


def test_the_baseline_is_read_from_the_attested_validation_result():
    results = [validation_result({"robust_accuracy": 0.9, BASELINE_METRIC: TENTH.to_dict()})]
    assert attested_baseline(results, "m/1") == TENTH


@pytest.mark.parametrize("results", [
    [], [validation_result({"robust_accuracy": 0.9})], [validation_result({BASELINE_METRIC: "0.1"})],
], ids=["no-validation-result", "validated-before-baselines", "not-a-baseline"])
def test_an_attestation_without_a_baseline_fails_closed(results):
    with pytest.raises(GateInputError, match="carries no confidence baseline"):
        attested_baseline(results, "m/1")


@pytest.mark.parametrize(("baseline", "match"), [
    (None, "no confidence baseline"),
    (ConfidenceBaseline(0.5, 10, 100), "low_confidence"),
], ids=["none", "other-threshold"])
def test_a_missing_or_mismatched_baseline_fails_closed(baseline, match):
    with pytest.raises(GateInputError, match=match):
        check_confidence([0.9] * 100, POLICY, "p", baseline=baseline)
