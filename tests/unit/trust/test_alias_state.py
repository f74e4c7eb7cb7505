"""The alias state machine (no I/O): sequence before expiry, rollback vs replay, revocations never dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mlgate.trust.alias_state import (
    AliasMismatchError,
    AliasStateError,
    ExpiredStateError,
    ReplayError,
    Revocation,
    RevokedError,
    RollbackError,
    Seen,
    TrustedAliasState,
    next_state,
    parse_state,
    payload_digest,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def state(sequence=3, version="2", revoked=None, expires=NOW + timedelta(hours=1), model="m"):
    return next_state(None, sequence - 1, model=model, alias="champion", kind="promotion", version=version,
                      model_digest="sha256:" + "a" * 64, revoke=revoked, now=expires - timedelta(hours=24),
                      expiry=timedelta(hours=24))


def view(sequence=0, digest="", revoked=()):
    return TrustedAliasState("m", {"champion": Seen(sequence, digest, tuple(revoked))} if sequence else {}, NOW)


def test_a_fresh_state_is_trusted_and_remembered():
    s = state()
    v = view()
    assert v.update_alias(s, payload_digest(s.to_payload())) == s
    assert v.check_serves("champion", "2") == s
    assert v.seen()["champion"] == Seen(3, payload_digest(s.to_payload()), ())


def test_an_older_sequence_is_a_rollback_and_a_different_one_at_the_same_sequence_a_replay():
    s = state(sequence=3)
    with pytest.raises(RollbackError, match="sequence 3 is older than sequence 4"):
        view(4, "sha256:x").update_alias(s, payload_digest(s.to_payload()))
    with pytest.raises(ReplayError, match="different signed alias state under sequence 3"):
        view(3, "sha256:other").update_alias(s, payload_digest(s.to_payload()))
    assert view(3, payload_digest(s.to_payload())).update_alias(s, payload_digest(s.to_payload())) == s


def test_expiry_is_checked_last_and_an_expired_state_is_not_remembered():
    expired = state(sequence=2, expires=NOW - timedelta(seconds=1))
    with pytest.raises(RollbackError):  # the rollback is the finding, not the expiry
        view(3, "sha256:x").update_alias(expired, "sha256:y")
    fresh = view()
    with pytest.raises(ExpiredStateError, match="expired"):
        fresh.update_alias(expired, "sha256:y")
    assert fresh.seen() == {} and fresh.states == {}


def test_a_state_that_drops_a_revocation_is_a_rollback():
    with pytest.raises(RollbackError, match="no longer lists revoked version.*1"):
        view(2, "sha256:x", revoked=("1",)).update_alias(state(sequence=5), "sha256:y")


def test_the_registry_must_serve_what_the_state_says_and_nothing_revoked():
    v = view()
    v.update_alias(state(revoked={"1": "inc-1"}), "sha256:y")
    with pytest.raises(AliasMismatchError, match="registry serves version 1.*says version 2"):
        v.check_serves("champion", "1")
    with pytest.raises(RevokedError, match="inc-1"):
        v.check_not_revoked("1")
    removed = view()
    removed.update_alias(state(version=None), "sha256:z")
    with pytest.raises(AliasMismatchError, match="removed by incident response"):
        removed.check_serves("champion", "2")


def test_a_revocation_is_checked_after_the_state_and_must_be_listed_by_it():
    v = view()
    revocation = Revocation("m", "1", "inc-1", 3, NOW)
    with pytest.raises(AliasStateError, match="none is loaded"):
        v.update_revocation(revocation)
    v.update_alias(state(), "sha256:y")
    with pytest.raises(RollbackError, match="does not list"):
        v.update_revocation(revocation)
    listed = view()
    listed.update_alias(state(revoked={"1": "inc-1"}), "sha256:y")
    assert listed.update_revocation(revocation) == revocation


def test_a_state_of_another_model_is_refused():
    with pytest.raises(AliasStateError, match="for model 'other'"):
        view().update_alias(state(model="other"), "sha256:y")


def test_writers_only_move_forward_and_only_add_revocations():
    current = state(sequence=4, revoked={"1": "inc-1"})
    after = next_state(current, 6, model="m", alias="champion", kind="incident", version=None,
                       revoke={"2": "inc-2"}, now=NOW)
    assert (after.sequence, after.origin, after.version, after.model_digest) == (7, 7, None, "")
    assert after.revoked == {"1": "inc-1", "2": "inc-2"}
    resigned = next_state(after, 0, model="m", alias="champion", kind="resign", now=NOW + timedelta(hours=1))
    assert (resigned.sequence, resigned.origin, resigned.revoked) == (8, 7, after.revoked)
    assert parse_state(json.dumps(resigned.to_payload()).encode()) == resigned


@pytest.mark.parametrize("change", [{"sequence": 0}, {"extra": 1}, {"expires": "2026-01-01T00:00:00"},
                                    {"_type": "https://in-toto.io/Statement/v1"}])
def test_malformed_states_are_refused(change):
    payload = {**state().to_payload(), **change}
    with pytest.raises(AliasStateError, match="malformed alias state"):
        parse_state(json.dumps(payload).encode())
