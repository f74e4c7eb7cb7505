"""Promotion signs, verifies and audits, against a real embedded MLflow store: one test per refusal."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from mlgate.core.policy import load_policy
from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.hooks.mlflow import MlflowHook
from mlgate.operators import DataExpectationsGateOperator
from mlgate.trust.attestation import generate_key
from mlgate.trust.attestation_store import ARTIFACT, TAG_DIGEST, TAG_KEYID, verify_version
from mlgate.trust.audit import read_decisions
from mlgate.trust.keys import KEY_FILE_ENV, TRUSTED_ENV, keyring_from_env
from mlgate.trust.registry import current_alias_version
from mlgate.trust.version_report import ARTIFACT as SCORECARD
from tests.helpers import context, new_run, promote_op, run_pipeline

pytestmark = pytest.mark.unit


@pytest.fixture
def run(tmp_path):
    return new_run(tmp_path)


def promote(run, upstream):
    promote_op(run).execute(context(run, "promote_model", upstream))


def refused(run, upstream, reason):
    """Promotion fails without retry naming ``reason``, the alias stays, and the audit trail says why."""
    with pytest.raises(GatePolicyViolation, match=reason):
        promote(run, upstream)
    client = MlflowHook().get_conn()
    assert current_alias_version(client, run["model"], "champion") is None
    (record,) = read_decisions(client, run["model"])
    assert record.decision == "blocked" and record.alias_after == ""
    assert any(re.search(reason, r) for r in record.reasons), record.reasons
    return record


def test_promotion_signs_verifies_audits_and_logs_the_scorecard(run, tmp_path):
    upstream = run_pipeline(run)
    version = upstream[("train_model", "model_version")]
    promote(run, upstream)
    client = MlflowHook().get_conn()
    assert current_alias_version(client, run["model"], "champion") == version
    model_version = client.get_model_version(run["model"], version)
    artifacts = {a.path for a in client.list_artifacts(model_version.run_id)}
    assert {ARTIFACT, SCORECARD} <= artifacts

    verified = verify_version(client, load_policy(run["policy"]), run["model"], version,
                              keyring_from_env().trusted_keys(), datetime.now(UTC))
    assert {r.gate for r in verified.results} == {"data.integrity", "data.expectations", "model.training"}
    assert "model.skops" in verified.artifact_digests and "MLmodel" in verified.artifact_digests
    assert model_version.tags[TAG_KEYID] == verified.keyid

    (record,) = read_decisions(client, run["model"])
    assert (record.decision, record.version, record.alias_before, record.alias_after) == ("promoted", version, "",
                                                                                          version)
    assert record.by == f"airflow:ops/{run['run_id']}/promote_model"
    assert record.envelope_digest == model_version.tags[TAG_DIGEST] == model_version.tags["mlgate.decision.evidence"]
    scorecard = client.download_artifacts(model_version.run_id, SCORECARD, str(tmp_path))
    assert "✔ PROMOTABLE" in open(scorecard).read()


def test_a_required_gate_that_never_ran_is_refused(run):
    policy = yaml.safe_load(run["policy"].read_text())
    policy["promotion"]["required_gates"].append("data.pii")
    run["policy"].write_text(yaml.safe_dump(policy))
    refused(run, run_pipeline(run), "data.pii: required gate has no evidence for this model version")


def test_a_gate_that_errored_after_training_is_refused(run, tmp_path):
    upstream = run_pipeline(run)
    rerun = DataExpectationsGateOperator(task_id="data_expectations", data_path=str(tmp_path / "gone.csv"),
                                         policy_path=str(run["policy"]))
    with pytest.raises(GateConfigViolation):
        rerun.execute(context(run, "data_expectations"))
    refused(run, upstream, r"data.expectations: status error \(\[critical\] data.expectations.error")


def test_without_a_signing_key_promotion_refuses(run, monkeypatch, signing_key):
    """The promoting worker holds no private key, only the public key that verifies the gates' signatures."""
    upstream = run_pipeline(run)
    monkeypatch.delenv(KEY_FILE_ENV)
    monkeypatch.setenv(TRUSTED_ENV, f"{signing_key}.pub")
    record = refused(run, upstream, "attestation: no signing key configured")
    assert record.envelope_digest == ""
    version = upstream[("train_model", "model_version")]
    client = MlflowHook().get_conn()
    stored = client.list_artifacts(client.get_model_version(run["model"], version).run_id)
    assert ARTIFACT not in {a.path for a in stored}


def test_a_key_promotion_does_not_trust_is_refused(run, tmp_path, monkeypatch):
    """The key comes from the mlgate_signing connection (pasted on one line, as a password field keeps it);
    its trusted keys name another key: neither the gates' signatures nor the policy owner's are trusted."""
    upstream = run_pipeline(run)
    rogue, _ = generate_key(tmp_path / "rogue.pem")
    _, trusted = generate_key(tmp_path / "trusted.pem")
    monkeypatch.setenv("AIRFLOW_CONN_MLGATE_SIGNING_DEFAULT", json.dumps({
        "conn_type": "mlgate_signing", "password": rogue.read_text().replace("\n", " "),
        "extra": {"trusted_public_keys": trusted.read_text()}}))
    record = refused(run, upstream, "data.integrity: signed evidence counts as missing: signed only by untrusted key")
    assert any(r.startswith("policy: the signer does not trust policy") for r in record.reasons)


def test_a_policy_changed_since_validation_is_refused(run):
    upstream = run_pipeline(run)
    run["policy"].write_text(run["policy"].read_text().replace("max_evidence_age_hours: 24",
                                                               "max_evidence_age_hours: 48"))
    refused(run, upstream, "data.integrity: the policy changed since this evidence was produced")
