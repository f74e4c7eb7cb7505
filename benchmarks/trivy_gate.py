"""Overhead of mlgate's trivy gate over running the trivy CLI by hand, on the offline fixture DB.

Generates a source tree with N requirements files and N Python files, then times, in the same run:
the bare ``trivy fs --format json`` command (reference) and ``check_trivy`` (version call + the same scan
+ parsing + tree digest + decision). Run from the repo root: ``.venv/bin/python benchmarks/trivy_gate.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from mlgate.demo.trivy_db import write_trivy_db
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy, build_argv, check_trivy, find_trivy


def make_tree(root: Path, files: int) -> Path:
    for i in range(files):
        pkg = root / f"pkg{i}"
        pkg.mkdir(parents=True)
        requests = "2.19.0" if i % 2 else "2.31.0"
        (pkg / "requirements.txt").write_text(f"requests=={requests}\nidna==3.{i % 7}\n")
        (pkg / "module.py").write_text("\n".join(f"def f{j}(x):\n    return x * {j}" for j in range(200)))
    return root


def best_of(repeats: int, fn):
    """The fastest of ``repeats`` runs, and what the last run returned."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small tree, fewer repeats")
    args = parser.parse_args()
    sizes, repeats = ([10], 2) if args.quick else ([10, 200, 1000], 3)
    binary = find_trivy()
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_trivy_db(Path(tmp) / "cache")
        connection, policy = TrivyConnection(cache_dir=cache), TrivyPolicy(scanners=("vuln",))
        print(f"{'files':>6} {'trivy CLI s':>12} {'mlgate gate s':>14} {'ratio':>6} {'status':>8} "
              f"{'findings':>9}")
        for n in sizes:
            tree = make_tree(Path(tmp) / f"tree{n}", n)
            argv = build_argv(binary, "fs", tree, scanners=("vuln",), cache_dir=cache, timeout_s=600)
            reference, _ = best_of(repeats, lambda argv=argv: subprocess.run(argv, capture_output=True,
                                                                                check=True))
            ours, result = best_of(repeats, lambda tree=tree: check_trivy("fs", tree, connection, policy,
                                                                          "bench"))
            print(f"{n:>6} {reference:>12.3f} {ours:>14.3f} {ours / reference:>6.2f} {result.status:>8} "
                  f"{result.metrics['findings']:>9}")


if __name__ == "__main__":
    main()
