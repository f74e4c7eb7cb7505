"""``model.privacy``: how well can an attacker tell training records (members) from unseen ones?

Two attacks, both on the model's output probabilities only:

* ART's ``MembershipInferenceBlackBox``: a learned attack model (random forest by default) trained on
  half of the member and non-member samples, scored on the other half.
* A loss-threshold attack (Yeom et al. 2018): members tend to have lower loss. It needs no training,
  so it is scored on the same evaluation half.

Per attack: ROC AUC and the membership advantage, max over thresholds of TPR − FPR. The gate blocks
when either attack exceeds the policy's AUC or advantage. The advantage is a maximum over thresholds,
so it is biased upwards on small samples: size ``samples`` so that chance stays well below the limit
(about 1.36·√(2/n) for n evaluation records per side).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlgate.core.errors import ToolError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    indices_digest,
    label_indices,
    model_result,
    predict_proba,
    sample_indices,
    tool_info,
)
from mlgate.gates.model.policies import MembershipPolicy

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


def check_membership(model: Any, x_train: Any, y_train: Any, x_test: Any, y_test: Any, config: MembershipPolicy,
                     policy_digest: str, *, model_digest: str, model_uri: str = "") -> GateResult:
    """Membership inference against ``model``: ``(x_train, y_train)`` were trained on, ``(x_test, y_test)`` not."""
    started = utcnow()
    x_train, y_train = check_xy(x_train, y_train, "x_train")
    x_test, y_test = check_xy(x_test, y_test, "x_test")
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
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("adversarial-robustness-toolbox"), started_at=started,
        metrics={"auc": max(a["auc"] for a in attacks.values()),
                 "advantage": max(a["advantage"] for a in attacks.values()),
                 "samples_per_side": n, "seed": config.seed, "attack_model": config.attack_model,
                 "member_digest": indices_digest(members), "non_member_digest": indices_digest(others),
                 "train_accuracy": round(float((member_p.argmax(1) == member_y).mean()), 4),
                 "test_accuracy": round(float((other_p.argmax(1) == other_y).mean()), 4),
                 "attacks": attacks},
        thresholds={"max_auc": config.max_auc, "max_advantage": config.max_advantage},
        findings=findings,
    )
