"""``mlgate serve`` beside ``mlflow models serve`` on the same scikit-learn model: throughput and p50/p99.

One run, loopback, two workers each, both servers up at once and a fixed number of single-row requests from a
small asyncio client, sent in alternating rounds (``--requests``, ``--rounds``, ``--concurrency``; it stops by
itself), so both meet the same drift in the machine's load. mlgate authenticates (API key), counts the client's
and the global sliding window in the real Redis on 127.0.0.1:6379, validates against the signature and the
training profile and appends to the inference log; MLflow does none of it. The model is a logistic
regression over the demo loans data (one-hot encoded categories), promoted with a signed attestation in a
throwaway SQLite tracking store, so ``mlgate serve`` loads it through ``mlgate.load_model`` as in production.

    .venv/bin/python benchmarks/serving.py [--requests 2000] [--concurrency 8] [--workers 2]

Goal: mlgate's throughput >= 0.9x MLflow's. Prints both and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = ["age", "annual_income", "loan_amount", "term_months", "credit_score", "employment_years",
           "debt_to_income"]
CATEGORICAL = ["home_ownership", "purpose"]
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def promoted_model(home: Path) -> tuple[str, str, Path, list[dict]]:
    """A trained, registered, attested and promoted model: (tracking URI, model URI, local model dir, rows)."""
    import mlflow
    import mlflow.sklearn
    import yaml
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlgate.core.policy import load_policy
    from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
    from mlgate.demo.dataset import generate_loans
    from mlgate.gates.monitor.drift import profile_from_sample
    from mlgate.trust.gate_evidence import sign_result
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.promote import promote
    from mlgate.trust.registry import get_or_create_experiment, log_result, model_digest
    from mlgate.trust.trusted_policy import sign_policy

    data = generate_loans(3000, seed=3)
    features = data[NUMERIC + CATEGORICAL].astype({c: "float64" for c in NUMERIC})
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                             ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]),
                          LogisticRegression(max_iter=500)).fit(features, data["defaulted"])
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    policy_data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy_data["promotion"].update(model_name="bench-loans", required_gates=["model.training"])
    (home / "policy.yaml").write_text(yaml.safe_dump(policy_data))
    keys = keyring_from_env()
    policy = load_policy(home / "policy.yaml")
    sign_policy(policy, keys.signer())
    mlflow.set_tracking_uri(uri)
    experiment = get_or_create_experiment(client, "bench-serving")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(model, name="model", signature=infer_signature(features, model.predict(features)),
                                 serialization_format="cloudpickle")
    client.create_registered_model("bench-loans")
    logged = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")[0]
    version = client.create_model_version("bench-loans", logged.model_uri, run.info.run_id).version
    digest = model_digest(client, f"models:/bench-loans/{version}")
    result = GateResult("model.training", Status.PASSED, Subject("model", f"models:/bench-loans/{version}", digest),
                        policy.digest, ToolInfo("bench", "1"), utcnow(), utcnow())
    log_result(client, run.info.run_id, result, sign_result(result, keys.signer(), run.info.run_id))
    outcome = promote(client, policy, "bench-loans", str(version), "bench:promoter", keys)
    assert str(outcome.status) == "passed", outcome.top_failures()
    local = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(home / "local-model")))
    (home / "profile.json").write_text(json.dumps(profile_from_sample(features).to_dict()))
    rows = json.loads(features.sample(200, random_state=1).to_json(orient="records"))
    return uri, "models:/bench-loans@champion", local, rows


def start(argv: list[str], env: dict[str, str], log: Path, health: str, timeout: float = 300) -> subprocess.Popen:
    import httpx

    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{argv[:4]} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(process)
    raise SystemExit(f"{argv[:4]} did not come up:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def load(url: str, bodies: list[bytes], headers: dict[str, str], concurrency: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=30) as client:
        async def worker():
            while queue:
                body = queue.pop()
                began = time.perf_counter()
                reply = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - began)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"latencies": latencies, "statuses": statuses, "seconds": elapsed}


def _combine(parts: list[dict]) -> dict[str, float]:
    ms = np.concatenate([p["latencies"] for p in parts]) * 1000
    statuses: dict[int, int] = {}
    for part in parts:
        for code, n in part["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    seconds = sum(p["seconds"] for p in parts)
    return {"rps": statuses.get(200, 0) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "statuses": statuses, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the requests are split into")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mlgate-bench-serve-"))
    os.environ["MLGATE_HOME"] = str(home / "mlgate")
    from mlgate.serving.auth import new_key
    from mlgate.trust.attestation import generate_key

    private, public = generate_key(home / "signing.pem")
    os.environ["MLGATE_SIGNING_KEY_FILE"] = str(private)
    tracking, model_uri, local, rows = promoted_model(home)
    key, entry = new_key("bench", ["bench-loans"])
    (home / "keys.yaml").write_text(json.dumps({"keys": [entry]}))
    env = {k: v for k, v in os.environ.items() if k not in ("MLGATE_SIGNING_KEY_FILE", "MLGATE_SIGNING_KEY")}
    env.update(MLFLOW_TRACKING_URI=tracking, MLGATE_TRUSTED_KEYS=str(public), MLGATE_POLICY_OWNER_KEYS=str(public),
               PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # mlflow runs `uvicorn`
    bodies_mlgate = [json.dumps({"instances": [rows[i % len(rows)]]}).encode() for i in range(args.requests)]
    bodies_mlflow = [json.dumps({"dataframe_records": [rows[i % len(rows)]]}).encode() for i in range(args.requests)]
    results = {}
    mlgate_port, mlflow_port = free_port(), free_port()
    servers = {
        "mlflow models serve": ([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(local), "--env-manager",
                                 "local", "-w", str(args.workers), "-h", "127.0.0.1", "-p", str(mlflow_port)],
                                f"http://127.0.0.1:{mlflow_port}", bodies_mlflow, {}, "/invocations", "/ping"),
        "mlgate serve": ([sys.executable, "-m", "mlgate.cli", "serve", model_uri, "--policy", str(home / "policy.yaml"),
                          "--api-keys", str(home / "keys.yaml"), "--profile", str(home / "profile.json"),
                          "--inference-log", str(home / "predictions.jsonl"), "--client-limit", "1000000/minute",
                          "--global-limit", "1000000/minute", "--limits-prefix", f"bench-{home.name}",
                          "--workers", str(args.workers), "--port", str(mlgate_port)],
                         f"http://127.0.0.1:{mlgate_port}", bodies_mlgate, {"X-API-Key": key}, "/predict", "/health"),
    }
    processes = []
    try:
        for name, (argv, base, _, _, _, health) in servers.items():
            processes.append(start(argv, env, home / f"{name.split()[0]}.log", base + health))
        for _argv, base, bodies, headers, path, _health in servers.values():
            asyncio.run(load(base + path, bodies[:100], {**headers, **JSON}, args.concurrency))  # warm-up
        # Alternating rounds: on a shared machine the load drifts, and each server meets the same drift.
        chunk = args.requests // args.rounds
        for start_at in range(0, chunk * args.rounds, chunk):
            for name, (_, base, bodies, headers, path, _) in servers.items():
                part = asyncio.run(load(base + path, bodies[start_at:start_at + chunk], {**headers, **JSON},
                                        args.concurrency))
                results.setdefault(name, []).append(part)
    finally:
        for process in processes:
            stop(process)
    results = {name: _combine(parts) for name, parts in results.items()}
    print(f"{args.requests} single-row requests, concurrency {args.concurrency}, {args.workers} workers each")
    for name, r in results.items():
        print(f"  {name:<20} {r['rps']:8.1f} answered (200) req/s  p50 {r['p50_ms']:6.1f} ms  "
              f"p99 {r['p99_ms']:6.1f} ms  statuses {r['statuses']}")
    ratio = results["mlgate serve"]["rps"] / results["mlflow models serve"]["rps"]
    logged = sum(1 for _ in (home / "predictions.jsonl").open())
    print(f"  throughput ratio mlgate/mlflow: {ratio:.2f} (goal >= 0.9); inference log lines: {logged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
