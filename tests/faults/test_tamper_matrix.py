"""The fault matrix's tamper axis (issue 13): every gate × {unsigned, untrusted key, other subject}. In every
cell the gate's result passed and says so, yet it counts as missing and promotion refuses; the control cell
(signed by a trusted key, about this subject) counts. Pure: the store cases are in tests/unit/trust."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgate.core.errors import UnverifiedEvidenceError
from mlgate.core.policy import KNOWN_GATES, parse_policy
from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
from mlgate.trust.attestation import generate_key, public_key_pem, signer_from_file
from mlgate.trust.gate_evidence import sign_result, verify_gate_evidence
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.promotion import decide

pytestmark = pytest.mark.unit

TAMPERS = ("unsigned", "untrusted-key", "other-subject", "other-run")
RUN = "a" * 32  # the model version's MLflow run
KINDS = {"data": "dataset", "code": "code", "model": "model", "deploy": "code"}
NOW = {kind: f"sha256:{i:064x}" for i, kind in enumerate(("dataset", "code", "model"), start=1)}
POLICY = parse_policy({"version": 1, "promotion": {"model_name": "m", "required_gates": list(KNOWN_GATES)}})


@pytest.fixture(autouse=True)
def offline_trivy() -> None:
    """No tool runs here: the matrix's session bench (conftest) is not needed."""


@pytest.fixture(scope="module")
def rogue(tmp_path_factory):
    return signer_from_file(generate_key(tmp_path_factory.mktemp("rogue") / "rogue.pem")[0])


def passing(gate: str, digest: str | None = None) -> GateResult:
    kind = KINDS.get(gate.split(".")[0], "model")
    return GateResult(gate, Status.PASSED, Subject(kind, "x", digest or NOW[kind]), POLICY.digest,
                      ToolInfo("t", "1"), utcnow(), utcnow())


def envelopes(tampered: str, how: str, rogue) -> dict[str, str]:
    """A signed envelope for every gate, the ``tampered`` one made as ``how`` says (absent if unsigned)."""
    session = keyring_from_env().signer()
    signed = {g: sign_result(passing(g), session, RUN) for g in KNOWN_GATES}
    if how == "unsigned":
        del signed[tampered]
    elif how == "untrusted-key":
        signed[tampered] = sign_result(passing(tampered), rogue, RUN)
    elif how == "other-subject":
        signed[tampered] = sign_result(passing(tampered, "sha256:" + "f" * 64), session, RUN)
    elif how == "other-run":  # a validly signed result about the very same subject, logged in another run
        signed[tampered] = sign_result(passing(tampered), session, "b" * 32)
    return signed


@pytest.mark.parametrize("how", TAMPERS)
@pytest.mark.parametrize("gate", KNOWN_GATES)
def test_tampered_evidence_counts_as_missing_and_blocks(gate, how, rogue):
    trusted = (public_key_pem(keyring_from_env().signer()),)
    loose = {g: passing(g) for g in KNOWN_GATES}  # the store's loose copies all say passed
    evidence, verified = verify_gate_evidence(envelopes(gate, how, rogue), loose, lambda g: trusted, NOW, RUN)
    assert isinstance(evidence[gate], UnverifiedEvidenceError) and gate not in verified
    rule = {"unsigned": "verify_signed", "untrusted-key": "verify_signature", "other-subject": "verify_subject",
            "other-run": "verify_run"}[how]
    assert f"{rule} FAILED" in str(evidence[gate])
    decision = decide(POLICY, evidence, digests=NOW, now=datetime.now(UTC))
    assert not decision.allowed and decision.gates[gate] == "missing"
    assert {g for g, seen in decision.gates.items() if seen != "passed"} == {gate}


def test_the_untampered_control_counts(rogue):
    trusted = (public_key_pem(keyring_from_env().signer()),)
    evidence, verified = verify_gate_evidence(envelopes("", "none", rogue), {}, lambda g: trusted, NOW, RUN)
    assert set(verified) == set(KNOWN_GATES)
    assert decide(POLICY, evidence, digests=NOW, now=datetime.now(UTC)).allowed
