"""The audit trail on a real embedded MLflow store: append-only, ordered, safe for concurrent writers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.audit import AuditRecord, append_decision, format_table, read_decisions

pytestmark = pytest.mark.unit


def record(model: str, version: int, decision: str = "blocked") -> AuditRecord:
    return AuditRecord(at=f"2026-03-01T12:00:{version:02d}+00:00", model=model, version=str(version),
                       decision=decision, by=f"test:{version}", alias="champion", alias_before="1",
                       alias_after="1", reasons=(f"reason {version}",))


def test_concurrent_appends_all_survive_in_order():
    client, model = MlflowHook().get_conn(), f"audit-{uuid.uuid4().hex[:8]}"
    assert read_decisions(client, model) == []
    append_decision(client, record(model, 0))
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: append_decision(client, record(model, v)), range(1, 9)))
    records = read_decisions(client, model)
    assert sorted(r.version for r in records) == [str(v) for v in range(9)]
    assert records[0].version == "0" and records[0].reasons == ("reason 0",)


def test_the_table_lists_each_decision_with_its_reasons():
    table = format_table([record("m", 2, "promoted"), record("m", 3)])
    lines = table.splitlines()
    assert lines[0].split() == ["at", "version", "decision", "alias", "by", "evidence"]
    assert lines[1].split()[:3] == ["2026-03-01T12:00:02+00:00", "2", "promoted"]
    assert lines[2] == "    - reason 2"
