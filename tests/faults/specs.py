"""The fault matrix's specs: for each gate, its operator on real inputs and the entry point of its tool.

A fault is injected where the gate meets its tool. For external programs (trivy, bandit) the fault is
real: the configured program is a path that does not exist, or a stand-in script that exits 2, hangs
until mlgate's timeout kills its process group, or prints garbage. For in-process libraries (hashlib,
Great Expectations, pyarrow, OpenDP, ART, fairlearn, scikit-learn, MLflow) a missing module, a crash or
a hang cannot be produced on demand, so the tool's entry function is replaced by one that raises
``ModuleNotFoundError``, ``RuntimeError`` or ``TimeoutError``, or returns output of the wrong shape —
the only mocks in the matrix.

A gate added to ``mlgate.core.policy.KNOWN_GATES`` without a spec here fails the matrix's coverage
test; a gate without an operator yet waits in ``PENDING``, which must empty as operators land.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from mlgate.gates.code import bandit_scan
from mlgate.gates.model.model_validation import ValidationData
from mlgate.operators import (
    CodeDependenciesGateOperator,
    CodeDynamicGateOperator,
    CodeStaticGateOperator,
    DataExpectationsGateOperator,
    DataIntegrityGateOperator,
    DataPiiGateOperator,
    DataPrivacyGateOperator,
    DeployConfigGateOperator,
    DeployContainerGateOperator,
    IncidentRespondOperator,
    ModelArtifactGateOperator,
    ModelCertificationGateOperator,
    ModelDosGateOperator,
    ModelExplainabilityGateOperator,
    ModelFairnessGateOperator,
    ModelPoisoningGateOperator,
    ModelPrivacyGateOperator,
    ModelRobustnessGateOperator,
    ModelTrainingGateOperator,
    MonitorConfidenceGateOperator,
    MonitorDriftGateOperator,
    MonitorQueriesGateOperator,
    RegistryPromoteGateOperator,
)
from mlgate.operators.base import BaseGateOperator
from tests.conftest import ROOT
from tests.faults.child_faults import MalformedOutput, broken, child_target, malformed_predictor, nan_importances

TOOL_FAULTS = ("missing", "crash", "timeout", "malformed")
FAULTS = (*TOOL_FAULTS, "mlflow-unreachable", "invalid-policy")
# What each tool fault's error message must say (an injected exception's text is chosen to say it).
CAUSES = {"missing": r"not found|No such file|No module named", "crash": r"exited with status 2|crashed",
          "timeout": r"timed out", "malformed": r"malformed|MalformedOutput"}
# Gates with a policy section but no operator yet: a test fails once ``mlgate.operators`` exports one.
PENDING: frozenset[str] = frozenset()
BAD_KEY = "mlgate_fault_key"
TIMEOUT_S = 1.0  # the hard limit a hanging program meets in the timeout cell
TRAINING_CODE = Path(find_spec("mlgate.demo").origin).parent
VALIDATION_DATA = "mlgate.demo.train:validation_data"
DIGITS_DATA = "tests.faults.specs:digits_validation_data"


@dataclass(frozen=True)
class Bench:
    """Real inputs shared by every cell (built once per session by ``tests/faults/conftest.py``)."""

    root: Path
    run: dict[str, Any]  # ``tests.helpers.new_run``: data, manifest, policy, model, run_id
    pipeline: dict[tuple[str, str], Any]  # XComs of the session's integrity, training and artifact tasks
    torch_model_uri: str
    torch_artifact: dict[str, Any]  # the passed model.artifact result of the torch model
    image: Path
    inference_log: Path  # a day of predictions on the run's data
    reference: Path  # a reference sample for drift
    trivy_cache: Path  # trivy's cache with the offline vulnerability DB
    standins: dict[str, Path]  # fault -> the program a Program tool is replaced with


@dataclass(frozen=True)
class Cell:
    """One matrix cell: its own DAG run (so its own MLflow pipeline run), policy file and scratch dir."""

    run_id: str
    policy: Path
    tmp: Path


@dataclass(frozen=True)
class Library:
    """An in-process tool: ``target`` (a dotted attribute) is the function the gate calls it through."""

    module: str  # the module whose absence the ``missing`` cell reports
    target: str
    malformed: Callable[..., Any] = MalformedOutput  # called with the tool call's arguments
    child: str = "mlgate.gates.model.isolated.TARGET"  # the constant naming the gate's isolated child entry

    def inject(self, fault: str, monkeypatch: pytest.MonkeyPatch, bench: Bench) -> None:
        monkeypatch.setattr(self.target, broken(fault, self.module, self.malformed))
        # gates that call the library in their isolated child: the same fault goes there too
        module, _, name = self.child.rpartition(".")
        real = getattr(importlib.import_module(module), name)
        monkeypatch.setattr(self.child, child_target(fault, self.module, self.target, self.malformed, real))


@dataclass(frozen=True)
class Program:
    """An external program: ``point`` makes the gate run another program in its place, and ``runner``
    (the dotted name the gate runs it through) gets its hard limit capped at ``TIMEOUT_S``, so a hang
    is killed by mlgate's real timeout path in a second (trivy's limit is the policy's plus 30 s)."""

    point: Callable[[pytest.MonkeyPatch, Path], None]
    runner: str

    def inject(self, fault: str, monkeypatch: pytest.MonkeyPatch, bench: Bench) -> None:
        self.point(monkeypatch, bench.standins[fault])
        if fault == "timeout":
            module, _, name = self.runner.rpartition(".")
            real = getattr(sys.modules[module], name)
            monkeypatch.setattr(self.runner, lambda argv, timeout_s, **kw: real(argv, min(timeout_s, TIMEOUT_S),
                                                                               **kw))


STANDINS = {  # answer `--version` (trivy asks first), then misbehave
    "crash": 'echo "FATAL: injected crash" >&2\nexit 2',
    "timeout": "exec sleep 60",
    "malformed": 'echo "this is not { the report"',
}


def write_standins(directory: Path) -> dict[str, Path]:
    """One program per fault; ``missing`` is a path where no program is."""
    directory.mkdir(parents=True, exist_ok=True)
    programs = {"missing": directory / "no-such-tool"}
    for fault, body in STANDINS.items():
        path = directory / f"tool-{fault}"
        path.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Version: 0.76.0"; exit 0; fi\n{body}\n')
        path.chmod(0o755)
        programs[fault] = path
    return programs


def trivy_connection(binary: Path | None, cache_dir: Path) -> str:
    extra = {"cache_dir": str(cache_dir), "offline": True, **({"binary": str(binary)} if binary else {})}
    return json.dumps({"conn_type": "trivy", "extra": extra})


def _point_trivy(monkeypatch: pytest.MonkeyPatch, program: Path) -> None:
    """The ``trivy_default`` connection's ``binary`` extra, as an operator would configure it."""
    extra = json.loads(os.environ["AIRFLOW_CONN_TRIVY_DEFAULT"])["extra"]
    monkeypatch.setenv("AIRFLOW_CONN_TRIVY_DEFAULT", trivy_connection(program, Path(extra["cache_dir"])))


def _point_bandit(monkeypatch: pytest.MonkeyPatch, program: Path) -> None:
    """``python -m bandit`` replaced by ``program`` with the same arguments."""
    real = bandit_scan.bandit_argv
    monkeypatch.setattr(bandit_scan, "bandit_argv", lambda path, policy: [str(program), *real(path, policy)[3:]])


TRIVY = Program(_point_trivy, "mlgate.gates.code.trivy.run_trivy")
BANDIT = Program(_point_bandit, "mlgate.gates.code.bandit_scan.run_tool")


def _gx_result_without_results(*_call: Any) -> dict[str, Any]:
    """GX's answer with its per-expectation results gone: it claims success and proves nothing."""
    return {"success": True, "statistics": {"evaluated_expectations": 0, "success_percent": None}}


Build = Callable[[Bench, Cell], BaseGateOperator]


@dataclass(frozen=True)
class GateSpec:
    operator: Build
    tool: Library | Program
    upstream: Callable[[Bench], dict[tuple[str, str], Any]] = lambda bench: {}
    section: str = ""  # the policy mapping the invalid-policy cell breaks; default ``gates.<gate>``
    # MLflow goes away after the check (before its evidence is recorded); False: it is down for the whole
    # run (``registry.promote``, whose check is nothing but MLflow calls)
    mlflow_dies_mid_run: bool = True


def _integrity(bench: Bench) -> dict[tuple[str, str], Any]:
    return {key: value for key, value in bench.pipeline.items() if key[0] == "data_integrity"}


def _trained(bench: Bench) -> dict[tuple[str, str], Any]:
    return {key: value for key, value in bench.pipeline.items() if key[0] in ("train_model", "model_artifact")}


def _torch(bench: Bench) -> dict[tuple[str, str], Any]:
    return {("torch_artifact", "model.artifact"): bench.torch_artifact}


def _args(cell: Cell, task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "policy_path": str(cell.policy)}


def _validation(operator: type[BaseGateOperator], task_id: str) -> Build:
    return lambda b, c: operator(data_callable=VALIDATION_DATA, data_path=str(b.run["data"]), seed=3,
                                 **_args(c, task_id))


def digits_validation_data(data_path: str, seed: int) -> ValidationData:
    """The torch model's data (scikit-learn digits as 8×8 images): the rows it trained on, and held-out rows."""
    from tests.fixtures.models import digits

    x_train, x_test, y_train, y_test = digits(images=True)
    return ValidationData(x_train, y_train, x_test, y_test)


SPECS: dict[str, GateSpec] = {
    "data.integrity": GateSpec(
        lambda b, c: DataIntegrityGateOperator(data_path=str(b.run["data"]), manifest_path=str(b.run["manifest"]),
                                               **_args(c, "data_integrity")),
        Library("_hashlib", "mlgate.gates.data.integrity.digest_files")),
    "data.expectations": GateSpec(
        lambda b, c: DataExpectationsGateOperator(data_path=str(b.run["data"]), **_args(c, "data_expectations")),
        Library("great_expectations", "mlgate.gates.data.expectations.validate", _gx_result_without_results)),
    "data.pii": GateSpec(
        lambda b, c: DataPiiGateOperator(data_path=str(b.run["data"]), **_args(c, "data_pii")),
        Library("pyarrow", "mlgate.gates.data.pii.scan")),
    "data.privacy": GateSpec(
        lambda b, c: DataPrivacyGateOperator(data_path=str(b.run["data"]), profile_path=str(c.tmp / "profile.json"),
                                             ledger_url=f"sqlite:///{c.tmp / 'ledger.db'}",
                                             **_args(c, "data_privacy")),
        Library("opendp", "mlgate.gates.data.privacy.release"), upstream=_integrity),
    "code.static": GateSpec(
        lambda b, c: CodeStaticGateOperator(source_path=str(TRAINING_CODE), **_args(c, "code_static")), BANDIT),
    # Hypothesis drives the search in the gate's isolated child: the fault is injected there
    "code.dynamic": GateSpec(
        lambda b, c: CodeDynamicGateOperator(callables=["tests.fixtures.dynamic_defects:clean_features"],
                                             data_path=str(b.run["data"]), **_args(c, "code_dynamic")),
        Library("hypothesis", "hypothesis.given", child="mlgate.gates.code.dynamic.TARGET")),
    "code.dependencies": GateSpec(
        lambda b, c: CodeDependenciesGateOperator(target=str(TRAINING_CODE), **_args(c, "code_dependencies")),
        TRIVY),
    "model.training": GateSpec(
        lambda b, c: ModelTrainingGateOperator(training_callable="mlgate.demo.train:train_loan_model",
                                               data_path=str(b.run["data"]), hyperparameters={"C": 0.5}, seed=3,
                                               **_args(c, "train_model")),
        # the worker's MLflow call: training itself runs in the isolated child (ADR 0020)
        Library("mlflow", "mlflow.register_model"), upstream=_integrity),
    "model.artifact": GateSpec(
        lambda b, c: ModelArtifactGateOperator(**_args(c, "model_artifact")),
        Library("lz4", "mlgate.gates.model.artifacts._run"), upstream=_trained),
    "model.robustness": GateSpec(_validation(ModelRobustnessGateOperator, "model_robustness"),
                                 Library("art", "mlgate.gates.model.robustness.run_attack"), upstream=_trained),
    "model.privacy": GateSpec(_validation(ModelPrivacyGateOperator, "model_privacy"),
                              Library("art", "mlgate.gates.model.membership._black_box"), upstream=_trained),
    "model.poisoning": GateSpec(
        lambda b, c: ModelPoisoningGateOperator(model_uri=b.torch_model_uri, data_callable=DIGITS_DATA,
                                                data_path=str(b.root), artifact_task_id="torch_artifact",
                                                **_args(c, "model_poisoning")),
        Library("sklearn", "mlgate.gates.model.poisoning.detect"), upstream=_torch),
    "model.certification": GateSpec(
        lambda b, c: ModelCertificationGateOperator(model_uri=b.torch_model_uri, data_callable=DIGITS_DATA,
                                                    data_path=str(b.root), artifact_task_id="torch_artifact",
                                                    **_args(c, "model_certification")),
        Library("torch", "mlgate.gates.model.certification._certify"), upstream=_torch),
    "model.fairness": GateSpec(_validation(ModelFairnessGateOperator, "model_fairness"),
                               Library("fairlearn", "fairlearn.metrics.MetricFrame"), upstream=_trained),
    "model.explainability": GateSpec(_validation(ModelExplainabilityGateOperator, "model_explainability"),
                                     Library("sklearn", "sklearn.inspection.permutation_importance",
                                             nan_importances), upstream=_trained),
    "model.dos": GateSpec(_validation(ModelDosGateOperator, "model_dos"),
                          Library("sklearn", "mlgate.gates.model.dos._predictor", malformed_predictor),
                          upstream=_trained),
    "deploy.container": GateSpec(
        lambda b, c: DeployContainerGateOperator(target=str(b.image), **_args(c, "deploy_container")), TRIVY),
    "deploy.config": GateSpec(
        lambda b, c: DeployConfigGateOperator(target=[str(ROOT / "Dockerfile"), str(ROOT / "docker-compose.yml")],
                                              **_args(c, "deploy_config")), TRIVY),
    "registry.promote": GateSpec(
        lambda b, c: RegistryPromoteGateOperator(**_args(c, "promote_model")),
        Library("mlflow", "mlflow.MlflowClient.get_model_version"), upstream=_trained, section="promotion",
        mlflow_dies_mid_run=False),
}


def _monitor(operator: type[BaseGateOperator], task_id: str, **inputs: Callable[[Bench, Cell], str]) -> Build:
    return lambda b, c: operator(inference_log_path=str(b.inference_log), window_hours=48,
                                 **{k: f(b, c) for k, f in inputs.items()}, **_args(c, task_id))


def _confidence_baseline(b: Bench, c: Cell) -> str:
    """A baseline measured at 5 % below 0.6 (the log's confidences are 0.7-0.9: a healthy window)."""
    path = c.tmp / "confidence_baseline.json"
    path.write_text(json.dumps({"low_confidence": 0.6, "low": 20, "predictions": 400}))
    return str(path)


SPECS.update({
    "monitor.drift": GateSpec(
        lambda b, c: MonitorDriftGateOperator(inference_log_path=str(b.inference_log), window_hours=48,
                                              reference_path=str(b.reference), **_args(c, "monitor_drift")),
        Library("scipy", "mlgate.gates.monitor.drift.check_drift")),
    "monitor.confidence": GateSpec(_monitor(MonitorConfidenceGateOperator, "monitor_confidence",
                                            baseline_path=_confidence_baseline),
                                   Library("scipy", "mlgate.gates.monitor.confidence.check_confidence")),
    "monitor.queries": GateSpec(_monitor(MonitorQueriesGateOperator, "monitor_queries",
                                         reference_path=lambda b, c: str(b.reference),
                                         state_path=lambda b, c: str(c.tmp / "extraction_state.json")),
                                Library("numpy", "mlgate.gates.monitor.queries.check_queries")),
    # MLflow is the tool: the registry calls of the response (it acts; it gates no promotion itself)
    "incident.respond": GateSpec(
        lambda b, c: IncidentRespondOperator(model_name=b.run["model"], reason="fault matrix",
                                             version=b.pipeline[("train_model", "model_version")],
                                             monitor_task_ids=[], **_args(c, "incident_respond")),
        Library("mlflow", "mlgate.operators.incident.respond")),
})


def policy_section(gate: str) -> str:
    return SPECS[gate].section or f"gates.{gate}"


def break_section(policy: dict[str, Any], gate: str) -> dict[str, Any]:
    """``policy`` with an unknown key in ``gate``'s own section."""
    if SPECS[gate].section == "promotion":
        policy["promotion"][BAD_KEY] = 1
    else:
        policy["gates"].setdefault(gate, {})[BAD_KEY] = 1
    return policy
