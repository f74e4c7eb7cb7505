"""``model.privacy``: how well can an attacker tell training records (members) from unseen ones?

First a fast pre-check, two attacks on the model's output probabilities only:

* ART's ``MembershipInferenceBlackBox``: a learned attack model (random forest by default) trained on
  half of the member and non-member samples, scored on the other half.
* A loss-threshold attack (Yeom et al. 2018): members tend to have lower loss. It needs no training,
  so it is scored on the same evaluation half.

Per attack: ROC AUC and the membership advantage, max over thresholds of TPR − FPR. The gate blocks
when either attack exceeds the policy's AUC or advantage. The advantage is a maximum over thresholds,
so it is biased upwards on small samples: size ``samples`` so that chance stays well below the limit
(about 1.36·√(2/n) for n evaluation records per side).

When the pre-check passes, LiRA (``lira``, ``shadows``; ADR 0035) audits the model: shadow models of the same
recipe on random halves of the population (training ∪ held-out rows), scored as TPR at fixed low FPRs
pooled over targets. A population AUC says nothing about the most exposed records; TPR at 0.1 % FPR does.
The evidence names the member and non-member rows by digests of the rows themselves.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from mlgate.core.errors import PolicyError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    label_indices,
    model_result,
    predict_proba,
    sample_indices,
    tool_info,
)
from mlgate.gates.model.policies import LiraPolicy, MembershipPolicy

GATE = "model.privacy"


def attack_scores(membership: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC and advantage of ``scores``; scores that are not one finite number per row are the attack tool's
    malformed output (a ``ToolError`` that says so, never a library error about the data)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if not (isinstance(scores, np.ndarray) and scores.shape == membership.shape
            and np.issubdtype(scores.dtype, np.number) and np.isfinite(scores).all()):
        raise ToolError(f"{GATE}: the attack returned malformed scores ({type(scores).__name__} "
                        f"{getattr(scores, 'shape', '')}), not one finite score per row")
    fpr, tpr, _ = roc_curve(membership, scores)
    return {"auc": round(float(roc_auc_score(membership, scores)), 4),
            "advantage": round(float(np.max(tpr - fpr)), 4)}


def _black_box(model: Any, fit: tuple[np.ndarray, ...], evaluate: tuple[np.ndarray, ...],
               input_shape: tuple[int, ...], config: MembershipPolicy) -> np.ndarray:
    """ART's learned attack, fit on ``(member probs, labels, non-member probs, labels)``; scores ``evaluate``."""
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    member_p, member_y, other_p, other_y = fit
    classifier = BlackBoxClassifier(lambda x: predict_proba(model, x), input_shape, member_p.shape[1])
    np.random.seed(config.seed)  # ART builds its attack model without a random_state
    attack = MembershipInferenceBlackBox(classifier, input_type="prediction", attack_model_type=config.attack_model)
    attack.fit(y=member_y, test_y=other_y, pred=member_p, test_pred=other_p)
    probs, labels = evaluate
    return attack.infer(None, labels, pred=probs, probabilities=True).reshape(len(labels), -1)[:, -1]


def _loss_scores(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Negative cross-entropy per record: higher means more member-like."""
    return np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))


def rows_digest(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the rows themselves (shape, float32 features, labels as text): names exactly which rows."""
    digest = hashlib.sha256(repr(x.shape).encode())
    digest.update(np.ascontiguousarray(x, dtype="<f4").tobytes())
    digest.update("\n".join(map(str, np.asarray(y).tolist())).encode())
    return "sha256:" + digest.hexdigest()


def shadow_count(lira: LiraPolicy, population: int, non_members: int) -> int:
    """The fewest shadows (at least ``lira.shadows``, even) whose pooled non-members put ``min_false_positives``
    under the lowest FPR: each shadow adds ``population / 2`` non-members, the audited model its held-out rows."""
    lowest = min(limit.fpr for limit in lira.limits)
    needed = math.ceil(max(lira.min_false_positives / lowest - non_members, 0) / (population / 2))
    count = max(lira.shadows, needed + needed % 2)
    if count > lira.max_shadows:
        raise PolicyError(f"{GATE}: LiRA needs {count} shadow models on {population} rows so that an FPR of "
                          f"{lowest:g} rests on {lira.min_false_positives} false positives; "
                          f"gates.model.privacy.lira.max_shadows is {lira.max_shadows}: raise it to {count}, "
                          "or give the gate more rows")
    return count


def lira_audit(model: Any, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
               lira: LiraPolicy) -> dict[str, Any]:
    """LiRA on the population ``x_train`` ∪ ``x_test`` (``model`` trained on the first); per variant, the
    audited model alone and pooled with the shadows as targets."""
    from mlgate.gates.model.lira import balanced_halves, pooled_scores, summarise
    from mlgate.gates.model.shadows import train_shadows, true_class_confidence

    x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    labels = label_indices(model, y)
    count = shadow_count(lira, len(x), len(x_test))
    keep = balanced_halves(count, len(x), lira.seed)
    phi = train_shadows(model, x, y, labels, keep, lira=lira)
    target_phi = true_class_confidence(model, x, labels, getattr(model, "classes_", None))
    alone, pooled = pooled_scores(target_phi, np.arange(len(x)) < len(x_train), phi, keep)
    fprs = tuple(limit.fpr for limit in lira.limits)
    return {"shadows": count, "population": len(x), "targets": pooled.targets,
            "variance": "per_row" if pooled.per_row else "global",
            "splits_digest": "sha256:" + hashlib.sha256(np.packbits(keep).tobytes()).hexdigest(),
            "pooled": summarise(pooled, fprs), "audited_model": summarise(alone, fprs)}


def lira_findings(audit: dict[str, Any], lira: LiraPolicy) -> list[Finding]:
    """A finding per variant and limit its TPR exceeds, pooled, or on the audited model alone where its own
    held-out rows resolve that FPR (at least ``min_false_positives`` allowed)."""
    limits = {limit.fpr: limit.max_tpr for limit in lira.limits}
    findings = []
    for scope in ("pooled", "audited_model"):
        for variant, summary in audit[scope].items():
            for at in summary["at_fpr"]:
                if at["allowed_false_positives"] < lira.min_false_positives or at["tpr"] <= limits[at["fpr"]]:
                    continue
                low, high = at["tpr_ci95"]
                findings.append(Finding(
                    f"{GATE}.lira_tpr", Severity.HIGH,
                    f"LiRA ({variant}, {scope.replace('_', ' ')}) finds {at['tpr']:.2%} of members at "
                    f"{at['fpr']:.2%} FPR (95% CI {low:.2%}-{high:.2%}; threshold rests on "
                    f"{at['allowed_false_positives']} of {at['non_members']} non-members) > {limits[at['fpr']]:.2%}",
                    f"lira.{scope}.{variant}"))
    return findings


def _precheck(model: Any, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              config: MembershipPolicy) -> tuple[dict[str, Any], list[Finding]]:
    """ART's black-box attack and the loss threshold on ``samples`` rows per side: metrics and findings."""
    n = min(config.samples, len(x_train), len(x_test))
    members, others = sample_indices(len(x_train), n, config.seed), sample_indices(len(x_test), n, config.seed + 1)
    half = n // 2
    member_p, member_y = predict_proba(model, x_train[members]), label_indices(model, y_train[members])
    other_p, other_y = predict_proba(model, x_test[others]), label_indices(model, y_test[others])
    fit = (member_p[:half], member_y[:half], other_p[:half], other_y[:half])
    eval_p = np.concatenate([member_p[half:], other_p[half:]])
    eval_y = np.concatenate([member_y[half:], other_y[half:]])
    membership = np.r_[np.ones(n - half), np.zeros(n - half)]
    attacks = {
        "black_box": attack_scores(membership, _black_box(model, fit, (eval_p, eval_y), x_train.shape[1:], config)),
        "loss_threshold": attack_scores(membership, _loss_scores(eval_p, eval_y)),
    }
    findings = []
    for name, scores in attacks.items():
        if scores["auc"] > config.max_auc:
            findings.append(Finding(f"{GATE}.auc", Severity.HIGH,
                                    f"membership attack AUC {scores['auc']:.3f} > {config.max_auc}", name))
        if scores["advantage"] > config.max_advantage:
            findings.append(Finding(f"{GATE}.advantage", Severity.HIGH,
                                    f"membership advantage {scores['advantage']:.3f} > {config.max_advantage}", name))
    metrics = {"auc": max(a["auc"] for a in attacks.values()),
               "advantage": max(a["advantage"] for a in attacks.values()),
               "samples_per_side": n, "seed": config.seed, "attack_model": config.attack_model,
               "sample_member_digest": rows_digest(x_train[members], y_train[members]),
               "sample_non_member_digest": rows_digest(x_test[others], y_test[others]),
               "train_accuracy": round(float((member_p.argmax(1) == member_y).mean()), 4),
               "test_accuracy": round(float((other_p.argmax(1) == other_y).mean()), 4),
               "attacks": attacks}
    return metrics, findings


def _headline(audit: dict[str, Any]) -> dict[str, float]:
    """The strongest variant's pooled AUC and TPRs, as flat numbers (MLflow metrics)."""
    pooled = audit["pooled"].values()
    flat = {"lira_auc": max(s["auc"] for s in pooled)}
    for i, at in enumerate(next(iter(pooled))["at_fpr"]):
        flat[f"lira_tpr_at_fpr_{at['fpr']:g}"] = max(s["at_fpr"][i]["tpr"] for s in pooled)
    return flat


def check_membership(model: Any, x_train: Any, y_train: Any, x_test: Any, y_test: Any, config: MembershipPolicy,
                     policy_digest: str, *, model_digest: str, model_uri: str = "") -> GateResult:
    """Membership inference against ``model``: ``(x_train, y_train)`` were trained on, ``(x_test, y_test)`` not.

    The pre-check runs first; when it already blocks, no budget is spent on shadow models."""
    started = utcnow()
    x_train, y_train = check_xy(x_train, y_train, "x_train")
    x_test, y_test = check_xy(x_test, y_test, "x_test")
    metrics, findings = _precheck(model, x_train, y_train, x_test, y_test, config)
    metrics["member_digest"] = rows_digest(x_train, y_train)
    metrics["non_member_digest"] = rows_digest(x_test, y_test)
    if findings:
        metrics["lira"] = {"skipped": "the pre-check already blocks"}
    else:
        audit = lira_audit(model, x_train, y_train, x_test, y_test, config.lira)
        findings = lira_findings(audit, config.lira)
        metrics.update(_headline(audit), lira=audit)
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("adversarial-robustness-toolbox"), started_at=started, metrics=metrics,
        thresholds={"max_auc": config.max_auc, "max_advantage": config.max_advantage,
                    "lira_max_tpr_at_fpr": {f"{limit.fpr:g}": limit.max_tpr for limit in config.lira.limits},
                    "lira_min_false_positives": config.lira.min_false_positives},
        findings=findings,
    )
