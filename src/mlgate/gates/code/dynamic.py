"""``code.dynamic``: the pipeline's data-processing code and the ``predict`` of a small fitted model, run on
inputs generated from the data contract (the GX suite) by Hypothesis, in the isolated child (ADR 0015, 0025).

Blocks on: an exception on an in-contract input; an out-of-contract input that is not rejected cleanly (an
exception outside the policy's ``rejections``, or NaN/inf passed on); NaN or inf in an output; two calls on
the same input under the same seed that disagree; an exception or a log line that quotes an input value
(the canary rule of ``data.pii``); a call over its time or memory budget; training code that fails on the
pipeline's own data. Each finding names the shrunk failing input by digest and shape, and the exception by
type and code location, never by values or messages. The whole search runs in the child; this process
only reads the suite, names the code, and turns the child's answer (data) into the result.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.digests import code_digest
from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.isolation import run_isolated
from mlgate.core.policy import Policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.code.contract import load_contract

GATE = "code.dynamic"
TARGET = "mlgate.gates.code.dynamic_child:fuzz"  # the fault matrix points this at a faulty child entry
KINDS = {"exception": "raised", "non_finite": "returned NaN or inf", "nondeterministic": "gave two answers",
         "input_leak": "quoted an input value in an exception or a log line", "budget": "ran over its budget",
         "training": "failed to train on the pipeline's data"}
FINDING_KEYS = ("kind", "target", "phase", "case", "digest", "shape", "error", "location")


class DynamicPolicy(BaseModel):
    """The policy section of ``code.dynamic``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_examples: int = Field(default=200, ge=1, le=100_000, description="inputs per target and phase")
    max_rows: int = Field(default=5, ge=1, le=1000, description="rows of one generated input")
    seed: int = Field(default=0, description="Hypothesis's seed: a run is reproducible, digests included")
    call_budget_ms: float = Field(default=2000, gt=0, description="wall time of one call on one input")
    memory_mb: int = Field(default=4096, ge=256, description="address-space limit of the child")
    timeout_s: float = Field(default=900, gt=0, le=86400, description="the whole search, training included")
    rejections: tuple[str, ...] = Field(
        default=("ValueError", "TypeError", "KeyError"),
        description="exception classes (by name, subclasses included) that reject an out-of-contract input")


def module_file(module: str, path: Sequence[str]) -> Path:
    """The source file of ``module`` found on ``path`` without importing it (its code must not run here)."""
    parts = module.split(".")
    for entry in path:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    raise GateInputError(f"module {module!r} is not on the import path: cannot name the code it checks")


def _subject(callables: Sequence[str], training_callable: str | None, code_path: str | None) -> Subject:
    named = [*callables, *([training_callable] if training_callable else [])]
    if not named:
        raise GateInputError(f"{GATE}: name at least one callable or a training_callable to exercise")
    malformed = [c for c in named if not isinstance(c, str) or ":" not in c]
    if malformed:
        raise GateInputError(f"{GATE}: callables are named 'package.module:function' (they run in the isolated "
                             f"child), got {malformed}")
    root = Path(code_path) if code_path else module_file(named[0].partition(":")[0], sys.path).parent
    try:
        return Subject("code", str(root), code_digest(root))
    except (OSError, ValueError) as exc:
        raise GateInputError(f"{root}: cannot digest the code: {exc}") from None


def _finding(item: Any) -> Finding:
    if not isinstance(item, dict) or not all(isinstance(item.get(k, ""), str) for k in FINDING_KEYS) \
            or item.get("kind") not in KINDS:
        raise ToolError(f"{GATE}: the child answered a malformed finding")
    where = f" at {item['location']}" if item.get("location") else ""
    error = f" {item['error']}" if item.get("error") else ""
    case = f" ({item['case']})" if item.get("case") and item["case"] != "in contract" else ""
    shrunk = f"; shrunk input {item['shape']} {item['digest']}" if item.get("digest") else ""
    phase = str(item.get("phase", "")).replace("_", " ")
    message = f"{item['target']} {KINDS[item['kind']]}{error}{where} on an {phase} input{case}{shrunk}" \
        if item["kind"] != "training" else f"{item['target']} {KINDS['training']}:{error}{where}"
    severity = Severity.CRITICAL if item["kind"] == "input_leak" else Severity.HIGH
    return Finding(f"{GATE}.{item['kind']}", severity, message, str(item.get("location", "")))


def _answer(value: Any) -> tuple[list[Finding], dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("findings"), list) \
            or not isinstance(value.get("stats"), dict):
        raise ToolError(f"{GATE}: the child's answer is malformed (expected findings and stats)")
    stats = value["stats"]
    numbers = ("targets", "calls", "inputs", "search_s", "fit_s", "inputs_per_s")
    if not all(isinstance(stats.get(k), int | float) and not isinstance(stats.get(k), bool) for k in numbers):
        raise ToolError(f"{GATE}: the child's answer is malformed (statistics)")
    return [_finding(item) for item in value["findings"]], stats


def check_dynamic(policy: Policy, *, callables: Sequence[str] = (), training_callable: str | None = None,
                  data_path: str | None = None, params: Mapping[str, Any] | None = None, seed: int = 0,
                  suite_path: str | None = None, code_path: str | None = None) -> GateResult:
    """Run the contract-driven search over the named code in the isolated child and judge its answer."""
    started, clock = utcnow(), time.perf_counter()
    config: DynamicPolicy = policy.section(GATE)
    subject = _subject(callables, training_callable, code_path)
    suite = Path(suite_path) if suite_path else policy.resolve(policy.expectations().suite)
    contract = load_contract(suite)  # refuses a malformed suite here, before any child starts
    if training_callable and not data_path:
        raise GateInputError(f"{GATE}: training_callable needs data_path (the data the small model is fitted on)")
    if data_path and not Path(data_path).exists():
        raise GateInputError(f"{data_path}: no such data to fit the model on")
    limits = policy.sandbox.model_copy(update={"timeout_s": config.timeout_s, "memory_mb": config.memory_mb})
    request = {"suite": json.loads(suite.read_text()), "data_path": str(Path(data_path).resolve()) if data_path
               else None, "callables": list(callables),
               "training": {"callable": training_callable, "data_path": str(Path(data_path).resolve()),
                            "params": dict(params or {}), "seed": int(seed)} if training_callable else None,
               "config": {"max_examples": config.max_examples, "max_rows": config.max_rows, "seed": config.seed,
                          "budget_s": config.call_budget_ms / 1000, "rejections": list(config.rejections)}}
    readable = [Path(data_path).resolve()] if data_path else []
    run = run_isolated(TARGET, request, limits, readable=readable, label=f"{GATE} search")
    findings, stats = _answer(run.value)
    if run.sandbox != "bwrap":
        findings.append(Finding(f"{GATE}.sandbox", Severity.INFO, f"code exercised in a spawned child with {run.note}"))
    blocking = [f for f in findings if f.severity is not Severity.INFO]
    try:
        version = metadata.version("hypothesis")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return GateResult(
        gate=GATE, status=Status.BLOCKED if blocking else Status.PASSED, subject=subject,
        policy_digest=policy.digest, tool=ToolInfo("hypothesis", version), started_at=started, finished_at=utcnow(),
        metrics={**{k: stats[k] for k in ("targets", "calls", "inputs", "inputs_per_s", "search_s", "fit_s")},
                 "first_failure_s": stats.get("first_failure_s"), "failures": len(blocking),
                 "columns": len(contract.columns), "unmodelled_expectations": len(contract.unmodelled),
                 "sandbox": run.sandbox, "seconds": round(time.perf_counter() - clock, 3)},
        thresholds=config.model_dump(mode="json"), findings=tuple(findings))
