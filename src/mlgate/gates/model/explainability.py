"""``model.explainability``: permutation importance, and a block when one feature carries the model.

A model that gets most of its accuracy from a single feature has usually found a shortcut or a target
leak (an ID correlated with the label, a field filled in after the outcome). Permutation importance
(scikit-learn) is model-agnostic and measured on held-out data, so it reflects what the model *uses*.
Negative importances (noise) count as zero. If no feature matters at all, the model explains nothing
and the gate blocks too (fail closed); importances that are not finite numbers are a tool error. A bar
chart of the top features is saved as evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    model_result,
    new_figure,
    sample_indices,
    save_figure,
    tool_info,
)
from mlgate.gates.model.policies import ExplainabilityPolicy

GATE = "model.explainability"
CHART_FILE = "permutation_importance.png"
CHART_FEATURES = 20


def _chart(names: list[str], shares: np.ndarray, limit: float, out_dir: Path | None) -> tuple[str, ...]:
    if out_dir is None:
        return ()
    order = np.argsort(shares)[::-1][:CHART_FEATURES][::-1]
    figure = new_figure(7, max(3, 0.3 * len(order) + 1))
    axes = figure.add_subplot()
    axes.barh([names[i] for i in order], shares[order], color="tab:blue")
    axes.axvline(limit, color="tab:red", linestyle="--", label=f"policy limit {limit:g}")
    axes.set(xlabel="share of total permutation importance", title="Permutation importance")
    axes.legend()
    return save_figure(figure, out_dir, CHART_FILE)


def check_explainability(model: Any, x: Any, y: Any, config: ExplainabilityPolicy, policy_digest: str, *,
                         model_digest: str, feature_names: list[str] | None = None, model_uri: str = "",
                         out_dir: Path | None = None) -> GateResult:
    """Permutation importance of a fitted scikit-learn estimator on held-out ``(x, y)``."""
    from sklearn.inspection import permutation_importance

    started = utcnow()
    if feature_names is None:
        feature_names = list(getattr(x, "columns", range(np.shape(x)[1])))
    names = [str(name) for name in feature_names]
    original = x
    x, y = check_xy(x, y)
    if len(names) != x.shape[1]:
        raise GateInputError(f"{len(names)} feature names for {x.shape[1]} features")
    indices = sample_indices(len(x), config.samples, config.seed)
    # a DataFrame stays one: the model was fitted with its column names
    x_sample = original.iloc[indices] if hasattr(original, "iloc") else x[indices]
    importance = permutation_importance(model, x_sample, y[indices], scoring=config.scoring,
                                        n_repeats=config.n_repeats, random_state=config.seed, n_jobs=1)
    means = np.asarray(importance.importances_mean, dtype=float)
    if means.shape != (x.shape[1],) or not np.isfinite(means).all():
        # NaN compares False with every limit: it would pass as "no dominant feature"
        raise ToolError(f"scikit-learn returned malformed permutation importances: shape {means.shape} for "
                        f"{x.shape[1]} features, {int((~np.isfinite(means)).sum())} not finite")
    positive = np.clip(means, 0, None)
    total = float(positive.sum())
    shares = positive / total if total > 0 else np.zeros_like(positive)
    top = int(np.argmax(shares))
    findings = []
    if total <= 0:
        findings.append(Finding(f"{GATE}.no_signal", Severity.HIGH,
                                "no feature has positive permutation importance; the model explains nothing"))
    elif shares[top] > config.max_feature_share:
        findings.append(Finding(f"{GATE}.dominant_feature", Severity.HIGH,
                                f"one feature carries {shares[top]:.0%} of the importance "
                                f"(> {config.max_feature_share:.0%}): shortcut or target leak?", names[top]))
    ranked = np.argsort(shares)[::-1]
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("scikit-learn"), started_at=started,
        metrics={"top_feature": names[top], "top_feature_share": round(float(shares[top]), 4),
                 "total_importance": round(total, 6), "samples": len(indices), "seed": config.seed,
                 "importance": {names[i]: {"mean": round(float(importance.importances_mean[i]), 6),
                                           "std": round(float(importance.importances_std[i]), 6),
                                           "share": round(float(shares[i]), 4)} for i in ranked}},
        thresholds={"max_feature_share": config.max_feature_share},
        findings=findings, artifacts=_chart(names, shares, config.max_feature_share, out_dir),
    )
