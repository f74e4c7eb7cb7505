"""``deploy.config`` on real public stacks beside plain ``trivy config``: findings per file and time per file.

Rebuilds cases from repository snapshots (``fetch``: docker/awesome-compose, kserve/kserve,
kubernetes/examples, ...) in a scratch folder; nothing of theirs is committed. A case is one directory of a
snapshot that holds a compose file or Kubernetes manifests, with its configuration files (YAML, Dockerfiles,
``.env``). Each case is scanned by ``trivy config`` alone (a subprocess, as a CI step would run it) and by
the gate in this process (as an Airflow worker runs it: imports paid once, before the clock). Prints per
case: files, trivy's failed checks at high or above, the gate's blocking findings, status, seconds each.

    nice -n 10 .venv/bin/python benchmarks/deploy_config_real.py SNAPSHOT_GIT_DIR[:FOLDER]... [--max-cases 12]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

from mlgate.gates.code.trivy import TrivyConnection, TrivyPolicy, find_trivy
from mlgate.gates.deploy.deploy_config import check_deploy_config

SCRATCH = Path("/tmp/deploy-bench")
CONFIG = re.compile(r"(?i)(\.ya?ml|dockerfile[^/]*|\.env)$")
ANCHOR = re.compile(r"(?i)(^|/)((docker-)?compose[^/]*\.ya?ml)$")
KUBE = re.compile(r"(?m)^apiVersion:\s*\S+\s*$")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def cases(repo: Path, under: str, max_cases: int) -> list[tuple[str, list[str]]]:
    """Directories under ``under`` holding a compose file or a Kubernetes manifest, with their config files
    (depth ≤ 2)."""
    names = [n for n in _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
             if CONFIG.search(n) and n.startswith(under)]
    anchors: list[str] = []
    for name in names:
        directory = name.rsplit("/", 1)[0] if "/" in name else ""
        if directory in anchors or "test" in directory.lower() or "chart" in directory.lower():
            continue
        if ANCHOR.search(name) or (name.endswith((".yaml", ".yml")) and KUBE.search(
                _git(repo, "show", f"HEAD:{name}")[:4000])):
            anchors.append(directory)
        if len(anchors) == max_cases:
            break
    picked = []
    for directory in anchors:
        prefix = f"{directory}/" if directory else ""
        members = [n for n in names if n.startswith(prefix) and n[len(prefix):].count("/") <= 1]
        picked.append((directory, members))
    return picked


def materialise(repo: Path, label: str, directory: str, members: list[str]) -> Path:
    root = SCRATCH / label / (directory.replace("/", "__") or "root")
    shutil.rmtree(root, ignore_errors=True)
    for name in members:
        rel = name[len(directory) + 1:] if directory else name
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{name}"],
                                                capture_output=True, check=True, timeout=60).stdout)
    return root


def trivy_alone(binary: Path, target: Path, cache: Path) -> tuple[float, int, int]:
    """Seconds, files trivy reported, failed checks at high or above."""
    start = time.perf_counter()
    out = subprocess.run([str(binary), "config", "--format", "json", "--quiet", "--skip-check-update",
                          "--skip-version-check", "--disable-telemetry", "--cache-dir", str(cache), str(target)],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    seconds = time.perf_counter() - start
    results = json.loads(out).get("Results") or []
    high = sum(1 for r in results for m in r.get("Misconfigurations") or []
               if m.get("Status") == "FAIL" and m.get("Severity") in ("HIGH", "CRITICAL"))
    return seconds, len(results), high


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("snapshots", nargs="+", help="git directories of fetched snapshots, each optionally "
                                                     "with :<folder> to take cases under that folder only")
    parser.add_argument("--max-cases", type=int, default=12, help="cases per snapshot")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case and tool (alternating); the "
                                                              "fastest counts: the machine is shared")
    args = parser.parse_args()
    binary, cache = find_trivy(None), SCRATCH / "cache"
    connection, policy = TrivyConnection(cache_dir=cache), TrivyPolicy()
    warm = SCRATCH / "warm"
    warm.mkdir(parents=True, exist_ok=True)
    (warm / "Dockerfile").write_text("FROM debian:12\nUSER 1000\n")
    check_deploy_config(warm, connection, policy, "bench")  # imports and trivy's check bundle, off the clock
    rows, ratios, kinds = [], [], Counter()
    for snapshot in args.snapshots:
        path, _, under = snapshot.partition(":")
        repo = Path(path)
        label = repo.parent.name if repo.name == "repo" else repo.name
        for directory, members in cases(repo, under, args.max_cases):
            target = materialise(repo, label, directory, members)
            trivy_times, gate_times = [], []
            for _ in range(args.repeat):
                t_trivy, trivy_files, trivy_high = trivy_alone(binary, target, cache)
                start = time.perf_counter()
                result = check_deploy_config(target, connection, policy, "bench")
                trivy_times.append(t_trivy)
                gate_times.append(time.perf_counter() - start)
            t_trivy, t_gate = min(trivy_times), min(gate_times)
            files = max(result.metrics.get("files_checked", 0) + result.metrics.get("files_unparseable", 0), 1)
            ours = Counter(f.id.rsplit("-", 1)[0] for f in result.findings)
            kinds.update(f.id for f in result.findings if f.id.startswith("MLG"))
            ratios.append(t_gate / t_trivy)
            rows.append((f"{label}:{directory or '.'}", files, trivy_files, trivy_high, len(result.findings),
                         dict(ours), str(result.status), t_trivy / files, t_gate / files))
    print(f"{'case':58} {'files':>5} {'trivy files':>11} {'trivy ≥high':>11} {'gate blocking':>13} "
          f"{'status':>8} {'s/file trivy':>12} {'s/file gate':>11}")
    for case, files, tf, th, gb, _, status, st, sg in rows:
        print(f"{case[:58]:58} {files:5d} {tf:11d} {th:11d} {gb:13d} {status:>8} {st:12.3f} {sg:11.3f}")
    print(f"\ncases {len(rows)}; files {sum(r[1] for r in rows)}; trivy-reported files {sum(r[2] for r in rows)}; "
          f"statuses {dict(Counter(r[6] for r in rows))}")
    print(f"time gate / trivy alone: median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
    print("mlgate findings by check:", dict(sorted(kinds.items())))


if __name__ == "__main__":
    main()
