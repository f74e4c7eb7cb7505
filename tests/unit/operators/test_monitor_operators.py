"""Monitoring and incident operators run ``execute`` on inference logs written by ``InferenceLogger`` and a
real embedded MLflow store; only the task instance is a stand-in (the incident operator sits in a real DAG)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import DAG, BaseNotifier
from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors

from mlgate.core.policy import load_policy
from mlgate.demo.dataset import FEATURES, generate_loans
from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.gates.monitor.confidence import ConfidenceBaseline
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators import (
    IncidentRespondOperator,
    MonitorConfidenceGateOperator,
    MonitorDriftGateOperator,
    MonitorQueriesGateOperator,
)
from mlgate.operators.incident import RETRAINING, RETRAINING_REQUESTED
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.promote import promote
from mlgate.trust.registry import current_alias_version
from tests.helpers import (
    FakeTaskInstance,
    default_policy,
    reference_version,
    register_version,
    validated_version,
    write_policy,
)
from tests.monitoring_data import write_dp_reference, write_extraction_queries, write_inference_log
from tests.unit.operators.test_gate_operators import pipeline_tags

pytestmark = pytest.mark.unit

END = datetime(2026, 3, 1, 12, tzinfo=UTC)


def served_policy(path, *, reference: str = "attested"):
    """A policy of its own model (``reference``: its drift and queries sections' setting), signed by its owner."""
    data = default_policy()
    data["promotion"]["model_name"] = f"monitored-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    for gate in ("monitor.drift", "monitor.queries"):
        data["gates"][gate]["reference"] = reference
    return write_policy(path, data)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A log whose hour before END is healthy and whose hour before that drifted, and a served version whose
    attestation vouches for the reference (the DP profile of its training data)."""
    root = tmp_path_factory.mktemp("monitor-ops")
    log = root / "inference.jsonl"
    write_inference_log(log, end=END - timedelta(hours=1), drifted=True, seed=31)
    write_inference_log(log, end=END, seed=32)
    policy, reference = served_policy(root / "policy.yaml"), write_dp_reference(root / "reference.json")
    reference_version(MlflowHook().get_conn(), load_policy(policy), load_policy(policy).promotion.model_name,
                      reference)
    return {"root": root, "log": log, "policy": policy, "reference": reference}


def ctx(task_id, upstream=None, **extra):
    return {"ti": FakeTaskInstance(dag_id="monitoring", run_id=uuid.uuid4().hex, task_id=task_id,
                                   upstream=upstream), **extra}


def drift_op(files, **kwargs):
    return MonitorDriftGateOperator(task_id="monitor_drift", inference_log_path=str(files["log"]),
                                    reference_path=str(files["reference"]), policy_path=str(files["policy"]),
                                    **kwargs)


def test_the_default_window_is_the_hour_before_the_runs_interval_end(files):
    context = ctx("monitor_drift", data_interval_end=END)
    drift_op(files).execute(context)
    result = context["ti"].pushed["monitor.drift"]
    assert (result["status"], result["metrics"]["rows"]) == ("passed", 1000)
    assert (result["metrics"]["reference_verified"], result["thresholds"]["reference"]) == (True, "attested")
    assert result["subject"]["uri"].endswith("#2026-03-01T11:00:00+00:00..2026-03-01T12:00:00+00:00")
    _, run = pipeline_tags(f"monitoring/{context['ti'].run_id}")
    assert 0 <= run.data.metrics["mlgate.monitor.drift.columns.age.psi"] < 0.2  # nested metrics, flattened


def test_a_drifted_window_blocks_and_names_the_columns(files):
    context = ctx("monitor_drift")
    op = drift_op(files, window_start="2026-03-01T10:00:00+00:00", window_end="2026-03-01T11:00:00+00:00")
    with pytest.raises(GatePolicyViolation, match="column age"):
        op.execute(context)
    assert context["ti"].pushed["monitor.drift"]["metrics"]["drifted_columns"] == [
        "age", "annual_income", "credit_score"]


def test_an_extraction_like_client_is_flagged_and_natural_clients_are_not(files, tmp_path):
    log = write_inference_log(tmp_path / "queries.jsonl", rows=600, clients=6, end=END)
    write_extraction_queries(log, end=END)
    context = ctx("monitor_queries", data_interval_end=END)
    op = MonitorQueriesGateOperator(task_id="monitor_queries", inference_log_path=str(log),
                                    policy_path=str(files["policy"]), reference_path=str(files["reference"]),
                                    state_path=str(tmp_path / "state.json"))
    with pytest.raises(GatePolicyViolation, match="PRADA"):
        op.execute(context)
    assert context["ti"].pushed["monitor.queries"]["metrics"]["flagged_clients"] == ["attacker"]


def test_the_queries_gate_takes_no_window_scaled_distances(files):
    with pytest.raises(TypeError, match="reference_path"):
        MonitorQueriesGateOperator(task_id="monitor_queries", inference_log_path=str(files["log"]),
                                   policy_path=str(files["policy"]))


def edited_count(path):
    """The reference with one histogram count raised by one: a profile nobody released."""
    data = json.loads(path.read_text())
    data["columns"]["age"]["counts"][0] += 1
    path.write_text(json.dumps(data))
    return path


SWAPS = {"one more row": lambda p: write_dp_reference(p, rows=1501),
         "the same data released again": write_dp_reference,
         "one count edited": lambda p: edited_count(write_dp_reference(p))}


@pytest.mark.parametrize("swap", SWAPS, ids=list(SWAPS))
def test_a_swapped_reference_fails_both_gates_closed(files, tmp_path, swap):
    """Whoever may write the reference file cannot replace it: drift and queries refuse any profile but the
    one the served version's attestation vouches for, naming the file and both digests."""
    swapped = SWAPS[swap](tmp_path / "reference.json")
    log = write_inference_log(tmp_path / "queries.jsonl", rows=600, clients=6, end=END)
    for op in (drift_op({**files, "reference": swapped}),
               MonitorQueriesGateOperator(task_id="monitor_queries", inference_log_path=str(log),
                                          policy_path=str(files["policy"]), reference_path=str(swapped),
                                          state_path=str(tmp_path / "state.json"))):
        context = ctx(op.task_id, data_interval_end=END)
        with pytest.raises(GateConfigViolation, match="verified attestation records") as raised:
            op.execute(context)
        message = str(raised.value)
        assert str(swapped) in message
        assert json.loads(files["reference"].read_text()) != json.loads(swapped.read_text())
        digests = re.findall(r"sha256:[0-9a-f]{64}", message)
        assert len(set(digests)) == 2
        assert context["ti"].pushed[op.gate_id]["status"] == "error"


def test_a_sample_is_no_attested_reference(files, tmp_path):
    sample = tmp_path / "reference.csv"
    generate_loans(600, 7)[list(FEATURES)].to_csv(sample, index=False)
    context = ctx("monitor_drift", data_interval_end=END)
    with pytest.raises(GateConfigViolation, match="a sample is accepted only under a policy whose monitoring "
                                                  "reference is 'unverified'"):
        drift_op({**files, "reference": sample}).execute(context)


def test_an_unverified_reference_needs_a_policy_that_says_so_and_is_trusted(files, tmp_path):
    """``reference: unverified`` accepts a sample, recorded as unverified, only in a policy the signer trusts:
    whoever triggers the DAG names its policy file."""
    sample = tmp_path / "reference.csv"
    generate_loans(1500, 7)[list(FEATURES)].to_csv(sample, index=False)
    trusted = served_policy(tmp_path / "unverified.yaml", reference="unverified")
    context = ctx("monitor_drift", data_interval_end=END)
    drift_op({**files, "reference": sample, "policy": trusted}).execute(context)
    result = context["ti"].pushed["monitor.drift"]
    assert (result["status"], result["metrics"]["reference_verified"]) == ("passed", False)
    assert result["thresholds"]["reference"] == "unverified"

    untrusted = tmp_path / "untrusted" / "policy.yaml"
    untrusted.parent.mkdir()
    untrusted.write_text(trusted.read_text())  # the same policy, without its owner's signature beside it
    with pytest.raises(GateConfigViolation, match="does not trust policy"):
        drift_op({**files, "reference": sample, "policy": untrusted}).execute(ctx("monitor_drift"))


def test_a_served_model_attested_without_a_reference_fails_closed(files, tmp_path):
    policy = served_policy(tmp_path / "policy.yaml")
    reference_version(MlflowHook().get_conn(), load_policy(policy), load_policy(policy).promotion.model_name, None)
    context = ctx("monitor_drift", data_interval_end=END)
    with pytest.raises(GateConfigViolation, match="records no training reference"):
        drift_op({**files, "policy": policy}).execute(context)
    assert context["ti"].pushed["monitor.drift"]["status"] == "error"


def attested(tmp_path, baseline) -> str:
    """A policy whose model is served by a version promoted with ``baseline`` in its attestation."""
    data = default_policy()
    data["promotion"]["model_name"] = name = f"confident-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    path = write_policy(tmp_path / "policy.yaml", data)
    validated_version(MlflowHook().get_conn(), load_policy(path), name, baseline)
    return str(path)


@pytest.mark.parametrize(("low_share", "spike"), [(0.45, True), (0.2, False)], ids=["spike", "as-validated"])
def test_confidence_is_judged_against_the_served_models_attested_baseline(tmp_path, low_share, spike):
    policy = attested(tmp_path, ConfidenceBaseline(0.6, 80, 400))  # validated at 20 % below 0.6
    log = write_inference_log(tmp_path / "window.jsonl", rows=300, end=END, low_share=low_share)
    context = ctx("monitor_confidence", data_interval_end=END)
    op = MonitorConfidenceGateOperator(task_id="monitor_confidence", inference_log_path=str(log), policy_path=policy)
    if spike:
        with pytest.raises(GatePolicyViolation, match="monitor.confidence.spike"):
            op.execute(context)
    else:
        op.execute(context)
    assert context["ti"].pushed["monitor.confidence"]["metrics"]["baseline_evidence"]["low"] == 80


def test_a_served_model_attested_without_a_baseline_fails_closed(tmp_path):
    policy = attested(tmp_path, None)
    log = write_inference_log(tmp_path / "window.jsonl", rows=300, end=END)
    context = ctx("monitor_confidence", data_interval_end=END)
    op = MonitorConfidenceGateOperator(task_id="monitor_confidence", inference_log_path=str(log), policy_path=policy)
    with pytest.raises(GateConfigViolation, match="carries no confidence baseline"):
        op.execute(context)
    assert context["ti"].pushed["monitor.confidence"]["status"] == "error"


def test_a_baseline_file_replaces_the_attestation(files, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(ConfidenceBaseline(0.6, 20, 400).to_dict()))  # 5 %: 20 % is a spike
    log = write_inference_log(tmp_path / "window.jsonl", rows=300, end=END, low_share=0.2)
    op = MonitorConfidenceGateOperator(task_id="monitor_confidence", inference_log_path=str(log),
                                       policy_path=str(files["policy"]), baseline_path=str(baseline))
    with pytest.raises(GatePolicyViolation, match="monitor.confidence.spike"):
        op.execute(ctx("monitor_confidence", data_interval_end=END))


class RecordingNotifier(BaseNotifier):
    """A real Airflow notifier (templated message) that keeps what it was asked to send."""

    template_fields = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.sent: list[str] = []

    def notify(self, context) -> None:
        self.sent.append(self.message)


@pytest.fixture
def served(files, tmp_path):
    """Versions 1 and 2 of a fresh model, both with passing evidence and promoted (signed), version 2 served."""
    data = default_policy()
    data["promotion"]["model_name"] = name = f"served-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    path = write_policy(tmp_path / "policy.yaml", data)
    client = MlflowHook().get_conn()
    for _ in range(2):
        version = register_version(client, load_policy(path), name)
        promote(client, load_policy(path), name, version, "test:promoter", keyring_from_env())
    assert current_alias_version(client, name, "champion") == "2"
    return {"name": name, "policy": str(path), "client": client}


def respond_dag(files, served, notifier):
    with DAG("monitoring", schedule=None):
        drift = drift_op(files)
        respond = IncidentRespondOperator(task_id="respond", policy_path=served["policy"], notifiers=[notifier])
        drift >> respond
    return drift, respond


def test_an_alert_demotes_requests_retraining_and_notifies(files, served):
    notifier = RecordingNotifier("incident {{ incident.metrics.incident }}: {{ incident.subject.uri }}")
    drift, respond = respond_dag(files, served, notifier)
    alert = ctx("monitor_drift")
    with pytest.raises(GatePolicyViolation):
        drift_op(files, window_end="2026-03-01T11:00:00+00:00").execute(alert)
    context = ctx("respond", {("monitor_drift", "monitor.drift"): alert["ti"].pushed["monitor.drift"]},
                  outlet_events=OutletEventAccessors())
    respond.execute(context)
    result = context["ti"].pushed["incident.respond"]
    assert (result["status"], result["metrics"]["alias_after"]) == ("passed", "1")
    assert current_alias_version(served["client"], served["name"], "champion") == "1"
    assert notifier.sent == [f"incident {result['metrics']['incident']}: models:/{served['name']}/2"]
    (event,) = context["outlet_events"][RETRAINING].asset_alias_events
    assert event.dest_asset_key.name == RETRAINING_REQUESTED.name
    assert event.extra["incident"] == result["metrics"]["incident"]


def test_without_an_alert_the_response_is_skipped(files, served):
    notifier = RecordingNotifier("never")
    _, respond = respond_dag(files, served, notifier)
    passed = ctx("monitor_drift", data_interval_end=END)
    drift_op(files).execute(passed)
    context = ctx("respond", {("monitor_drift", "monitor.drift"): passed["ti"].pushed["monitor.drift"]})
    with pytest.raises(AirflowSkipException):
        respond.execute(context)
    assert current_alias_version(served["client"], served["name"], "champion") == "2"
    assert notifier.sent == []
