"""Incident response against a real embedded MLflow store: which version is restored, and failing closed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import GateResult, Status, Subject, ToolInfo
from mlgate.gates.monitor.incident import TAG, alerts, choose_restore, respond
from mlgate.trust.alias_store import TAG_REVOCATION, trusted_view
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.promote import promote
from mlgate.trust.promotion import Decision
from mlgate.trust.registry import current_alias_version
from tests.helpers import register_version

pytestmark = pytest.mark.unit


def monitor_result(gate: str, status: Status = Status.BLOCKED) -> GateResult:
    return GateResult(gate, status, Subject("dataset", "inference-window", "sha256:w"), "p", ToolInfo("t", "1"),
                      "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00")


def versions(client, policy, passes: list[bool], *, signed: bool = True) -> str:
    """Registers one version per entry, promoting (signing) each that passes unless ``signed`` is false,
    and points the alias at the last; returns the model name."""
    name = policy.promotion.model_name
    for passed in passes:
        version = register_version(client, policy, name, passed=passed)
        if passed and signed:
            assert promote(client, policy, name, version, "test:promoter", keyring_from_env()).status is Status.PASSED
    client.set_registered_model_alias(name, policy.promotion.alias, version)
    return name


def allowed(*reasons: str) -> Decision:
    return Decision(allowed=not reasons, reasons=reasons, gates={})


def test_only_blocked_monitoring_results_are_alerts():
    results = [monitor_result("monitor.drift"), monitor_result("monitor.confidence", Status.ERROR),
               monitor_result("monitor.queries", Status.PASSED), monitor_result("data.integrity")]
    assert [r.gate for r in alerts(results)] == ["monitor.drift"]


@pytest.mark.parametrize(("verdicts", "restored", "refused"), [
    ({"3": allowed(), "2": allowed()}, "3", []),
    ({"3": allowed("model.training: status blocked"), "2": allowed()}, "2", ["3"]),
    ({"3": ToolError("artifact gone"), "2": allowed()}, "2", ["3"]),
    ({"3": allowed("stale"), "2": allowed("changed")}, None, ["3", "2"]),
    ({}, None, []),
], ids=["newest-good", "skips-failing", "skips-unverifiable", "none-good", "no-candidates"])
def test_the_newest_candidate_that_passes_is_restored(verdicts, restored, refused):
    def verify(version):
        verdict = verdicts[version]
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    choice = choose_restore(list(verdicts), verify)
    assert choice.version == restored
    assert list(choice.refused) == refused


def test_an_alert_restores_the_last_version_whose_evidence_passes(client, policy):
    name = versions(client, policy, [True, False, True])  # version 2's evidence is blocked
    result = respond(client, policy, name, None, [monitor_result("monitor.drift")], key="test/drift-run")
    assert result.status is Status.PASSED
    assert current_alias_version(client, name, "champion") == "1"
    assert result.metrics["alias_before"] == "3" and result.metrics["alias_after"] == "1"
    assert result.metrics["retrain"] is True
    assert [f.location for f in result.findings if f.id == "incident.respond.not_restored"] == ["version 2"]
    bad = client.get_model_version(name, "3").tags
    assert bad[TAG] == result.metrics["incident"]
    assert "monitor.drift" in bad[f"{TAG}.reasons"]
    assert client.get_model_version(name, "1").tags[f"{TAG}.restored_by"] == result.metrics["incident"]

    experiment = client.get_experiment_by_name("mlgate-incidents")
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`{TAG}` = '{result.metrics['incident']}'")
    assert {k: run.data.tags[f"{TAG}.{k}"] for k in ("model", "bad_version", "restored_version", "dag_run")} == {
        "model": name, "bad_version": "3", "restored_version": "1", "dag_run": "test/drift-run"}
    assert run.info.status == "FINISHED"
    artifacts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "gates")}
    assert artifacts == {"monitor.drift.json", "incident.respond.json"}


def test_without_a_good_earlier_version_the_alias_is_removed(client, policy):
    name = versions(client, policy, [False, True])
    result = respond(client, policy, name, "2", [monitor_result("monitor.confidence")], key="test/no-good")
    assert result.status is Status.BLOCKED
    assert current_alias_version(client, name, "champion") is None
    assert "incident.respond.no_good_version" in {f.id for f in result.findings}
    assert client.get_model_version(name, "2").tags[TAG] == result.metrics["incident"]


def test_a_version_an_earlier_incident_demoted_is_never_restored(client, policy):
    name = versions(client, policy, [True, True])
    client.set_registered_model_alias(name, "champion", "1")
    first = respond(client, policy, name, None, [], reason="bad answers reported", key="test/first")
    assert first.status is Status.BLOCKED  # nothing older than version 1
    client.delete_model_version_tag(name, "1", TAG)  # the attacker hides the demotion: the signed state keeps it
    client.delete_model_version_tag(name, "1", TAG_REVOCATION)
    client.set_registered_model_alias(name, "champion", "2")
    second = respond(client, policy, name, None, [monitor_result("monitor.drift")], key="test/second")
    assert current_alias_version(client, name, "champion") is None  # version 1 passes, but was demoted
    assert second.metrics["candidates_refused"] == 0
    assert set(trusted_view(client, name, keyring_from_env().trusted_keys(), datetime.now(UTC)).revoked) == {"1", "2"}


def test_a_version_that_was_never_signed_is_never_restored(client, policy):
    name = versions(client, policy, [True], signed=False)  # its evidence passes; nobody promoted it
    register_version(client, policy, name)
    assert promote(client, policy, name, "2", "test:promoter", keyring_from_env()).status is Status.PASSED
    result = respond(client, policy, name, "2", [monitor_result("monitor.drift")], key="test/unsigned")
    assert result.status is Status.BLOCKED
    assert current_alias_version(client, name, "champion") is None
    (refusal,) = [f.message for f in result.findings if f.id == "incident.respond.not_restored"]
    assert "has no attestation" in refusal
    state = trusted_view(client, name, keyring_from_env().trusted_keys(), datetime.now(UTC)).states["champion"]
    assert (state.version, state.kind, set(state.revoked)) == (None, "incident", {"2"})


def test_an_alert_that_does_not_demote_is_recorded_and_moves_nothing(client, policy):
    name = versions(client, policy, [True, True])
    result = respond(client, policy, name, None, [monitor_result("monitor.queries")], key="test/queries")
    assert (result.status, result.metrics["demoted"], result.metrics["retrain"]) == (Status.PASSED, False, False)
    assert current_alias_version(client, name, "champion") == "2"
    assert TAG not in client.get_model_version(name, "2").tags


def test_a_version_that_is_not_served_is_tagged_and_the_alias_stays(client, policy):
    name = versions(client, policy, [True, True])
    result = respond(client, policy, name, "1", [], reason="offline evaluation regressed", key="test/old")
    assert current_alias_version(client, name, "champion") == "2"
    assert client.get_model_version(name, "1").tags[TAG] == result.metrics["incident"]
    assert "incident.respond.not_served" in {f.id for f in result.findings}


def test_nothing_to_respond_to_is_an_input_error(client, policy):
    name = versions(client, policy, [True])
    with pytest.raises(GateInputError, match="needs an alert"):
        respond(client, policy, name, None, [], key="test/nothing")
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(GateInputError, match="serves no version"):
        respond(client, policy, name, None, [monitor_result("monitor.drift")], key="test/unserved")
