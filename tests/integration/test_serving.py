"""``mlgate serve`` through a real uvicorn server (two workers) on 127.0.0.1, the real Redis and a real
``mlflow server``: authentication, authorization, limits shared by the workers, validation, the inference log,
metrics, and a revoked version that stops being served within the re-check interval."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from mlgate.demo.dataset import FEATURES, generate_loans
from mlgate.gates.monitor.extraction import space_from_sample
from mlgate.gates.monitor.inference_log import read_window
from mlgate.gates.monitor.queries import QueriesPolicy, check_queries
from mlgate.operators import MonitorDriftGateOperator, MonitorQueriesGateOperator
from tests import alias_attacks as attack
from tests.fixtures.serving import MlgateServer, signature, write_keys
from tests.helpers import FakeTaskInstance
from tests.monitoring_data import write_dp_reference
from tests.pyfunc_models import Hungry

pytestmark = pytest.mark.integration

ROW = {"age": 41, "income": 52000.0, "home": "rent"}
CLIENT_LIMIT = 12


@pytest.fixture(scope="module")
def served(mlflow_server, tmp_path_factory):
    """One promoted version with a signature, served by alias with keys for several clients."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        client = mlflow.MlflowClient(mlflow_server.url, mlflow_server.url)
        policy = attack.new_policy()
        (version,) = attack.promoted(client, policy, 1, signature=signature())
        root = tmp_path_factory.mktemp("serve")
        name = policy.promotion.model_name
        keys = write_keys(root / "keys.yaml", {"valid": [name], "other": ["another-model"], "limited": [name],
                                               "quiet": [name], "logged": [name]})
        server = MlgateServer(root, mlflow_server.url, Path(policy.source), f"models:/{name}@champion",
                              "--api-keys", str(root / "keys.yaml"), "--client-limit", f"{CLIENT_LIMIT}/minute",
                              "--max-batch", "4", "--max-body-bytes", "4096")
        server.start()
        yield server, keys, name, version
        server.stop()


def post(server, key: str | None, body, **kwargs) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/predict", content=content, headers={**headers, "Content-Type":
                      "application/json"}, timeout=30, **kwargs)


def test_authentication_and_authorization(served):
    server, keys, name, version = served
    assert post(server, None, {"instances": [ROW]}).status_code == 401
    assert post(server, "mlg_not-a-key", {"instances": [ROW]}).status_code == 401
    assert post(server, keys["other"], {"instances": [ROW]}).status_code == 403
    reply = post(server, keys["valid"], {"instances": [ROW, ROW]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["version"] == version and len(reply.json()["predictions"]) == 2
    bearer = httpx.post(f"{server.url}/predict", json={"instances": [ROW]},
                        headers={"Authorization": f"Bearer {keys['valid']}"}, timeout=30)
    assert bearer.status_code == 200


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 422, "instances"),
    ({"instances": [{**ROW, "age": "41"}]}, 422, "instances[0].age"),
    ({"instances": [{**ROW, "income": math.nan}]}, 422, "instances[0].income"),
    ({"instances": [{**ROW, "income": math.inf}]}, 422, "instances[0].income"),
    ({"instances": [{**ROW, "age": 10_000}]}, 422, "instances[0].age"),
    ({"instances": [{**ROW, "home": "castle"}]}, 422, "instances[0].home"),
    ({"instances": [{k: v for k, v in ROW.items() if k != "income"}]}, 422, "instances[0].income"),
    ({"instances": [{**ROW, "extra": 1}]}, 422, "instances[0].extra"),
    ({"instances": [ROW] * 5}, 413, "instances"),
    ({"instances": [{**ROW, "home": "x" * 5000}]}, 413, None),
], ids=["malformed", "string-for-long", "nan", "inf", "out-of-range", "unseen-category", "missing", "extra",
        "batch", "body"])
def test_bad_inputs_are_refused_naming_the_field(served, body, status, field):
    server, keys, _, _ = served
    reply = post(server, keys["valid"], body if isinstance(body, bytes) else
                 json.dumps(body, allow_nan=True).encode())
    assert reply.status_code == status, reply.text
    assert "Traceback" not in reply.text
    if field:
        assert field in [f["field"] for f in reply.json()["fields"]] or (
            field == "instances" and reply.json()["fields"][0]["field"].startswith("body")), reply.json()


def test_the_limit_is_shared_by_the_workers(served):
    """More than the limit from one client, spread over both workers: exactly the limit is answered, then
    429 with Retry-After, and each worker refused some (a per-process count would have let each worker
    answer up to the limit)."""
    server, keys, _, _ = served
    before = server.requests_by_worker()

    def one(_):
        with httpx.Client() as fresh:  # a new connection each: the kernel spreads them over the workers
            return fresh.post(f"{server.url}/predict", json={"instances": [ROW]},
                              headers={"X-API-Key": keys["limited"]}, timeout=30)

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(one, range(6 * CLIENT_LIMIT)))
    codes = [r.status_code for r in replies]
    assert codes.count(200) == CLIENT_LIMIT and codes.count(429) == 5 * CLIENT_LIMIT, codes
    assert all(int(r.headers["Retry-After"]) >= 1 for r in replies if r.status_code == 429)
    after = server.requests_by_worker()
    handled = {pid: sum(after[pid].values()) - sum(before.get(pid, {}).values()) for pid in after}
    assert len([pid for pid, n in handled.items() if n > 0]) == 2, handled
    assert post(server, keys["quiet"], {"instances": [ROW]}).status_code == 200  # other clients still served
    assert 'mlgate_serve_limit_hits_total{scope="client"}' in httpx.get(f"{server.url}/metrics", timeout=10).text


def test_every_prediction_is_logged_and_metrics_are_exposed(served):
    server, keys, _, _ = served
    for _ in range(3):
        assert post(server, keys["logged"], {"instances": [ROW, {**ROW, "home": "own"}]}).status_code == 200
    assert post(server, keys["logged"], {"instances": [{**ROW, "home": "boat"}]}).status_code == 422
    window = read_window(server.inference_log, "2000-01-01T00:00:00+00:00", datetime.now(UTC) + timedelta(seconds=1))
    logged = window[window["client_id"] == "logged"]  # what the monitoring gates read, per client
    assert len(logged) == 6 and set(logged["home"]) == {"rent", "own"}
    assert logged["confidence"].between(0, 1).all() and logged["prediction"].notna().all()
    rng = np.random.default_rng(0)  # a training reference for the queries gate's distances
    training = pd.DataFrame({"age": rng.integers(18, 80, 500), "income": rng.lognormal(10.8, 0.5, 500)})
    space = space_from_sample(training, ["age", "income"], QueriesPolicy().ood_quantile)
    queries = check_queries(window, QueriesPolicy(columns=("age", "income")), "sha256:policy", space=space)
    assert str(queries.status) != "error" and queries.metrics["clients"] == window["client_id"].nunique() >= 2
    assert post(server, None, {"instances": [ROW]}).status_code == 401
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'mlgate_serve_requests_total{status="200"}' in metrics
    assert 'mlgate_serve_rejections_total{reason="unauthenticated"}' in metrics
    assert "mlgate_serve_latency_seconds_bucket" in metrics
    logged = server.log.read_text() + server.inference_log.read_text() + metrics
    assert not [client for client, key in keys.items() if key in logged]


def test_openapi_schema_comes_from_the_signature(served):
    server, keys, _, _ = served
    assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 401  # training categories inside
    schema = httpx.get(f"{server.url}/openapi.json", headers={"X-API-Key": keys["valid"]}, timeout=10).json()
    instance = schema["components"]["schemas"]["Instance"]
    assert set(instance["required"]) == {"age", "income", "home"}
    assert instance["properties"]["home"]["enum"] == ["mortgage", "own", "rent"]


def test_a_revoked_version_stops_being_served_within_the_interval(mlflow_server, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        client = mlflow.MlflowClient(mlflow_server.url, mlflow_server.url)
        policy = attack.new_policy()
        first, second = attack.promoted(client, policy, 2, signature=signature())
        name = policy.promotion.model_name
        keys = write_keys(tmp_path / "keys.yaml", {"valid": [name]})
        server = MlgateServer(tmp_path, mlflow_server.url, Path(policy.source), f"models:/{name}@champion",
                              "--api-keys", str(tmp_path / "keys.yaml"), "--recheck-s", "1")
        server.start()
        try:
            assert _served_version(server, keys["valid"], until=lambda v: v == second) == second
            attack.incident(client, policy, second, "test/serve-revoke")
            revoked = time.monotonic()
            assert _served_version(server, keys["valid"], until=lambda v: v == first) == first
            assert time.monotonic() - revoked < 1 + 15  # the interval, plus a load of the restored version
            attack.incident(client, policy, first, "test/serve-revoke-last")
            assert _served_version(server, keys["valid"], until=lambda v: v is None) is None
            reply = post(server, keys["valid"], {"instances": [ROW]})
            assert reply.status_code == 503 and "Retry-After" in reply.headers
        finally:
            server.stop()


def _served_version(server, key: str, until, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = post(server, key, {"instances": [ROW]})
        version = reply.json().get("version") if reply.status_code == 200 else None
        if until(version):
            return version
        time.sleep(0.2)
    raise AssertionError(f"still serving {version} after {timeout} s")


def test_schemathesis_finds_no_server_error(mlflow_server, tmp_path):
    """Property-based requests generated from the served OpenAPI schema (valid and invalid bodies, missing and
    wrong credentials): no 5xx, and every status code is one the schema documents."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        client = mlflow.MlflowClient(mlflow_server.url, mlflow_server.url)
        policy = attack.new_policy()
        attack.promoted(client, policy, 1, signature=signature())
        name = policy.promotion.model_name
        keys = write_keys(tmp_path / "keys.yaml", {"fuzz": [name]})
        server = MlgateServer(tmp_path, mlflow_server.url, Path(policy.source), f"models:/{name}@champion",
                              "--api-keys", str(tmp_path / "keys.yaml"), "--client-limit", "100000/minute",
                              "--max-batch", "8", workers=1)
        server.start()
        try:
            run = subprocess.run([str(Path(sys.executable).parent / "schemathesis"), "run",
                                  f"{server.url}/openapi.json",
                                  "--checks", "not_a_server_error,status_code_conformance",
                                  "--header", f"X-API-Key: {keys['fuzz']}", "--max-examples", "60", "--seed", "18"],
                                 capture_output=True, text=True, timeout=600, cwd=tmp_path)
        finally:
            server.stop()
    assert run.returncode == 0, run.stdout[-4000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert "No issues found" in run.stdout and cases and int(cases[2]) == int(cases[1]) >= 50, run.stdout[-2000:]
    assert "Traceback" not in server.log.read_text()


def test_a_prediction_over_the_memory_cap_is_refused_and_the_worker_keeps_serving(mlflow_server, tmp_path):
    """One worker capped at 3 GiB of address space (RLIMIT_AS) serving a model that reserves 8 GiB on one kind
    of row: that request is answered 503 (MemoryError inside the prediction), not a crash; the same worker
    answers the next request, of that client and of another one, and nothing is logged for the refused rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        client = mlflow.MlflowClient(mlflow_server.url, mlflow_server.url)
        policy = attack.new_policy()
        attack.promoted(client, policy, 1, signature=signature(), python_model=Hungry)
        name = policy.promotion.model_name
        keys = write_keys(tmp_path / "keys.yaml", {"greedy": [name], "plain": [name]})
        server = MlgateServer(tmp_path, mlflow_server.url, Path(policy.source), f"models:/{name}@champion",
                              "--api-keys", str(tmp_path / "keys.yaml"), "--memory-mb", "3072", workers=1)
        server.start()
        try:
            assert post(server, keys["plain"], {"instances": [ROW]}).status_code == 200
            over = post(server, keys["greedy"], {"instances": [{**ROW, "home": "own"}]})
            assert over.status_code == 503, over.text
            assert "memory budget" in over.json()["error"] and "Traceback" not in over.text
            assert post(server, keys["greedy"], {"instances": [ROW]}).status_code == 200
            assert post(server, keys["plain"], {"instances": [ROW, ROW]}).status_code == 200
            assert server.process.poll() is None  # one worker, in the server's own process: still up
            metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert 'mlgate_serve_rejections_total{reason="memory"}' in metrics
        finally:
            server.stop()
    assert "Traceback" not in server.log.read_text()
    logged = read_window(server.inference_log, "2000-01-01T00:00:00+00:00", datetime.now(UTC) + timedelta(seconds=1))
    assert len(logged) == 4 and set(logged["home"]) == {"rent"}


def loans_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    frame = generate_loans(5, 1)[list(FEATURES)]
    kinds = {"i": "long", "f": "double", "O": "string"}
    return ModelSignature(inputs=Schema([ColSpec(kinds.get(frame[c].dtype.kind, "string"), c) for c in FEATURES]))


def test_the_monitoring_gates_read_the_log_mlgate_serve_writes(mlflow_server, tmp_path):
    """Loan applications served by ``mlgate serve`` (validated against the training data's DP profile) land in
    its inference log; the monitoring DAG's drift and query operators read that log as it is and pass it, with
    every served row and client in their evidence."""
    reference = write_dp_reference(tmp_path / "reference.json")  # also the serving profile: one training profile
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        client = mlflow.MlflowClient(mlflow_server.url, mlflow_server.url)
        policy = attack.new_policy(reference="unverified")  # this model's attestation vouches for no profile
        attack.promoted(client, policy, 1, signature=loans_signature())
        name = policy.promotion.model_name
        clients = [f"branch-{i}" for i in range(4)]
        keys = write_keys(tmp_path / "keys.yaml", dict.fromkeys(clients, [name]))
        server = MlgateServer(tmp_path, mlflow_server.url, Path(policy.source), f"models:/{name}@champion",
                              "--api-keys", str(tmp_path / "keys.yaml"), "--client-limit", "100000/minute",
                              "--max-batch", "50", workers=1)
        server.argv[server.argv.index("--profile") + 1] = str(reference)
        server.start()
        try:
            frame = generate_loans(1000, 23)[list(FEATURES)]
            batches = [frame.iloc[i:i + 50].to_dict("records") for i in range(0, len(frame), 50)]
            codes = [post(server, keys[clients[i % 4]], {"instances": rows}).status_code
                     for i, rows in enumerate(batches)]
        finally:
            server.stop()
    assert codes.count(200) >= 15, codes  # a tail row beyond the profile's span + slack refuses its batch
    served_rows = 50 * codes.count(200)
    end = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    window = {"inference_log_path": str(server.inference_log), "window_end": end, "policy_path": policy.source}

    drift = {"ti": FakeTaskInstance(dag_id="model_monitoring", run_id=uuid.uuid4().hex, task_id="monitor_drift")}
    MonitorDriftGateOperator(task_id="monitor_drift", reference_path=str(reference),
                             history_path=str(tmp_path / "drift_history.jsonl"), **window).execute(drift)
    result = drift["ti"].pushed["monitor.drift"]
    assert (result["status"], result["metrics"]["rows"]) == ("passed", served_rows)
    assert result["metrics"]["drifted_columns"] == []

    queries = {"ti": FakeTaskInstance(dag_id="model_monitoring", run_id=uuid.uuid4().hex, task_id="monitor_queries")}
    MonitorQueriesGateOperator(task_id="monitor_queries", reference_path=str(reference),
                               state_path=str(tmp_path / "extraction_state.json"), **window).execute(queries)
    result = queries["ti"].pushed["monitor.queries"]
    assert result["status"] == "passed" and result["metrics"]["clients"] == len(clients)
