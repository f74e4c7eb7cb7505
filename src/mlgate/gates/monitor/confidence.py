"""``monitor.confidence``: a spike in the share of low-confidence predictions.

A model meeting inputs it was not trained for (drift, probing, evasion attempts) answers with lower
confidence. The share of predictions below ``low_confidence`` in a window is compared with the baseline
share by a one-sided exact binomial test, so the false-alarm rate on a healthy window is ``alpha``
whatever the window size.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow

GATE = "monitor.confidence"


class ConfidencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low_confidence: float = Field(default=0.6, gt=0, le=1, description="a prediction below this is 'low'")
    baseline_share: float = Field(gt=0, lt=1, description="expected share of low-confidence predictions")
    alpha: float = Field(default=0.01, gt=0, lt=1)
    min_predictions: int = Field(default=50, ge=1)


def check_confidence(confidences: Iterable[float], config: ConfidencePolicy, policy_digest: str,
                     subject: Subject | None = None) -> GateResult:
    """BLOCKED when the window's low-confidence share is significantly above ``baseline_share``."""
    import scipy
    from scipy.stats import binomtest

    started, clock = utcnow(), time.perf_counter()
    try:
        values = np.asarray(list(confidences) if not isinstance(confidences, np.ndarray) else confidences,
                            dtype=np.float64)
    except (TypeError, ValueError):
        raise GateInputError("confidences must be numbers in [0, 1]") from None
    if values.ndim != 1 or not np.all((values >= 0) & (values <= 1)):  # NaN fails this too
        raise GateInputError("confidences must be a flat sequence of numbers in [0, 1]")
    if values.size < config.min_predictions:
        raise GateInputError(f"{values.size} predictions in the window, fewer than "
                             f"min_predictions={config.min_predictions}")
    low = int(np.count_nonzero(values < config.low_confidence))
    p_value = float(binomtest(low, values.size, config.baseline_share, alternative="greater").pvalue)
    spike = p_value < config.alpha
    findings = (Finding(f"{GATE}.spike", Severity.HIGH,
                        f"{low} of {values.size} predictions below confidence {config.low_confidence} "
                        f"(share {low / values.size:.3f} vs baseline {config.baseline_share}, "
                        f"binomial p-value {p_value:.3g})", "confidence"),) if spike else ()
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if spike else Status.PASSED,
        subject=subject or Subject("dataset", "inference-window",
                                   "sha256:" + hashlib.sha256(values.tobytes()).hexdigest()),
        policy_digest=policy_digest,
        tool=ToolInfo("scipy.stats.binomtest", scipy.__version__),
        started_at=started,
        finished_at=utcnow(),
        metrics={"predictions": int(values.size), "low_confidence": low, "share": round(low / values.size, 6),
                 "p_value": p_value, "seconds": round(time.perf_counter() - clock, 4)},
        thresholds=config.model_dump(mode="json"),
        findings=findings,
    )
