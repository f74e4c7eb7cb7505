"""code.dynamic: inputs per second and time to the first failure on the seeded defects (issue 23).

Two searches over the same contract (``expectations/loans.json``) and the same defective preprocessing
callables (``tests/fixtures/dynamic_defects.py``):

* **mlgate** — the gate itself, end to end: the Hypothesis search from the contract with boundary values,
  in the isolated child (spawn, imports and the shrinking included in its wall time; the table shows the
  child's own search rate and the time from the search's start to its first failing input);
* **random** — the naive fuzzer a team writes first, in this process: each column drawn uniformly from its
  contract (a range, a set; free text as 8 random letters; an open range as a normal around 0 with the
  sample's scale), up to the same number of inputs, stopped at the first failure.

The ratio that matters is the time to the first failure (and whether one is found at all): uniform draws
from a range almost never hit its edges (0 employment years), which is where the seeded defects live.

    .venv/bin/python benchmarks/dynamic.py [--quick] [--examples N]
"""

from __future__ import annotations

import argparse
import math
import random
import string
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the seeded defects live in the test fixtures
DEFECTS = ("income_per_year_employed", "ownership_code", "income_sigmoid", "reject_loudly")
IN_CONTRACT = DEFECTS[:3]  # reject_loudly fails only on out-of-contract input, which random never draws


def random_row(contract, rng: random.Random) -> dict:
    row = {}
    for column in contract.columns:
        if column.value_set is not None:
            row[column.name] = rng.choice(column.value_set)
        elif column.kind in ("int", "float"):
            low = column.minimum if column.minimum is not None else -1e4
            high = column.maximum if column.maximum is not None else 1e4
            draw = rng.uniform(low, high)
            row[column.name] = int(round(draw)) if column.kind == "int" else draw
        else:
            row[column.name] = "".join(rng.choices(string.ascii_letters, k=8))
    return row


def random_search(name: str, contract, budget: int, seed: int) -> tuple[float, float | None]:
    """(inputs per second, seconds to the first failure or None) of uniform draws from the contract."""
    import numpy as np

    from mlgate.core.callables import resolve_callable
    from mlgate.gates.code.strategies import to_frame

    call, rng = resolve_callable(f"tests.fixtures.dynamic_defects:{name}"), random.Random(seed)
    start, tried = time.perf_counter(), 0
    for tried in range(1, budget + 1):  # noqa: B007 - the count is read after the loop
        frame = to_frame([random_row(contract, rng) for _ in range(rng.randint(1, 5))], contract)
        try:
            output = np.asarray(call(frame), dtype=float)
        except Exception:
            return tried / (time.perf_counter() - start), time.perf_counter() - start
        if not np.isfinite(output).all():
            return tried / (time.perf_counter() - start), time.perf_counter() - start
    return tried / (time.perf_counter() - start), None


def gate_search(name: str, examples: int, data: Path, workdir: Path) -> dict:
    from mlgate.core.policy import load_policy
    from mlgate.gates.code.dynamic import check_dynamic

    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["gates"]["data.expectations"]["suite"] = str(ROOT / "expectations" / "loans.json")
    policy["gates"]["code.dynamic"] = {"max_examples": examples}
    (workdir / "policy.yaml").write_text(yaml.safe_dump(policy))
    start = time.perf_counter()
    result = check_dynamic(load_policy(workdir / "policy.yaml"), callables=[f"tests.fixtures.dynamic_defects:{name}"],
                           data_path=str(data))
    return {**result.metrics, "wall_s": time.perf_counter() - start, "status": str(result.status),
            "found": sorted({f.id.rsplit(".", 1)[-1] for f in result.findings if f.severity != "info"})}


def fmt(seconds: float | None) -> str:
    return "not found" if seconds is None else f"{seconds:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--examples", type=int, default=200, help="inputs per phase (mlgate) and per search (random)")
    args = parser.parse_args()
    examples = 40 if args.quick else args.examples

    from mlgate.demo.dataset import write_loans
    from mlgate.gates.code.contract import load_contract
    from mlgate.gates.code.dynamic_child import sample_dtypes

    with tempfile.TemporaryDirectory() as tmp:
        data = write_loans(Path(tmp) / "loans.csv", rows=1200)
        contract = load_contract(ROOT / "expectations" / "loans.json", sample_dtypes(str(data)))
        print(f"{examples} inputs per phase; times in seconds\n")
        print("| defect | mlgate found | mlgate inputs/s | mlgate first failure | mlgate wall (child, shrink) "
              "| random inputs/s | random first failure | first-failure ratio random/mlgate |")
        print("|---|---|---|---|---|---|---|---|")
        for name in DEFECTS:
            gate = gate_search(name, examples, data, Path(tmp))
            rate, first = (random_search(name, contract, 2 * examples, seed=0) if name in IN_CONTRACT
                           else (math.nan, None))
            mine = gate.get("first_failure_s")
            ratio = f"{first / mine:.1f}x" if first is not None and mine else ("mlgate only" if mine else "-")
            print(f"| {name} | {', '.join(gate['found']) or 'nothing'} | {gate['inputs_per_s']:.1f} | {fmt(mine)} "
                  f"| {gate['wall_s']:.1f} | {rate:.1f} | {fmt(first)} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
