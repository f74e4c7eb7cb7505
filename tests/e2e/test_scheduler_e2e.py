"""The secure training pipeline through the real Airflow scheduler: triggered over the REST API, run by the
LocalExecutor, recorded in a real MLflow server. Clean data is promoted; one changed byte is blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.demo.run import tamper
from mlgate.trust.registry import PIPELINE_TAG
from tests.e2e.pipeline import DAG_ID, champion, client, logged_in, pipeline_conf, run_dag, states, unpaused_pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(airflow_stack):
    with logged_in(airflow_stack) as client:
        yield client


def test_scheduler_promotes_clean_data_and_blocks_tampered_data(airflow_stack, api, e2e_mlflow, tmp_path: Path):
    unpaused_pipeline(api)
    data, conf = pipeline_conf(tmp_path)
    assert champion(e2e_mlflow.url) is None

    run_id, state, tasks = run_dag(api, conf)
    assert (state, states(tasks)) == ("success", dict.fromkeys(tasks, "success"))
    assert {"data_integrity", "code_dependencies", "deploy_config", "model_robustness", "promote_model"} <= set(tasks)
    promoted = champion(e2e_mlflow.url)
    assert promoted is not None
    run_tags = client(e2e_mlflow.url).get_run(promoted.run_id).data.tags
    assert run_tags[PIPELINE_TAG] == f"{DAG_ID}/{run_id}"

    tamper(data)
    _, state, tasks = run_dag(api, conf)
    assert state == "failed"
    assert tasks["data_integrity"]["state"] == "failed"
    assert tasks["train_model"]["state"] == "upstream_failed"
    assert champion(e2e_mlflow.url).version == promoted.version
