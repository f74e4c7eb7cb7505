"""Parse time of each shipped DAG file against an empty DAG, in the same run.

DAG parsing is on Airflow's hot path (the dag-processor re-parses every file continuously, with a
30 s timeout): a shipped DAG must cost at most 0.5 s beyond ``import airflow``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMPTY_DAG = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="empty", schedule=None):
    EmptyOperator(task_id="noop")
"""
PROBE = """
import json, sys, time
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "errors": {k: str(v)[:200] for k, v in bag.import_errors.items()}}))
"""


def parse_seconds(path: Path, env: dict[str, str], repeats: int) -> float:
    """Best of ``repeats`` fresh processes: the cost a dag-processor pays per file, beyond airflow's import."""
    best = float("inf")
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, env=env,
                             check=True, cwd=ROOT)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["errors"]:
            raise SystemExit(f"{path.name} failed to parse: {result['errors']}")
        best = min(best, result["seconds"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "AIRFLOW_HOME": tmp, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        empty = Path(tmp, "empty_dag.py")
        empty.write_text(EMPTY_DAG)
        baseline = parse_seconds(empty, env, repeats)
        print(f"{'DAG file':<34} {'parse s':>8} {'empty DAG s':>12} {'extra s':>8}  goal <= 0.5 s extra")
        for dag in sorted((ROOT / "dags").glob("*.py")):
            seconds = parse_seconds(dag, env, repeats)
            verdict = "ok" if seconds - baseline <= 0.5 else "TOO SLOW"
            print(f"{dag.name:<34} {seconds:8.3f} {baseline:12.3f} {seconds - baseline:8.3f}  {verdict}")


if __name__ == "__main__":
    main()
