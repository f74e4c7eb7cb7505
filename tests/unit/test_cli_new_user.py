"""The ``mlgate`` command as a new user meets it: run from an empty folder, no policy of their own, outputs into
folders that do not exist yet, a store that is not there, an MLflow server that does not answer (ADR 0027)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlgate.core.errors import PolicyError
from mlgate.core.policy import load_policy
from mlgate.core.shipped import POLICY_ENV, choose_policy, shipped
from mlgate.trust.registry import mlgate_home
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def mlgate(*args, cwd, **env):
    # a store URI another test left in os.environ (mlflow.set_tracking_uri exports it) is not this user's
    # nor the MLflow HTTP settings an in-process CLI test exported (bound_mlflow_calls lets a user's win)
    inherited = {POLICY_ENV, "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"}
    environment = {k: v for k, v in os.environ.items()
                   if k not in inherited and not k.startswith("MLFLOW_HTTP_REQUEST_")} | env
    return subprocess.run([sys.executable, "-m", "mlgate.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=environment)


@pytest.fixture
def pinned(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    done = mlgate("pin", "data", "--out", "manifests/a.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_check_from_an_empty_folder_uses_the_shipped_default_and_says_so(pinned):
    done = mlgate("check", "data.integrity", "data", "--manifest", "manifests/a.json", cwd=pinned)
    assert done.returncode == 0, done.stderr
    assert f"policy  {shipped('policies/default.yaml')} (the default shipped with mlgate)" in done.stderr


@pytest.mark.parametrize(("explicit", "env", "local", "origin"), [
    ("mine.yaml", "env.yaml", True, "from --policy"),
    (None, "env.yaml", True, f"from {POLICY_ENV}"),
    (None, None, True, "./policies/default.yaml of the current directory"),
    (None, None, False, "the default shipped with mlgate"),
], ids=["flag", "env", "cwd", "shipped"])
def test_the_policy_is_chosen_flag_env_cwd_then_shipped(tmp_path, monkeypatch, explicit, env, local, origin):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(POLICY_ENV, raising=False)
    if env:
        monkeypatch.setenv(POLICY_ENV, env)
    if local:
        (tmp_path / "policies").mkdir()
        (tmp_path / "policies" / "default.yaml").write_text("version: 1\n")
    assert choose_policy(explicit).origin == origin


def test_the_shipped_default_is_the_policy_whose_digest_the_demo_pins():
    assert shipped("policies/default.yaml").read_bytes() == (ROOT / "policies" / "default.yaml").read_bytes()
    policy = load_policy(shipped("policies/default.yaml"))
    assert policy.resolve(policy.expectations().suite).is_file()  # the suite ships beside it
    assert shipped("policies/threat-model.yaml").is_file() and shipped("policies/compliance.yaml").is_file()


def test_every_shipped_folder_is_in_the_wheel():
    """``shipped`` finds in a checkout what the wheel carries only if pyproject force-includes it."""
    text = (ROOT / "pyproject.toml").read_text()
    for folder in ("policies", "expectations", "dags", "docker", "Dockerfile", "docker-compose.yml"):
        assert f'"{folder}" = "mlgate/resources/{folder}"' in text


def test_a_policy_error_names_the_chosen_file_and_how_to_choose_another(pinned):
    done = mlgate("check", "data.integrity", "data", "--manifest", "manifests/a.json", cwd=pinned,
                  MLGATE_POLICY=str(pinned / "missing.yaml"))
    assert done.returncode == 2
    assert f"(from {POLICY_ENV}; choose another with --policy FILE or {POLICY_ENV})" in done.stderr


def test_json_into_a_missing_folder_creates_it(pinned):
    done = mlgate("check", "data.integrity", "data", "--manifest", "manifests/a.json",
                  "--json", "out/deep/r.json", cwd=pinned)
    assert done.returncode == 0, done.stderr
    assert json.loads((pinned / "out" / "deep" / "r.json").read_text())["status"] == "passed"


def test_an_output_that_cannot_be_written_is_exit_2_and_says_why(pinned):
    (pinned / "taken").write_text("a file, not a folder")
    done = mlgate("check", "data.integrity", "data", "--manifest", "manifests/a.json",
                  "--json", "taken/r.json", cwd=pinned)
    assert done.returncode == 2  # the gate passed: the exit code says the output is missing, not "blocked"
    assert "mlgate: error: cannot write --json taken/r.json" in done.stderr


def test_sarif_into_a_missing_folder_keeps_the_finding_a_block(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "job.py").write_text("import subprocess\nsubprocess.call('ls ' + input(), shell=True)\n")
    done = mlgate("check", "code.static", "src", "--out-dir", "reports", "--sarif", "ci/scan/bandit.sarif",
                  cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert json.loads((tmp_path / "ci" / "scan" / "bandit.sarif").read_text())["runs"][0]["results"]


def test_the_store_is_not_the_current_folders(monkeypatch, tmp_path):
    monkeypatch.delenv("MLGATE_HOME")
    monkeypatch.chdir(tmp_path)
    assert mlgate_home() == Path.home() / ".mlgate"


@pytest.mark.parametrize("command", [["audit", "m"], ["verify", "m", "1"], ["report", "m", "1", "--out", "r"]])
def test_read_only_commands_never_create_a_store(tmp_path, signing_key, command):
    home = tmp_path / "nowhere"
    done = mlgate(*command, cwd=tmp_path, MLGATE_HOME=str(home), MLGATE_TRUSTED_KEYS=f"{signing_key}.pub")
    assert done.returncode == 2
    assert f"no MLflow store: MLFLOW_TRACKING_URI is not set and {home / 'mlflow.db'} does not exist" in done.stderr
    assert not home.exists()


def test_audit_of_a_model_the_store_does_not_hold_is_an_error(tmp_path):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    home.mkdir()
    MlflowClient(f"sqlite:///{home / 'mlflow.db'}").search_experiments()  # an existing, empty store
    done = mlgate("audit", "my-model", cwd=tmp_path, MLGATE_HOME=str(home))
    assert done.returncode == 2
    assert "holds no registered model 'my-model'" in done.stderr


def test_an_mlflow_server_that_never_answers_fails_within_the_timeout_naming_it(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = mlgate("audit", "m", cwd=tmp_path, MLFLOW_TRACKING_URI=uri, MLGATE_MLFLOW_TIMEOUT="6")
        elapsed = time.monotonic() - started
    assert done.returncode == 2
    assert f"MLflow at {uri} failed" in done.stderr
    assert elapsed < 30  # MLflow's defaults: 120 s per attempt, 7 retries


def test_a_timeout_that_is_not_a_number_is_refused(tmp_path):
    done = mlgate("audit", "m", cwd=tmp_path, MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLGATE_MLFLOW_TIMEOUT="soon")
    assert done.returncode == 2 and "MLGATE_MLFLOW_TIMEOUT must be a positive number of seconds" in done.stderr


def test_version_is_printed():
    done = mlgate("--version", cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("mlgate ")


def test_shipped_refuses_what_mlgate_does_not_ship():
    with pytest.raises(PolicyError, match="mlgate ships no policies/nope.yaml"):
        shipped("policies/nope.yaml")


@pytest.fixture
def registered(tmp_path):
    """A model version with a run, in an embedded store of its own."""
    from mlflow import MlflowClient

    home = tmp_path / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri, uri)  # the registry too: MLflow's process-wide registry URI may point elsewhere
    run = client.create_run(client.create_experiment("ci", (tmp_path / "artifacts").as_uri()))
    client.create_registered_model("ci-model")
    version = client.create_model_version("ci-model", (tmp_path / "model").as_uri(), run_id=run.info.run_id)
    return client, home, run.info.run_id, version.version


def test_check_record_logs_the_signed_result_on_the_versions_run(tmp_path, registered, signing_key):
    from mlgate.trust.attestation import open_envelope
    from mlgate.trust.gate_evidence import RUN_FIELD
    from mlgate.trust.registry import download_envelopes, download_evidence

    client, home, run_id, version = registered
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "job.py").write_text("print('clean')\n")
    done = mlgate("check", "code.static", "src", "--out-dir", "reports", "--record", f"models:/ci-model/{version}",
                  cwd=tmp_path, MLGATE_HOME=str(home))
    assert done.returncode == 0, done.stderr
    assert f"recorded code.static (passed), signed, on MLflow run {run_id}" in done.stderr
    assert download_evidence(client, run_id)["code.static"].passed
    envelope = download_envelopes(client, run_id)["code.static"]
    payload, _ = open_envelope(envelope, [Path(f"{signing_key}.pub").read_text()])
    assert json.loads(payload)["predicate"][RUN_FIELD] == run_id


def test_record_by_an_alias_is_refused_because_whoever_writes_the_registry_moves_it(tmp_path, registered,
                                                                                    signing_key):
    """Red team (A1): the MLflow alias is an unsigned pointer. CI's signed pass (a clean image or config is
    bound only by the run) recorded by ``@candidate`` lands on whatever version A1 points it at."""
    from mlgate.trust.registry import download_envelopes

    client, home, honest_run, _ = registered
    planted = client.create_run(client.get_run(honest_run).info.experiment_id).info.run_id
    version = client.create_model_version("ci-model", (tmp_path / "planted").as_uri(), run_id=planted).version
    client.set_registered_model_alias("ci-model", "candidate", version)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "job.py").write_text("print('clean')\n")
    done = mlgate("check", "code.static", "src", "--out-dir", "reports", "--record", "models:/ci-model@candidate",
                  cwd=tmp_path, MLGATE_HOME=str(home))
    assert done.returncode == 2 and "models:/ci-model/<version>" in done.stderr, done.stderr
    assert not download_envelopes(client, planted) and not download_envelopes(client, honest_run)


def test_record_without_a_signing_key_is_exit_2(tmp_path, registered):
    _, home, run_id, _ = registered
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "job.py").write_text("print('clean')\n")
    done = mlgate("check", "code.static", "src", "--out-dir", "reports", "--run-id", run_id, cwd=tmp_path,
                  MLGATE_HOME=str(home), MLGATE_SIGNING_KEY_FILE="")
    assert done.returncode == 2 and "cannot record the result: no signing key" in done.stderr


def test_pii_encoding_option(tmp_path):
    (tmp_path / "people.csv").write_bytes("city,score\nMünchen,1\n".encode("latin-1"))
    wrong = mlgate("check", "data.pii", "people.csv", "--out-dir", "r", cwd=tmp_path)
    assert wrong.returncode == 2 and "not valid utf-8 text; pass the file's encoding (--encoding" in wrong.stderr
    right = mlgate("check", "data.pii", "people.csv", "--out-dir", "r", "--encoding", "latin-1", cwd=tmp_path)
    assert right.returncode == 0, right.stderr


def test_threat_model_of_a_policy_without_one_beside_it_uses_the_shipped_one(tmp_path):
    (tmp_path / "mine.yaml").write_text((ROOT / "policies" / "default.yaml").read_text())
    done = mlgate("threat-model", "--policy", "mine.yaml", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr  # a verdict on coverage, not an empty report or an error
    assert "threat-model.yaml: none beside mine.yaml; using the one shipped with mlgate" in done.stderr
    assert "spoofing" in done.stdout
