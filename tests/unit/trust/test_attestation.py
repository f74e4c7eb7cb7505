from __future__ import annotations

import base64
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from securesystemslib.dsse import Envelope

from mlgate.core.errors import EvidenceError, GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo
from mlgate.trust.attestation import (
    KEY_ENV,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    AttestationError,
    build_statement,
    generate_key,
    load_signer,
    public_key_pem,
    sign_statement,
    signer_from_env,
    signer_from_file,
    verify_envelope,
)

pytestmark = pytest.mark.unit

POLICY = "sha256:" + "p" * 64
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = CREATED + timedelta(hours=1)
ARTIFACTS = {"model/model.pkl": "sha256:" + "a" * 64, "model/MLmodel": "sha256:" + "b" * 64}
REQUIRED = ("data.integrity", "model.artifact")


def result(gate: str, status: Status = Status.PASSED, policy: str = POLICY) -> GateResult:
    findings = () if status is Status.PASSED else (Finding(f"{gate}.bad", Severity.HIGH, "unsafe global os.system",
                                                           "model.pkl"),)
    return GateResult(gate=gate, status=status, subject=Subject("model", "models:/m/1", "sha256:" + "c" * 64),
                      policy_digest=policy, tool=ToolInfo("pickle-scan", "1"),
                      started_at=CREATED.isoformat(), finished_at=CREATED.isoformat(),
                      metrics={"files": 2}, findings=findings)


RESULTS = [result("data.integrity"), result("model.artifact")]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    private, public = generate_key(directory / "mlgate.key")
    other_private, other_public = generate_key(directory / "other.key")
    return {"signer": signer_from_file(private), "public": public.read_text(), "private_path": private,
            "other": signer_from_file(other_private), "other_public": other_public.read_text()}


def statement(results=RESULTS, artifacts=ARTIFACTS) -> dict:
    return build_statement("loan-default", "3", artifacts, results, POLICY, {"mlgate": "0.1.0"},
                           created_at=CREATED.isoformat())


def verify(envelope: str, keys, **overrides):
    trusted = overrides.pop("trusted", [keys["public"]])
    args = {"expected_artifact_digests": ARTIFACTS, "current_policy_digest": POLICY, "required_gates": REQUIRED,
            "max_age_hours": 24, "now": NOW, **overrides}
    return verify_envelope(envelope, trusted, **args)


def test_statement_is_in_toto_v1_with_one_subject_per_artifact_file():
    data = statement()
    assert data["_type"] == STATEMENT_TYPE and data["predicateType"] == PREDICATE_TYPE
    assert data["subject"] == [{"name": "model/MLmodel", "digest": {"sha256": "b" * 64}},
                               {"name": "model/model.pkl", "digest": {"sha256": "a" * 64}}]
    predicate = data["predicate"]
    assert predicate["model"] == {"name": "loan-default", "version": "3"}
    assert predicate["policyDigest"] == POLICY and predicate["toolVersions"] == {"mlgate": "0.1.0"}
    assert [g["gate"] for g in predicate["gates"]] == ["data.integrity", "model.artifact"]


def test_sign_then_verify_returns_the_gate_results(keys):
    envelope = sign_statement(statement(), keys["signer"])
    assert json.loads(envelope)["payloadType"] == PAYLOAD_TYPE
    verified = verify(envelope, keys)
    assert verified.results == tuple(RESULTS)
    assert verified.keyid == keys["signer"].public_key.keyid
    assert (verified.model_name, verified.version, verified.created_at) == ("loan-default", "3", CREATED)
    assert verified.artifact_digests == ARTIFACTS


def _tamper_payload(envelope: str) -> str:
    data = json.loads(envelope)
    payload = json.loads(base64.b64decode(data["payload"]))
    payload["predicate"]["gates"][1]["status"] = "passed"
    payload["predicate"]["gates"][1]["findings"] = []
    data["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(data)


def _claim_trusted_keyid(envelope: str, keyid: str) -> str:
    data = json.loads(envelope)
    data["signatures"][0]["keyid"] = keyid
    return json.dumps(data)


def _signed_with_payload_type(payload_type: str, signer) -> str:
    envelope = Envelope(json.dumps(statement()).encode(), payload_type, {})
    envelope.sign(signer)
    return json.dumps(envelope.to_dict())


def _unsigned() -> str:
    return json.dumps(Envelope(json.dumps(statement()).encode(), PAYLOAD_TYPE, {}).to_dict())


ENVELOPE_CASES = [
    ("payload-modified", lambda k: _tamper_payload(sign_statement(
        statement([RESULTS[0], result("model.artifact", Status.BLOCKED)]), k["signer"])), "invalid signature"),
    ("signed-by-another-key-claiming-trusted-keyid", lambda k: _claim_trusted_keyid(
        sign_statement(statement(), k["other"]), k["signer"].public_key.keyid), "invalid signature"),
    ("untrusted-key", lambda k: sign_statement(statement(), k["other"]), "untrusted key"),
    ("unsigned", lambda k: _unsigned(), "unsigned"),
    ("wrong-payload-type", lambda k: _signed_with_payload_type("application/json", k["signer"]),
     "wrong payload type 'application/json'"),
    ("garbage-text", lambda k: "not json at all", "not a DSSE envelope"),
    ("garbage-json-list", lambda k: "[1, 2]", "not a DSSE envelope"),
    ("missing-fields", lambda k: "{}", "not a DSSE envelope"),
    ("bad-base64", lambda k: json.dumps({"payload": "%%%", "payloadType": PAYLOAD_TYPE, "signatures": []}),
     "not a DSSE envelope"),
]


@pytest.mark.parametrize(("make", "reason"), [c[1:] for c in ENVELOPE_CASES], ids=[c[0] for c in ENVELOPE_CASES])
def test_envelope_that_cannot_be_trusted_is_refused(keys, make, reason):
    with pytest.raises(AttestationError, match=reason) as caught:
        verify(make(keys), keys)
    assert isinstance(caught.value, EvidenceError)


def test_a_signed_statement_of_the_wrong_shape_is_malformed(keys):
    bad = statement()
    bad["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(AttestationError, match="malformed statement: predicateType"):
        verify(sign_statement(bad, keys["signer"]), keys)


SWAPPED = {**ARTIFACTS, "model/model.pkl": "sha256:" + "e" * 64}
CONTENT_CASES = [
    ("artifact-swapped", {"expected_artifact_digests": SWAPPED}, "artifact model/model.pkl changed since it was "
                                                                 "attested"),
    ("artifact-added", {"expected_artifact_digests": {**ARTIFACTS, "model/extra.pkl": "sha256:" + "f" * 64}},
     "artifact model/extra.pkl is not covered"),
    ("artifact-removed", {"expected_artifact_digests": {"model/model.pkl": ARTIFACTS["model/model.pkl"]}},
     "artifact model/MLmodel was attested but is absent now"),
    ("policy-changed", {"current_policy_digest": "sha256:" + "9" * 64}, "the policy changed since attestation"),
    ("stale", {"now": CREATED + timedelta(hours=30)}, "the attestation is 30.0 h old, older than the allowed 24 h"),
    ("from-the-future", {"now": CREATED - timedelta(hours=2)}, "created in the future"),
    ("missing-gate", {"required_gates": (*REQUIRED, "model.robustness")},
     "model.robustness: required gate is missing"),
    ("other-model-version", {"expected_model": ("loan-default", "4")}, "is for loan-default/3, not loan-default/4"),
]


@pytest.mark.parametrize(("overrides", "reason"), [c[1:] for c in CONTENT_CASES], ids=[c[0] for c in CONTENT_CASES])
def test_valid_signature_over_evidence_that_does_not_vouch_for_this_promotion(keys, overrides, reason):
    envelope = sign_statement(statement(), keys["signer"])
    with pytest.raises(AttestationError, match=reason):
        verify(envelope, keys, **overrides)


def test_a_blocked_required_gate_is_refused_with_its_top_finding(keys):
    envelope = sign_statement(statement([RESULTS[0], result("model.artifact", Status.BLOCKED)]), keys["signer"])
    with pytest.raises(AttestationError, match=r"model.artifact: required gate is blocked, not passed "
                                               r"\(\[high\] model.artifact.bad: unsafe global os.system"):
        verify(envelope, keys)


def test_every_content_problem_is_reported_at_once(keys):
    envelope = sign_statement(statement([RESULTS[0], result("model.artifact", Status.ERROR)]), keys["signer"])
    with pytest.raises(AttestationError) as caught:
        verify(envelope, keys, expected_artifact_digests=SWAPPED, current_policy_digest="sha256:" + "9" * 64)
    assert len(caught.value.reasons) == 3
    assert [r.split(" ")[0] for r in caught.value.reasons] == ["artifact", "the", "model.artifact:"]


def test_build_refuses_results_under_another_policy_and_bad_digests():
    with pytest.raises(GateInputError, match="another policy"):
        statement([result("data.integrity", policy="sha256:" + "0" * 64)])
    with pytest.raises(GateInputError, match="model.pkl: expected 'sha256:<64 hex digits>'"):
        statement(artifacts={"model.pkl": "md5:abc"})
    with pytest.raises(GateInputError, match="at least one model artifact"):
        statement(artifacts={})
    with pytest.raises(GateInputError, match="once"):
        statement([RESULTS[0], RESULTS[0]])


def test_verification_without_trusted_keys_fails_closed(keys):
    with pytest.raises(GateInputError, match="no trusted public keys"):
        verify(sign_statement(statement(), keys["signer"]), keys, trusted=[])


def test_generated_private_key_is_owner_only_and_never_overwritten(keys):
    assert stat.S_IMODE(keys["private_path"].stat().st_mode) == 0o600
    with pytest.raises(GateInputError, match="refusing to overwrite"):
        generate_key(keys["private_path"])


def test_key_from_environment_signs_like_the_file(keys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, keys["private_path"].read_text())
    signer = signer_from_env()
    assert public_key_pem(signer) == keys["public"]
    assert verify(sign_statement(statement(), signer), keys).keyid == keys["signer"].public_key.keyid
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(GateInputError, match=f"{KEY_ENV} is unset"):
        signer_from_env()


def test_only_ecdsa_p256_private_keys_are_accepted():
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    with pytest.raises(GateInputError, match="expected an ECDSA P-256 key"):
        load_signer(pem)
    with pytest.raises(GateInputError, match="not a usable PEM private key"):
        load_signer("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_a_gate_result_with_an_unreadable_timestamp_is_stale(keys):
    envelope = sign_statement(statement([RESULTS[0], replace(RESULTS[1], finished_at="yesterday")]), keys["signer"])
    with pytest.raises(AttestationError, match="model.artifact: evidence timestamp 'yesterday' is unreadable"):
        verify(envelope, keys)


def test_evidence_must_have_been_fresh_when_signed(keys):
    old = replace(RESULTS[1], finished_at=(CREATED - timedelta(hours=30)).isoformat())
    envelope = sign_statement(statement([RESULTS[0], old]), keys["signer"])
    with pytest.raises(AttestationError, match="model.artifact: evidence finished at .*, 30.0 h before it was "
                                               "attested, older than the allowed 24 h"):
        verify(envelope, keys)


def test_an_old_attestation_verifies_when_it_does_not_expire(keys):
    envelope = sign_statement(statement(), keys["signer"])
    long_after = CREATED + timedelta(days=90)
    with pytest.raises(AttestationError, match="the attestation is 2160.0 h old"):
        verify(envelope, keys, now=long_after)
    assert verify(envelope, keys, now=long_after, expires=False).version == "3"
