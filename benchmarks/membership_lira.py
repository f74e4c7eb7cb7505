"""``model.privacy`` against LiRA: issue 22's table rebuilt, the gate's verdict before and after, in one run.

Per model: the old gate (ART black-box + loss threshold under the shipped policy, what ``model.privacy`` was
before LiRA and is now its pre-check), the new gate under the shipped default policy, LiRA's pooled AUC and
TPR at 0.1 % and 1 % FPR (the stronger of online and offline, 95 % Wilson interval, and the false positives
the 0.1 % threshold rests on), and the seconds one audit takes on this machine. When the pre-check already
blocks, the gate spends nothing on shadows; LiRA's numbers then come from a separate audit on the same model.

Acceptance (issue 22): every model with LiRA TPR@0.1 % ≥ 2 % or TPR@1 % ≥ 5 % is blocked by the default
policy, the regularised logistic regressions pass.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/membership_lira.py [--quick] [--device cpu|cuda]
        [--only CASE ...] [--lira-only]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test fixtures' datasets and models

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Case:
    key: str
    data: str
    model: str
    build: Callable[[], tuple]  # -> (fitted model, x_train, y_train, x_test, y_test)
    lira: dict  # policy overrides of the lira section (a torch model's training recipe)


def _halves(x, y, seed=0):
    from sklearn.model_selection import train_test_split

    return train_test_split(x.astype(np.float32), y, test_size=0.5, random_state=seed, stratify=y)


def _fit(model, x, y):
    x_train, x_test, y_train, y_test = _halves(x, y)
    return model.fit(x_train, y_train), x_train, y_train, x_test, y_test


def _adult_like(rows: int = 2000):
    """The demo's synthetic loans (income, credit score, categories, noisy labels), one-hot encoded."""
    import pandas as pd

    from mlgate.demo.dataset import FEATURES, TARGET, generate_loans

    frame = generate_loans(rows, seed=3)
    return pd.get_dummies(frame[list(FEATURES)], dtype=float).to_numpy(), frame[TARGET].to_numpy()


def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


def _demo():
    from mlgate.demo.dataset import write_loans
    from mlgate.demo.train import train_loan_model, validation_data
    from mlgate.gates.model.model_validation import feature_view

    path = write_loans(Path(tempfile.mkdtemp()) / "loans.csv", rows=4000, seed=101)
    model, _ = train_loan_model(str(path), {}, 0)
    view = feature_view(model, validation_data(str(path), 0))
    d = view.data
    return view.model, d.x_train, d.y_train, d.x_test, d.y_test


def _cnn():
    """The fixtures' digits CNN, trained as ``tests.fixtures.models.digits_cnn`` trains it."""
    from tests.fixtures.models import DigitsCNN, digits, train

    x_train, x_test, y_train, y_test = digits(images=True)
    return train(DigitsCNN(), x_train, y_train, epochs=15, seed=0, lr=3e-3), x_train, y_train, x_test, y_test


def cases(quick: bool, device: str) -> list[Case]:
    from sklearn.datasets import load_breast_cancer, make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    trees = 50 if quick else 100
    every = [
        Case("adult_rf", "synthetic adult-like (2,000)", "random forest, depth 6",
             lambda: _fit(RandomForestClassifier(trees, max_depth=6, random_state=0), *_adult_like()), {}),
        Case("digits_rf", "digits (1,797)", "random forest, depth 6",
             lambda: _fit(RandomForestClassifier(trees, max_depth=6, random_state=0), *_digits()), {}),
        Case("digits_mlp", "digits (1,797)", "MLP, 100% train accuracy",
             lambda: _fit(MLPClassifier((128,), alpha=1e-5, max_iter=400, random_state=0), *_digits()), {}),
        Case("cancer_rf", "breast cancer (569)", "random forest, full depth",
             lambda: _fit(RandomForestClassifier(trees, random_state=0), *load_breast_cancer(return_X_y=True)), {}),
        Case("synthetic_lr", "synthetic (2,000)", "logistic regression, C 0.01",
             lambda: _fit(LogisticRegression(C=0.01, max_iter=2000),
                          *make_classification(2000, 20, n_informative=5, random_state=0)), {}),
        Case("demo", "demo loans (4,000)", "demo pipeline: logistic regression", _demo, {}),
        Case("digits_cnn", "digits (1,797)", "digits CNN (torch, 15 epochs)", _cnn,
             {"torch": {"epochs": 15, "batch_size": 64, "learning_rate": 3e-3}, "device": device}),
    ]
    return [c for c in every if c.key in ("adult_rf", "synthetic_lr", "demo")] if quick else every


def _strongest(summary: dict) -> tuple[float, list[dict]]:
    """The variant with the higher TPR at the lowest FPR: its AUC and TPR rows."""
    variant = max(summary.values(), key=lambda s: (s["at_fpr"][0]["tpr"], s["at_fpr"][1]["tpr"]))
    return variant["auc"], variant["at_fpr"]


def run_case(case: Case, section: dict, lira_only: bool) -> dict:
    from mlgate.gates.model.membership import _precheck, check_membership, lira_audit, lira_findings
    from mlgate.gates.model.policies import MembershipPolicy

    model, x_train, y_train, x_test, y_test = case.build()
    policy = MembershipPolicy.model_validate({**section, "lira": {**section.get("lira", {}), **case.lira}})
    if lira_only:  # where ART is not installed (a GPU machine): the audit alone, its findings as the verdict
        start = time.perf_counter()
        audit = lira_audit(model, x_train, y_train, x_test, y_test, policy.lira)
        seconds = time.perf_counter() - start
        auc, at = _strongest(audit["pooled"])
        return {"case": case, "old": "-", "new": "blocked" if lira_findings(audit, policy.lira) else "passed",
                "old_auc": float("nan"), "old_adv": float("nan"), "auc": auc, "at": at,
                "shadows": audit["shadows"], "seconds": seconds}
    old_metrics, old_findings = _precheck(model, x_train, y_train, x_test, y_test, policy)
    start = time.perf_counter()
    result = check_membership(model, x_train, y_train, x_test, y_test, policy, "p", model_digest="m")
    seconds = time.perf_counter() - start
    audit = result.metrics["lira"]
    if "skipped" in audit:
        start = time.perf_counter()
        audit = lira_audit(model, x_train, y_train, x_test, y_test, policy.lira)
        seconds = time.perf_counter() - start
    auc, at = _strongest(audit["pooled"])
    return {"case": case, "old": "blocks" if old_findings else "passes", "new": result.status.value,
            "old_auc": old_metrics["auc"], "old_adv": old_metrics["advantage"], "auc": auc, "at": at,
            "shadows": audit["shadows"], "seconds": seconds}


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three cases, smaller forests")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where torch shadows train")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases (adult_rf, digits_rf, "
                        "digits_mlp, cancer_rf, synthetic_lr, demo, digits_cnn)")
    parser.add_argument("--lira-only", action="store_true",
                        help="LiRA alone, no ART pre-check or gate (a machine without ART); verdict = LiRA's")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cpu":
        import torch

        torch.set_num_threads(1)
    section = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())["gates"]["model.privacy"]
    print(f"default policy: {section}")
    header = (f"{'data':30} {'model':36} {'old gate AUC/adv':>16} {'old':>6} {'new':>7} {'LiRA AUC':>8} "
              f"{'TPR@0.1% [95% CI]':>22} {'FP@0.1%':>9} {'TPR@1% [95% CI]':>22} {'shadows':>7} {'s/audit':>7}  ok")
    print(header, flush=True)
    for case in cases(args.quick, args.device):
        if args.only and case.key not in args.only:
            continue
        row = run_case(case, section, args.lira_only)
        low, one = row["at"]
        leaks = low["tpr"] >= 0.02 or one["tpr"] >= 0.05
        ok = (row["new"] == "blocked") if leaks else True
        print(f"{case.data:30} {case.model:36} {row['old_auc']:.2f} / {row['old_adv']:.2f}".ljust(86)
              + f" {row['old']:>6} {row['new']:>7} {row['auc']:8.3f} "
              f"{low['tpr']:6.2%} [{low['tpr_ci95'][0]:.2%}-{low['tpr_ci95'][1]:.2%}]".rjust(22)
              + f" {low['allowed_false_positives']:>4}/{low['non_members']:<6}"
              f"{one['tpr']:6.2%} [{one['tpr_ci95'][0]:.2%}-{one['tpr_ci95'][1]:.2%}]".rjust(22)
              + f" {row['shadows']:>7} {row['seconds']:7.1f}  {'yes' if ok else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
