"""``mlgate check monitor.*`` and ``mlgate incident`` as a CI system or an on-call engineer runs them.

The drift checks run the real command in a subprocess; the others call its ``main`` in-process (faster).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest

from mlgate.cli import main
from mlgate.core.digests import json_digest
from mlgate.core.policy import load_policy
from mlgate.gates.monitor.confidence import ConfidenceBaseline
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.promote import promote
from mlgate.trust.registry import current_alias_version, default_tracking_uri
from tests.helpers import default_policy, register_version, validated_version, write_policy
from tests.monitoring_data import write_dp_reference, write_extraction_queries, write_inference_log
from tests.unit.test_cli import mlgate

pytestmark = pytest.mark.unit

END = datetime(2026, 3, 1, 12, tzinfo=UTC)


def run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring-cli")
    return {"root": root, "policy": write_policy(root / "policy.yaml"),
            "reference": write_dp_reference(root / "reference.json"),
            "healthy": write_inference_log(root / "healthy.jsonl", end=END),
            "drifted": write_inference_log(root / "drifted.jsonl", end=END, drifted=True)}


@pytest.mark.parametrize(("log", "code", "drifted"), [
    ("healthy", 0, []), ("drifted", 1, ["age", "annual_income", "credit_score"])], ids=["healthy", "drifted"])
def test_drift_against_the_dp_reference(files, log, code, drifted):
    out = files["root"] / f"drift-{log}.json"
    done = mlgate("check", "monitor.drift", files[log], "--reference", files["reference"], "--policy",
                  files["policy"], "--json", out, cwd=files["root"])
    assert done.returncode == code, done.stderr
    result = json.loads(out.read_text())
    assert result["metrics"]["drifted_columns"] == drifted
    # an ad-hoc check verifies no reference, and says so (ADR 0060)
    assert (result["metrics"]["reference_verified"], result["thresholds"]["reference"]) == (False, "unverified")
    assert result["metrics"]["reference_digest"] == json_digest(json.loads(Path(files["reference"]).read_text()))


def test_a_missing_reference_exits_2(files, capsys):
    code, err = run(capsys, "check", "monitor.drift", files["healthy"], "--reference", files["root"] / "none.json",
                    "--policy", files["policy"])
    assert code == 2
    assert "cannot read the reference" in err


def test_a_confidence_spike_exits_1(files, capsys):
    baseline = files["root"] / "baseline.json"
    baseline.write_text(json.dumps(ConfidenceBaseline(0.6, 80, 400).to_dict()))
    log = write_inference_log(files["root"] / "unsure.jsonl", rows=300, end=END, low_share=0.45)
    code, err = run(capsys, "check", "monitor.confidence", log, "--baseline", baseline, "--policy", files["policy"])
    assert code == 1, err
    assert "monitor.confidence.spike" in err


def _registered_model(files):
    """A fresh model name, a policy promoting it on model.training alone, and a client of the test store."""
    policy = default_policy()
    policy["promotion"]["model_name"] = name = f"cli-{uuid.uuid4().hex[:8]}"
    policy["promotion"]["required_gates"] = ["model.training"]
    uri = default_tracking_uri()
    return name, write_policy(files["root"] / f"{name}.yaml", policy), mlflow.MlflowClient(uri, uri)


def test_confidence_reads_the_served_models_baseline_from_its_attestation(files, capsys):
    name, path, client = _registered_model(files)
    log = write_inference_log(files["root"] / "window.jsonl", rows=300, end=END, low_share=0.2)
    version = validated_version(client, load_policy(path), name, None)  # attested before baselines
    code, err = run(capsys, "check", "monitor.confidence", log, "--policy", path)
    assert code == 2 and "carries no confidence baseline" in err
    validated_version(client, load_policy(path), name, ConfidenceBaseline(0.6, 20, 400))  # served now: 5 %
    assert run(capsys, "check", "monitor.confidence", log, "--policy", path)[0] == 1
    code, err = run(capsys, "check", "monitor.confidence", log, "--model", f"models:/{name}/{version}",
                    "--policy", path)
    assert code == 2 and "carries no confidence baseline" in err


def test_an_extraction_client_is_flagged_only_inside_the_window(files, capsys):
    log = write_inference_log(files["root"] / "queries.jsonl", rows=600, clients=6, end=END)
    write_extraction_queries(log, end=END)
    code, err = run(capsys, "check", "monitor.queries", log, "--policy", files["policy"], "--reference",
                    files["reference"])
    assert code == 1, err
    assert "(client attacker)" in err
    assert "client-" not in err
    code, err = run(capsys, "check", "monitor.queries", log, "--policy", files["policy"], "--reference",
                    files["reference"], "--until", "2026-03-01T11:00:00+00:00")
    assert code == 2  # the window before the log: nothing to test
    assert "empty" in err


def test_incident_restores_the_previous_version(files, capsys):
    name, path, client = _registered_model(files)
    for _ in range(2):  # promoted: incident response restores only a version whose attestation verifies
        version = register_version(client, load_policy(path), name)
        promote(client, load_policy(path), name, version, "test:promoter", keyring_from_env())
    assert current_alias_version(client, name, "champion") == "2"
    code, err = run(capsys, "incident", name, "--reason", "customers report wrong answers", "--policy", path,
                    "--json", files["root"] / "incident.json")
    assert code == 0, err
    assert current_alias_version(client, name, "champion") == "1"
    assert "alias champion moved from version 2 to 1" in err


def test_the_queries_check_refuses_without_the_training_reference(files, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "monitor.queries", str(files["healthy"]), "--policy", str(files["policy"])])
    assert exited.value.code == 2
    assert "--reference" in capsys.readouterr().err
