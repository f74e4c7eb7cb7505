"""The fault matrix (issue 6): every gate × {tool missing, crashing, timing out, printing malformed output,
MLflow unreachable mid-run, an invalid policy}. In every cell the gate's operator fails the task naming
the gate and the cause, leaves no ``passed`` result anywhere, and promotion refuses.

The cells are generated from ``mlgate.core.policy.KNOWN_GATES``: a gate without a spec in
``tests/faults/specs.py`` fails ``test_every_gate_is_in_the_matrix``.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import UTC, datetime

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import mlgate.operators
from mlgate.core.policy import KNOWN_GATES, parse_policy
from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators import DataExpectationsGateOperator, RegistryPromoteGateOperator
from mlgate.trust.promotion import GATE as PROMOTE
from mlgate.trust.promotion import decide
from mlgate.trust.registry import current_alias_version, download_evidence, pipeline_run
from tests.faults.specs import BAD_KEY, CAUSES, FAULTS, PENDING, SPECS, TOOL_FAULTS, Cell, break_section, policy_section
from tests.helpers import FakeTaskInstance, new_run, run_pipeline, write_policy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CELLS = [pytest.param(gate, fault, id=f"{gate}-{fault}") for gate in KNOWN_GATES if gate not in PENDING
         for fault in FAULTS]


def gate_operators() -> dict[str, type]:
    """The operator ``mlgate.operators`` exports for each gate id."""
    exported = (getattr(mlgate.operators, name) for name in mlgate.operators.__all__)
    return {cls.gate_id: cls for cls in exported if isinstance(getattr(cls, "gate_id", None), str)}


def test_every_gate_is_in_the_matrix():
    assert not set(SPECS) & PENDING
    missing = sorted(set(KNOWN_GATES) - set(SPECS) - PENDING)
    assert not missing, f"gates without a fault-matrix spec (tests/faults/specs.py): {missing}"
    assert set(SPECS) | PENDING == set(KNOWN_GATES), "a spec or pending entry for a gate that does not exist"


def test_pending_gates_have_no_operator_yet():
    landed = sorted(PENDING & set(gate_operators()))
    assert not landed, f"{landed} now have operators: give them specs in tests/faults/specs.py, drop them from PENDING"


def test_every_spec_runs_the_operator_exported_for_its_gate(bench, tmp_path):
    operators = gate_operators()
    cell = Cell(uuid.uuid4().hex, bench.run["policy"], tmp_path)
    assert {gate: type(spec.operator(bench, cell)) for gate, spec in SPECS.items()} == operators


@pytest.fixture
def dead_mlflow(monkeypatch) -> str:
    """An ``mlflow_dead`` connection to a closed port; returns its URI."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEAD", json.dumps({"conn_type": "mlflow", "host": uri}))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    forget_server(monkeypatch)
    return uri


def forget_server(monkeypatch) -> None:
    """MLflow's URI setters export these: drop the dead server's (the original values return after the test)."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)


def lose_mlflow(op, monkeypatch, mid_run: bool) -> None:
    """Point the operator at the dead server: after its check ran on the live one, or from the start."""
    from mlgate.hooks.mlflow import MlflowHook

    if not mid_run:
        op.mlflow_conn_id = "mlflow_dead"
        return
    check = op.check

    def check_then_lose_mlflow(context, workdir):
        result = check(context, workdir)
        op.__dict__["mlflow_hook"] = MlflowHook("mlflow_dead")
        return result

    monkeypatch.setattr(op, "check", check_then_lose_mlflow)


def passing(gate: str, policy) -> GateResult:
    now = utcnow()
    return GateResult(gate, Status.PASSED, Subject("other", "x", "sha256:0"), policy.digest, ToolInfo("t", "1"),
                      now, now)


def assert_not_promotable(gate: str, run_id: str, fault: str) -> None:
    """Promotion's decision over what MLflow holds for this cell's gate, every other gate passing."""
    client = MlflowHook().get_conn()
    recorded = download_evidence(client, pipeline_run(client, "mlgate", f"ops/{run_id}")).get(gate)
    if fault == "mlflow-unreachable":
        assert recorded is None, "evidence reached the dead server's stand-in?"
    else:
        assert isinstance(recorded, GateResult) and recorded.status is Status.ERROR
    required = [g for g in SPECS if g != PROMOTE]
    policy = parse_policy({"version": 1, "promotion": {"model_name": "m", "required_gates": required}})
    evidence = {g: passing(g, policy) for g in required if g != gate}
    if recorded is not None:
        evidence[gate] = recorded
    decision = decide(policy, evidence, digests={}, now=datetime.now(UTC))
    assert not decision.allowed
    assert decision.gates[gate] == ("missing" if recorded is None else "error")
    assert decision.reasons and all(reason.startswith(f"{gate}: ") for reason in decision.reasons)


@pytest.mark.parametrize(("gate", "fault"), CELLS)
def test_fault_blocks_promotion(gate, fault, bench, tmp_path, monkeypatch, request):
    spec = SPECS[gate]
    policy = yaml.safe_load(bench.run["policy"].read_text())
    if fault == "invalid-policy":
        break_section(policy, gate)
    cell = Cell(uuid.uuid4().hex, write_policy(tmp_path / "policy.yaml", policy), tmp_path)
    op = spec.operator(bench, cell)
    if fault in TOOL_FAULTS:
        spec.tool.inject(fault, monkeypatch, bench)
        cause = CAUSES[fault]
    elif fault == "mlflow-unreachable":
        uri = request.getfixturevalue("dead_mlflow")
        lose_mlflow(op, monkeypatch, spec.mlflow_dies_mid_run)
        cause = "evidence could not be recorded(.|\n)*" + re.escape(uri)
    else:
        cause = re.escape(f"{policy_section(gate)}.{BAD_KEY}: Extra inputs are not permitted")
    ti = FakeTaskInstance(dag_id="ops", run_id=cell.run_id, task_id=op.task_id, upstream=spec.upstream(bench))

    with pytest.raises(AirflowException) as caught:
        op.execute({"ti": ti})

    if fault == "mlflow-unreachable":
        forget_server(monkeypatch)
    message = str(caught.value)
    assert gate in message and re.search(cause, message), message
    if fault == "invalid-policy":
        assert isinstance(caught.value, GateConfigViolation)
    else:
        assert not isinstance(caught.value, AirflowFailException), "a tool or MLflow fault must be retryable"
    assert ti.pushed[gate]["status"] == "error"
    if gate == PROMOTE:
        client = MlflowHook().get_conn()
        assert current_alias_version(client, bench.run["model"], "champion") is None
    else:
        assert_not_promotable(gate, cell.run_id, fault)


def test_an_error_recorded_for_one_required_gate_blocks_the_real_promotion(bench, tmp_path, monkeypatch):
    """The decision the cells check, through ``registry.promote`` on a registered model: its run holds
    every required gate's evidence, one of them an ``error`` from a crashed tool."""
    run = new_run(tmp_path)
    pipeline = run_pipeline(run)
    gate = "data.expectations"
    expectations = DataExpectationsGateOperator(task_id="data_expectations", data_path=str(run["data"]),
                                                policy_path=str(run["policy"]))
    with monkeypatch.context() as crashed:
        SPECS[gate].tool.inject("crash", crashed, bench)
        with pytest.raises(AirflowException, match="great_expectations crashed"):
            expectations.execute({"ti": FakeTaskInstance("ops", run["run_id"], "data_expectations")})

    promote = RegistryPromoteGateOperator(task_id="promote_model", policy_path=str(run["policy"]))
    with pytest.raises(GatePolicyViolation, match=f"{gate}: status error"):
        promote.execute({"ti": FakeTaskInstance("ops", run["run_id"], "promote_model", pipeline)})
    client = MlflowHook().get_conn()
    assert current_alias_version(client, run["model"], "champion") is None
    version = client.get_model_version(run["model"], pipeline[("train_model", "model_version")])
    assert version.tags["mlgate.decision"] == "blocked"
    assert {line.split(":")[0] for line in version.tags["mlgate.decision.reasons"].splitlines()} == {gate}
