"""Pure parts of code.static: bandit JSON parsing (captured from bandit 1.9.4), baseline, decision, SARIF."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Severity
from mlgate.gates.code.bandit_scan import (
    BANDIT_INI,
    BanditIssue,
    StaticPolicy,
    bandit_argv,
    baselined,
    is_blocking,
    load_baseline,
    parse_bandit,
    safe_text,
    to_sarif,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

CAPTURED = ROOT / "tests" / "fixtures" / "bandit" / "report.json"
ROOT = Path("/tmp/mlgate-bandit-fixture")  # where the captured report was made
SECRET = "not-a-real-password-4242"  # the literal the captured code holds


@pytest.fixture(scope="module")
def report():
    return parse_bandit(CAPTURED.read_text(), ROOT)


def issue(test_id="B602", filename="pkg/app.py", line=8, severity="high", confidence="high") -> BanditIssue:
    return BanditIssue(test_id, "test", filename, line, 0, severity, confidence, "text", 78, "")


def test_parse_captured_report(report):
    assert [(i.test_id, i.severity, i.confidence, i.filename, i.line) for i in report.issues] == [
        ("B403", "low", "high", "pkg/app.py", 1), ("B404", "low", "high", "pkg/app.py", 2),
        ("B105", "low", "medium", "pkg/app.py", 4), ("B602", "high", "high", "pkg/app.py", 8),
        ("B101", "low", "high", "pkg/app.py", 12), ("B301", "medium", "high", "pkg/app.py", 13)]
    assert report.errors == [("pkg/bad.py", "syntax error while parsing AST from file")]
    assert (report.loc, report.nosec) == (9, 0)


def test_the_secret_bandit_quotes_never_leaves_the_parser(report):
    raw = CAPTURED.read_text()
    assert SECRET in raw  # bandit quotes it, in "code" and in B105's issue text
    b105 = next(i for i in report.issues if i.test_id == "B105")
    assert b105.text == "Possible hardcoded password (value withheld)"
    assert not any(SECRET in json.dumps(i.record()) + str(i.finding()) for i in report.issues)


@pytest.mark.parametrize(("text", "expected"), [
    ("Use of assert detected.", "Use of assert detected."),
    ("Possible hardcoded password: 'hunter2'", "Possible hardcoded password (value withheld)"),
    ('Possible hardcoded password: "it\'s"', "Possible hardcoded password (value withheld)"),
], ids=["no-quote-kept", "single-quoted-cut", "double-quoted-cut"])
def test_safe_text(text, expected):
    assert safe_text(text) == expected


@pytest.mark.parametrize(("severity", "confidence", "policy", "blocks"), [
    ("high", "high", StaticPolicy(), True),
    ("medium", "medium", StaticPolicy(), True),
    ("high", "low", StaticPolicy(), False),
    ("low", "high", StaticPolicy(), False),
    ("low", "low", StaticPolicy(min_severity="low", min_confidence="low"), True),
    ("medium", "high", StaticPolicy(min_severity="high"), False),
], ids=["high-high", "at-both-thresholds", "confidence-too-low", "severity-too-low", "lowest-policy",
        "strict-severity"])
def test_blocking_needs_both_severity_and_confidence(severity, confidence, policy, blocks):
    assert is_blocking(issue(severity=severity, confidence=confidence), policy) is blocks


@pytest.mark.parametrize(("issues", "baseline", "expected"), [
    ([issue(line=30)], Counter({("B602", "pkg/app.py"): 1}), [True]),
    ([issue(line=8), issue(line=20)], Counter({("B602", "pkg/app.py"): 1}), [False, False]),
    ([issue(filename="pkg/other.py")], Counter({("B602", "pkg/app.py"): 1}), [False]),
    ([issue(test_id="B608")], Counter({("B602", "pkg/app.py"): 1}), [False]),
    ([issue()], Counter(), [False]),
], ids=["moved-line-still-covered", "one-more-than-baseline-uncovers-all", "other-file", "other-test",
        "no-baseline"])
def test_baseline_matching_is_line_independent_and_counted(issues, baseline, expected):
    assert baselined(issues, baseline) == expected


@pytest.mark.parametrize("content", [
    {"results": [{"test_id": "B602", "filename": "pkg/app.py", "line_number": 8}]},
    {"results": [{"test_id": "B602", "filename": "./pkg/app.py", "code": "8 call(c, shell=True)"}]},
], ids=["mlgate-artifact", "bandit-report-from-tree-root"])
def test_load_baseline_formats(tmp_path, content):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(content))
    assert load_baseline(path) == Counter({("B602", "pkg/app.py"): 1})


@pytest.mark.parametrize("content", ["not json", "[]", '{"results": [{"filename": "x.py"}]}'],
                         ids=["not-json", "no-results", "record-without-test-id"])
def test_a_malformed_baseline_is_an_input_error(tmp_path, content):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(GateInputError, match="not a bandit baseline"):
        load_baseline(path)


def test_a_missing_baseline_is_an_input_error(tmp_path):
    with pytest.raises(GateInputError, match="cannot read the bandit baseline"):
        load_baseline(tmp_path / "absent.json")


@pytest.mark.parametrize("text", [
    "Traceback (most recent call last):", "{}", '{"results": [{}], "errors": [], "metrics": {}}',
    json.dumps({"results": [{**json.loads(CAPTURED.read_text())["results"][0],
                             "issue_severity": "UNDEFINED"}],
                "errors": [], "metrics": {"_totals": {"loc": 1, "nosec": 0}}}),
], ids=["garbage", "empty-object", "result-without-fields", "undefined-severity"])
def test_malformed_bandit_output_is_a_tool_error(text):
    with pytest.raises(ToolError, match="bandit printed malformed output"):
        parse_bandit(text, ROOT)


def test_sarif_is_2_1_0_without_code_and_marks_baselined_results(report):
    covered = [i.test_id == "B301" for i in report.issues]
    blocks = [i.test_id == "B602" for i in report.issues]
    sarif = to_sarif(report, covered, blocks, "1.9.4")
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0" and run["tool"]["driver"]["version"] == "1.9.4"
    assert [r["ruleId"] for r in run["results"]] == [i.test_id for i in report.issues]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    assert [r["ruleId"] for r in run["results"] if "suppressions" in r] == ["B301"]
    assert [r["ruleId"] for r in run["results"] if r["properties"]["blocking"]] == ["B602"]
    assert run["invocations"][0]["executionSuccessful"] is False  # bad.py was not scanned
    text = json.dumps(sarif)
    assert "snippet" not in text and SECRET not in text and "shell=True)" not in text


def test_argv_pins_an_empty_ini_and_the_excludes():
    argv = bandit_argv(Path("/src"), StaticPolicy(exclude=("*/gen/*",)))
    assert argv[1:5] == ["-m", "bandit", "-r", "/src"]
    assert argv[argv.index("--ini") + 1] == str(BANDIT_INI)
    assert BANDIT_INI.read_text().strip().endswith("[bandit]")
    assert argv[argv.index("-x") + 1] == "*/gen/*" and "--exit-zero" in argv


@pytest.mark.parametrize("fields", [{"min_severity": "critical"}, {"min_confidence": "none"},
                                    {"skip": ["B101"]}],
                         ids=["unknown-severity", "unknown-confidence", "unknown-key"])
def test_static_policy_rejects_what_it_does_not_know(fields):
    with pytest.raises(ValidationError):
        StaticPolicy(**fields)


def test_finding_names_test_file_line_and_levels():
    finding = issue().finding()
    assert (finding.id, finding.severity, finding.location) == ("B602", Severity.HIGH, "pkg/app.py:8")
    assert finding.message.endswith("(confidence high)")
