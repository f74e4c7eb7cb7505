"""``model.training``: what a training run must record to be reproducible and auditable.

The operator collects a ``TrainingRecord``; this module decides whether it is complete. A run whose
hyperparameters, data digests, code version, seed or library versions are missing is blocked: a model
nobody can trace back to its data and code must never reach the registry.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from mlgate.core.digests import code_digest
from mlgate.core.policy import Policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow

GATE = "model.training"
TRACKED_LIBRARIES = ("mlgate", "scikit-learn", "numpy", "pandas", "mlflow", "torch")


@dataclass(frozen=True)
class TrainingRecord:
    params: dict[str, object]
    data_digests: dict[str, str]
    code_version: str
    seed: int | None
    library_versions: dict[str, str]
    model_uri: str = ""
    model_digest: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    code_digest: str = ""  # the training code's tree digest (core.digests.code_digest)


def code_version(path: Path) -> str:
    """``git:<commit>`` when ``path`` is in a clean git checkout, else ``tree:<digest of path>``."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    try:
        commit = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", "not a git checkout"
    return f"git:{commit}" if commit and not dirty else f"tree:{code_digest(directory)}"


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def missing_fields(record: TrainingRecord, required: tuple[str, ...]) -> list[str]:
    present = {
        "params": bool(record.params),
        "data_digests": bool(record.data_digests) and all(record.data_digests.values()),
        "code_version": bool(record.code_version),
        "seed": record.seed is not None,
        "library_versions": bool(record.library_versions),
    }
    return [name for name in required if not present[name]]


def dp_requirement(policy: Policy, target_epsilon: float | None) -> Finding | None:
    """Why the policy refuses to train at all: it demands DP-SGD within ``max_dp_epsilon`` and the run
    asks for none, or for more."""
    limit = policy.section(GATE).max_dp_epsilon
    if limit is None or (target_epsilon is not None and target_epsilon <= limit):
        return None
    asked = "no DP-SGD" if target_epsilon is None else f"DP-SGD at target ε={target_epsilon:g}"
    return Finding(f"{GATE}.dp_required", Severity.HIGH, f"the policy requires DP-SGD with ε <= {limit:g}; "
                   f"the run asks for {asked}")


def check_training(record: TrainingRecord, policy: Policy, started_at: str,
                   refused: Finding | None = None) -> GateResult:
    """The training gate's result; ``refused`` blocks a run that was stopped before it trained."""
    config = policy.section(GATE)
    missing = [] if refused else missing_fields(record, config.require)
    if not (refused or record.model_digest):
        missing.append("model_digest")
    findings = (*((refused,) if refused else ()),
                *(Finding(f"{GATE}.missing.{name}", Severity.HIGH, f"training run did not record {name}")
                  for name in missing))
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if findings else Status.PASSED,
        subject=Subject("model", record.model_uri, record.model_digest or "unknown"),
        policy_digest=policy.digest,
        tool=ToolInfo("mlflow", record.library_versions.get("mlflow", "unknown")),
        started_at=started_at,
        finished_at=utcnow(),
        metrics={k: v for k, v in record.metrics.items() if isinstance(v, int | float)},
        thresholds={"require": list(config.require), "max_dp_epsilon": config.max_dp_epsilon},
        findings=findings,
        inputs={kind: digest for kind, digest in (("dataset", record.data_digests.get("data.integrity", "")),
                                                  ("code", record.code_digest)) if digest},
    )
