"""Start-up of a one-file ``mlgate check model.artifact file.pkl`` beside picklescan's CLI, in the same run.

Issue 14's goal: at most 0.3 s, the order of picklescan's. Both CLIs run as fresh processes on the same small
pickle, interleaved, best of N, measured as the child's CPU time (user + system: the shared host is loaded,
so wall time says more about the neighbours than about us) with wall time beside it. Both run as installed
packages do: bytecode cached (a scratch ``PYTHONPYCACHEPREFIX``, warmed by one run each), and again with
``--no-bytecode`` as a checkout under ``PYTHONDONTWRITEBYTECODE`` runs. picklescan comes from the bench venv
(``--bench-venv`` or ``MLGATE_BENCH_VENV``, default ``.venv-bench``).

    .venv/bin/python benchmarks/startup.py [--repeats 7] [--bench-venv DIR] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.3


def run_cpu(argv: list[str], env: dict[str, str], expect: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process running ``argv``; its exit code must be ``expect``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=ROOT, timeout=120, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != expect:
        raise SystemExit(f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-bytecode", action="store_true", help="compile every module at each start")
    parser.add_argument("--bench-venv", type=Path,
                        default=Path(os.environ.get("MLGATE_BENCH_VENV", ROOT / ".venv-bench")))
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        model = Path(tmp) / "model.pkl"
        model.write_bytes(pickle.dumps({"weights": [0.5, 1.5], "bias": 0.1}, protocol=4))
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX")
        tools = {"mlgate": ([sys.executable, "-m", "mlgate.cli", "check", "model.artifact", str(model)], 0)}
        picklescan = args.bench_venv / "bin" / "picklescan"
        if picklescan.exists():
            tools["picklescan"] = ([str(picklescan), "-p", str(model)], 0)
        else:
            print(f"reference skipped: no picklescan at {picklescan}")
        for argv, expect in tools.values():  # warm the bytecode cache and the page cache
            run_cpu(argv, env, expect)
        best = {name: (float("inf"), float("inf")) for name in tools}
        for _ in range(repeats):
            for name, (argv, expect) in tools.items():
                cpu, wall = run_cpu(argv, env, expect)
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    mode = "no bytecode cache" if args.no_bytecode else "bytecode cached"
    print(f"one-file check, {mode}, best of {repeats}   {'CPU s':>7} {'wall s':>7}")
    for name, (cpu, wall) in best.items():
        print(f"{name:44} {cpu:7.3f} {wall:7.3f}")
    cpu = best["mlgate"][0]
    print(f"goal: mlgate CPU <= {GOAL_S} s: {'holds' if cpu <= GOAL_S else 'DOES NOT HOLD'}"
          + (f"; mlgate / picklescan = {cpu / best['picklescan'][0]:.1f}x" if "picklescan" in best else ""))


if __name__ == "__main__":
    main()
