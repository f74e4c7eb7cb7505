"""Gates and promotion against a real ``mlflow server`` with PostgreSQL as its backend store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.audit import read_decisions
from mlgate.trust.registry import current_alias_version
from tests.helpers import context, new_run, promote_op, run_pipeline

pytestmark = pytest.mark.integration


def alias_of(run):
    return current_alias_version(MlflowHook().get_conn(), run["model"], "champion")


def test_the_pipeline_promotes_through_the_server(use_server, tmp_path):
    run = new_run(tmp_path)
    upstream = run_pipeline(run)
    version = upstream[("train_model", "model_version")]
    promote_op(run).execute(context(run, "promote_model", upstream))
    assert alias_of(run) == version
    tags = MlflowHook().get_conn().get_model_version(run["model"], version).tags
    assert tags["mlgate.decision"] == "promoted"
    assert tags["mlgate.decision.by"].startswith("airflow:ops/")
    (audited,) = read_decisions(MlflowHook().get_conn(), run["model"])  # signed, verified, audited via the server
    assert audited.envelope_digest == tags["mlgate.attestation.digest"]


def test_the_cli_promotes_and_exits_like_check(use_server, tmp_path):
    run = new_run(tmp_path)
    version = run_pipeline(run)[("train_model", "model_version")]
    promote = [sys.executable, "-m", "mlgate.cli", "promote", run["model"], version, "--policy", str(run["policy"])]
    done = subprocess.run(promote, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert alias_of(run) == version

    stricter = run["policy"].read_text().replace("max_evidence_age_hours: 24", "max_evidence_age_hours: 0.00001")
    run["policy"].write_text(stricter)
    done = subprocess.run(promote, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1
    assert "the policy changed since this evidence was produced" in done.stderr


def test_a_server_stopped_mid_pipeline_never_promotes(use_server, tmp_path):
    run = new_run(tmp_path)
    upstream = run_pipeline(run)
    use_server.stop()
    try:
        with pytest.raises(AirflowException, match=f"MLflow at {use_server.url} failed") as caught:
            promote_op(run).execute(context(run, "promote_model", upstream))
        assert not isinstance(caught.value, AirflowFailException), "an outage must stay retryable"
    finally:
        use_server.start()
    assert alias_of(run) is None
    promote_op(run).execute(context(run, "promote_model", upstream))  # the retry, once MLflow is back
    assert alias_of(run) == upstream[("train_model", "model_version")]


@pytest.mark.racing
@pytest.mark.parametrize("attempt", range(10))
def test_parallel_gates_of_one_dag_run_share_one_experiment_and_one_run(use_server, attempt, monkeypatch):
    """The scheduler runs a DAG run's gates in parallel: they race to create the experiment and the run
    (seen through the real scheduler: RESOURCE_ALREADY_EXISTS failed a gate)."""
    import threading
    import uuid

    import mlflow

    # MLflow 3.17's server answers concurrent run searches with a sporadic 500 when its auth extra is not
    # installed (each search re-imports mlflow.server.auth, which fails; a concurrent one sees it half
    # imported). Clients retry a 500 by default; use_server turns retries off to fail fast on outages.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")

    from mlgate.trust.registry import pipeline_run

    experiment, key = f"race-{uuid.uuid4().hex[:8]}", f"dag/{uuid.uuid4().hex}"
    barrier, runs, errors = threading.Barrier(8), [], []

    def gate():
        client = mlflow.MlflowClient(use_server.url)
        barrier.wait()
        try:
            runs.append(pipeline_run(client, experiment, key))
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=gate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(runs) == 8 and len(set(runs)) == 1


def test_an_attacker_with_a_client_and_no_key_cannot_get_a_version_promoted(use_server, tmp_path):
    """Issue 13, attack 1 through the server: the attacker registers a model of their own, copies the good
    version's data and code tags and its whole signed ``gates/`` folder, and adds a ``passed``
    ``model.training`` result recomputed for their model. Data gates verify (same data); the model-bound
    one is unsigned or about the good model: missing, so promotion refuses."""
    from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
    from mlgate.trust.registry import get_or_create_experiment, log_result, model_digest

    run = new_run(tmp_path)
    upstream = run_pipeline(run)
    client = MlflowHook().get_conn()
    good = client.get_model_version(run["model"], upstream[("train_model", "model_version")])
    attacker_run = client.create_run(get_or_create_experiment(client, "attacker")).info.run_id
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("backdoor")
    client.log_artifacts(attacker_run, str(tmp_path / "model"), artifact_path="model")
    forged = str(client.create_model_version(run["model"], f"{client.get_run(attacker_run).info.artifact_uri}/model",
                                             attacker_run).version)
    for key in ("mlgate.data_digest", "mlgate.code_digest"):
        client.set_model_version_tag(run["model"], forged, key, good.tags.get(key, ""))
    copied = client.download_artifacts(good.run_id, "gates", str(tmp_path / "copied"))
    client.log_artifacts(attacker_run, copied, artifact_path="gates")
    policy_digest = GateResult.from_dict(upstream[("train_model", "model.training")]).policy_digest
    recomputed = model_digest(client, f"models:/{run['model']}/{forged}")
    log_result(client, attacker_run, GateResult("model.training", Status.PASSED, Subject("model", "x", recomputed),
                                                policy_digest, ToolInfo("forged", "1"), utcnow(), utcnow()))

    ops = promote_op(run)
    ops.version = forged
    with pytest.raises(AirflowFailException, match="model.training: signed evidence counts as missing"):
        ops.execute(context(run, "promote_model", upstream))
    assert alias_of(run) is None
