"""MLG-K8S-001 (literal secrets in container env) on kubescape's own test cases for its rule
``rule-credentials-in-env-var``, rebuilt from a snapshot of kubescape/regolibrary (nothing committed).

A case alerts in kubescape when its ``expected.json`` is a non-empty list; mlgate alerts when
``kubernetes_findings`` has an MLG-K8S-001 finding for any input document. Prints the confusion table.

    .venv/bin/python benchmarks/k8s_secrets_kubescape.py /work/.mirror/kubescape+regolibrary/repo
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from mlgate.gates.deploy.kubernetes import is_kubernetes, kubernetes_findings

RULE = "rules/rule-credentials-in-env-var/test/"


def _show(repo: Path, name: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{name}"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def main(repo: Path) -> None:
    names = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", "HEAD", RULE],
                           capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    cases: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"inputs": [], "expected": []})
    for name in names:
        case = name[len(RULE):].split("/", 1)[0]
        if "/input/" in name and name.endswith((".yaml", ".yml", ".json")):
            cases[case]["inputs"].append(name)
        elif name.endswith("expected.json"):
            cases[case]["expected"].append(name)
    table = {"tp": [], "fp": [], "fn": [], "tn": []}
    for case, parts in sorted(cases.items()):
        expected = any(json.loads(_show(repo, e) or "[]") for e in parts["expected"])
        documents = []
        for name in parts["inputs"]:
            text = _show(repo, name)
            loaded = json.loads(text) if name.endswith(".json") else list(yaml.safe_load_all(text))
            documents += loaded if isinstance(loaded, list) else [loaded]
        ours = any(f.id == "MLG-K8S-001" for d in documents if is_kubernetes(d) for f in kubernetes_findings(name, d))
        table[{(True, True): "tp", (False, True): "fp", (True, False): "fn", (False, False): "tn"}[
            (expected, ours)]].append(case)
    for key, found in table.items():
        print(f"{key}: {len(found):2d}  {', '.join(found)}")
    total = sum(map(len, table.values()))
    print(f"agreement with kubescape: {len(table['tp']) + len(table['tn'])}/{total}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
