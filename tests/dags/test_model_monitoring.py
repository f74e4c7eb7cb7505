"""Monitoring and incident response, run by Airflow itself (``dag.test()``) on models the real pipeline promoted."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlgate.core.policy import load_policy
from mlgate.demo.dataset import write_loans
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.monitor.incident import TAG
from mlgate.gates.monitor.monitoring import load_reference
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators.incident import RETRAINING_REQUESTED
from mlgate.trust.registry import current_alias_version
from tests.helpers import default_policy, register_version, write_policy
from tests.monitoring_data import LOANS_RELEASE, write_dp_reference, write_inference_log

pytestmark = pytest.mark.dags


@pytest.fixture(scope="module")
def promoted(dag_bag, tmp_path_factory):
    """Versions 1, 2 and 3 of a model, each trained and promoted by the secure training pipeline."""
    root = tmp_path_factory.mktemp("monitoring-dag")
    data = write_loans(root / "loans.csv", rows=1500)
    policy = default_policy()
    policy["promotion"]["model_name"] = name = f"loans-{uuid.uuid4().hex[:8]}"
    # 375 held-out rows cannot vouch for 1 % poison (model.poisoning blocks as underpowered, needing ~680); they
    # can for 3 % (ADR 0037), which is what a team with this little data can ask of the gate.
    policy["gates"]["model.poisoning"]["min_poison_fraction"] = 0.03
    # Monitoring compares with the pipeline's own DP release, the one the served version's attestation vouches
    # for (ADR 0060), released at ε = 1 per histogram: at the shipped ε = 0.1 (noise ±10 on 1,500 rows) healthy
    # 1,000-row windows alarm ~9% of the time, and its noise cannot be seeded; at ε = 1 a healthy window passed
    # 200 of 200 releases. Three releases of ε = 10 each need a budget to match.
    policy["gates"]["data.privacy"] = {"budgets": {"default": {"epsilon": 100.0, "delta": 1.0e-6}},
                                       "release": LOANS_RELEASE.model_dump(mode="json")}
    conf = {"data_path": str(data), "manifest_path": str(build_manifest(data).save(root / "m.json")),
            "policy_path": str(write_policy(root / "policy.yaml", policy)), "profile_path": str(root / "dp.json")}
    for _ in range(3):
        assert str(dag_bag.get_dag("secure_training_pipeline").test(run_conf=conf).state) == "success"
    client = MlflowHook().get_conn()
    assert current_alias_version(client, name, "champion") == "3"
    assert set(load_reference(conf["profile_path"]).numeric) >= {"age", "annual_income", "credit_score"}
    return {"root": root, "name": name, "client": client, "policy": conf["policy_path"],
            "reference": conf["profile_path"]}  # version 3's release, where its pipeline wrote it


def monitor(dag_bag, promoted, drifted, reference=None):
    """One monitoring run on a fresh log whose low-confidence share is the one the served version's
    attestation says it had on held-out data (measured by the pipeline's model.robustness), against
    ``reference`` (default: the served version's)."""
    from mlgate.gates.monitor.served import served_baseline
    from mlgate.trust.keys import keyring_from_env

    baseline = served_baseline(promoted["client"], load_policy(promoted["policy"]), keyring_from_env())
    assert baseline.predictions >= 100
    log = promoted["root"] / uuid.uuid4().hex / "inference.jsonl"
    write_inference_log(log, drifted=drifted, low_share=baseline.share)
    run = dag_bag.get_dag("model_monitoring").test(run_conf={
        "inference_log_path": str(log.parent), "reference_path": str(reference or promoted["reference"]),
        "policy_path": promoted["policy"]})
    return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_the_training_pipeline_is_scheduled_on_retraining_requests(dag_bag):
    assert dag_bag.get_dag("secure_training_pipeline").timetable.asset_condition == RETRAINING_REQUESTED


def test_a_healthy_window_raises_no_alert(dag_bag, promoted):
    before = current_alias_version(promoted["client"], promoted["name"], "champion")
    state, tasks = monitor(dag_bag, promoted, drifted=False)
    assert state == "success"
    assert tasks == {"monitor_drift": "success", "monitor_confidence": "success", "monitor_queries": "success",
                     "respond": "skipped", "monitoring_failed": "skipped"}
    assert current_alias_version(promoted["client"], promoted["name"], "champion") == before


@pytest.mark.parametrize(("rows", "drifted"), [(1501, False), (1500, True)], ids=["one-more-row", "silencing"])
def test_a_swapped_reference_fails_the_run_closed_and_demotes_nothing(dag_bag, promoted, rows, drifted):
    """A reference file written over by anyone but the pipeline is refused by drift and queries, the run fails
    and no alias moves: a release of one more training row, or one of the drifted data that would silence drift
    on this drifted window."""
    before = current_alias_version(promoted["client"], promoted["name"], "champion")
    swapped = write_dp_reference(promoted["root"] / uuid.uuid4().hex / "loans.dp.json", rows=rows, drifted=drifted)
    state, tasks = monitor(dag_bag, promoted, drifted=True, reference=swapped)
    assert state == "failed"
    assert tasks == {"monitor_drift": "failed", "monitor_confidence": "success", "monitor_queries": "failed",
                     "respond": "skipped", "monitoring_failed": "failed"}
    assert current_alias_version(promoted["client"], promoted["name"], "champion") == before


def test_drift_demotes_to_the_last_version_whose_evidence_passes(dag_bag, promoted):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    client, name = promoted["client"], promoted["name"]
    source = client.get_model_version(name, "2").source  # version 2's artifact changes after validation
    stored = Path(client.get_logged_model(source.split("/")[-1]).artifact_location.removeprefix("file://"))
    (stored / "model.skops").write_bytes(b"swapped after validation")
    client.set_registered_model_alias(name, "champion", "3")

    state, tasks = monitor(dag_bag, promoted, drifted=True)
    assert state == "failed"
    assert (tasks["monitor_drift"], tasks["respond"], tasks["monitoring_failed"]) == ("failed", "success", "failed")
    assert current_alias_version(client, name, "champion") == "1"
    incident = client.get_model_version(name, "3").tags[TAG]
    assert TAG not in client.get_model_version(name, "1").tags

    experiment = client.get_experiment_by_name("mlgate-incidents")
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`{TAG}` = '{incident}'")
    assert (run.data.tags[f"{TAG}.bad_version"], run.data.tags[f"{TAG}.restored_version"]) == ("3", "1")
    assert "model artifact changed since validation" in run.data.tags[f"{TAG}.reasons"]  # why 2 was skipped
    assert run.data.tags[f"{TAG}.dag_run"].startswith("model_monitoring/")
    assert "gates/monitor.drift.json" in {a.path for a in client.list_artifacts(run.info.run_id, "gates")}

    with create_session() as session:
        events = [e.extra for e in session.query(AssetEvent).filter(AssetEvent.source_dag_id == "model_monitoring")]
    assert {"incident": incident, "model": f"models:/{name}/3", "restored_version": "1",
            "gate": "incident.respond"} in events


def test_a_reported_incident_without_a_good_version_removes_the_alias(dag_bag, tmp_path):
    data = default_policy()
    data["promotion"]["model_name"] = name = f"reported-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    policy = write_policy(tmp_path / "policy.yaml", data)
    client = MlflowHook().get_conn()
    version = register_version(client, load_policy(policy), name)
    client.set_registered_model_alias(name, "champion", version)
    run = dag_bag.get_dag("incident_response").test(run_conf={
        "reason": "support tickets: approvals for obviously bad applications", "model_name": name,
        "policy_path": str(policy)})
    assert str(run.state) == "success"
    assert current_alias_version(client, name, "champion") is None
    assert client.get_model_version(name, version).tags[TAG].startswith("inc-")


def test_the_query_watch_runs_every_five_minutes_over_five_minutes_with_evidence_across_runs(dag_bag):
    """The hourly run is too coarse for extraction (benchmarks/extraction.py); the watch's windows tile time
    without overlap, and its gate keeps OOD evidence (a training reference, the default state file)."""
    from datetime import timedelta

    dag = dag_bag.get_dag("model_query_watch")
    gate = dag.get_task("monitor_queries")
    assert dag.schedule == timedelta(minutes=5)
    assert timedelta(hours=gate.window_hours) == timedelta(minutes=5)
    assert gate.reference_path and gate.state_path is None  # None: $MLGATE_HOME/monitor/extraction_state.json
    assert gate.per_window is False  # the cumulative evidence alone
    assert set(dag.get_task("respond").upstream_task_ids) == {"monitor_queries"}


def test_the_hourly_queries_gate_flags_no_natural_client_on_sparse_features(dag_bag, tmp_path):
    """The hourly gate, as the DAG configures it, on 40 natural digit clients: scaled by the window's own
    covariance, the near-constant pixels made PRADA flag nearly all of them (289 of 300 in
    benchmarks/extraction.py); against the training reference, none. Its OOD evidence has its own state."""
    from datetime import UTC, datetime

    from tests.helpers import FakeTaskInstance
    from tests.natural_queries import write_natural_digits

    gate = dag_bag.get_dag("model_monitoring").get_task("monitor_queries")
    watch = dag_bag.get_dag("model_query_watch").get_task("monitor_queries")
    assert gate.state_path and Path(gate.state_path).name != "extraction_state.json"  # not the watch's (None)
    assert watch.state_path is None

    end = datetime(2026, 3, 1, 12, tzinfo=UTC)
    log, reference = tmp_path / "log" / "inference.jsonl", tmp_path / "train.csv"
    write_natural_digits(log, reference, end)
    policy = default_policy()
    policy["gates"]["monitor.queries"]["reference"] = "unverified"  # a sample: the policy says so (ADR 0060)
    op = gate.prepare_for_execution()
    op.render_template_fields({"params": {"inference_log_path": str(log.parent), "reference_path": str(reference),
                                          "policy_path": str(write_policy(tmp_path / "policy.yaml", policy))}})
    op.state_path = str(tmp_path / "extraction_state_hourly.json")  # this test's own, not the session's
    context = {"ti": FakeTaskInstance(dag_id="model_monitoring", run_id=uuid.uuid4().hex, task_id=op.task_id),
               "data_interval_end": end}
    op.execute(context)
    result = context["ti"].pushed["monitor.queries"]
    assert (result["status"], result["metrics"]["clients"], result["metrics"]["flagged_clients"]) == ("passed", 40, [])
    assert result["metrics"]["prada_tested"] >= 35
    assert (result["metrics"]["reference_verified"], result["thresholds"]["reference"]) == (False, "unverified")
