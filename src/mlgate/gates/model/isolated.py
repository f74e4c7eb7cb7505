"""The model validation gates, run where the model's code cannot reach a secret (ADR 0015).

Loading a model runs its code (a pickle's ``__reduce__``, a torch module's ``__setstate__``). ``model.artifact``
scans for that first, but a scanner can be bypassed, so the gates never load a model in the process that
holds the signing key, the Airflow connection or the task's credentials: ``validate_isolated`` hands the
model directory, the data callable's import path and the policy (as JSON) to ``run_isolated``, whose child
calls ``evaluate`` — load, fetch the data, run the gate — and answers with the GateResult as a dict. The
parent accepts that answer only if it is for the asked gate, model digest and policy digest, copies the
reports the child listed out of the child's own output folder, and records the isolation it ran under.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlgate.core.callables import import_path_of
from mlgate.core.errors import ToolError
from mlgate.core.isolation import run_isolated
from mlgate.core.policy import Policy, parse_policy
from mlgate.core.results import Finding, GateResult, Severity

TARGET = "mlgate.gates.model.isolated:evaluate"


def evaluate(*, gate: str, model_dir: str, policy: dict[str, Any], policy_source: str, data_callable: str,
             data_path: str, seed: int, model_digest: str, model_uri: str, out_dir: str) -> dict[str, Any]:
    """Child side: load the model as its MLmodel says, fetch the data, run ``gate``; the result as a dict."""
    from mlgate.core.callables import resolve_callable
    from mlgate.gates.model.model_validation import load_flavor, validate_model

    data = resolve_callable(data_callable, "data_callable")(data_path=data_path, seed=seed)
    result = validate_model(gate, load_flavor(Path(model_dir)), data, parse_policy(policy, policy_source),
                            model_digest=model_digest, model_uri=model_uri, out_dir=Path(out_dir))
    return result.to_dict()


def _accepted(value: Any, gate: str, model_digest: str, policy: Policy) -> GateResult:
    """The child's answer as a GateResult, refused unless it is about what was asked."""
    try:
        result = GateResult.from_dict(value)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ToolError(f"{gate}: the isolated child answered a malformed result ({type(exc).__name__}: {exc})") \
            from None
    if (result.gate, result.subject.digest, result.policy_digest) != (gate, model_digest, policy.digest):
        raise ToolError(f"{gate}: the isolated child answered a result for another gate, model or policy "
                        f"({result.gate}, {result.subject.digest}, {result.policy_digest})")
    return result


def _collect(artifacts: tuple[str, ...], produced: Path, out_dir: Path) -> tuple[str, ...]:
    """Copy the reports the child listed (regular files inside its output folder only) to ``out_dir``."""
    copied = []
    for name in artifacts:
        path = Path(name)
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(produced.resolve()):
            raise ToolError(f"the isolated child listed a report outside its output folder: {name}")
        target = out_dir / path.name
        shutil.copyfile(path, target)
        copied.append(str(target))
    return tuple(copied)


def validate_isolated(gate: str, model_dir: Path, policy: Policy, *, data_callable: str | Callable[..., Any],
                      data_path: str, seed: int, model_digest: str, model_uri: str, out_dir: Path) -> GateResult:
    """Run one validation gate on the model in ``model_dir`` in an isolated child (``policy.sandbox``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlgate-reports-") as tmp:
        produced = Path(tmp)
        run = run_isolated(TARGET, {
            "gate": gate, "model_dir": str(model_dir.resolve()), "policy": policy.model_dump(mode="json"),
            "policy_source": policy.source, "data_callable": import_path_of(data_callable, "data_callable"),
            "data_path": str(data_path), "seed": int(seed), "model_digest": model_digest, "model_uri": model_uri,
            "out_dir": str(produced)}, policy.sandbox, readable=[model_dir.resolve(), Path(data_path).resolve()],
            writable=[produced], label=f"{gate} on {model_uri}")
        result = _accepted(run.value, gate, model_digest, policy)
        artifacts = _collect(result.artifacts, produced, out_dir)
    findings = result.findings
    if run.note:
        findings += (Finding(f"{gate}.sandbox", Severity.INFO, f"model evaluated in a spawned child with {run.note}"),)
    return replace(result, metrics={**result.metrics, "sandbox": run.sandbox}, findings=findings,
                   artifacts=artifacts)
