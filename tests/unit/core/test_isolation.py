"""``run_isolated``: JSON in and out of a spawned child, and every way the child can fail becomes an error."""

from __future__ import annotations

import os
import time

import pytest

from mlgate.core import isolation
from mlgate.core.errors import GateInputError, PolicyError, ToolError
from mlgate.core.isolation import SandboxPolicy, run_isolated, scrubbed_env
from mlgate.core.policy import parse_policy
from tests.helpers import default_policy

pytestmark = pytest.mark.unit

TARGETS = "tests.fixtures.isolation_targets"
MODES = [pytest.param("off", id="process"),
         pytest.param("required", id="bwrap", marks=pytest.mark.skipif(
             not isolation.bwrap_status()[0], reason=f"no OS sandbox here: {isolation.bwrap_status()[1]}"))]


@pytest.fixture(autouse=True)
def nothing_to_steal(monkeypatch):
    """A plain child runs only in a process that holds no secret; the session's key and Airflow home go."""
    for name in [n for n in os.environ if isolation.SECRET_NAME.search(n)]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("mode", MODES)
def test_the_child_gets_json_arguments_a_scrubbed_environment_and_a_scratch_directory(mode, monkeypatch):
    if mode != "off":  # a process holding these runs no plain child (next test)
        for name in ("MLGATE_SIGNING_KEY", "AIRFLOW_CONN_MLGATE_SIGNING", "AWS_SECRET_ACCESS_KEY", "MY_API_TOKEN"):
            monkeypatch.setenv(name, "CANARY")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = run_isolated(f"{TARGETS}:echo", {"n": 3, "items": ["a", None, 1.5]}, SandboxPolicy(os_sandbox=mode))
    assert run.value["kwargs"] == {"n": 3, "items": ["a", None, 1.5]}
    assert run.sandbox == ("bwrap" if mode == "required" else "process")
    assert "CANARY" not in str(run.value["env"])
    assert run.value["env"]["OMP_NUM_THREADS"] == "1"
    assert run.value["cwd"].startswith(os.path.dirname(run.value["env"]["HOME"]))
    assert run.value["pid"] != os.getpid()
    assert ("no OS sandbox" in run.note) == (mode == "off")


@pytest.mark.parametrize(("environ", "extra", "kept"), [
    pytest.param({"PATH": "/bin", "LANG": "C"}, (), {"PATH": "/bin", "LANG": "C"}, id="allowlisted"),
    pytest.param({"AIRFLOW_CONN_X": "c", "MLGATE_HOME": "h", "AWS_ACCESS_KEY_ID": "a"}, (), {}, id="settings"),
    pytest.param({"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_TRACKING_PASSWORD": "p"}, ("MLFLOW_TRACKING_TOKEN",), {},
                 id="secret-named-never-passes"),
    pytest.param({"CUDA_VISIBLE_DEVICES": "0", "MY_FLAG": "1"}, ("MY_FLAG",), {"CUDA_VISIBLE_DEVICES": "0",
                                                                               "MY_FLAG": "1"}, id="extra"),
    pytest.param({"DATABASE_URL": "postgresql://airflow:hunter2-CANARY@db/airflow", "REDIS_URL": "redis://:pw@r:6379",
                  "CERT": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
                          "-----END PRIVATE KEY-----",
                  "PLAIN_URL": "https://example.org/x"},
                 ("DATABASE_URL", "REDIS_URL", "CERT", "PLAIN_URL"), {"PLAIN_URL": "https://example.org/x"},
                 id="red-team-credential-values-never-pass"),
])
def test_scrubbed_environment(environ, extra, kept, tmp_path):
    env = scrubbed_env(environ, tmp_path, ["/a", "/b"], extra)
    assert {k: v for k, v in env.items() if k in environ} == kept
    assert env["HOME"] == str(tmp_path / "home") and env["PYTHONPATH"] == os.pathsep.join(["/a", "/b"])


def test_a_policy_cannot_pass_a_secret_named_variable():
    policy = default_policy()
    policy["sandbox"] = {"pass_env": ["AIRFLOW__CORE__FERNET_KEY"]}
    with pytest.raises(PolicyError, match="sandbox.pass_env"):
        parse_policy(policy)


@pytest.mark.parametrize(("target", "limits", "match"), [
    pytest.param("exit_silently", {}, "exited with status 3 without an answer", id="exit"),
    pytest.param("abort", {}, "killed by SIGABRT", id="crash"),
    pytest.param("hog", {"memory_mb": 256}, "memory budget", id="memory"),
    pytest.param("no_such_function", {}, "AttributeError", id="missing-target"),
])
def test_a_child_that_fails_is_an_error(target, limits, match):
    with pytest.raises(ToolError, match=match):
        run_isolated(f"{TARGETS}:{target}", {}, SandboxPolicy(**limits))


@pytest.mark.parametrize("target", ["convert_rows", "look_up_row"])
def test_a_library_error_on_the_data_crosses_without_its_message(target):
    """Red team: code run on the pipeline's data (training, a model's predict) fails with a message that
    quotes a row's value; the error becomes gate evidence (XCom, MLflow, the signed envelope). Its type and
    place cross, its message does not (as in code.dynamic)."""
    with pytest.raises(ToolError, match=rf"raised \w+Error at isolation_targets\.py:\d+ in {target}") as caught:
        run_isolated(f"{TARGETS}:{target}", {}, SandboxPolicy())
    assert "jane.doe" not in str(caught.value)


def test_mlgate_errors_keep_their_class_across_the_boundary():
    with pytest.raises(GateInputError, match="no such column"):
        run_isolated(f"{TARGETS}:refuse", {}, SandboxPolicy())


def test_a_timeout_kills_the_child_and_everything_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(ToolError, match="timed out after 3s"):
        run_isolated(f"{TARGETS}:hang", {"pid_file": str(pid_file)}, SandboxPolicy(os_sandbox="off", timeout_s=3),
                     writable=[tmp_path])
    grandchild = int(pid_file.read_text())
    for _ in range(50):  # the kill is delivered; reaping by init may lag a moment
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{grandchild}/stat") as stat:
            if stat.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.1)
    else:
        pytest.fail(f"the grandchild {grandchild} outlived the timeout")


def test_a_required_os_sandbox_that_is_missing_fails_closed(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_status", lambda: (False, "bwrap is not installed"))
    with pytest.raises(ToolError, match="requires the OS sandbox, and bwrap is not installed"):
        run_isolated(f"{TARGETS}:echo", {}, SandboxPolicy(os_sandbox="required"))
    assert run_isolated(f"{TARGETS}:echo", {}, SandboxPolicy(os_sandbox="auto")).sandbox == "process"


@pytest.mark.parametrize("held", [
    pytest.param({"MLGATE_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----CANARY"}, id="key-in-environ"),
    pytest.param({"MLGATE_SIGNING_KEY_FILE": "FILE"}, id="key-file"),
    pytest.param({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:CANARY@db/airflow"}, id="airflow-db"),
])
@pytest.mark.parametrize("why", ["off", "auto-without-bwrap"])
def test_no_plain_child_runs_beside_a_secret_it_could_read(held, why, monkeypatch, tmp_path):
    """Red team: ``os_sandbox: off`` in a policy the triggerer names (or a worker without bubblewrap) ran the
    model's code as a plain child of the worker, which read the key file and ``/proc/<ppid>/environ``."""
    key = tmp_path / "signing.pem"
    key.write_text("CANARY")
    for name, value in held.items():
        monkeypatch.setenv(name, str(key) if value == "FILE" else value)
    if why != "off":
        monkeypatch.setattr(isolation, "bwrap_status", lambda: (False, "bwrap is not installed"))
    with pytest.raises(ToolError, match="holds secrets a plain child of the same user could read") as caught:
        run_isolated(f"{TARGETS}:echo", {}, SandboxPolicy(os_sandbox="off" if why == "off" else "auto"))
    assert next(iter(held)) in str(caught.value) and "CANARY" not in str(caught.value)
