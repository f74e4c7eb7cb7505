"""Model validation gates: each gate's overhead over the bare library call, and the torch PGD loop's speed.

Part 1 runs each gate and the bare ART / fairlearn / scikit-learn call it wraps on the same data in the
same process (best of ``--repeats``); goal: the gate within 10% of the bare call. The poisoning gate is
a different algorithm from ART's ``ActivationDefence``, so its row also shows both detectors' recall and
false-positive rate on the planted backdoor.

Part 2 compares PGD-10 throughput of the gate's own on-device loop with ART's
``ProjectedGradientDescentPyTorch`` on a CIFAR-shaped CNN (3×32×32, 10 classes); ``--device cuda`` on a GPU.

    .venv/bin/python benchmarks/model_gates.py [--quick] [--device cpu|cuda] [--pgd-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test fixtures' datasets and models

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def robustness_rows(samples: int, repeats: int) -> list[tuple]:
    from art.attacks.evasion import ProjectedGradientDescentNumpy
    from art.estimators.classification import SklearnClassifier
    from sklearn.linear_model import LogisticRegression
    from tests.fixtures.models import digits

    from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness

    x_train, x_test, y_train, y_test = digits()
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    x, y = x_test[:samples], y_test[:samples]
    policy = RobustnessPolicy(attacks=[{"name": "pgd", "eps": 0.1, "steps": 10, "samples": samples}],
                              min_robust_accuracy=0.5, max_accuracy_drop=0.5, curve_factors=())

    def bare():
        classifier = SklearnClassifier(model, clip_values=(0.0, 1.0))
        attack = ProjectedGradientDescentNumpy(classifier, eps=0.1, eps_step=0.025, max_iter=10, batch_size=256,
                                               verbose=False)
        x_adv = attack.generate(x, y=y)
        return classifier.predict(x).argmax(1), classifier.predict(x_adv).argmax(1)

    def gate():
        return check_robustness(model, x, y, policy, "p", model_digest="sha256:m")

    return [("model.robustness (LR, ART PGD-10)", best_of(repeats, bare), best_of(repeats, gate), "")]


def membership_rows(samples: int, repeats: int) -> list[tuple]:
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import SklearnClassifier
    from sklearn.ensemble import RandomForestClassifier
    from tests.fixtures.models import digits

    from mlgate.gates.model.membership import MembershipPolicy, check_membership

    x_train, x_test, y_train, y_test = digits(test_size=0.5)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x_train, y_train)
    n = min(samples, len(x_train), len(x_test))
    half = n // 2

    def bare():
        attack = MembershipInferenceBlackBox(SklearnClassifier(model), attack_model_type="rf")
        attack.fit(x_train[:half], y_train[:half], x_test[:half], y_test[:half])
        return attack.infer(np.r_[x_train[half:n], x_test[half:n]], np.r_[y_train[half:n], y_test[half:n]],
                            probabilities=True)

    def gate():
        return check_membership(model, x_train, y_train, x_test, y_test, MembershipPolicy(samples=n), "p",
                                model_digest="sha256:m")

    return [("model.privacy (ART MIA black-box rf)", best_of(repeats, bare), best_of(repeats, gate), "")]


def fairness_rows(samples: int, repeats: int) -> list[tuple]:
    import pandas as pd
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.linear_model import LogisticRegression

    from mlgate.gates.model.fairness import FairnessPolicy, check_fairness

    rng = np.random.default_rng(0)
    n = samples * 20
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + rng.normal(size=n) > 0).astype(int)
    sensitive = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "age": rng.choice(["a", "b", "c"], n)})
    model = LogisticRegression().fit(x, y)
    metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate, "count": count}

    def bare():
        y_pred = model.predict(x)
        return [MetricFrame(metrics=metrics, y_true=y, y_pred=y_pred, sensitive_features=sensitive[c]).by_group
                for c in ("sex", "age")]

    def gate():
        return check_fairness(model, x, y, sensitive, FairnessPolicy(sensitive_columns=("sex", "age")), "p",
                              model_digest="sha256:m")

    return [("model.fairness (fairlearn MetricFrame)", best_of(repeats, bare), best_of(repeats, gate), "")]


def explainability_rows(samples: int, repeats: int) -> list[tuple]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.inspection import permutation_importance

    from mlgate.gates.model.explainability import ExplainabilityPolicy, check_explainability

    x, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(x[:300], y[:300])
    x_test, y_test = x[300:300 + samples], y[300:300 + samples]
    policy = ExplainabilityPolicy(n_repeats=5, samples=len(x_test))

    def bare():
        return permutation_importance(model, x_test.astype(np.float32), y_test, n_repeats=5, random_state=0)

    def gate():
        return check_explainability(model, x_test, y_test, policy, "p", model_digest="sha256:m")

    return [("model.explainability (permutation imp.)", best_of(repeats, bare), best_of(repeats, gate), "")]


def poisoning_rows(repeats: int) -> list[tuple]:
    from art.defences.detector.poison import ActivationDefence
    from art.estimators.classification import PyTorchClassifier
    from tests.fixtures.models import DigitsCNN, backdoored_digits, digits, train

    from mlgate.gates.model.poisoning import PoisoningPolicy, activations, check_poisoning, detect

    x, y, poisoned = backdoored_digits(test_size=0.35)  # 30% held out is too few for 1% poison (ADR 0037)
    model = train(DigitsCNN(), x, y, seed=0)
    _, x_ref, _, y_ref = digits(images=True, test_size=0.35)
    classifier = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                                   clip_values=(0.0, 1.0))
    y_onehot = np.eye(10)[y]

    def bare():
        defence = ActivationDefence(classifier, x, y_onehot)
        _, clean = defence.detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA", cluster_analysis="smaller")
        return np.asarray(clean) == 0

    def ours():
        found = detect(activations(model, x), y, activations(model, x_ref), y_ref, PoisoningPolicy())
        flagged = np.zeros(len(y), dtype=bool)
        for rows in found.suspects.values():
            flagged[rows] = True
        return flagged

    def quality(flagged):
        return (f"recall {(flagged & poisoned).sum() / poisoned.sum():.2f}, "
                f"FPR {(flagged & ~poisoned).sum() / (~poisoned).sum():.3f}")

    note = f"ART: {quality(bare())}; mlgate: {quality(ours())}"
    gate_seconds = best_of(repeats, lambda: check_poisoning(model, x, y, x_ref, y_ref, PoisoningPolicy(), "p",
                                                            model_digest="sha256:m"))
    return [("model.poisoning (vs ART ActivationDefence)", best_of(repeats, bare), gate_seconds, note)]


class CifarCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def learnable_images(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-shaped images a CNN learns in seconds: one of 10 random prototypes plus noise, labelled by it.
    A trained model makes robust accuracy meaningful (random labels would leave both attacks at chance)."""
    prototypes = np.random.default_rng(0).random((10, 3, 32, 32), dtype=np.float32)
    rng = np.random.default_rng(seed + 1)
    y = rng.integers(0, 10, samples)
    x = np.clip(0.6 * prototypes[y] + 0.4 * rng.random((samples, 3, 32, 32), dtype=np.float32), 0, 1)
    return x.astype(np.float32), y


def trained_cnn(x: np.ndarray, y: np.ndarray, device: str, steps: int) -> nn.Module:
    torch.manual_seed(0)
    model = CifarCNN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    for _ in range(steps):
        batch = torch.randint(len(xt), (64,), device=device)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
        optimizer.step()
    return model.eval()


def pgd_throughput(samples: int, device: str, batch_size: int, repeats: int, eps: float) -> dict[str, float]:
    """Samples/s and robust accuracy of ART's PGD-10 and the gate's, on the same trained model and samples."""
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    from mlgate.gates.model.torch_attacks import attack

    x, y = learnable_images(samples)
    model = trained_cnn(*learnable_images(4096, seed=1), device, steps=300 if device == "cuda" else 40)
    classifier = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=(3, 32, 32), nb_classes=10,
                                   clip_values=(0.0, 1.0), device_type="gpu" if device == "cuda" else "cpu")
    art_attack = ProjectedGradientDescentPyTorch(classifier, eps=eps, eps_step=eps / 4, max_iter=10,
                                                 batch_size=batch_size, verbose=False)

    def art_run():
        x_adv = art_attack.generate(x, y=y)
        return classifier.predict(x_adv, batch_size=batch_size).argmax(1)

    def own_run():
        out = attack(model, x, y, eps=eps, eps_step=eps / 4, steps=10, norm=np.inf, clip=(0.0, 1.0),
                     batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    own = own_run()  # also the warm-up: cuDNN autotuning and allocator
    art_pred = art_run()
    return {"art_rate": samples / best_of(repeats, art_run), "own_rate": samples / best_of(repeats, own_run),
            "clean_accuracy": float((own.clean_pred == y).mean()),
            "art_robust_accuracy": float((art_pred == y).mean()),
            "own_robust_accuracy": float((own.adv_pred == y).mean()),
            "agreement": float((art_pred == own.adv_pred).mean())}


def gate_lines(samples: int, device: str, eps: float) -> list[str]:
    """The gate end to end (policy, device placement, result) on the eager model and on its torch.export
    graph exported on the CPU, as MLflow's pt2 format loads it."""
    import copy

    from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness

    x, y = learnable_images(samples)
    model = trained_cnn(*learnable_images(4096, seed=1), device, steps=300 if device == "cuda" else 40)
    graph = torch.export.export(copy.deepcopy(model).cpu(), (torch.as_tensor(x[:2]),),
                                dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    policy = RobustnessPolicy(attacks=[{"name": "pgd", "eps": eps, "eps_step": eps / 4, "steps": 10,
                                        "samples": samples}], min_robust_accuracy=0.0, max_accuracy_drop=1.0,
                              curve_factors=())
    lines = []
    for name, candidate in (("eager", model), ("torch.export (pt2)", graph)):
        start = time.perf_counter()
        metrics = check_robustness(candidate, x, y, policy, "bench", model_digest="bench").metrics
        lines.append(f"gate on the {name} model: device {metrics['device']}, robust accuracy "
                     f"{metrics['robust_accuracy']:.4f}, {samples / (time.perf_counter() - start):.0f} samples/s "
                     "(policy, sampling and evidence included)")
    return lines


def print_pgd(samples: int, device: str, batch_size: int, repeats: int, eps: float) -> None:
    r = pgd_throughput(samples, device, batch_size, repeats, eps)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"\nPGD-10 (L-inf, eps {eps * 255:g}/255), CIFAR-shaped CNN, {samples} samples, batch {batch_size}, "
          f"device {name}")
    print(f"clean accuracy {r['clean_accuracy']:.4f}")
    print(f"{'implementation':44} {'samples/s':>10} {'ratio':>7} {'robust acc':>11}")
    print(f"{'ART ProjectedGradientDescentPyTorch':44} {r['art_rate']:10.1f} {1.0:7.2f} "
          f"{r['art_robust_accuracy']:11.4f}")
    print(f"{'mlgate torch_attacks (on-device loop)':44} {r['own_rate']:10.1f} {r['own_rate'] / r['art_rate']:7.2f} "
          f"{r['own_robust_accuracy']:11.4f}")
    gap = abs(r["own_robust_accuracy"] - r["art_robust_accuracy"])
    print(f"robust accuracy gap {100 * gap:.2f} points (goal <= 1); adversarial predictions agreeing with ART's: "
          f"{r['agreement']:.1%}")
    if device == "cuda":
        print(f"GPU goal (>= 4x ART): {'ok' if r['own_rate'] >= 4 * r['art_rate'] and gap <= 0.01 else 'MISSED'}")
    print("\n".join(gate_lines(min(samples, 4096), device, eps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eps", type=float, nargs="+", default=[2.0, 8.0], help="PGD ε in 1/255 units")
    parser.add_argument("--pgd-only", action="store_true", help="only part 2 (what a GPU machine needs: torch, ART)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    if not args.pgd_only:
        samples = 200 if args.quick else 500
        rows = [*robustness_rows(samples, args.repeats), *membership_rows(samples * 2, args.repeats),
                *fairness_rows(samples, args.repeats), *explainability_rows(min(samples, 260), args.repeats),
                *poisoning_rows(args.repeats)]
        print(f"{'gate (bare call underneath)':44} {'bare s':>8} {'gate s':>8} {'+ms':>7} {'gate/bare':>9}  note")
        for name, bare, gate, note in rows:
            print(f"{name:44} {bare:8.3f} {gate:8.3f} {1000 * (gate - bare):7.1f} {gate / bare:9.2f}  {note}")
    # the GPU setting: 20,000 samples in batches of 1024
    pgd_samples = (20_000 if args.device == "cuda" else 64) // (4 if args.quick else 1)
    for eps in args.eps:
        print_pgd(pgd_samples, args.device, 1024 if args.device == "cuda" else 32, args.repeats, eps / 255)

if __name__ == "__main__":
    main()
