from __future__ import annotations

import json

import pytest

from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, error_result

pytestmark = pytest.mark.unit


def make_result(**overrides) -> GateResult:
    fields = dict(gate="data.integrity", status=Status.BLOCKED, subject=Subject("dataset", "d.csv", "sha256:ab"),
                  policy_digest="sha256:cd", tool=ToolInfo("sha256", "hashlib"), started_at="2026-01-01T00:00:00+00:00",
                  finished_at="2026-01-01T00:00:01+00:00", metrics={"files": 2, "ratio": 0.5},
                  thresholds={"max": 1}, findings=(Finding("x.low", Severity.LOW, "minor", "a"),
                                                   Finding("x.crit", Severity.CRITICAL, "major", "b")),
                  artifacts=("r.json",))
    return GateResult(**{**fields, **overrides})


def test_to_dict_survives_a_json_round_trip():
    result = make_result()
    assert GateResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_to_dict_is_plain_json():
    data = json.loads(make_result().to_json())
    assert data["status"] == "blocked"
    assert data["findings"][1] == {"id": "x.crit", "severity": "critical", "message": "major", "location": "b"}


def test_top_failures_puts_the_most_severe_first_and_counts_the_rest():
    result = make_result(findings=tuple(Finding(f"f{i}", Severity.LOW, "m") for i in range(7))
                         + (Finding("worst", Severity.CRITICAL, "bad"),))
    lines = result.top_failures(limit=3)
    assert lines[0].startswith("[critical] worst")
    assert lines[-1] == "... and 5 more"


def test_error_result_fails_closed_and_names_the_exception():
    result = error_result("data.integrity", Subject("dataset", "d", "unknown"), "sha256:x",
                          ToolInfo("mlgate", "n/a"), "2026-01-01T00:00:00+00:00", TimeoutError("tool hung"))
    assert result.status is Status.ERROR
    assert not result.passed
    assert "TimeoutError: tool hung" in result.findings[0].message
