"""Benchmark ``monitor.drift`` vs scipy's per-column KS test and Evidently's DataDriftPreset(method="ks").

Data: N rows x 20 numeric columns (standard normal), current window with 5 columns shifted by 0.05 sigma.
Evidently 0.7.23 needs pandas < 3, so it runs in its own venv (``--evidently-python``, default
``.venv-bench/bin/python`` or ``$MLGATE_BENCH_EVIDENTLY_PYTHON``) on the same data, passed as .npy files.
mlgate and scipy decide with Holm-corrected p-values; Evidently with its per-column p < 0.05.

    .venv/bin/python benchmarks/drift.py [--quick]
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
from scipy.stats import ks_2samp

from mlgate.gates.monitor.drift import DriftPolicy, adjust_pvalues, check_drift

COLUMNS, SHIFTED, SHIFT = 20, 5, 0.05

EVIDENTLY_RUN = """
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
import evidently
ref, cur = (pd.DataFrame(np.load(p), columns=[f"x{i:02d}" for i in range(np.load(p).shape[1])])
            for p in sys.argv[1:3])
clock = time.perf_counter()
snapshot = Report([DataDriftPreset(method="ks")]).run(current_data=cur, reference_data=ref)
seconds = time.perf_counter() - clock
drifted = sorted(m["config"]["column"] for m in snapshot.dict()["metrics"]
                 if m["config"]["type"].endswith("ValueDrift") and m["value"] < m["config"]["threshold"])
print(json.dumps({"seconds": seconds, "drifted": drifted, "version": evidently.__version__}))
"""


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    names = [f"x{i:02d}" for i in range(COLUMNS)]
    reference = rng.standard_normal((rows, COLUMNS))
    current = rng.standard_normal((rows, COLUMNS))
    current[:, :SHIFTED] += SHIFT
    return pd.DataFrame(reference, columns=names), pd.DataFrame(current, columns=names)


def timed(function, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        clock = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - clock)
    return best, result


def run_scipy(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], dict[str, float]]:
    tests = {c: ks_2samp(reference[c].to_numpy(), current[c].to_numpy()) for c in reference.columns}
    adjusted = adjust_pvalues(np.array([t.pvalue for t in tests.values()]), "holm")
    return sorted(c for c, p in zip(tests, adjusted, strict=True) if p < 0.05), \
        {c: float(t.statistic) for c, t in tests.items()}


def run_evidently(python: Path, reference: pd.DataFrame, current: pd.DataFrame) -> dict | str:
    if not python.exists():
        return f"no interpreter at {python} (create .venv-bench with evidently==0.7.23)"
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / name) for name in ("reference.npy", "current.npy")]
        np.save(paths[0], reference.to_numpy())
        np.save(paths[1], current.to_numpy())
        try:
            done = subprocess.run([str(python), "-c", EVIDENTLY_RUN, *paths], capture_output=True, text=True,
                                  timeout=1800, env={**os.environ, "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:
            return "timed out after 1800 s"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--evidently-python", type=Path, default=Path(os.environ.get(
        "MLGATE_BENCH_EVIDENTLY_PYTHON", ".venv-bench/bin/python")))
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    reference, current = make_data(rows)
    truth = [f"x{i:02d}" for i in range(SHIFTED)]
    policy = DriftPolicy()

    small_ref, small_cur = make_data(1000, seed=1)
    check_drift(small_cur, small_ref, policy, "bench")  # imports scipy & co. outside the timing
    clock = time.perf_counter()
    check_drift(current, reference, policy, "bench")
    first = time.perf_counter() - clock
    mlgate_s, result = timed(lambda: check_drift(current, reference, policy, "bench"), 3)
    mlgate_cols = result.metrics["drifted_columns"]
    scipy_s, (scipy_cols, scipy_stats) = timed(lambda: run_scipy(reference, current), 1)
    ks_gap = max(abs(result.metrics["columns"][c]["statistic"] - scipy_stats[c]) for c in scipy_stats)

    rows_out = [("mlgate check_drift (best of 3)", mlgate_s, mlgate_cols),
                ("mlgate check_drift (first call)", first, mlgate_cols),
                ("scipy ks_2samp per column", scipy_s, scipy_cols)]
    evidently = None if args.skip_evidently else run_evidently(args.evidently_python, reference, current)
    if isinstance(evidently, dict):
        rows_out.append((f"evidently {evidently['version']} DataDriftPreset(ks)", evidently["seconds"],
                         evidently["drifted"]))

    print(f"{rows:,} rows x {COLUMNS} numeric columns, {SHIFTED} shifted by {SHIFT} sigma; "
          f"truth = {truth}; {os.cpu_count()} CPUs")
    print(f"{'tool':44s} {'seconds':>9s} {'x mlgate':>9s}  drifted columns found")
    for name, seconds, columns in rows_out:
        verdict = "= truth" if columns == truth else f"{columns}"
        print(f"{name:44s} {seconds:9.3f} {seconds / mlgate_s:9.1f}  {len(columns)} {verdict}")
    print(f"max |KS statistic mlgate - scipy| over columns: {ks_gap:.2e}")
    if evidently is None:
        print("evidently skipped: --skip-evidently")
    elif isinstance(evidently, str):
        print(f"evidently skipped: {evidently}")


if __name__ == "__main__":
    main()
