"""The audit trail on a real embedded MLflow store: append-only, ordered, signed and chained, safe for concurrent
writers (tampering: test_alias_attacks)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.audit import AuditRecord, append_decision, format_table, read_decisions, verify_decisions
from mlgate.trust.keys import keyring_from_env

pytestmark = pytest.mark.unit


def record(model: str, version: int, decision: str = "blocked") -> AuditRecord:
    return AuditRecord(at=f"2026-03-01T12:00:{version:02d}+00:00", model=model, version=str(version),
                       decision=decision, by=f"test:{version}", alias="champion", alias_before="1",
                       alias_after="1", reasons=(f"reason {version}",))


def test_concurrent_appends_all_survive_in_order_and_the_chain_holds():
    client, model, keys = MlflowHook().get_conn(), f"audit-{uuid.uuid4().hex[:8]}", keyring_from_env()
    assert read_decisions(client, model) == []
    append_decision(client, record(model, 0), keys)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: append_decision(client, record(model, v), keys), range(1, 9)))
    append_decision(client, record(model, 9), keys)  # joins whatever fork the racing writers left
    records = read_decisions(client, model)
    assert sorted(r.version for r in records) == [str(v) for v in range(10)]
    assert records[0].version == "0" and records[0].reasons == ("reason 0",)
    verified, problems = verify_decisions(client, model, keys.trusted_keys(), {})
    assert problems == [] and len(verified) == 10


def test_a_record_written_without_a_key_is_flagged():
    client, model, keys = MlflowHook().get_conn(), f"audit-{uuid.uuid4().hex[:8]}", keyring_from_env()
    append_decision(client, record(model, 1), keys)
    append_decision(client, record(model, 2), None)
    assert [r.version for r in read_decisions(client, model)] == ["1", "2"]
    verified, problems = verify_decisions(client, model, keys.trusted_keys(), {})
    assert [r.version for r in verified] == ["1"]
    assert len(problems) == 1 and "not signed by a trusted key" in problems[0]


def test_the_table_lists_each_decision_with_its_reasons():
    table = format_table([record("m", 2, "promoted"), record("m", 3)])
    lines = table.splitlines()
    assert lines[0].split() == ["at", "version", "decision", "alias", "by", "evidence"]
    assert lines[1].split()[:3] == ["2026-03-01T12:00:02+00:00", "2", "promoted"]
    assert lines[2] == "    - reason 2"


def test_another_models_trail_put_in_place_of_this_ones_is_flagged():
    """Red team (A1 retags runs): model A's trail holds a decision to erase. The attacker retags A's audit
    run away and tags model B's audit run (validly signed, well chained) as A's: every record verifies,
    so only the model each record was signed for tells the trails apart."""
    from mlgate.trust.audit import EXPERIMENT, MODEL_TAG
    from mlgate.trust.registry import keyed_run

    client, keys = MlflowHook().get_conn(), keyring_from_env()
    a, b = f"audit-a-{uuid.uuid4().hex[:8]}", f"audit-b-{uuid.uuid4().hex[:8]}"
    append_decision(client, record(b, 1), keys)
    append_decision(client, record(a, 1), keys)
    append_decision(client, record(a, 2), keys)  # the decision the attacker wants gone
    client.set_tag(keyed_run(client, EXPERIMENT, MODEL_TAG, a), MODEL_TAG, f"{a}-gone")
    client.set_tag(keyed_run(client, EXPERIMENT, MODEL_TAG, b), MODEL_TAG, a)
    verified, problems = verify_decisions(client, a, keys.trusted_keys(), {})
    assert [r.version for r in read_decisions(client, a)] == ["1"]
    assert verified == [] and len(problems) == 1
    assert f"signed for model {b!r}, not {a!r}" in problems[0]
