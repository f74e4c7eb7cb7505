"""Benchmark ``monitor.drift`` against NannyML, Evidently and alibi-detect on the same windows.

Data (the issue's): 10 standard-normal columns, one lognormal, one 4-level categorical; a 200,000-row
reference; windows drawn from the same distribution (healthy) or with one shift (``x0`` mean or scale, or
points of category share moved from ``a`` to ``d``). mlgate decides each window alone with the default
policy's ``monitor.drift`` section (``demote_after=1``: the per-window decision that persistence builds on).
The peers (``benchmarks/drift_peers.py``) need pins that clash with mlgate's and run in ``.venv-bench``
(``--bench-python``) on the same windows, passed as .npy files. Last, seconds at 1M rows x 20 numeric
columns (5 shifted by 0.1 sigma) for mlgate and Evidently's ``DataDriftPreset(method="ks")``.

    nice .venv/bin/python benchmarks/drift.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlgate.core.policy import load_policy
from mlgate.gates.monitor.drift import DriftPolicy, check_drift

NAMES = [*(f"x{i}" for i in range(10)), "ln", "cat"]
CATEGORIES = np.array(["a", "b", "c", "d"])
SHARES = np.array([0.4, 0.3, 0.2, 0.1])
PEERS = ("nannyml", "evidently", "alibi-detect")
SHIFTS = [("mean", a) for a in (0.1, 0.2, 0.3, 0.5)] + [("scale", a) for a in (1.2, 1.3, 1.5)] + \
    [("share", a) for a in (0.05, 0.1, 0.2)]

EVIDENTLY_SPEED = """
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = (pd.DataFrame(np.load(p), columns=[f"c{i:02d}" for i in range(np.load(p).shape[1])]) for p in sys.argv[1:3])
clock = time.perf_counter()
Report([DataDriftPreset(method="ks")]).run(current_data=cur, reference_data=ref)
print(json.dumps({"seconds": time.perf_counter() - clock}))
"""


def sample(rng: np.random.Generator, rows: int, kind: str = "none", amount: float = 0.0) -> np.ndarray:
    """``rows`` x 12 (float32-exact, so every tool sees the same numbers): categories as codes 0-3."""
    x = np.empty((rows, 12))
    x[:, :10] = rng.standard_normal((rows, 10))
    x[:, 10] = rng.lognormal(0.0, 1.0, rows)
    shares = SHARES + (np.array([-amount, 0, 0, amount]) if kind == "share" else 0.0)
    x[:, 11] = rng.choice(4, rows, p=shares)
    if kind == "mean":
        x[:, 0] += amount
    elif kind == "scale":
        x[:, 0] *= amount
    return x.astype(np.float32).astype(np.float64)


def as_frame(x: np.ndarray) -> pd.DataFrame:
    data = pd.DataFrame(x[:, :11], columns=NAMES[:11])
    data["cat"] = CATEGORIES[x[:, 11].astype(int)]
    return data


def decisions_and_peers(args: argparse.Namespace, policy: DriftPolicy) -> tuple[dict, dict, list]:
    rng = np.random.default_rng(2026)
    reference = sample(rng, 200_000)
    ref_frame = as_frame(reference)
    plan = [(f"healthy-{m}", m, "none", 0.0, args.windows) for m in (500, 5000, 100_000)]
    plan += [(f"{k}-{a}-{m}", m, k, a, args.power_windows) for m in (500, 5000) for k, a in SHIFTS]
    ours: dict[str, list[bool]] = {}
    ours_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="mlgate-drift-bench-") as tmp:
        root = Path(tmp)
        np.save(root / "reference.npy", reference)
        windows = []
        for name, rows, kind, amount, count in plan:
            ours[name] = []
            for i in range(count):
                x = sample(rng, rows, kind, amount)
                clock = time.perf_counter()
                ours[name].append(bool(check_drift(as_frame(x), ref_frame, policy, "bench").metrics["drifted"]))
                ours_seconds += time.perf_counter() - clock
                path = f"{name}-{i}.npy"
                np.save(root / path, x.astype(np.float32))
                windows.append({"id": f"{name}/{i}", "path": path})
        big = [bool(check_drift(as_frame(sample(rng, 1_000_000)), ref_frame, policy, "bench").metrics["drifted"])
               for _ in range(args.million_windows)]
        (root / "manifest.json").write_text(json.dumps({"columns": NAMES, "tools": list(PEERS),
                                                        "windows": windows}))
        peers: dict = {"error": f"no interpreter at {args.bench_python}"}
        if args.bench_python.exists():
            done = subprocess.run([str(args.bench_python), str(Path(__file__).with_name("drift_peers.py")), tmp],
                                  capture_output=True, text=True, timeout=3600)
            peers = json.loads((root / "peers.json").read_text()) if done.returncode == 0 else \
                {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    table = {"mlgate": ours}
    for tool in PEERS:
        if "decisions" in peers:
            table[tool] = {name: [peers["decisions"][tool][f"{name}/{i}"] for i in range(count)]
                           for name, _, _, _, count in plan}
    seconds = {"mlgate": ours_seconds, **peers.get("seconds", {})}
    return table, {"seconds": seconds, "versions": peers.get("versions", {}), "error": peers.get("error"),
                   "million": big}, plan


def speed(args: argparse.Namespace, policy: DriftPolicy) -> tuple[float, float, float | str]:
    """mlgate's first and best-of-3 seconds at 1M x 20, and Evidently's."""
    rng = np.random.default_rng(7)
    names = [f"c{i:02d}" for i in range(20)]
    reference = rng.standard_normal((1_000_000, 20))
    current = rng.standard_normal((1_000_000, 20))
    current[:, :5] += 0.1
    ref, cur = pd.DataFrame(reference, columns=names), pd.DataFrame(current, columns=names)
    clock = time.perf_counter()
    found = check_drift(cur, ref, policy, "bench").metrics["drifted_columns"]
    first = time.perf_counter() - clock
    best = first
    for _ in range(2):
        clock = time.perf_counter()
        check_drift(cur, ref, policy, "bench")
        best = min(best, time.perf_counter() - clock)
    assert found == names[:5], found
    if args.skip_evidently or not args.bench_python.exists():
        return first, best, "skipped"
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / n) for n in ("reference.npy", "current.npy")]
        np.save(paths[0], reference)
        np.save(paths[1], current)
        done = subprocess.run([str(args.bench_python), "-c", EVIDENTLY_SPEED, *paths], capture_output=True,
                              text=True, timeout=1800, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        return first, best, (done.stderr.strip().splitlines() or ["failed"])[-1]
    return first, best, float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 healthy / 10 shifted windows per case")
    parser.add_argument("--bench-python", type=Path, default=Path(os.environ.get(
        "MLGATE_BENCH_PYTHON", ".venv-bench/bin/python")))
    parser.add_argument("--skip-evidently", action="store_true", help="skip the 1M x 20 Evidently timing")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    args.windows, args.power_windows, args.million_windows = (30, 10, 2) if args.quick else (200, 40, 10)
    section = load_policy(Path(__file__).parents[1] / "policies" / "default.yaml").section("monitor.drift")
    policy = section.model_copy(update={"demote_after": 1, "of_last": 1})
    table, extra, plan = decisions_and_peers(args, policy)
    tools = list(table)
    if extra["error"]:
        print(f"peers skipped: {extra['error']}")
    print(f"versions: {extra['versions']}; {os.cpu_count()} CPUs; reference 200,000 rows x 12 columns")
    print(f"{'case':22s} " + " ".join(f"{t:>13s}" for t in tools))
    for name, _, _, _, count in plan:
        print(f"{name:22s} " + " ".join(f"{sum(table[t][name]):>5d}/{count:<3d} {100 * np.mean(table[t][name]):3.0f}%"
                                        for t in tools))
    million = extra["million"]
    print(f"healthy-1000000 mlgate: {sum(million)}/{len(million)} alarmed")
    print("seconds for all windows: " + ", ".join(f"{t} {s:.1f}" for t, s in extra["seconds"].items()))
    if not args.skip_speed:
        first, best, evidently = speed(args, policy)
        ratio = f"{evidently / first:.0f}x mlgate's first call" if isinstance(evidently, float) else evidently
        print(f"1M x 20: mlgate first call {first:.2f} s, best of 3 {best:.2f} s; Evidently "
              f"{evidently if isinstance(evidently, str) else f'{evidently:.1f} s'} ({ratio})")


if __name__ == "__main__":
    main()
