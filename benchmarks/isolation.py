"""What isolating model code costs (ADR 0015): spawning the child, and one validation gate in-process vs isolated.

Part 1: ``run_isolated`` on a function that returns at once, as a plain child and under bubblewrap (best of
``--repeats``) — the fixed cost per gate. Part 2: the explainability gate on a small scikit-learn model, each
from a fresh interpreter as an Airflow task starts: loaded and evaluated in that process (what the gates did
before) and through ``validate_isolated``; the difference is what isolation adds to a real gate. Wall time on
a shared machine swings with its load; the CPU column (user + system of the children) is the steadier one,
but it cannot see processes reaped inside bubblewrap's PID namespace, so bubblewrap rows show n/a there.

    .venv/bin/python benchmarks/isolation.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test fixtures' data callable


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def spawn_rows(repeats: int) -> list[tuple[str, float, float]]:
    from mlgate.core.isolation import SandboxPolicy, bwrap_status, run_isolated

    def spawn(mode: str) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = best_of(repeats, lambda: run_isolated("json:loads", {"s": "1"}, SandboxPolicy(os_sandbox=mode)))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / repeats

    rows = [("spawn + JSON round trip, plain child", *spawn("off"))]
    if bwrap_status()[0]:
        rows.append(("spawn + JSON round trip, bubblewrap child", spawn("required")[0], float("nan")))
    else:
        rows.append((f"bubblewrap child: unavailable ({bwrap_status()[1]})", float("nan"), float("nan")))
    return rows


GATE = """
import sys, time
from pathlib import Path
from mlgate.core.policy import load_policy
policy = load_policy(sys.argv[1])
work, digest, mode = Path(sys.argv[2]), sys.argv[3], sys.argv[4]
common = {"model_digest": digest, "model_uri": str(work / "model"), "out_dir": work / "out"}
if mode == "in-process":
    from mlgate.gates.model.model_validation import load_flavor, validate_model
    from tests.fixtures.snooping_model import validation_data
    validate_model("model.explainability", load_flavor(work / "model"), validation_data("", 0), policy, **common)
else:
    from mlgate.gates.model.isolated import validate_isolated
    policy = policy.model_copy(update={"sandbox": policy.sandbox.model_copy(update={"os_sandbox": mode})})
    validate_isolated("model.explainability", work / "model", policy, seed=0, data_path=str(work),
                      data_callable="tests.fixtures.snooping_model:validation_data", **common)
"""


def fresh(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (this process's children) of one fresh interpreter: how an Airflow task starts."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def gate_rows(repeats: int) -> list[tuple[str, float, float]]:
    """The explainability gate from a cold interpreter: load + evaluate here (before) vs isolated (now)."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from tests.fixtures.snooping_model import data_arrays

    from mlgate.core.digests import tree_digest

    root = Path(__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="mlgate-bench-"))
    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(*data_arrays()), str(work / "model"),
                              serialization_format="cloudpickle")
    base = [sys.executable, "-c", GATE, str(root / "policies" / "default.yaml"), str(work), tree_digest(work / "model")]
    rows = []
    for mode, name in (("in-process", "in the task's process (before)"), ("off", "plain child"),
                       ("auto", "bubblewrap child (when it works)")):
        runs = [fresh([*base, mode]) for _ in range(repeats)]
        cpu = float("nan") if mode == "auto" else min(r[1] for r in runs)
        rows.append((f"explainability gate, cold start, {name}", min(r[0] for r in runs), cpu))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    print(f"| what (best of {repeats}) | wall s | CPU s (children) |\n| --- | ---: | ---: |")
    for name, wall, cpu in [*spawn_rows(repeats), *gate_rows(repeats)]:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
