"""LiRA, the likelihood-ratio membership attack (Carlini et al. 2022, "Membership Inference Attacks From
First Principles"), and how it is scored: TPR at fixed low FPRs, pooled over many targets.

Shadow models of the audited estimator are trained on random halves of the population, balanced so that
every row is IN for exactly half of them (``balanced_halves``). A model's confidence in a row's true label,
logit-scaled (φ = log p_y − log Σ_{y'≠y} p_y'), is close to Gaussian over training runs. Per row, LiRA fits
the IN and OUT Gaussians on the shadows and scores a target model's φ:

* online: the log likelihood ratio log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out);
* offline: OUT models only, the one-sided z-score (φ − μ_out) / σ_out: a row the model is unusually sure of.

Below ``PER_ROW_VARIANCE_MIN`` shadows per side a per-row variance is noise; σ is then pooled over rows
(the paper's "global variance", its choice under 64 shadows).

One model's held-out rows cannot resolve a 0.1 % FPR: 1,000 of them put it on one false positive. So the
audit pools targets: the audited model (scored by every shadow) and each shadow in turn (scored by the
others, leave-one-out), and every TPR says how many non-member false positives its threshold rests on.
Pure numpy: the same code scores scikit-learn and torch models, on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlgate.gates.model.model_eval import wilson_interval

PER_ROW_VARIANCE_MIN = 32
TINY = 1e-30  # the least floor of a probability before the log
MIN_SIGMA = 1e-3  # rows every shadow is equally sure of would otherwise give σ = 0
VARIANTS = ("online", "offline")


def logit_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """φ = log p_y − log Σ_{y'≠y} p_y' per row; the wrong classes are summed, not taken as 1 − p_y (which
    rounds to 0 for a confident model).

    An exact 0 becomes half the smallest positive probability the model gave: a forest of T trees answers in
    steps of 1/T, and flooring its zeros at 1e-30 would turn "all trees agree" into φ ≈ 69 beside 4.6 for
    "all but one" — a gap no Gaussian fits (LiRA's AUC on a full-depth forest fell from 0.75 to 0.59). A
    softmax's smallest positive output is far below anything it distinguishes, so neural networks keep theirs.
    """
    probs = np.asarray(probs, dtype=np.float64)
    positive = probs[probs > 0]
    floor = max(TINY, 0.5 * float(positive.min())) if positive.size else TINY
    rows = np.arange(len(labels))
    right = probs[rows, labels]
    masked = probs.copy()
    masked[rows, labels] = 0.0
    wrong = masked.sum(axis=1)
    return np.log(np.maximum(right, floor)) - np.log(np.maximum(wrong, floor))


def balanced_halves(shadows: int, rows: int, seed: int) -> np.ndarray:
    """``(shadows, rows)`` booleans: shadow i trains on row j; every row is IN for exactly half the shadows."""
    return np.random.default_rng(seed).random((shadows, rows)).argsort(axis=0) < shadows // 2


def _gaussian(phi: np.ndarray, mask: np.ndarray, pooled: bool) -> tuple[np.ndarray, np.ndarray]:
    count = mask.sum(axis=0)
    mean = np.where(mask, phi, 0.0).sum(axis=0) / np.maximum(count, 1)
    var = np.where(mask, (phi - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count - 1, 1)
    if pooled:
        var = np.full_like(var, var.mean())
    return mean, np.maximum(np.sqrt(var), MIN_SIGMA)


def _log_density(x: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / sigma) ** 2 - np.log(sigma)


def lira_scores(target_phi: np.ndarray, phi: np.ndarray, keep: np.ndarray, per_row: bool) -> dict[str, np.ndarray]:
    """Both variants' scores of ``target_phi`` against shadows ``phi`` trained on ``keep``; higher = member."""
    mean_in, sigma_in = _gaussian(phi, keep, not per_row)
    mean_out, sigma_out = _gaussian(phi, ~keep, not per_row)
    return {"online": _log_density(target_phi, mean_in, sigma_in) - _log_density(target_phi, mean_out, sigma_out),
            "offline": (target_phi - mean_out) / sigma_out}


@dataclass(frozen=True)
class Scored:
    """Per variant, scores of (target, row) pairs and whether the row trained that target."""

    scores: dict[str, np.ndarray]
    members: np.ndarray
    targets: int
    per_row: bool  # per-row σ, or σ pooled over rows


def pooled_scores(target_phi: np.ndarray, target_members: np.ndarray, phi: np.ndarray,
                  keep: np.ndarray) -> tuple[Scored, Scored]:
    """The audited model alone (every shadow as reference), and pooled with each shadow as a target in turn."""
    per_row = int(keep.sum(axis=0).min()) - 1 >= PER_ROW_VARIANCE_MIN  # leave-one-out has one fewer per side
    alone = lira_scores(target_phi, phi, keep, per_row)
    parts, members = [alone], [target_members]
    everyone = np.arange(len(phi))
    for j in everyone:
        others = everyone != j
        parts.append(lira_scores(phi[j], phi[others], keep[others], per_row))
        members.append(keep[j])
    pooled = {v: np.concatenate([p[v] for p in parts]) for v in VARIANTS}
    return (Scored(alone, np.asarray(target_members, bool), 1, per_row),
            Scored(pooled, np.concatenate(members).astype(bool), len(parts), per_row))


def tpr_at_fpr(scores: np.ndarray, members: np.ndarray, fpr: float) -> dict[str, float | int | list[float]]:
    """TPR at the threshold that lets ``floor(fpr · non-members)`` non-members through, with its Wilson 95 %
    interval (given the threshold); ``allowed_false_positives`` is what the rate rests on."""
    negatives = np.sort(scores[~members])[::-1]
    positives = scores[members]
    allowed = math.floor(fpr * len(negatives) + 1e-9)
    threshold = negatives[allowed] if allowed < len(negatives) else -np.inf
    found = int((positives > threshold).sum())
    return {"fpr": fpr, "tpr": round(found / len(positives), 5),
            "tpr_ci95": list(wilson_interval(found, len(positives))),
            "false_positives": int((negatives > threshold).sum()), "allowed_false_positives": allowed,
            "members": len(positives), "non_members": len(negatives)}


def auc(scores: np.ndarray, members: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(members, scores)), 4)


def summarise(scored: Scored, fprs: tuple[float, ...]) -> dict[str, dict]:
    """Per variant: AUC and TPR at each of ``fprs``."""
    return {v: {"auc": auc(scored.scores[v], scored.members),
                "at_fpr": [tpr_at_fpr(scored.scores[v], scored.members, f) for f in fprs]} for v in VARIANTS}
