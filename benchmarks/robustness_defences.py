"""Defences on digits, attacked naively and adaptively, with the gradient-masking checks' verdicts.

Five models of one architecture (``tests.fixtures.models.DigitsCNN``, 8×8 digits in [0, 1]): undefended,
adversarially trained (Madry PGD-7 at ε), defensively distilled (T = 100), and the undefended one behind
feature squeezing (4 bits) and behind a 2×2 median filter (spatial smoothing). Each is attacked at L∞ ε
with naive PGD (cross-entropy through whatever gradient the model has) and with the adaptive attack the
``model.robustness`` masking checks use (margin loss, 4× steps, 5 restarts, BPDA through the transform);
then ``check_robustness`` runs the checks and prints its verdict and the checks that failed.

    .venv/bin/python benchmarks/robustness_defences.py [--quick] [--device cpu|cuda] [--eps 0.1]
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
from tests.fixtures.models import DigitsCNN, digits, train  # noqa: E402

from mlgate.gates.model.adversarial_training import madry_pgd_torch  # noqa: E402
from mlgate.gates.model.fitting import DistillationOptions, TrainingSet, fit  # noqa: E402
from mlgate.gates.model.input_defences import InputDefence, defended_module  # noqa: E402
from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness  # noqa: E402
from mlgate.gates.model.torch_attacks import attack  # noqa: E402


def models(epochs: int, eps: float) -> dict[str, torch.nn.Module]:
    x_train, _, y_train, _ = digits(images=True)
    plain = train(DigitsCNN(), x_train, y_train, epochs=epochs)
    adversarial = madry_pgd_torch(DigitsCNN(), x_train, y_train, eps=eps, steps=7, epochs=epochs * 2,
                                  lr=3e-3, clip=(0.0, 1.0)).model.cpu()
    distilled = fit(TrainingSet(DigitsCNN(), x_train, y_train, epochs=epochs, learning_rate=3e-3), seed=0,
                    distillation=DistillationOptions(temperature=100)).model
    return {"undefended": plain, "adversarial training": adversarial, "distillation T=100": distilled,
            "feature squeezing 4 bit": defended_module(plain, InputDefence(name="feature_squeezing", bit_depth=4)),
            "spatial smoothing 2x2": defended_module(plain, InputDefence(name="spatial_smoothing", window=2))}


def robust_accuracy(model, x, y, eps: float, adaptive: bool, defended: bool) -> float:
    if defended:
        model.bpda = adaptive
    out = attack(model, x, y, eps=eps, eps_step=2.5 * eps / (40 if adaptive else 10), steps=40 if adaptive else 10,
                 norm=np.inf, clip=(0.0, 1.0), loss="margin" if adaptive else "ce", restarts=5 if adaptive else 1,
                 seed=0)
    if defended:
        model.bpda = False
    return float(((out.clean_pred == y) & (out.adv_pred == y)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the attacks run")
    parser.add_argument("--eps", type=float, default=0.1, help="L∞ radius of the evaluation")
    parser.add_argument("--samples", type=int, default=300, help="held-out samples attacked")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    x_train, x_test, y_train, y_test = digits(images=True)
    x, y = x_test[:args.samples], y_test[:args.samples]
    clock = time.perf_counter()
    trained = models(8 if args.quick else 15, args.eps)
    print(f"trained 5 models in {time.perf_counter() - clock:.1f} s")
    policy = RobustnessPolicy(
        attacks=[{"name": "pgd", "eps": args.eps, "steps": 10, "samples": args.samples}],
        min_robust_accuracy=0.0, max_accuracy_drop=1.0, curve_factors=(), seed=0,
        masking_checks={"large_eps": 0.5, "surrogate_epochs": 15 if args.quick else 30})
    print(f"digits 8x8, L∞ ε={args.eps}, {len(x)} held-out samples, device {args.device}")
    print(f"{'model':26} {'clean':>6} {'naive PGD':>10} {'adaptive':>9} {'gate':>8} {'s':>6}  failed checks")
    for name, model in trained.items():
        clock = time.perf_counter()
        model.to(args.device)
        defended = hasattr(model, "defence")
        with torch.no_grad():
            clean = float((model(torch.as_tensor(x, device=args.device)).argmax(1).cpu().numpy() == y).mean())
        naive = robust_accuracy(model, x, y, args.eps, adaptive=False, defended=defended)
        adaptive = robust_accuracy(model, x, y, args.eps, adaptive=True, defended=defended)
        result = check_robustness(model, x_test, y_test, policy, "sha256:bench", model_digest="sha256:bench",
                                  x_train=x_train, y_train=y_train)
        checks = sorted({f.id.rsplit(".", 1)[1] for f in result.findings if ".masking." in f.id})
        print(f"{name:26} {clean:6.3f} {naive:10.3f} {adaptive:9.3f} {result.status.value:>8} "
              f"{time.perf_counter() - clock:6.1f}  {', '.join(checks) or '-'}")


if __name__ == "__main__":
    main()
