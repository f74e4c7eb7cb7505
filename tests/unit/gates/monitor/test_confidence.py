import math

import numpy as np
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.monitor.confidence import ConfidencePolicy, check_confidence

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
