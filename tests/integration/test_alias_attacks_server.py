"""The rollback, revocation and audit attacks against a real ``mlflow server`` on PostgreSQL: the attacker's
client talks to the server (tags, aliases, artifact uploads and deletes over REST), never to its files."""

from __future__ import annotations

import mlflow
import pytest

from tests import alias_attacks as attack

pytestmark = pytest.mark.integration


@pytest.fixture
def client(use_server):
    return mlflow.MlflowClient(use_server.url, use_server.url)


@pytest.fixture
def policy():
    return attack.new_policy()


def test_a_replayed_alias_state_is_a_rollback(client, policy):
    attack.replayed_alias_state_is_a_rollback(client, policy)


def test_an_alias_moved_back_directly_is_refused_and_audited(client, policy, capsys):
    attack.alias_moved_back_directly(client, policy, capsys)


def test_a_revoked_version_is_unloadable_by_alias_and_by_version(client, policy):
    attack.revoked_version_is_refused(client, policy)


def test_removing_the_revocation_tag_changes_nothing(client, policy):
    attack.revocation_tag_removed(client, policy)


@pytest.mark.parametrize("how", ["edited", "deleted", "inserted", "reordered"])
def test_audit_tampering_is_detected(client, policy, capsys, how):
    attack.audit_tampering_is_detected(client, policy, capsys, how)


def test_incident_response_never_restores_a_never_signed_version(client, policy):
    attack.never_signed_is_never_restored(client, policy)
