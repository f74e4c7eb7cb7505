"""Defences on digits, attacked naively and adaptively, with the gradient-masking checks' verdicts.

Five models of one architecture (``tests.fixtures.models.DigitsCNN``, 8×8 digits in [0, 1]): undefended,
adversarially trained (the gate's Madry PGD-7 at ε), defensively distilled (the gate's loop, T = 100), and
the undefended one behind feature squeezing (4 bits) and behind a 2×2 median filter (spatial smoothing).
Each is attacked at L∞ ε with naive PGD-10 (cross-entropy through whatever gradient the model has) and with
the adaptive attack of the masking checks (margin loss, PGD-40, 5 restarts, BPDA through the transform, and
the transform's own gradient: a sample is robust only to both); then ``check_robustness`` runs the masking
checks (large ε = 0.5, transfer from an undefended surrogate) and prints its verdict and the failed checks.

    .venv/bin/python benchmarks/robustness_defences.py [--quick] [--device cpu|cuda] [--eps 0.1]

On a machine with torch but without pydantic or ART (the GPU machine), train here and carry the models:

    .venv/bin/python benchmarks/robustness_defences.py --save-models .mlgate/bench-models   # here, CPU
    python3 benchmarks/robustness_defences.py --load-models .mlgate/bench-models --device cuda  # there

There the gate verdict column reads ``n/a`` (the policy model needs pydantic); the attacks are the gate's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test fixtures' datasets and models
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tests.fixtures.models import DigitsCNN, digits  # noqa: E402

from mlgate.gates.model.input_transforms import defended_module, is_defended  # noqa: E402
from mlgate.gates.model.torch_attacks import attack  # noqa: E402

TRAINED = ("undefended", "adversarial training", "distillation T=100")


def train_models(epochs: int, eps: float) -> dict[str, torch.nn.Module]:
    """The gate's own loops (``fitting.fit``): plain, Madry PGD-7 (ART), defensive distillation."""
    from mlgate.gates.model.fitting import AdversarialOptions, DistillationOptions, TrainingSet, fit

    x_train, _, y_train, _ = digits(images=True)
    options = ({}, {"adversarial": AdversarialOptions(eps=eps, steps=7, clip=(0.0, 1.0))},
               {"distillation": DistillationOptions(temperature=100)})
    return {name: fit(TrainingSet(DigitsCNN(), x_train, y_train, epochs=epochs * (2 if "adversarial" in extra else 1),
                                  learning_rate=3e-3), seed=0, **extra).model.cpu()
            for name, extra in zip(TRAINED, options, strict=True)}


def load_models(directory: Path) -> dict[str, torch.nn.Module]:
    states = torch.load(directory / "models.pt", map_location="cpu")
    models = {}
    for name in TRAINED:
        models[name] = DigitsCNN()
        models[name].load_state_dict(states[name])
    return {name: model.eval() for name, model in models.items()}


def with_defences(models: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    try:
        from mlgate.gates.model.input_defences import InputDefence as spec
    except ImportError:  # no pydantic: the transforms read the same fields from a namespace
        def spec(**fields):
            return SimpleNamespace(**{"clip": (0.0, 1.0), "image_shape": None, **fields})
    plain = models["undefended"]
    return {**models,
            "feature squeezing 4 bit": defended_module(plain, spec(name="feature_squeezing", bit_depth=4)),
            "spatial smoothing 2x2": defended_module(plain, spec(name="spatial_smoothing", window=2))}


def robust(model, x, y, eps: float, adaptive: bool, device: str) -> float:
    """Robust accuracy under naive PGD-10, or the adaptive attack (with and without BPDA if defended)."""
    runs = [False, True] if adaptive and is_defended(model) else [False]
    robust_all = np.ones(len(y), dtype=bool)
    for bpda in runs:
        if is_defended(model):
            model.bpda = bpda
        out = attack(model, x, y, eps=eps, eps_step=2.5 * eps / (20 if adaptive else 10),
                     steps=40 if adaptive else 10, norm=np.inf, clip=(0.0, 1.0), loss="margin" if adaptive else "ce",
                     restarts=5 if adaptive else 1, seed=0, device=torch.device(device))
        robust_all &= (out.clean_pred == y) & (out.adv_pred == y)
    if is_defended(model):
        model.bpda = False
    return float(robust_all.mean())


def verdict(model, x_train, y_train, x_test, y_test, eps: float, samples: int, quick: bool) -> tuple[str, str]:
    try:
        from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness
    except ImportError:
        return "n/a", "(no pydantic here)"
    policy = RobustnessPolicy(
        attacks=[{"name": "pgd", "eps": eps, "steps": 10, "samples": samples}],
        min_robust_accuracy=0.0, max_accuracy_drop=1.0, curve_factors=(), seed=0,
        masking_checks={"large_eps": 0.5, "surrogate_epochs": 15 if quick else 30})
    result = check_robustness(model, x_test, y_test, policy, "sha256:bench", model_digest="sha256:bench",
                              x_train=x_train, y_train=y_train)
    return result.status.value, ", ".join(sorted({f.id.rsplit(".", 1)[1] for f in result.findings})) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the attacks run")
    parser.add_argument("--eps", type=float, default=0.1, help="L∞ radius of the evaluation")
    parser.add_argument("--samples", type=int, default=300, help="held-out samples attacked")
    parser.add_argument("--save-models", type=Path, help="train, save the trained models here and stop")
    parser.add_argument("--load-models", type=Path, help="attack models saved by --save-models instead of training")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    x_train, x_test, y_train, y_test = digits(images=True)
    x, y = x_test[:args.samples], y_test[:args.samples]
    clock = time.perf_counter()
    trained = load_models(args.load_models) if args.load_models else train_models(8 if args.quick else 15, args.eps)
    print(f"{'loaded' if args.load_models else 'trained'} {len(trained)} models in {time.perf_counter() - clock:.1f} s")
    if args.save_models:
        args.save_models.mkdir(parents=True, exist_ok=True)
        torch.save({name: model.state_dict() for name, model in trained.items()}, args.save_models / "models.pt")
        return
    print(f"digits 8x8, L∞ ε={args.eps}, {len(x)} held-out samples, attacks on {args.device}, "
          f"torch {torch.__version__}")
    print(f"{'model':26} {'clean':>6} {'naive PGD':>10} {'adaptive':>9} {'attack s':>9} {'gate':>8}  failed checks")
    for name, model in with_defences(trained).items():
        model.to(args.device)
        with torch.no_grad():
            clean = float((model(torch.as_tensor(x, device=args.device)).argmax(1).cpu().numpy() == y).mean())
        clock = time.perf_counter()
        naive, adaptive = (robust(model, x, y, args.eps, adaptive, args.device) for adaptive in (False, True))
        seconds = time.perf_counter() - clock
        status, failed = verdict(model, x_train, y_train, x_test, y_test, args.eps, args.samples, args.quick)
        print(f"{name:26} {clean:6.3f} {naive:10.3f} {adaptive:9.3f} {seconds:9.2f} {status:>8}  {failed}")


if __name__ == "__main__":
    main()
