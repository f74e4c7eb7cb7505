"""The training reference of ``monitor.drift`` and ``monitor.queries`` is the DP profile the served version's
verified attestation vouches for (ADR 0060), on a real embedded MLflow store with versions promoted (signed)
by ``promote``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError
from mlgate.gates.data.privacy import released_copy
from mlgate.gates.monitor.drift import ReferenceProfile
from mlgate.gates.monitor.monitoring import AttestedReference, read_reference
from mlgate.gates.monitor.served import served_reference
from mlgate.trust.attestation import AttestationError
from mlgate.trust.keys import keyring_from_env
from tests.helpers import reference_version, register_version
from tests.monitoring_data import write_dp_reference

pytestmark = pytest.mark.unit


def test_the_served_versions_attested_reference_is_read_and_accepts_its_profile(client, policy, tmp_path):
    older = write_dp_reference(tmp_path / "older.json", rows=1400)
    served = write_dp_reference(tmp_path / "served.json")
    reference_version(client, policy, policy.promotion.model_name, older)
    version = reference_version(client, policy, policy.promotion.model_name, served)
    attested = served_reference(client, policy, keyring_from_env())
    name = policy.promotion.model_name
    assert attested == AttestedReference(json_digest(json.loads(served.read_text())), f"{name}/{version}")
    profile, evidence = read_reference(served, attested)
    assert isinstance(profile, ReferenceProfile) and {"age", "credit_score"} <= set(profile.numeric)
    assert evidence == {"reference_verified": True, "reference_digest": attested.digest,
                        "reference_attested_by": f"{name}/{version}", "reference_path": str(served)}
    with pytest.raises(GateInputError, match=f"older.json: the training reference's digest sha256:[0-9a-f]{{64}} "
                                             f"is not the one {name}/{version}'s verified attestation records"):
        read_reference(older, attested)  # the version the alias no longer serves vouched for it, not this one


def test_an_attestation_without_a_reference_fails_closed(client, policy):
    reference_version(client, policy, policy.promotion.model_name, None)
    with pytest.raises(GateInputError, match="records no training reference"):
        served_reference(client, policy, keyring_from_env())


def test_a_reference_digest_outside_a_signed_attestation_is_not_read(client, policy):
    version = register_version(client, policy, policy.promotion.model_name)  # never promoted: no attestation
    client.set_registered_model_alias(policy.promotion.model_name, policy.promotion.alias, version)
    with pytest.raises(AttestationError, match="has no attestation"):
        served_reference(client, policy, keyring_from_env())


def test_without_an_attestation_any_reference_is_read_and_recorded_unverified(tmp_path):
    reference = write_dp_reference(tmp_path / "reference.json")
    _, evidence = read_reference(reference, None)
    assert evidence == {"reference_verified": False, "reference_digest": json_digest(json.loads(reference.read_text()))}


def test_a_reference_of_the_drifted_data_would_silence_drift_and_is_refused(policy, tmp_path):
    """The attack the attested reference stops: a profile of the drifted data, written over the reference,
    makes a drifted window pass; checked against the attested digest it is refused before any test runs."""
    from mlgate.gates.monitor.monitoring import check_drift_files
    from tests.monitoring_data import write_inference_log

    log = write_inference_log(tmp_path / "window.jsonl", drifted=True)
    genuine = write_dp_reference(tmp_path / "genuine.json")
    silencing = write_dp_reference(tmp_path / "silencing.json", drifted=True)
    assert check_drift_files(log, genuine, policy).metrics["drifted_columns"]
    assert check_drift_files(log, silencing, policy).metrics["drifted_columns"] == []
    attested = AttestedReference(json_digest(json.loads(genuine.read_text())), "m/1")
    with pytest.raises(GateInputError, match="silencing.json: the training reference's digest"):
        check_drift_files(log, silencing, policy, attested=attested)
    assert check_drift_files(log, genuine, policy, attested=attested).metrics["reference_verified"] is True


def _keep(profile: Path) -> Path:
    """``profile`` kept under its digest, as the data.privacy operator keeps each release."""
    kept = released_copy(profile, json_digest(json.loads(profile.read_text())))
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(profile.read_bytes())
    return kept


def test_a_retraining_that_rewrites_the_profile_path_leaves_the_served_reference_readable(tmp_path):
    """The served version's release is read from where it is kept under its attested digest, whatever the
    newest release at ``profile_path`` is; without that copy, the newer release is refused as before."""
    path = tmp_path / "loans.dp.json"
    kept = _keep(write_dp_reference(path))
    served = AttestedReference(json_digest(json.loads(path.read_text())), "m/1")
    write_dp_reference(path, seed=8)  # the retraining's release, its model not promoted (yet)
    profile, evidence = read_reference(path, served)
    assert evidence["reference_verified"] is True and evidence["reference_path"] == str(kept)
    assert profile.to_dict() == read_reference(kept, None)[0].to_dict()
    kept.unlink()
    with pytest.raises(GateInputError, match="loans.dp.json: the training reference's digest"):
        read_reference(path, served)


def test_a_kept_release_that_was_altered_is_refused_not_passed_over(tmp_path):
    path = tmp_path / "loans.dp.json"
    kept = _keep(write_dp_reference(path))
    served = AttestedReference(json_digest(json.loads(path.read_text())), "m/1")
    kept.write_bytes(write_dp_reference(tmp_path / "drifted.json", drifted=True).read_bytes())
    with pytest.raises(GateInputError, match=f"{kept.name}: the training reference's digest"):
        read_reference(path, served)  # the genuine file at path is not an excuse to ignore a tampered copy


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "0" * 32, ""])
def test_no_path_is_built_from_a_digest_of_another_form(tmp_path, digest):
    assert released_copy(tmp_path / "p.json", digest) is None
