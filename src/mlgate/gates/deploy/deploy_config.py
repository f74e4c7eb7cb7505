"""``deploy.config``: least privilege in Dockerfiles, Kubernetes manifests, Helm charts and compose files.

One trivy pass runs trivy's embedded checks (Dockerfile ``DS-*``, Kubernetes ``KSV-*``, Helm, Terraform).
Meanwhile mlgate reads every file itself (``config_files``): compose files through Docker Compose's own
loader (``compose_model``) and its checks (``compose_rules``), Kubernetes documents through ``kubernetes``
(literal secrets, inference resources, model servers), committed ``.env`` files for secrets. The gate
fails closed on what it could not check: a file that does not parse, a Dockerfile or manifest missing
from trivy's report, a symlink leaving the tree block; a tree with no configuration at all is an error.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.results import GateResult, Subject, ToolInfo, error_result, utcnow
from mlgate.gates.code.trivy import (
    Scan,
    TrivyConnection,
    TrivyFinding,
    TrivyPolicy,
    run_scan,
    scanned_tree,
    trivy_result,
)
from mlgate.gates.deploy import compose_model, dockerfile, literals
from mlgate.gates.deploy.compose_rules import compose_findings, config_findings
from mlgate.gates.deploy.config_files import ConfigFiles, classify, outside_references
from mlgate.gates.deploy.helm import helm_findings
from mlgate.gates.deploy.kubernetes import kubernetes_findings
from mlgate.gates.deploy.rules import rule

GATE = "deploy.config"


def _dotenv_beside(path: Path) -> dict[str, str]:
    env_path = path.parent / ".env"
    if not env_path.is_file():
        return {}
    return {name: value for _, name, value in literals.dotenv(env_path.read_text(errors="replace"))}


# What compose quotes in a refusal: the offending value or key ('x', "x", `x`, [x]), and the file's path.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|\[[^\]]*\]")


def _compose_error(message: str, path: Path) -> str:
    """compose's complaint, last line, with every quoted value or key and the checked file's path cut out:
    compose quotes the offending value (a token pasted into ``pull_policy`` or as a key)."""
    lines = [line for line in message.splitlines() if "level=warning" not in line and line.strip()]
    last = (lines[-1] if lines else message).replace(f"validating {path}: ", "").replace(str(path.parent), ".")
    return _QUOTED.sub("<value>", last)[-300:]


def load_compose(files: ConfigFiles) -> dict[str, dict[str, Any]]:
    """Every compose file's canonical model. A file named like compose that compose refuses becomes
    unparseable; one only shaped like compose (a ``services:`` key) that the Compose schema refuses is
    not compose (``azure.yaml``)."""
    candidates = {**files.compose, **files.maybe_compose}
    if not candidates:
        return {}
    binary = compose_model.find_compose()
    models = {}

    def load(real: Path) -> dict[str, Any] | ToolError:
        try:
            return compose_model.load(real, binary)
        except ToolError as exc:
            if "exited with status 1:" not in str(exc):  # a hang or crash of compose is no verdict on the file
                raise
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = dict(zip(candidates, pool.map(load, candidates.values()), strict=True))
    for rel, model in loaded.items():
        if not isinstance(model, ToolError):
            models[rel] = model
            files.compose.setdefault(rel, files.maybe_compose.pop(rel, candidates[rel]))
        elif rel in files.compose:
            del files.compose[rel]
            files.unparseable[rel] = f"not a valid compose file: {_compose_error(str(model), candidates[rel])}"
        else:
            files.other_yaml[rel] = files.maybe_compose.pop(rel)
    return models


def _env_file_findings(rel: str, real: Path) -> list[TrivyFinding]:
    pairs = literals.dotenv(real.read_text(errors="replace"))
    findings = [rule("MLG-ENV-001").finding(f"{rel} sets {name} to a literal value", f"{rel}:{line}")
                for line, name, value in pairs if literals.is_literal_secret(name, value)]
    rest = [(line, name, value) for line, name, value in pairs if not literals.is_literal_secret(name, value)]
    hits = literals.engine_hits([value for _, _, value in rest])
    findings += [rule("MLG-ENV-001").finding(f"{rel} sets {name} to a value shaped like a secret", f"{rel}:{line}")
                 for (line, name, _), hit in zip(rest, hits, strict=True) if hit]
    return findings


def _referenced_env_files(models: dict[str, dict[str, Any]], tree_files: dict[str, Path]) -> dict[str, Path]:
    """``env_file`` entries of compose services that are files of the scanned tree."""
    by_real = {real: rel for rel, real in tree_files.items()}
    found = {}
    for model in models.values():
        for svc in (model.get("services") or {}).values():
            for entry in svc.get("env_file") or []:
                path = Path(entry.get("path", "") if isinstance(entry, dict) else str(entry)).resolve()
                if path in by_real:
                    found[by_real[path]] = path
    return found


def own_findings(files: ConfigFiles, tree_files: dict[str, Path], root: Path | None = None) -> list[TrivyFinding]:
    """mlgate's checks over the files it reads itself (``root``: the scanned tree compose may not leave)."""
    models, findings = load_compose(files), []
    for rel in sorted(models) if root is not None else []:
        findings += [rule("MLG-CONFIG-003").finding(f"{rel} makes compose read {ref}, outside the scanned tree: "
                                                    "its content is neither checked here nor bound", rel, gate=True)
                     for ref in outside_references(files.compose[rel], root)]
    for rel, model in models.items():
        findings += compose_findings(rel, model.get("services") or {}, _dotenv_beside(files.compose[rel]),
                                     model.get("volumes") or {})
        findings += config_findings(rel, model.get("configs") or {})
    for rel, real in files.dockerfile.items():
        root, line = dockerfile.runs_as_root(real.read_text(errors="replace"))
        if root:
            findings.append(rule("MLG-DOCKER-001").finding(
                "the final stage runs as root" + (" (its USER is uid 0)" if line else " (no USER in it or its bases)"),
                f"{rel}:{line}" if line else rel))
    findings += helm_findings(files.helm)
    for rel, documents in files.kubernetes.items():
        findings += [f for document in documents for f in kubernetes_findings(rel, document)]
    for rel, real in sorted({**files.env, **_referenced_env_files(models, tree_files)}.items()):
        findings += _env_file_findings(rel, real)
    findings += [rule("MLG-CONFIG-001").finding(f"{rel} cannot be parsed ({why}): nothing in it was checked", rel,
                                                gate=True) for rel, why in sorted(files.unparseable.items())]
    return findings


def coverage_findings(files: ConfigFiles, scan: Scan) -> list[TrivyFinding]:
    """A Dockerfile, manifest or chart that trivy's report does not list was not checked by trivy."""
    targets = {str(result.get("Target", "")) for report in scan.reports for result in report.get("Results") or []}
    missing = [rel for rel in [*files.dockerfile, *files.kubernetes] if rel not in targets]
    charts = {rel.rsplit("templates/", 1)[0] for rel in files.helm if "templates/" in rel}
    missing += [chart or "." for chart in sorted(charts) if not any(t.startswith(chart) for t in targets)]
    return [rule("MLG-CONFIG-002").finding(f"{rel} is missing from trivy's report: trivy did not check it", rel,
                                           gate=True) for rel in missing]


def check_deploy_config(path: str | Path, connection: TrivyConnection, config: TrivyPolicy,
                        policy_digest: str, *, exceptions: Sequence[PolicyException] = (),
                        today: datetime.date | None = None) -> GateResult:
    """Trivy's checks and mlgate's own over every configuration file under ``path``; trivy runs while
    mlgate reads the files."""
    started, clock = utcnow(), time.perf_counter()
    tool = ToolInfo("trivy", "unknown")
    tree, own = scanned_tree(path, GATE)
    files = classify(tree.files)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            scanning = pool.submit(run_scan, "config", path, connection, config)
            own += own_findings(files, tree.files, tree.root)
            scan = scanning.result()
        tool = scan.tool
    except ToolError as exc:
        return error_result(GATE, Subject("config", str(path), ""), policy_digest, tool, started, exc)
    if not files.checked() and not files.unparseable:
        return error_result(GATE, Subject("config", str(path), tree.digest()), policy_digest, tool, started,
                            GateInputError(f"{path}: no Dockerfile, compose file, Kubernetes manifest, Helm chart "
                                           f"or Terraform file found ({len(tree.files)} files): nothing was "
                                           "checked"))
    own += coverage_findings(files, scan)
    return trivy_result(GATE, Subject("config", str(path), tree.digest()), tool, [*scan.findings, *own], config,
                        policy_digest, started=started, clock=clock, exceptions=exceptions, today=today,
                        metrics={"files_checked": files.checked(),
                                 **{f"files_{kind}": n for kind, n in files.counts().items()}})
