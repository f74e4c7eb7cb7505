"""Issue 13, attacks 1, 5, 7, 9 at the store: an attacker with an ``MlflowClient`` and no key, against a real
embedded MLflow store. Each test names the check that stops it (ADR 0013; the note says each fails without it)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mlgate.core.errors import PolicyError
from mlgate.core.policy import load_policy
from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.attestation import generate_key, signer_from_file
from mlgate.trust.audit import read_decisions
from mlgate.trust.gate_evidence import functionaries
from mlgate.trust.keys import POLICY_DIGESTS_ENV, keyring_from_env, public_keys
from mlgate.trust.promote import promote
from mlgate.trust.registry import (
    TAG_CODE_DIGEST,
    TAG_DATA_DIGEST,
    current_alias_version,
    get_or_create_experiment,
    log_result,
    model_digest,
)
from mlgate.trust.version_report import version_scorecard
from tests.helpers import default_policy, log_signed, register_version, write_policy

pytestmark = pytest.mark.unit

GATES = ("data.integrity", "model.training")


@pytest.fixture
def client():
    return MlflowHook().get_conn()


@pytest.fixture
def policy(tmp_path):
    data = default_policy()
    data["promotion"]["model_name"] = f"signed-{tmp_path.name[-24:]}".replace("_", "-")
    data["promotion"]["required_gates"] = list(GATES)
    return load_policy(write_policy(tmp_path / "policy.yaml", data))


def attacker_version(client, name: str) -> tuple[str, str]:
    """The attacker registers a model of their own; returns (version, run id)."""
    run_id = client.create_run(get_or_create_experiment(client, "attacker")).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "weights.txt").write_text("backdoored weights")
        client.log_artifacts(run_id, tmp, artifact_path="model")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    return str(client.create_model_version(name, source, run_id).version), run_id


def result(gate: str, kind: str, digest: str, policy, status: Status = Status.PASSED) -> GateResult:
    return GateResult(gate, status, Subject(kind, "x", digest), policy.digest, ToolInfo("forged", "1"), utcnow(),
                      utcnow())


def good_version(client, policy) -> str:
    """A version whose every required gate passed and was signed where it ran (the session key)."""
    version = register_version(client, policy, policy.promotion.model_name)
    run_id = client.get_model_version(policy.promotion.model_name, version).run_id
    log_signed(client, run_id, result("data.integrity", "dataset", "sha256:" + "d" * 64, policy))
    client.set_model_version_tag(policy.promotion.model_name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    return version


def refused(client, policy, version: str, actor: str = "attacker") -> GateResult:
    outcome = promote(client, policy, policy.promotion.model_name, version, actor, keyring_from_env())
    assert outcome.status is Status.BLOCKED
    assert current_alias_version(client, policy.promotion.model_name, policy.promotion.alias) != version
    return outcome


def test_a_signed_pipeline_promotes(client, policy):
    """The control: what the attacks below imitate passes when its gates signed it."""
    version = good_version(client, policy)
    outcome = promote(client, policy, policy.promotion.model_name, version, "pipeline", keyring_from_env())
    assert outcome.status is Status.PASSED, outcome.top_failures()
    assert set(outcome.thresholds["gates_seen"].values()) == {"passed"}


def test_forged_evidence_for_a_new_version_counts_as_missing(client, policy):
    """Attack 1: copy a good version's data tags, log ``passed`` results with digests recomputed for the
    attacker's model. Stopped by ``verify_signed`` (unsigned) and ``verify_signature`` (attacker's own key)."""
    name = policy.promotion.model_name
    good_version(client, policy)
    version, run_id = attacker_version(client, name)
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    digest = model_digest(client, f"models:/{name}/{version}")
    forged = [result("data.integrity", "dataset", "sha256:" + "d" * 64, policy),
              result("model.training", "model", digest, policy)]
    for item in forged:
        log_result(client, run_id, item)
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"] == {"data.integrity": "missing", "model.training": "missing"}
    assert all("the result is unsigned (rules: verify_signed FAILED)" in f.message for f in outcome.findings)

    own, _ = generate_key(Path(tempfile.mkdtemp()) / "attacker.pem")
    for item in forged:
        log_signed(client, run_id, item, signer_from_file(own))
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"] == {"data.integrity": "missing", "model.training": "missing"}
    assert all("signed only by untrusted key" in f.message and "verify_signature FAILED" in f.message
               for f in outcome.findings)
    (last, *_) = read_decisions(client, name)[::-1]
    assert last.decision == "blocked" and last.version == version


def test_a_result_flipped_between_gate_and_promote_keeps_its_signed_status(client, policy):
    """Attack 1b: the gate signed ``blocked``; the attacker rewrites ``gates/model.training.json`` to
    ``passed``. Promotion reads only the signed predicate (``verify_predicate``)."""
    name = policy.promotion.model_name
    version = register_version(client, policy, name, passed=False)
    run_id = client.get_model_version(name, version).run_id
    log_signed(client, run_id, result("data.integrity", "dataset", "sha256:" + "d" * 64, policy))
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    flipped = result("model.training", "model", model_digest(client, f"models:/{name}/{version}"), policy)
    log_result(client, run_id, flipped)  # the loose copy only: the attacker has no key
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"]["model.training"] == "blocked"
    assert any("model.training: status blocked" in f.message for f in outcome.findings)


def test_evidence_copied_from_another_version_is_about_another_subject(client, policy, tmp_path):
    """Attack 1c: copy a good version's signed ``gates/`` (JSON and envelopes) into the attacker's run.
    The envelopes verify, but their subject is the good model: ``verify_subject`` counts them as missing."""
    name = policy.promotion.model_name
    good = good_version(client, policy)
    version, run_id = attacker_version(client, name)
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    copied = Path(client.download_artifacts(client.get_model_version(name, good).run_id, "gates", str(tmp_path)))
    client.log_artifacts(run_id, str(copied), artifact_path="gates")
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"]["model.training"] == "missing"
    (training,) = [f.message for f in outcome.findings if f.message.startswith("model.training")]
    assert "model artifact changed since validation" in training and "verify_subject FAILED" in training


def test_per_gate_functionaries_accept_only_their_own_key(client, policy, tmp_path):
    """In-toto layout semantics: ``model.training`` may be signed only by its own key; the session key
    (trusted for every other gate) signing it counts as missing, its own key signing it passes."""
    trainer, trainer_pub = generate_key(tmp_path / "trainer.pem")
    data = yaml.safe_load(Path(policy.source).read_text())
    data["promotion"]["functionaries"] = {"model.training": [trainer_pub.read_text()],
                                          "*": [keyring_from_env().signer().public_key.keyid]}
    policy = load_policy(write_policy(Path(policy.source), data))
    version = good_version(client, policy)
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"] == {"data.integrity": "passed", "model.training": "missing"}

    name = policy.promotion.model_name
    run_id = client.get_model_version(name, version).run_id
    log_signed(client, run_id, result("model.training", "model", model_digest(client, f"models:/{name}/{version}"),
                                      policy), signer_from_file(trainer))
    outcome = promote(client, policy, name, version, "pipeline", keyring_from_env())
    assert outcome.status is Status.PASSED, outcome.top_failures()


def test_a_functionary_key_given_by_path_is_refused(policy, tmp_path):
    """Red team: a trusted policy naming ``keys/trainer.pub`` pins the path, not the key; whoever can write
    beside the policy swaps the file and becomes the functionary. Only key ids and inline PEM are accepted."""
    _, trainer_pub = generate_key(tmp_path / "trainer.pem")
    data = yaml.safe_load(Path(policy.source).read_text())
    data["promotion"]["functionaries"] = {"model.training": [str(trainer_pub)]}
    with pytest.raises(PolicyError, match=r"functionaries of model.training: .* is neither a key id .* nor an "
                                          r"inline PEM public key; a key file's path is refused"):
        load_policy(write_policy(tmp_path / "by-path.yaml", data))
    pinned = trainer_pub.read_text()
    data["promotion"]["functionaries"] = {"model.training": [pinned]}
    inline = load_policy(write_policy(tmp_path / "inline.yaml", data))
    trainer_pub.write_text(generate_key(tmp_path / "swapped.pem")[1].read_text())  # a swapped file changes nothing
    assert functionaries(inline, ())("model.training") == public_keys([pinned])


def test_a_permissive_policy_of_the_triggerers_own_is_refused_and_audited(client, policy, tmp_path, monkeypatch):
    """Attack 9: a DAG run's ``policy_path`` names a policy requiring almost nothing, unsigned and unpinned.
    Its gates' results are even validly signed: the signer still refuses (``trust_policy``)."""
    data = default_policy()
    data["promotion"].update(model_name=policy.promotion.model_name, required_gates=["model.training"])
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))  # not signed by a policy owner
    permissive = load_policy(path)
    version = register_version(client, permissive, permissive.promotion.model_name)
    outcome = refused(client, permissive, version, actor="airflow:secure_training_pipeline/triggered")
    assert outcome.thresholds["gates_seen"] == {"model.training": "passed"}
    (reason,) = [f.message for f in outcome.findings]
    assert reason.startswith(f"policy: the signer does not trust policy {path}")
    (record,) = [r for r in read_decisions(client, permissive.promotion.model_name) if r.version == version]
    assert record.decision == "blocked" and record.reasons == (reason,)

    monkeypatch.setenv(POLICY_DIGESTS_ENV, f"sha256:{'0' * 64},{permissive.digest}")  # pinned: trusted
    assert promote(client, permissive, permissive.promotion.model_name, version, "pinned",
                   keyring_from_env()).status is Status.PASSED


def test_the_scorecard_says_promotable_only_for_a_verified_attestation(client, policy):
    """Attack 7: every result in the store passed, but the version has no attestation."""
    version = good_version(client, policy)
    html = version_scorecard(client, policy, policy.promotion.model_name, version)
    assert "✖ BLOCKED" in html and "has no attestation" in html
    assert promote(client, policy, policy.promotion.model_name, version, "pipeline",
                   keyring_from_env()).status is Status.PASSED
    assert "✔ PROMOTABLE" in version_scorecard(client, policy, policy.promotion.model_name, version)


def test_verify_rechecks_each_embedded_gate_envelope(client, policy):
    """The promotion attestation embeds each gate's envelope; verification re-checks them against the
    policy's functionaries, so a verifier whose policy trusts another key for a gate refuses."""
    from datetime import UTC, datetime

    from mlgate.trust.attestation_store import embedded_evidence_problems, verify_version

    version = good_version(client, policy)
    name = policy.promotion.model_name
    assert promote(client, policy, name, version, "pipeline", keyring_from_env()).status is Status.PASSED
    trusted = keyring_from_env().trusted_keys()
    verified = verify_version(client, policy, name, version, trusted, datetime.now(UTC))
    assert set(verified.gate_envelopes) >= set(GATES)

    run_id = client.get_model_version(name, version).run_id
    assert embedded_evidence_problems(verified, lambda gate: trusted, run_id) == []
    assert {p.split(":")[0] for p in embedded_evidence_problems(verified, lambda gate: trusted, "other")} == set(GATES)
    _, other = generate_key(Path(tempfile.mkdtemp()) / "other.pem")
    problems = embedded_evidence_problems(verified, lambda gate: (other.read_text(),) if gate == "model.training"
                                          else trusted, run_id)
    assert problems == [problems[0]] and problems[0].startswith(
        "model.training: signed evidence counts as missing: signed only by untrusted key")
    stripped = replace(verified, gate_envelopes={})  # an attestation signed before gates signed their results
    assert {p.split(":")[0] for p in embedded_evidence_problems(stripped, lambda gate: trusted, run_id)} == set(GATES)


def test_the_data_tag_cannot_be_rebound_to_forged_data(client, policy):
    """The attacker re-tags the good version with other data: the signed data.integrity result names the
    data it checked, so it no longer counts (the tags are what the evidence must match)."""
    name = policy.promotion.model_name
    version = good_version(client, policy)
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "e" * 64)
    client.set_model_version_tag(name, version, TAG_CODE_DIGEST, "")
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"]["data.integrity"] == "missing"


def test_signed_data_evidence_transplanted_from_another_run_does_not_count(client, policy, tmp_path):
    """Red team: the data gate signed ``blocked`` for the data the model was really trained on (PII). The
    attacker copies a *validly signed* ``passed`` data.integrity envelope from another pipeline run (clean
    data, same policy, fresh) into this version's run and re-tags the version with that data's digest.
    Subject, key, policy and age all match: only the run the gate signed for tells them apart."""
    name = policy.promotion.model_name
    good_version(client, policy)  # another pipeline run: clean data d…d, signed passed
    other_run = client.search_runs([client.get_experiment_by_name("mlgate-test-versions").experiment_id])[0]
    version = register_version(client, policy, name)
    run_id = client.get_model_version(name, version).run_id
    assert other_run.info.run_id != run_id
    log_signed(client, run_id, result("data.integrity", "dataset", "sha256:" + "e" * 64, policy, Status.BLOCKED))
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "e" * 64)
    assert refused(client, policy, version).thresholds["gates_seen"]["data.integrity"] == "blocked"

    envelope = Path(client.download_artifacts(other_run.info.run_id, "gates/data.integrity.dsse.json", str(tmp_path)))
    client.log_artifact(run_id, str(envelope), artifact_path="gates")
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"]["data.integrity"] == "missing"
    (reason,) = [f.message for f in outcome.findings if f.message.startswith("data.integrity")]
    assert "verify_run FAILED" in reason


def test_tags_edited_to_other_data_are_judged_against_the_data_training_signed(client, policy):
    """Red team (redteam4, finding 6): the expected data and code digests came from the version's tags,
    which A1 edits. The model was trained on data e…e (its signed ``model.training`` result names it);
    the run also holds a signed pass for data d…d, and A1 re-tags the version with d…d. Promotion takes the
    digests from the signed training result, so the d…d pass is about other data."""
    name = policy.promotion.model_name
    version = register_version(client, policy, name)
    run_id = client.get_model_version(name, version).run_id
    digest = model_digest(client, f"models:/{name}/{version}")
    trained = replace(result("model.training", "model", digest, policy), inputs={"dataset": "sha256:" + "e" * 64})
    log_signed(client, run_id, trained)
    log_signed(client, run_id, result("data.integrity", "dataset", "sha256:" + "d" * 64, policy))
    client.set_model_version_tag(name, version, TAG_DATA_DIGEST, "sha256:" + "d" * 64)
    outcome = refused(client, policy, version)
    assert outcome.thresholds["gates_seen"]["data.integrity"] == "missing"
    (reason,) = [f.message for f in outcome.findings if f.message.startswith("data.integrity")]
    assert "verify_subject FAILED" in reason
