"""A model whose loading code hunts for secrets finds none, and its gate still reports (ADR 0015).

The hostile model gets past ``model.artifact`` the way a real bypass would (here: the policy allowlists its
class), then runs through the real ``mlgate check`` command in a process that carries the signing key's
path and text, an Airflow connection, Airflow/cloud/MLflow credentials and an open descriptor on the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.core import isolation
from mlgate.core.errors import ToolError
from mlgate.core.policy import parse_policy
from mlgate.core.results import GateResult, Status, Subject, ToolInfo
from mlgate.gates.model.isolated import _accepted, _collect, import_path_of
from tests.conftest import ROOT
from tests.fixtures.snooping_model import CANARY, snooping_model
from tests.helpers import default_policy, write_policy

pytestmark = pytest.mark.unit

SECRETS = {"AWS_SECRET_ACCESS_KEY": CANARY,
           "AIRFLOW_CONN_MLGATE_SIGNING": json.dumps({"conn_type": "generic", "password": CANARY}),
           "AIRFLOW__CORE__FERNET_KEY": CANARY, "AIRFLOW__API_AUTH__JWT_SECRET": CANARY,
           "MLFLOW_TRACKING_TOKEN": CANARY, "MLFLOW_TRACKING_PASSWORD": CANARY}


def hostile_env(key: Path) -> dict[str, str]:
    """The worker's environment: the credentials above, the canary key's path, and the session's real
    signing key as PEM text (the CLI signs its result with it)."""
    from mlgate.trust.keys import KEY_FILE_ENV

    pem = Path(os.environ[KEY_FILE_ENV]).read_text()
    return {**os.environ, **SECRETS, "MLGATE_SIGNING_KEY": pem, KEY_FILE_ENV: str(key)}


def pem_body(environ: dict[str, str]) -> str:
    return "".join(environ["MLGATE_SIGNING_KEY"].splitlines()[1:-1])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The model dir, the data dir holding the signing key (a bound path: the key must be masked there)."""
    import mlflow.sklearn

    base = tmp_path_factory.mktemp("hostile")
    data = base / "data"
    data.mkdir()
    key = data / "signing.pem"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{CANARY}-key\n-----END PRIVATE KEY-----\n")
    mlflow.sklearn.save_model(snooping_model(str(key)), str(base / "model"), serialization_format="cloudpickle")
    return base / "model", data, key


def check_hostile(hostile, tmp_path, os_sandbox):
    model, data, key = hostile
    policy = default_policy()
    policy["gates"]["model.artifact"] = {"extra_allowed_globals": ["tests.fixtures.snooping_model.SnoopingClassifier"]}
    policy["sandbox"] = {"os_sandbox": os_sandbox}
    fd = os.open(key, os.O_RDONLY)  # a worker that leaks a descriptor on the key to its children
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlgate.cli", "check", "model.explainability", str(model), "--data", str(data),
             "--data-callable", "tests.fixtures.snooping_model:validation_data", "--policy",
             str(write_policy(tmp_path / "policy.yaml", policy)), "--json", str(tmp_path / "r.json"),
             "--out-dir", str(tmp_path / "reports")],
            env=(env := hostile_env(key)), pass_fds=(fd,), cwd=ROOT,
            capture_output=True, text=True, timeout=300)
    finally:
        os.close(fd)
    assert done.returncode in (0, 1), done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["gate"] == "model.explainability" and result["metrics"]["top_feature"] is not None
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "reports" for p in result["artifacts"])
    loot = result["metrics"]["loot"]
    assert loot["cwd"] != str(ROOT) and loot["home"].startswith(loot["cwd"])
    assert CANARY not in json.dumps(loot["env"]) and loot["key_file_env"] == ""
    assert str(key) not in loot["fds"].values() and CANARY not in json.dumps(loot["inherited"])
    assert pem_body(env)[:40] not in json.dumps(loot)
    return result, loot


@pytest.mark.skipif(not isolation.bwrap_status()[0], reason=f"no OS sandbox here: {isolation.bwrap_status()[1]}")
def test_a_hostile_model_in_the_os_sandbox_finds_no_secret_and_the_gate_still_reports(hostile, tmp_path):
    result, loot = check_hostile(hostile, tmp_path, "required")
    assert result["metrics"]["sandbox"] == "bwrap"
    assert CANARY not in json.dumps(loot), "the key, a connection or a credential reached the model's code"
    assert loot["proc_environs"] == {} and loot["postgres"].startswith("refused")


def test_a_policy_turning_the_os_sandbox_off_does_not_expose_the_key_to_the_model(hostile, tmp_path):
    """Red team (A4 names the policy, A2 the model): ``os_sandbox: off`` ran the model's code as a plain
    child of a process holding the key, which read the key file and the parent's /proc environ. Now the
    gate refuses to run it there (an error, not a pass) and the model's code never runs."""
    model, data, key = hostile
    policy = default_policy()
    policy["gates"]["model.artifact"] = {"extra_allowed_globals": ["tests.fixtures.snooping_model.SnoopingClassifier"]}
    policy["sandbox"] = {"os_sandbox": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "check", "model.explainability", str(model), "--data", str(data),
         "--data-callable", "tests.fixtures.snooping_model:validation_data", "--policy",
         str(write_policy(tmp_path / "policy.yaml", policy)), "--json", str(tmp_path / "r.json"),
         "--out-dir", str(tmp_path / "reports")],
        env=(env := hostile_env(key)), cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "error" and "loot" not in result["metrics"]
    assert any("holds secrets a plain child of the same user could read" in f["message"] for f in result["findings"])
    assert CANARY not in done.stderr + json.dumps(result) and pem_body(env)[:40] not in done.stderr


def _result(**changes) -> dict:
    policy = parse_policy(default_policy())
    result = GateResult("model.fairness", Status.PASSED, Subject("model", "m", "sha256:a"), policy.digest,
                        ToolInfo("fairlearn", "0"), "t0", "t1").to_dict()
    return {**result, **changes}


@pytest.mark.parametrize("answer", [
    pytest.param(_result(gate="model.robustness"), id="other-gate"),
    pytest.param(_result(subject={"kind": "model", "uri": "m", "digest": "sha256:b"}), id="other-model"),
    pytest.param(_result(policy_digest="sha256:0"), id="other-policy"),
    pytest.param(_result(status="fine"), id="malformed-status"),
    pytest.param([1, 2], id="not-a-result"),
])
def test_an_answer_about_something_else_is_refused(answer):
    with pytest.raises(ToolError, match="isolated child answered"):
        _accepted(answer, "model.fairness", "sha256:a", parse_policy(default_policy()))


def test_only_regular_files_in_the_childs_output_folder_are_collected(tmp_path):
    produced, out = tmp_path / "produced", tmp_path / "out"
    produced.mkdir(), out.mkdir()
    (produced / "chart.png").write_bytes(b"png")
    assert _collect((str(produced / "chart.png"),), produced, out) == (str(out / "chart.png"),)
    (produced / "key.png").symlink_to(tmp_path / "secret")
    (tmp_path / "secret").write_text("x")
    for listed in (produced / "key.png", tmp_path / "secret"):
        with pytest.raises(ToolError, match="outside its output folder"):
            _collect((str(listed),), produced, out)


def test_a_data_callable_crosses_by_import_path_only():
    assert import_path_of(snooping_model, "data_callable") == "tests.fixtures.snooping_model:snooping_model"
    with pytest.raises(Exception, match="importable as 'package.module:function'"):
        import_path_of(lambda **_: None, "data_callable")
