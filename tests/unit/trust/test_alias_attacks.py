"""Rollback, revocation and audit-trail attacks on a real embedded MLflow store (the scenarios are shared
with the ``mlflow server`` tests): each is refused by the loader or detected by ``audit --verify``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import mlflow
import pytest

from mlgate.cli import main
from mlgate.trust.alias_state import AliasStateError, ExpiredStateError
from mlgate.trust.alias_store import TAG_STATE, trusted_view
from mlgate.trust.audit_verify import resign_alias
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.registry import default_tracking_uri
from tests import alias_attacks as attack

pytestmark = pytest.mark.unit


@pytest.fixture
def client():
    uri = default_tracking_uri()
    return mlflow.MlflowClient(uri, uri)


@pytest.fixture
def policy():
    return attack.new_policy()


def test_a_promoted_alias_loads_and_passes_the_audit(client, policy, capsys):
    name = policy.promotion.model_name
    (version,) = attack.promoted(client, policy, 1)
    model = attack.load(client, policy, f"models:/{name}@champion")
    assert model.predict([0, 1]) == [client.get_model_version(name, version).run_id] * 2
    assert attack.load(client, policy, f"models:/{name}/{version}") is not None
    code, err = attack.audit_verify(capsys, name)
    assert code == 0 and re.search(r"^VERIFIED:", err, re.M), err


def test_a_replayed_alias_state_is_a_rollback(client, policy):
    attack.replayed_alias_state_is_a_rollback(client, policy)


def test_an_alias_moved_back_directly_is_refused_and_audited(client, policy, capsys):
    attack.alias_moved_back_directly(client, policy, capsys)


def test_a_revoked_version_is_unloadable_by_alias_and_by_version(client, policy):
    attack.revoked_version_is_refused(client, policy)


def test_removing_the_revocation_tag_changes_nothing(client, policy):
    attack.revocation_tag_removed(client, policy)


def test_a_client_without_memory_sees_an_unlisted_revocation(client, policy):
    attack.revocation_tag_outlives_a_fresh_client(client, policy)


@pytest.mark.parametrize("how", ["edited", "deleted", "deleted-last", "inserted", "forged", "reordered"])
def test_audit_tampering_is_detected(client, policy, capsys, how):
    attack.audit_tampering_is_detected(client, policy, capsys, how)


def test_a_frozen_store_expires_and_resigning_keeps_it_fresh(client, policy, capsys):
    name = policy.promotion.model_name
    attack.promoted(client, policy, 1)
    keys, now = keyring_from_env(), datetime.now(UTC)
    with pytest.raises(ExpiredStateError, match="expired"):
        trusted_view(client, name, keys.trusted_keys(), now + timedelta(hours=25))
    before = trusted_view(client, name, keys.trusted_keys(), now).states["champion"]
    resigned = resign_alias(client, keys, name, "champion", now=now + timedelta(hours=20))
    assert resigned.sequence == before.sequence + 1 and resigned.origin == before.origin
    assert trusted_view(client, name, keys.trusted_keys(), now + timedelta(hours=25)).states["champion"] == resigned
    capsys.readouterr()
    assert main(["alias", "resign", name]) == 0
    assert f"re-signed {name}@champion" in capsys.readouterr().out


def test_resigning_refuses_to_launder_a_replayed_state(client, policy):
    name = policy.promotion.model_name
    attack.promoted(client, policy, 1)
    old = attack.state_tag(client, name)
    attack.promoted(client, policy, 1)
    client.set_registered_model_tag(name, TAG_STATE + "champion", old)
    attack.forget(client, name)  # even a re-signer that never saw the newer state
    with pytest.raises(AliasStateError, match="audit trail does not verify|older than the newest audited"):
        resign_alias(client, keyring_from_env(), name, "champion")


def test_an_old_attestation_replayed_onto_a_new_version_is_refused(client, policy):
    """The attacker registers a new version over a promoted version's files and run (where its attestation
    lives) and copies that version's tags: the signed attestation names the version it was made for."""
    from mlgate.trust.attestation import AttestationError
    from mlgate.trust.attestation_store import verify_version

    name = policy.promotion.model_name
    (good,) = attack.promoted(client, policy, 1)
    original = client.get_model_version(name, good)
    replay = client.create_model_version(name, original.source, run_id=original.run_id).version
    for key, value in original.tags.items():
        client.set_model_version_tag(name, replay, key, value)
    with pytest.raises(AttestationError, match=f"is for {name}/{good}, not {name}/{replay}"):
        verify_version(client, policy, name, replay, keyring_from_env().trusted_keys(), datetime.now(UTC))
    attack.refused(client, policy, f"models:/{name}/{replay}", f"not {name}/{replay}")
