"""Run mlgate's benchmarks; each prints its own table of ratios measured in the same run.

    python benchmarks/run.py [--quick] [NAME ...]     (default: every benchmark)

Reference tools that conflict with mlgate's dependencies (Presidio, Evidently, picklescan, modelscan,
fickling) live in ``.venv-bench``; a benchmark whose reference is absent says so and still reports mlgate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("dag_parse", "integrity", "pii", "artifacts", "startup", "drift", "trivy_gate", "isolation", "dynamic")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=list(BENCHMARKS), metavar="NAME")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    failed = []
    for name in args.names or BENCHMARKS:
        print(f"\n## {name}", flush=True)
        start = time.perf_counter()
        argv = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if args.quick else [])]
        if subprocess.run(argv, check=False).returncode:
            failed.append(name)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
