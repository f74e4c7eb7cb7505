"""``model.certification``: certified accuracy on digits and a CIFAR-shaped CNN, beside the undefended model.

For each dataset, three models of the same architecture, trained in this run:

* undefended — plain cross-entropy (the baseline: its clean accuracy, and what it certifies);
* noise-trained — Gaussian augmentation at the smoothing σ (Cohen et al., 2019), certified in L2 by smoothing;
* IBP-trained — half clean, half worst-case-box cross-entropy (Gowal et al., 2018), certified in L∞ by IBP.

Each model is certified by randomized smoothing (L2, two radii, σ, n, α) and interval bound propagation
(L∞, two radii) on the same held-out samples. On the CPU, ART's ``RandomizedSmoothing.certify`` runs the
undefended digits model beside the gate's own loop (certified accuracy and seconds, same samples and n).

Data: scikit-learn digits (8×8, scaled to [0, 1]) with an MLP; the CIFAR-shaped CNN of
``benchmarks/model_gates.py`` on its synthetic 3×32×32 prototype images (no CIFAR on disk).
The GPU path imports only torch, numpy, scipy, scikit-learn and mlgate's pure ``smoothing`` /
``interval_bounds`` modules (no pydantic, ART or MLflow)::

    python benchmarks/certification.py --only digits      # CPU, a few minutes each
    python benchmarks/certification.py --only cifar
    python benchmarks/certification.py --device cuda      # both, 500 samples each, n 10,000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from model_gates import CifarCNN, learnable_images  # noqa: E402
from torch import nn  # noqa: E402

from mlgate.gates.model.interval_bounds import propagate, trace, worst_margin  # noqa: E402
from mlgate.gates.model.smoothing import certify  # noqa: E402

ALPHA = 0.001


def digits_data() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return tuple(train_test_split(x, data.target, test_size=0.3, random_state=0, stratify=data.target))


def cifar_data(train: int, test: int) -> tuple[np.ndarray, ...]:
    x_train, y_train = learnable_images(train, seed=1)
    x_test, y_test = learnable_images(test, seed=2)
    return x_train, x_test, y_train, y_test


def digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str, steps: int, *, sigma: float = 0.0,
        ibp_eps: float = 0.0) -> nn.Module:
    """Adam, batch 64; Gaussian augmentation at ``sigma``; with ``ibp_eps``, Gowal et al.'s schedule: clean
    warm-up, then ε and the weight of the worst-case loss ramped up together (to ``ibp_eps`` and one half)."""
    torch.manual_seed(0)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    graph = trace(model) if ibp_eps else None
    for step in range(steps):
        batch = torch.randint(len(xt), (64,), device=device)
        xb, yb = xt[batch], yt[batch]
        inputs = xb + sigma * torch.randn_like(xb) if sigma else xb
        loss = nn.functional.cross_entropy(model(inputs), yb)
        ramp = min(1.0, max(0.0, (step + 1) / steps - 0.25) * 2)  # clean for a quarter, ramped by three quarters
        if graph is not None and ramp > 0:
            eps = ibp_eps * ramp
            box = propagate(graph, (xb - eps).clamp(0, 1), (xb + eps).clamp(0, 1))
            worst = torch.where(nn.functional.one_hot(yb, 10).bool(), box.lower, box.upper)
            loss = (1 - ramp / 2) * loss + ramp / 2 * nn.functional.cross_entropy(worst, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def clean_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str) -> float:
    with torch.no_grad():
        pred = torch.cat([model(torch.as_tensor(x[i:i + 512], device=device)).argmax(1)
                          for i in range(0, len(x), 512)]).cpu().numpy()
    return float((pred == y).mean())


def ibp_certified(model: nn.Module, x: np.ndarray, y: np.ndarray, eps: float, device: str) -> float:
    graph = trace(model)
    certified = []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            xb = torch.as_tensor(x[i:i + 256], device=device).double()
            yb = torch.as_tensor(y[i:i + 256], device=device)
            box = propagate(graph, (xb - eps).clamp(0, 1), (xb + eps).clamp(0, 1))
            certified.append((worst_margin(box, yb) > 0).cpu().numpy())
    return float(np.concatenate(certified).mean())


def smoothing_certified(model: nn.Module, x: np.ndarray, y: np.ndarray, sigma: float, radii: tuple[float, ...],
                        n: int, device: str, batch: int) -> tuple[list[float], float]:
    start = time.perf_counter()
    certificates = certify(model, x, sigma=sigma, n0=100, n=n, alpha=ALPHA, n_classes=10, seed=0, batch_size=batch,
                           device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return [certificates.certified_accuracy(y, r)[0] / len(y) for r in radii], seconds


def art_row(model: nn.Module, x: np.ndarray, y: np.ndarray, sigma: float, radii: tuple[float, ...], n: int,
            batch: int, input_shape: tuple[int, ...]) -> tuple[list[float], float] | None:
    """ART's randomized smoothing on the same model and samples (CPU; None where ART is not installed)."""
    try:
        from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing
    except ImportError:
        return None
    np.random.seed(0)
    art = PyTorchRandomizedSmoothing(model.cpu(), loss=nn.CrossEntropyLoss(), input_shape=input_shape,
                                     nb_classes=10, sample_size=100, scale=sigma, alpha=ALPHA, device_type="cpu")
    start = time.perf_counter()
    pred, radius = art.certify(x, n=n, batch_size=batch)
    return [float(((pred == y) & (radius >= r)).mean()) for r in radii], time.perf_counter() - start


def dataset_rows(name: str, data: tuple[np.ndarray, ...], build, steps: int, sigma: float,
                 l2_radii: tuple[float, ...], linf_radii: tuple[float, ...], ibp_eps: float, samples: int, n: int,
                 device: str, batch: int) -> list[str]:
    x_train, x_test, y_train, y_test = data
    pick = np.sort(np.random.default_rng(0).permutation(len(x_test))[:samples])
    xs, ys = x_test[pick], y_test[pick]
    rows = []
    models = {"undefended": fit(build(), x_train, y_train, device, steps),
              f"noise-trained (σ {sigma:g})": fit(build(), x_train, y_train, device, steps, sigma=sigma),
              f"IBP-trained (ε {ibp_eps:g})": fit(build(), x_train, y_train, device, steps, ibp_eps=ibp_eps)}
    for label, model in models.items():
        clean = clean_accuracy(model, x_test, y_test, device)
        l2, seconds = smoothing_certified(model, xs, ys, sigma, l2_radii, n, device, batch)
        linf = [ibp_certified(model, xs, ys, eps, device) for eps in linf_radii]
        rows.append(f"| {name} | {label} | {clean:.3f} | {sigma:g} | "
                    + " | ".join(f"{a:.3f}" for a in (*l2, *linf)) + f" | {seconds:.1f} |")
    if device == "cpu" and name == "digits":
        undefended = models["undefended"]
        art = art_row(undefended, xs, ys, sigma, l2_radii, n, batch, xs.shape[1:])
        if art is not None:
            ours, seconds = smoothing_certified(undefended, xs, ys, sigma, l2_radii, n, device, batch)
            rows.append(f"| {name} | undefended, ART RandomizedSmoothing.certify | | {sigma:g} | "
                        + " | ".join(f"{a:.3f}" for a in art[0]) + " | | | "
                        f"{art[1]:.1f} (mlgate {seconds:.1f}: {art[1] / seconds:.1f}x) |")
    return rows


SIZES = {  # samples certified, smoothing n, training steps (digits MLP / CIFAR-shaped CNN)
    "cuda": {"digits": (500, 10_000, 3000), "cifar": (500, 10_000, 600)},
    "cpu": {"digits": (100, 1000, 1500), "cifar": (10, 500, 60)},
    "quick": {"digits": (50, 500, 800), "cifar": (5, 200, 20)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="smallest sizes (development)")
    parser.add_argument("--only", choices=("digits", "cifar"), help="one dataset (the CPU runs them apart)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    gpu = args.device == "cuda"
    sizes = SIZES["cuda" if gpu else "quick" if args.quick else "cpu"]
    batch = 20_000 if gpu else 1000
    name = torch.cuda.get_device_name() if gpu else "cpu"
    print(f"model.certification benchmark, device {name}, α {ALPHA} (each certificate), n0 100; "
          f"samples, n, training steps: {sizes}\n")
    print("| data | model | clean acc | σ | L2 cert r1 | L2 cert r2 | L∞ IBP cert ε1 | L∞ IBP cert ε2 | smoothing s |")
    print("|---|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    if args.only in (None, "digits"):
        samples, n, steps = sizes["digits"]
        for line in dataset_rows("digits", digits_data(), digits_mlp, steps, 0.25, (0.25, 0.5), (0.01, 0.05), 0.05,
                                 samples, n, args.device, batch):
            print(line, flush=True)
        print("digits radii: L2 r1 0.25, r2 0.5; L∞ ε1 0.01, ε2 0.05 (pixels in [0, 1])", flush=True)
    if args.only in (None, "cifar"):
        samples, n, steps = sizes["cifar"]
        cifar = cifar_data(4096, 1000 if gpu else 300)
        for line in dataset_rows("CIFAR-shaped", cifar, CifarCNN, steps, 0.25, (0.25, 0.5), (1 / 255, 2 / 255),
                                 2 / 255, samples, n, args.device, batch):
            print(line, flush=True)
        print("CIFAR-shaped radii: L2 r1 0.25, r2 0.5; L∞ ε1 1/255, ε2 2/255")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
