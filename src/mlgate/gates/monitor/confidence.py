"""``monitor.confidence``: a spike in the share of low-confidence predictions.

A model meeting inputs it was not trained for (drift, probing, evasion attempts) answers with lower
confidence. The share of predictions below ``low_confidence`` in a window is compared with the baseline
share by a one-sided exact binomial test, so the false-alarm rate on a healthy window is ``alpha``
whatever the window size.

The baseline is a property of the model, measured on its held-out predictions in the model validation
step (``model.robustness`` records it as ``metrics.confidence_baseline``) and so carried, signed, in the
version's attestation; monitoring reads it from there (``served_baseline``) or from a file. There is no
policy fallback: a share written in a policy is a guess about a model nobody measured, and a gate
without a baseline errors (fails closed). A measured share is itself an estimate: the test's null share is
its upper Wilson bound at level ``alpha``, so a small validation set makes the gate less sensitive rather
than noisier.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.monitor.policies import ConfidencePolicy

GATE = "monitor.confidence"
# the validation gate whose signed result carries the baseline, and the metric it is kept under
BASELINE_GATE = "model.robustness"
BASELINE_METRIC = "confidence_baseline"


@dataclass(frozen=True)
class ConfidenceBaseline:
    """How many of a model's validation predictions fell below ``low_confidence``."""

    low_confidence: float
    low: int
    predictions: int

    @property
    def share(self) -> float:
        return self.low / self.predictions

    def to_dict(self) -> dict[str, Any]:
        return {"low_confidence": self.low_confidence, "low": self.low, "predictions": self.predictions}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfidenceBaseline:
        try:
            baseline = cls(float(data["low_confidence"]), int(data["low"]), int(data["predictions"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise GateInputError(f"not a confidence baseline: {exc!r}") from None
        if not (0 < baseline.low_confidence <= 1 and 0 <= baseline.low <= baseline.predictions > 0):
            raise GateInputError("a confidence baseline needs 0 < low_confidence <= 1 and "
                                 "0 <= low <= predictions, predictions > 0")
        return baseline


def _confidences(confidences: Iterable[float]) -> np.ndarray:
    try:
        values = np.asarray(list(confidences) if not isinstance(confidences, np.ndarray) else confidences,
                            dtype=np.float64)
    except (TypeError, ValueError):
        raise GateInputError("confidences must be numbers in [0, 1]") from None
    if values.ndim != 1 or not np.all((values >= 0) & (values <= 1)):  # NaN fails this too
        raise GateInputError("confidences must be a flat sequence of numbers in [0, 1]")
    return values


def measure_baseline(confidences: Iterable[float], low_confidence: float) -> ConfidenceBaseline:
    """The baseline of a model from its validation predictions' confidences (max class probability)."""
    values = _confidences(confidences)
    if values.size == 0:
        raise GateInputError("no validation predictions to measure the confidence baseline on")
    return ConfidenceBaseline(low_confidence, int(np.count_nonzero(values < low_confidence)), int(values.size))


def attested_baseline(results: Iterable[GateResult], model: str) -> ConfidenceBaseline:
    """The baseline in ``model``'s attested results (``BASELINE_GATE``'s metric); ``GateInputError`` when
    the attestation carries none (validated before baselines were measured, or without that gate)."""
    carried = next((r.metrics.get(BASELINE_METRIC) for r in results if r.gate == BASELINE_GATE), None)
    if not isinstance(carried, Mapping):
        raise GateInputError(f"the attestation of {model} carries no confidence baseline ({BASELINE_GATE} "
                             f"metric {BASELINE_METRIC!r}): validate and promote the model again")
    return ConfidenceBaseline.from_dict(carried)


def _null_share(config: ConfidencePolicy, baseline: ConfidenceBaseline | None) -> float:
    from mlgate.gates.monitor.drift import wilson_upper

    if baseline is None:
        raise GateInputError("no confidence baseline: the served model's attestation carries the one measured "
                             f"in validation ({BASELINE_GATE}), or give one measured with measure_baseline")
    if baseline.low_confidence != config.low_confidence:
        raise GateInputError(f"the baseline counts predictions below {baseline.low_confidence}, the policy's "
                             f"low_confidence is {config.low_confidence}")
    return wilson_upper(baseline.low, baseline.predictions, config.alpha)


def check_confidence(confidences: Iterable[float], config: ConfidencePolicy, policy_digest: str,
                     subject: Subject | None = None, baseline: ConfidenceBaseline | None = None) -> GateResult:
    """BLOCKED when the window's low-confidence share is significantly above the baseline's."""
    import scipy
    from scipy.stats import binomtest

    started, clock = utcnow(), time.perf_counter()
    values = _confidences(confidences)
    if values.size < config.min_predictions:
        raise GateInputError(f"{values.size} predictions in the window, fewer than "
                             f"min_predictions={config.min_predictions}")
    null = _null_share(config, baseline)
    low = int(np.count_nonzero(values < config.low_confidence))
    p_value = float(binomtest(low, values.size, min(null, 1.0), alternative="greater").pvalue)
    spike = p_value < config.alpha
    findings = (Finding(f"{GATE}.spike", Severity.HIGH,
                        f"{low} of {values.size} predictions below confidence {config.low_confidence} "
                        f"(share {low / values.size:.3f} vs the measured baseline's bound {null:.4f}, "
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
                 "p_value": p_value, "baseline_share": round(null, 6), "baseline_evidence": baseline.to_dict(),
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds=config.model_dump(mode="json"),
        findings=findings,
    )
