import json
import math

import numpy as np
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.monitor.confidence import ConfidenceBaseline, ConfidencePolicy, check_confidence, measure_baseline

pytestmark = pytest.mark.unit

POLICY = ConfidencePolicy(low_confidence=0.6, baseline_share=0.1, alpha=0.01, min_predictions=50)


def window(rng, n, low_share):
    low = rng.random(n) < low_share
    return np.where(low, rng.uniform(0.3, 0.6, n), rng.uniform(0.6, 1.0, n))


@pytest.mark.parametrize(("low_share", "status"), [
    (0.25, Status.BLOCKED), (0.1, Status.PASSED), (0.02, Status.PASSED),
], ids=["spike", "baseline", "below-baseline"])
def test_spike_blocks_and_normal_window_passes(low_share, status):
    result = check_confidence(window(np.random.default_rng(1), 500, low_share), POLICY, "sha256:p")
    assert result.status is status
    assert len(result.findings) == (status is Status.BLOCKED)
    assert result.metrics["predictions"] == 500


def test_false_alarm_rate_stays_within_alpha():
    # 300 healthy windows: alarms ~ Binomial(300, <= alpha); allow alpha + 3 standard errors.
    rng, windows = np.random.default_rng(2), 300
    alarms = sum(check_confidence(window(rng, 400, 0.1), POLICY, "p").status is Status.BLOCKED
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
        check_confidence(values, POLICY, "p")


def test_subject_digest_names_the_window():
    values = window(np.random.default_rng(3), 100, 0.1)
    first, second = check_confidence(values, POLICY, "p"), check_confidence(values[::-1], POLICY, "p")
    assert first.subject.digest.startswith("sha256:") and first.subject.digest != second.subject.digest


def test_a_measured_baseline_replaces_the_policy_share():
    rng = np.random.default_rng(4)
    baseline = measure_baseline(window(rng, 5000, 0.3), 0.6)  # this model is unsure 30 % of the time
    assert 0.27 < baseline.share < 0.33
    assert ConfidenceBaseline.from_dict(json.loads(json.dumps(baseline.to_dict()))) == baseline
    current = window(rng, 1000, 0.3)
    policy = ConfidencePolicy(low_confidence=0.6, alpha=0.01)  # no fallback share
    assert check_confidence(current, POLICY, "p").status is Status.BLOCKED  # vs the placeholder 0.1
    result = check_confidence(current, policy, "p", baseline=baseline)
    assert result.status is Status.PASSED and result.metrics["baseline"] == "measured"
    assert check_confidence(window(rng, 1000, 0.45), policy, "p", baseline=baseline).status is Status.BLOCKED


@pytest.mark.parametrize(("baseline", "match"), [
    (None, "no confidence baseline"),
    (ConfidenceBaseline(0.5, 10, 100), "low_confidence"),
], ids=["none", "other-threshold"])
def test_a_missing_or_mismatched_baseline_fails_closed(baseline, match):
    with pytest.raises(GateInputError, match=match):
        check_confidence([0.9] * 100, ConfidencePolicy(low_confidence=0.6), "p", baseline=baseline)
