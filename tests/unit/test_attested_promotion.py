"""The attestation after promotion: verification, the load guard, the audit trail, the scorecard and the CLI,
on one pipeline run against a real embedded MLflow store. Tampering is done to the stored files, then undone."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mlgate
from mlgate.cli import main
from mlgate.core.policy import load_policy
from mlgate.core.results import Status
from mlgate.demo.dataset import FEATURES
from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.attestation import AttestationError
from mlgate.trust.attestation_store import ARTIFACT, verify_version
from mlgate.trust.audit import read_decisions
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.loading import UntrustedModelError
from mlgate.trust.promote import promote
from mlgate.trust.registry import current_alias_version
from tests.conftest import ROOT
from tests.helpers import new_run, run_pipeline

pytestmark = pytest.mark.unit


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def cli(capsys, *args) -> Done:
    """The command in-process: MLflow is imported once, not once per call."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return Done(code, out, err)


def keygen(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlgate.cli", "keygen", str(path)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A trained, validated, not yet promoted model version."""
    run = new_run(tmp_path_factory.mktemp("attested"))
    run["version"] = run_pipeline(run)[("train_model", "model_version")]
    run["client"] = MlflowHook().get_conn()
    return run


def verify(run, **kwargs):
    return verify_version(run["client"], load_policy(run["policy"]), run["model"], run["version"],
                          keyring_from_env().trusted_keys(), datetime.now(UTC), **kwargs)


@contextmanager
def overwritten(path: Path, data: bytes):
    original = path.read_bytes()
    path.write_bytes(data)
    try:
        yield
    finally:
        path.write_bytes(original)


def stored_model_file(run, name: str) -> Path:
    client = run["client"]
    source = client.get_model_version(run["model"], run["version"]).source
    return Path(client.get_logged_model(source.split("/")[-1]).artifact_location.removeprefix("file://")) / name


def stored_envelope(run) -> Path:
    client = run["client"]
    run_id = client.get_model_version(run["model"], run["version"]).run_id
    return Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://")) / ARTIFACT


def test_evidence_older_than_the_policy_allows_is_refused(pipeline):
    later = datetime.now(UTC) + timedelta(hours=25)
    result = promote(pipeline["client"], load_policy(pipeline["policy"]), pipeline["model"], pipeline["version"],
                     "test:stale", keyring_from_env(), now=later)
    assert result.status is Status.BLOCKED
    assert any("evidence is 25.0 h old, older than the policy's 24" in f.message for f in result.findings)
    (record,) = read_decisions(pipeline["client"], pipeline["model"])
    assert record.by == "test:stale" and record.decision == "blocked"
    assert any("older than the policy's 24" in r for r in record.reasons)


def test_a_version_that_was_never_attested_fails_verification(pipeline, capsys):
    with pytest.raises(AttestationError, match="has no attestation"):
        verify(pipeline)
    done = cli(capsys, "verify", pipeline["model"], pipeline["version"], "--policy", pipeline["policy"])
    assert done.returncode == 1 and "NOT VERIFIED" in done.stdout


@pytest.fixture(scope="module")
def promoted(pipeline):
    result = promote(pipeline["client"], load_policy(pipeline["policy"]), pipeline["model"], pipeline["version"],
                     "test:promote", keyring_from_env())
    assert result.status is Status.PASSED, result.top_failures()
    return pipeline


def test_verify_exits_0_and_reports_the_signer_and_the_gates(promoted, tmp_path, capsys):
    out = tmp_path / "verified.json"
    done = cli(capsys, "verify", promoted["model"], promoted["version"], "--policy", promoted["policy"],
               "--json", out)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["verified"] is True
    assert report["gates"] == {"data.integrity": "passed", "data.expectations": "passed", "model.training": "passed"}
    assert report["keyid"] == keyring_from_env().signer().public_key.keyid


def test_verify_with_another_trusted_key_exits_1(promoted, tmp_path, capsys):
    assert keygen(tmp_path / "other.pem").returncode == 0
    done = cli(capsys, "verify", promoted["model"], promoted["version"], "--policy", promoted["policy"],
               "--public-key", tmp_path / "other.pem.pub")
    assert done.returncode == 1
    assert "signed only by untrusted key" in done.stdout


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path):
    done = keygen(tmp_path / "k.pem")
    assert done.returncode == 0 and "key id" in done.stdout
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = keygen(tmp_path / "k.pem")
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_an_edited_envelope_has_an_invalid_signature(promoted):
    path = stored_envelope(promoted)
    envelope = json.loads(path.read_text())
    payload = base64.b64decode(envelope["payload"]).replace(b'"status":"passed"', b'"status":"passes"', 1)
    envelope["payload"] = base64.b64encode(payload).decode()
    with overwritten(path, (json.dumps(envelope) + "\n").encode()):
        with pytest.raises(AttestationError) as caught:
            verify(promoted)
    assert any("invalid signature" in r for r in caught.value.reasons)
    assert any("not the one promotion recorded" in r for r in caught.value.reasons)


def test_an_artifact_swapped_after_attestation_fails_verification(promoted):
    with overwritten(stored_model_file(promoted, "model.skops"), b"swapped after promotion"):
        with pytest.raises(AttestationError, match="artifact model.skops changed since it was attested"):
            verify(promoted)


def test_load_model_loads_a_verified_model_by_alias(promoted):
    import pandas as pd

    model = mlgate.load_model(f"models:/{promoted['model']}@champion", policy=promoted["policy"])
    rows = pd.read_csv(promoted["data"]).head(5)[list(FEATURES)]
    assert len(model.predict(rows)) == 5


def test_load_model_refuses_a_tampered_artifact(promoted):
    with overwritten(stored_model_file(promoted, "model.skops"), b"swapped after promotion"):
        with pytest.raises(UntrustedModelError, match=r"refusing to load models:/.*/1 .*artifact model.skops "
                                                      r"changed since it was attested"):
            mlgate.load_model(f"models:/{promoted['model']}/{promoted['version']}", policy=promoted["policy"])


def test_audit_prints_every_decision_oldest_first(promoted, capsys):
    done = cli(capsys, "audit", promoted["model"], "--json")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [(r["decision"], r["by"]) for r in records] == [("blocked", "test:stale"), ("promoted", "test:promote")]
    assert records[1]["envelope_digest"].startswith("sha256:")
    table = cli(capsys, "audit", promoted["model"]).stdout
    assert table.splitlines()[0].split() == ["at", "version", "decision", "alias", "by", "evidence"]
    assert "older than the policy's 24" in table
    assert current_alias_version(promoted["client"], promoted["model"], "champion") == promoted["version"]


def test_report_writes_the_scorecard_and_logs_it(promoted, tmp_path, capsys):
    done = cli(capsys, "report", promoted["model"], promoted["version"], "--out", tmp_path, "--policy",
               promoted["policy"], "--threat-model", ROOT / "policies" / "threat-model.yaml",
                      "--compliance", ROOT / "policies" / "compliance.yaml")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "scorecard.html").read_text()
    assert "✔ PROMOTABLE" in html and "test:promote" in html and "Tampering" in html
    run_id = promoted["client"].get_model_version(promoted["model"], promoted["version"]).run_id
    assert "scorecard.html" in {a.path for a in promoted["client"].list_artifacts(run_id)}


@pytest.mark.parametrize("threat", ["shipped", "uncovered"])
def test_threat_model_reports_coverage_and_fails_on_an_uncovered_category(tmp_path, threat, capsys):
    import yaml

    from mlgate.trust.threat_model import Stride
    from mlgate.trust.version_report import policy_coverage

    model = yaml.safe_load((ROOT / "policies" / "threat-model.yaml").read_text())
    if threat == "uncovered":
        model["categories"]["repudiation"]["threats"] = [{"id": "x", "title": "t", "mitigations": ["serving.guard"]}]
    (tmp_path / "tm.yaml").write_text(yaml.safe_dump(model))
    policy = ROOT / "policies" / "default.yaml"
    done = cli(capsys, "threat-model", "--policy", policy, "--threat-model", tmp_path / "tm.yaml")
    expected = policy_coverage(load_policy(policy), tmp_path / "tm.yaml")
    assert done.returncode == (0 if expected.ok else 1), done.stderr
    categories = [line.split()[0] for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert categories == [str(c) for c in Stride]
    if threat == "uncovered":
        assert done.returncode == 1
        assert "repudiation" in done.stderr.split("uncovered: ")[1]


def test_the_example_server_answers_authenticated_requests_and_logs_them(promoted, tmp_path):
    import importlib.util
    import threading
    import urllib.error
    import urllib.request

    import pandas as pd

    from mlgate.gates.monitor.inference_log import InferenceLogger

    spec = importlib.util.spec_from_file_location("serving", ROOT / "examples" / "serving.py")
    serving = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serving)
    model = mlgate.load_model(f"models:/{promoted['model']}@champion", policy=promoted["policy"])
    server = serving.make_server(model, "s3cret", InferenceLogger(tmp_path / "log.jsonl"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    features = json.loads(pd.read_csv(promoted["data"]).head(1)[list(FEATURES)].to_json(orient="records"))[0]

    def post(token, body):
        request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/predict", json.dumps(body).encode(),
                                         {"Authorization": f"Bearer {token}", "X-Client-Id": "team-a"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        assert post("wrong", {"features": features})[0] == 401
        assert post("s3cret", {"features": {**features, "ssn": "x"}})[0] == 400
        status, answer = post("s3cret", {"features": features})
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and answer["prediction"] in (0, 1) and 0.5 <= answer["confidence"] <= 1
    (logged,) = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged["client_id"] == "team-a" and logged["prediction"] == answer["prediction"]


def test_a_refused_re_promotion_of_the_serving_version_keeps_its_decision_and_scorecard(promoted, tmp_path, capsys,
                                                                                         monkeypatch):
    from mlgate.trust.attestation import generate_key
    from mlgate.trust.keys import POLICY_OWNERS_ENV

    _, stranger = generate_key(tmp_path / "owner.pem")
    monkeypatch.setenv(POLICY_OWNERS_ENV, str(stranger))  # the policy's owner signature no longer counts
    client, name, version = promoted["client"], promoted["model"], promoted["version"]
    done = cli(capsys, "promote", name, version, "--policy", promoted["policy"])
    assert done.returncode == 1, done.stderr
    tags = client.get_model_version(name, version).tags
    assert tags["mlgate.decision"] == "promoted" and tags["mlgate.decision.by"] == "test:promote"
    assert tags["mlgate.refused_attempt"] == "blocked"
    assert "the signer does not trust policy" in tags["mlgate.refused_attempt.reasons"]
    assert read_decisions(client, name)[-1].decision == "blocked"  # the attempt is in the audit trail
    assert current_alias_version(client, name, "champion") == version
    report = cli(capsys, "report", name, version, "--out", tmp_path / "report", "--policy", promoted["policy"])
    assert report.returncode == 0, report.stderr
    assert "✔ PROMOTABLE" in (tmp_path / "report" / "scorecard.html").read_text()
