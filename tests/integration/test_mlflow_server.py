"""Gates and promotion against a real ``mlflow server`` with PostgreSQL as its backend store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlgate.core.audit import read_decisions
from mlgate.core.registry import current_alias_version
from mlgate.hooks.mlflow import MlflowHook
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
