"""``model.poisoning`` against ART's own backdoor attacks, beside ART's own poison detectors, in one run.

Digits CNN (``tests/fixtures/models.py``), trusted reference = the held-out 35%:
PoisoningAttackBackdoor (``add_pattern_bd``, ``add_single_bd``, ``insert_image``; all-to-one onto label 0 and
all-to-all ``y → y+1``), PoisoningAttackCleanLabelBackdoor and HiddenTriggerBackdoor (target 0, source 1),
each at 1%, 5% and 10% of the training rows and over ``--seeds``. Per run: attack success (triggered
held-out rows of the attacked labels classified as the target), the gate's verdict, its recall and
false-positive rate over the training rows, and the same for ART's ActivationDefence (2-means, "smaller")
and SpectralSignatureDefense. Then clean models over ``--clean-seeds``, a tabular scikit-learn case (label
flips and a feature-space trigger on flattened digits, logistic regression) and the demo's loan model, with
seconds per audit.

Acceptance (issue 22): of the attacks that work (success ≥ 0.6), ≥ 90% blocked (or blocked as underpowered
with the reference rows needed); clean models blocked ≤ 5%.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/poisoning.py [--quick] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test fixtures' datasets and models

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET, SOURCE = 0, 1
HELD_OUT = 0.35  # the trusted reference: at 30% the smallest label's 52 rows are too few for 1% poison (ADR 0037)
BLOCKED = "blocked"


def art_classifier(model):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model, torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                             clip_values=(0.0, 1.0), optimizer=torch.optim.Adam(model.parameters(), 1e-3))


def trigger_image(folder: Path) -> str:
    """A 3×3 checkerboard PNG for ``insert_image`` (ART ships no image in its wheel)."""
    from PIL import Image

    path = folder / "checker.png"
    Image.fromarray((np.indices((3, 3)).sum(0) % 2 * 255).astype(np.uint8), mode="L").save(path)
    return str(path)


def perturbations(folder: Path) -> dict:
    """ART's image triggers on ``(n, 1, 8, 8)`` digits (they take ``(n, H, W)``)."""
    from art.attacks.poisoning.perturbations import add_pattern_bd, add_single_bd, insert_image

    image = trigger_image(folder)

    def channel(fn):
        return lambda x: fn(x[:, 0])[:, None].astype(np.float32)

    return {"add_pattern_bd": channel(lambda x: add_pattern_bd(x, pixel_value=1)),
            "add_single_bd": channel(lambda x: add_single_bd(x, pixel_value=1)),
            "insert_image": lambda x: insert_image(x, backdoor_path=image, channels_first=True, random=False,
                                                   x_shift=5, y_shift=5, size=(3, 3), blend=1.0)}


def backdoor(x, y, fraction, perturb, mode, rng):
    """PoisoningAttackBackdoor on ``fraction`` of all rows: onto ``TARGET`` (all-to-one) or ``y+1`` (all-to-all)."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    pool = np.flatnonzero(y != TARGET) if mode == "all-to-one" else np.arange(len(y))
    rows = rng.choice(pool, round(fraction * len(y)), replace=False)
    goal = np.full(len(rows), TARGET) if mode == "all-to-one" else (y[rows] + 1) % 10
    poisoned_x, _ = PoisoningAttackBackdoor(perturb).poison(x[rows], np.eye(10)[goal], broadcast=False)
    x, y = x.copy(), y.copy()
    x[rows], y[rows] = poisoned_x, goal
    return x, y, rows


def clean_label(x, y, fraction, perturb, proxy):
    """PoisoningAttackCleanLabelBackdoor: target-label rows made hard by PGD on a proxy, then triggered."""
    from art.attacks.poisoning import PoisoningAttackBackdoor, PoisoningAttackCleanLabelBackdoor

    share = min(0.99, fraction * len(y) / (y == TARGET).sum())  # ART takes 0 < pp_poison < 1
    attack = PoisoningAttackCleanLabelBackdoor(PoisoningAttackBackdoor(perturb), proxy, np.eye(10)[TARGET],
                                               pp_poison=share, eps=0.3, eps_step=0.05, max_iter=20)
    poisoned_x, _ = attack.poison(x, np.eye(10)[y])
    rows = np.flatnonzero(np.abs(poisoned_x - x).reshape(len(x), -1).max(1) > 1e-6)
    return poisoned_x.astype(np.float32), y.copy(), rows


def hidden_trigger(x, y, fraction, perturb, proxy, max_iter):
    """HiddenTriggerBackdoor: target-label rows moved, within ε, onto triggered source rows' features."""
    from art.attacks.poisoning import HiddenTriggerBackdoor, PoisoningAttackBackdoor

    share = min(1.0, fraction * len(y) / (y == TARGET).sum())
    attack = HiddenTriggerBackdoor(proxy, target=np.eye(10)[TARGET], source=np.eye(10)[SOURCE],
                                   feature_layer="features", backdoor=PoisoningAttackBackdoor(perturb), eps=0.25,
                                   learning_rate=0.01, max_iter=max_iter, batch_size=32, poison_percent=share,
                                   verbose=False, print_iter=max_iter + 1)
    poisoned, rows = attack.poison(x, np.eye(10)[y])
    x = x.copy()
    x[rows] = poisoned
    return x, y.copy(), rows


def success(model, x_test, y_test, perturb, mode, sources=None) -> float:
    keep = y_test != TARGET if sources is None else np.isin(y_test, sources)
    goal = np.full(keep.sum(), TARGET) if mode != "all-to-all" else (y_test[keep] + 1) % 10
    with torch.no_grad():
        predicted = model(torch.as_tensor(perturb(x_test[keep]))).argmax(1).numpy()
    return float((predicted == goal).mean())


def rates(flagged: np.ndarray, poisoned: np.ndarray, prefix: str = "") -> dict[str, float]:
    recall = (flagged & poisoned).sum() / max(poisoned.sum(), 1)
    return {f"{prefix}recall": float(recall), f"{prefix}fpr": float((flagged & ~poisoned).sum() / (~poisoned).sum())}


def audit(model, x, y, x_ref, y_ref, out: Path):
    """The gate: verdict, flagged mask, whether it blocked as underpowered, seconds."""
    from mlgate.gates.model.poisoning import SUSPECTS_FILE, PoisoningPolicy, check_poisoning

    start = time.perf_counter()
    result = check_poisoning(model, x, y, x_ref, y_ref, PoisoningPolicy(), "p", model_digest="sha256:m",
                             out_dir=out)
    seconds = time.perf_counter() - start
    flagged = np.zeros(len(y), dtype=bool)
    for rows in json.loads((out / SUSPECTS_FILE).read_text()).values():
        flagged[rows] = True
    underpowered = any(f.id.endswith(".underpowered") for f in result.findings)
    return result, flagged, underpowered, seconds


def art_defences(model, x, y):
    """Flagged masks of ART's ActivationDefence and SpectralSignatureDefense on the training rows."""
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense

    classifier, onehot = art_classifier(model), np.eye(10)[y]
    _, clean_ad = ActivationDefence(classifier, x, onehot).detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA",
                                                                         cluster_analysis="smaller")
    _, clean_ss = SpectralSignatureDefense(classifier, x, onehot, expected_pp_poison=0.1, batch_size=128,
                                           eps_multiplier=1.5).detect_poison()
    return ~np.asarray(clean_ad, dtype=bool), ~np.asarray(clean_ss, dtype=bool)


def digits_runs(args, folder: Path) -> list[dict]:
    from tests.fixtures.models import DigitsCNN, digits, train

    x_train, x_test, y_train, y_test = digits(images=True, test_size=HELD_OUT)
    kinds = perturbations(folder)
    proxy = art_classifier(train(DigitsCNN(99), x_train, y_train, seed=99))
    cases = [("backdoor", name, mode) for name in kinds for mode in ("all-to-one", "all-to-all")]
    cases += [("clean-label", "add_pattern_bd", "all-to-one"), ("hidden-trigger", "add_pattern_bd", "all-to-one")]
    cases = [case for case in cases if case[0] in args.attacks]
    rows = []
    for attack, name, mode in cases:
        for fraction in args.fractions:
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                np.random.seed(seed)  # the clean-label and hidden-trigger attacks draw from numpy's global RNG
                perturb = kinds[name]
                if attack == "backdoor":
                    x, y, poisoned_rows = backdoor(x_train, y_train, fraction, perturb, mode, rng)
                elif attack == "clean-label":
                    x, y, poisoned_rows = clean_label(x_train, y_train, fraction, perturb, proxy)
                else:
                    x, y, poisoned_rows = hidden_trigger(x_train, y_train, fraction, perturb, proxy, args.htbd_iter)
                poisoned = np.zeros(len(y), dtype=bool)
                poisoned[poisoned_rows] = True
                model = train(DigitsCNN(seed), x, y, seed=seed)
                worked = success(model, x_test, y_test, perturb, mode,
                                 sources=[SOURCE] if attack == "hidden-trigger" else None)
                result, flagged, underpowered, seconds = audit(model, x, y, x_test, y_test, folder)
                ad, ss = art_defences(model, x, y)
                row = {"model": "digits-cnn", "attack": attack, "trigger": name, "mode": mode, "fraction": fraction,
                       "seed": seed, "poisoned": int(poisoned.sum()), "success": round(worked, 3),
                       "verdict": result.status.value, "underpowered": underpowered,
                       "reference_needed": result.metrics["power"]["reference_needed"], "seconds": round(seconds, 2),
                       **rates(flagged, poisoned), **rates(ad, poisoned, "ad_"), **rates(ss, poisoned, "ss_")}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def clean_runs(args, folder: Path) -> list[dict]:
    """Clean digits CNNs: each seed its own split and its own initialisation."""
    from tests.fixtures.models import DigitsCNN, digits, train

    rows = []
    for seed in range(args.clean_seeds):
        x_train, x_test, y_train, y_test = digits(images=True, seed=seed, test_size=HELD_OUT)
        model = train(DigitsCNN(seed), x_train, y_train, seed=seed)
        result, flagged, _, seconds = audit(model, x_train, y_train, x_test, y_test, folder)
        row = {"model": "digits-cnn", "attack": "clean", "seed": seed, "verdict": result.status.value,
               "fpr": float(flagged.mean()), "seconds": round(seconds, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def tabular_runs(args, folder: Path) -> list[dict]:
    """Logistic regression on flattened digits: clean, label flips (source → target) and a feature trigger."""
    from art.attacks.poisoning import PoisoningAttackBackdoor
    from sklearn.linear_model import LogisticRegression
    from tests.fixtures.models import digits

    def trigger(x):
        x = x.copy()
        x[:, [0, 7, 56]] = 1.0  # three corner pixels no clean digit inks
        return x

    rows = []
    for seed in range(args.clean_seeds):
        x_train, x_test, y_train, y_test = digits(seed=seed, test_size=HELD_OUT)
        rng = np.random.default_rng(seed)
        cases = [("clean", 0.0)] + [(kind, f) for kind in ("label-flip", "feature-trigger") for f in args.fractions]
        for kind, fraction in cases if seed < args.seeds else cases[:1]:
            x, y = x_train.copy(), y_train.copy()
            pool = np.flatnonzero(y == SOURCE) if kind == "label-flip" else np.flatnonzero(y != TARGET)
            rows_p = rng.choice(pool, min(len(pool), round(fraction * len(y))), replace=False)
            if kind == "feature-trigger":
                x[rows_p], _ = PoisoningAttackBackdoor(trigger).poison(x[rows_p], np.eye(10)[[TARGET]])
            y[rows_p] = TARGET
            poisoned = np.zeros(len(y), dtype=bool)
            poisoned[rows_p] = True
            model = LogisticRegression(max_iter=1000).fit(x, y)
            if kind == "label-flip":
                worked = float((model.predict(x_test[y_test == SOURCE]) == TARGET).mean())
            elif kind == "feature-trigger":
                worked = float((model.predict(trigger(x_test[y_test != TARGET])) == TARGET).mean())
            else:
                worked = 0.0
            result, flagged, underpowered, seconds = audit(model, x, y, x_test, y_test, folder)
            row = {"model": "digits-logreg", "attack": kind if fraction else "clean", "mode": "all-to-one",
                   "fraction": fraction, "seed": seed, "poisoned": int(poisoned.sum()), "success": round(worked, 3),
                   "verdict": result.status.value, "underpowered": underpowered, **rates(flagged, poisoned),
                   "seconds": round(seconds, 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def demo_runs(args, folder: Path) -> list[dict]:
    """The demo's loan model (its own pipeline and split), audited in its feature space as the DAG does."""
    from mlgate.demo.dataset import write_loans
    from mlgate.demo.train import train_loan_model, validation_data
    from mlgate.gates.model.model_validation import feature_view

    rows = []
    for seed in range(args.demo_seeds):
        data = write_loans(folder / "loans.csv", rows=4000, seed=seed)
        model, _ = train_loan_model(str(data), {"C": 1.0, "max_iter": 500}, seed=7)
        view = feature_view(model, validation_data(str(data), seed=7))
        d = view.data
        result, flagged, underpowered, seconds = audit(view.model, d.x_train, d.y_train, d.x_test, d.y_test, folder)
        row = {"model": "demo-loan", "attack": "clean", "seed": seed, "verdict": result.status.value,
               "underpowered": underpowered, "fpr": float(flagged.mean()), "seconds": round(seconds, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def summary(rows: list[dict]) -> None:
    attacks = [r for r in rows if r["attack"] != "clean"]
    working = [r for r in attacks if r["success"] >= 0.6]
    caught = [r for r in working if r["verdict"] == BLOCKED]
    print(f"\nattacks that work (success >= 0.6): {len(working)} of {len(attacks)}; blocked {len(caught)} "
          f"({len(caught) / max(len(working), 1):.0%}), of which underpowered {sum(r['underpowered'] for r in caught)}")
    for key in sorted({(r["model"], r["attack"], r.get("mode", "")) for r in working}):
        group = [r for r in working if (r["model"], r["attack"], r.get("mode", "")) == key]
        art = [r for r in group if "ad_recall" in r]
        line = (f"  {' / '.join(key):40s} {sum(r['verdict'] == BLOCKED for r in group)}/{len(group)} blocked, "
                f"recall {np.mean([r['recall'] for r in group]):.2f}, FPR {np.mean([r['fpr'] for r in group]):.3f}")
        if art:
            line += (f" | ART AD recall {np.mean([r['ad_recall'] for r in art]):.2f} FPR "
                     f"{np.mean([r['ad_fpr'] for r in art]):.3f}, SS recall "
                     f"{np.mean([r['ss_recall'] for r in art]):.2f} FPR {np.mean([r['ss_fpr'] for r in art]):.3f}")
        print(line)
    for model in sorted({r["model"] for r in rows if r["attack"] == "clean"}):
        clean = [r for r in rows if r["attack"] == "clean" and r["model"] == model]
        print(f"clean {model}: blocked {sum(r['verdict'] == BLOCKED for r in clean)} of {len(clean)}, "
              f"seconds per audit {np.median([r['seconds'] for r in clean]):.2f} (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 5%% poison, 3 clean seeds")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per attack and fraction")
    parser.add_argument("--clean-seeds", type=int, default=10, help="clean models per model family")
    parser.add_argument("--demo-seeds", type=int, default=3, help="demo loan datasets")
    parser.add_argument("--htbd-iter", type=int, default=300, help="HiddenTriggerBackdoor optimisation steps")
    parser.add_argument("--attacks", nargs="+", default=["backdoor", "clean-label", "hidden-trigger"],
                        help="ART attacks on the digits CNN (default: all three)")
    parser.add_argument("--attacks-only", action="store_true", help="skip the clean, tabular and demo models")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()
    args.fractions = (0.05,) if args.quick else (0.01, 0.05, 0.1)
    if args.quick:
        args.seeds, args.clean_seeds, args.demo_seeds, args.htbd_iter = 1, 3, 1, 100
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows = [] if args.attacks_only else clean_runs(args, folder) + demo_runs(args, folder) + tabular_runs(args,
                                                                                                             folder)
        rows += digits_runs(args, folder)
    summary(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
