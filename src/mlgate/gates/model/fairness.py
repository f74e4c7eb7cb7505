"""``model.fairness``: demographic parity and equalized odds across each sensitive column (fairlearn).

Labels are binarised one-vs-rest on ``positive_label``, so multiclass models are checked for the
outcome that matters (approval, diagnosis). Groups smaller than ``min_group_size`` are reported but
left out of the differences, whose noise they would dominate; a column with fewer than two groups of
that size cannot be judged and is an input error (fail closed), not a pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    is_torch_module,
    model_result,
    predict_proba,
    tool_info,
)
from mlgate.gates.model.policies import FairnessPolicy

GATE = "model.fairness"
MISSING_GROUP = "(missing)"


def predict_labels(model: Any, x: np.ndarray) -> np.ndarray:
    if is_torch_module(model):
        return predict_proba(model, x).argmax(1)
    return np.asarray(model.predict(x))


def _spread(values: Any) -> float:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return round(float(values.max() - values.min()), 4) if len(values) > 1 else 0.0


def group_metrics(y_true: np.ndarray, y_pred: np.ndarray, groups: Any, min_group_size: int) -> dict[str, Any]:
    """Per-group selection rate, TPR, FPR and size; parity and equalized-odds differences over large groups."""
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                 "false_positive_rate": false_positive_rate, "count": count},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups,
    ).by_group
    large = frame[frame["count"] >= min_group_size]
    return {
        "demographic_parity_difference": _spread(large["selection_rate"]),
        "equalized_odds_difference": max(_spread(large["true_positive_rate"]),
                                         _spread(large["false_positive_rate"])),
        "groups": {str(group): {"size": int(row["count"]), "selection_rate": round(float(row["selection_rate"]), 4),
                                "true_positive_rate": round(float(row["true_positive_rate"]), 4),
                                "false_positive_rate": round(float(row["false_positive_rate"]), 4)}
                   for group, row in frame.iterrows()},
        "small_groups": sorted(str(g) for g in frame.index[frame["count"] < min_group_size]),
        "measured_groups": len(large),
    }


def check_fairness(model: Any, x: Any, y: Any, sensitive: Any, config: FairnessPolicy, policy_digest: str, *,
                   model_digest: str, model_uri: str = "") -> GateResult:
    """Compare ``model``'s outcomes on ``(x, y)`` across the groups of ``sensitive`` (a DataFrame, row-aligned)."""
    started = utcnow()
    x, y = check_xy(x, y)
    missing = [c for c in config.sensitive_columns if c not in getattr(sensitive, "columns", ())]
    if missing:
        raise GateInputError(f"sensitive data lacks the policy's column(s) {missing}")
    if len(sensitive) != len(y):
        raise GateInputError(f"sensitive data has {len(sensitive)} rows, the labels {len(y)}")
    y_true = (y == config.positive_label).astype(int)
    y_pred = (predict_labels(model, x) == config.positive_label).astype(int)
    if not y_true.any() or y_true.all():
        raise GateInputError(f"the labels must contain both positive ({config.positive_label!r}) and other records")
    columns, findings = {}, []
    for column in config.sensitive_columns:
        groups = sensitive[column].astype(object).where(sensitive[column].notna(), MISSING_GROUP).astype(str)
        report = group_metrics(y_true, y_pred, groups.to_numpy(), config.min_group_size)
        if report["measured_groups"] < 2:
            raise GateInputError(f"column {column!r} has fewer than two groups of at least "
                                 f"{config.min_group_size} records; fairness cannot be measured")
        columns[column] = report
        for metric, limit in (("demographic_parity_difference", config.max_demographic_parity_difference),
                              ("equalized_odds_difference", config.max_equalized_odds_difference)):
            if report[metric] > limit:
                findings.append(Finding(f"{GATE}.{metric}", Severity.HIGH,
                                        f"{metric.replace('_', ' ')} {report[metric]:.3f} > {limit}", column))
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("fairlearn"), started_at=started,
        metrics={"demographic_parity_difference": max(c["demographic_parity_difference"] for c in columns.values()),
                 "equalized_odds_difference": max(c["equalized_odds_difference"] for c in columns.values()),
                 "records": len(y), "columns": columns},
        thresholds={"max_demographic_parity_difference": config.max_demographic_parity_difference,
                    "max_equalized_odds_difference": config.max_equalized_odds_difference,
                    "min_group_size": config.min_group_size},
        findings=findings,
    )
