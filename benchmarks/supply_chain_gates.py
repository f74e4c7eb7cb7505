"""Time of the supply-chain gates against running their tools by hand, offline, on the fixture trivy DB.

Generates a tree with N Python modules (a few insecure), N requirements files, a Dockerfile, a Kubernetes
pod and a compose file, then times in the same run, per gate, the bare tool commands (reference) and the
mlgate gate (tool runs + parsing + tree digest + decision + evidence):

* code.static: ``python -m bandit -r -f json`` vs ``check_static``
* code.dependencies: ``trivy fs --format json`` + ``trivy fs --format cyclonedx`` vs ``check_dependencies``
* deploy.config: ``trivy config`` + the compose pass vs ``check_deploy_config``

Run from the repo root: ``.venv/bin/python benchmarks/supply_chain_gates.py [--quick]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.fixtures and benchmarks

from benchmarks.trivy_gate import best_of  # noqa: E402

from mlgate.demo.trivy_db import write_trivy_db  # noqa: E402
from mlgate.gates.code.bandit_scan import StaticPolicy, bandit_argv, check_static  # noqa: E402
from mlgate.gates.code.dependencies import check_dependencies  # noqa: E402
from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy, build_argv, find_trivy  # noqa: E402
from mlgate.gates.deploy.deploy_config import COMPOSE_PASS, check_deploy_config  # noqa: E402

INSECURE = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
COMPOSE = "services:\n  model:\n    image: m:1\n    privileged: true\n"
POD = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n"
       "      image: a:1\n      securityContext:\n        privileged: true\n")


def make_tree(root: Path, files: int) -> Path:
    for i in range(files):
        pkg = root / f"pkg{i}"
        pkg.mkdir(parents=True)
        (pkg / "requirements.txt").write_text(f"requests=={'2.19.0' if i % 2 else '2.31.0'}\n")
        body = "\n".join(f"def f{j}(x):\n    return x * {j}\n" for j in range(200))
        (pkg / "module.py").write_text((INSECURE if i % 10 == 0 else "") + body)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\nCMD [\"python\"]\n")
    (root / "compose.yaml").write_text(COMPOSE)
    (root / "pod.yaml").write_text(POD)
    return root


def run_all(argvs: list[list[str]]) -> None:
    for argv in argvs:
        subprocess.run(argv, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small tree, fewer repeats")
    args = parser.parse_args()
    sizes, repeats = ([10], 1) if args.quick else ([10, 200], 3)
    binary = find_trivy()
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_trivy_db(Path(tmp) / "cache")
        connection, policy, static = TrivyConnection(cache_dir=cache), TrivyPolicy(), StaticPolicy()
        print(f"{'gate':<18} {'files':>6} {'tools s':>8} {'mlgate s':>9} {'ratio':>6} {'status':>8} "
              f"{'findings':>9}")
        for n in sizes:
            tree, out = make_tree(Path(tmp) / f"tree{n}", n), Path(tmp) / f"out{n}"

            def trivy(command, fmt="json", extra=(), tree=tree):
                return build_argv(binary, command, tree, scanners=("vuln", "secret"), cache_dir=cache,
                                  timeout_s=600, output_format=fmt, extra=extra)

            cases = [
                ("code.static", [bandit_argv(tree, static)],
                 lambda tree=tree, out=out: check_static(tree, static, "bench", out)),
                ("code.dependencies",
                 [trivy("fs"), trivy("fs", "cyclonedx", ("--output", str(out / "sbom.json")))],
                 lambda tree=tree, out=out: check_dependencies(tree, connection, policy, [], "bench", out)),
                ("deploy.config", [trivy("config"), trivy("config", extra=COMPOSE_PASS)],
                 lambda tree=tree: check_deploy_config(tree, connection, policy, "bench")),
            ]
            out.mkdir()
            for gate, argvs, gate_fn in cases:
                reference, _ = best_of(repeats, lambda argvs=argvs: run_all(argvs))
                ours, result = best_of(repeats, gate_fn)
                print(f"{gate:<18} {n:>6} {reference:>8.2f} {ours:>9.2f} {ours / reference:>6.2f} "
                      f"{result.status:>8} {len(result.findings):>9}")


if __name__ == "__main__":
    main()
