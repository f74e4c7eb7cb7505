from __future__ import annotations

import base64
import re
from dataclasses import replace

import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, Severity, Status
from mlgate.trust.scorecard import render_scorecard
from tests.fixtures.scorecard import REQUIRED, read_page, sample_results, sample_scorecard

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return sample_scorecard(tmp_path_factory.mktemp("scorecard"))


def render(sample, **overrides):
    return render_scorecard(**{**sample, **overrides})


def all_passed():
    return [r if r.passed else replace(r, status=Status.PASSED, findings=()) for r in sample_results()]


VERDICTS = [
    ("a-gate-blocked", {}, "✖ BLOCKED", ["code.dependencies is blocked", "registry.promote has no evidence"]),
    ("all-passed-but-one-required-missing", {"results": all_passed()}, "✖ BLOCKED",
     ["registry.promote has no evidence"]),
    ("all-passed-all-present-attested", {"results": all_passed(), "required_gates": REQUIRED[:-1],
                                         "attestation_problems": ()}, "✔ PROMOTABLE", []),
    ("all-passed-all-present-no-attestation", {"results": all_passed(), "required_gates": REQUIRED[:-1]},
     "✖ BLOCKED", ["attestation: the attestation was not verified"]),
    ("all-passed-attestation-fails", {"results": all_passed(), "required_gates": REQUIRED[:-1],
                                      "attestation_problems": ("signed only by untrusted key(s) abc",)},
     "✖ BLOCKED", ["attestation: signed only by untrusted key(s) abc"]),
    ("no-evidence", {"results": [], "required_gates": None}, "✖ BLOCKED", ["no gate evidence at all"]),
    ("an-error-counts-as-blocked", {"results": [replace(all_passed()[0], status=Status.ERROR)],
                                    "required_gates": None}, "✖ BLOCKED", ["data.integrity is error"]),
]


@pytest.mark.parametrize(("overrides", "verdict", "reasons"), [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
def test_verdict_and_its_reasons(sample, overrides, verdict, reasons):
    page = read_page(render(sample, **overrides))
    assert page.texts["verdict"] == verdict
    assert [r for r in reasons if r not in page.texts["verdict-reasons"]] == []


def test_one_row_per_gate_with_status_text_tool_and_short_digest(sample):
    rows = read_page(render(sample)).tables["gates"][1:]
    by_gate = {row[0]: row for row in rows}
    assert set(by_gate) == {r.gate for r in sample["results"]} | {"registry.promote"}
    assert rows[0][0] == "code.dependencies"  # failures first
    assert by_gate["code.dependencies"][1] == "✖ BLOCKED"
    assert "[high] code.dependencies.CVE-2023-43804" in by_gate["code.dependencies"][3]
    assert by_gate["model.robustness"][1] == "✔ PASSED"
    assert "clean_accuracy 0.9124" in by_gate["model.robustness"][2]
    assert by_gate["model.robustness"][4] == "adversarial-robustness-toolbox 1.19.1"
    assert by_gate["model.artifact"][5].startswith("model sha256:9c1e5b7a0000…")
    assert by_gate["registry.promote"][1] == "? MISSING"


def test_finding_text_and_names_are_escaped(sample):
    hostile = replace(sample_results()[0], findings=(
        Finding("data.integrity.changed", Severity.HIGH, '<script>alert("x")</script>', "<img src=x onerror=1>"),))
    html = render(sample, model_name="<b>loan</b>", results=[hostile])
    assert "<script" not in html and "<img src=x" not in html and "<b>loan" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;loan&lt;/b&gt;" in html


def test_summaries_derive_from_metrics_and_tolerate_absent_gates(sample):
    html = render(sample)
    assert "Dependency CVEs" in html and "Adversarial robustness" in html and "PII and secrets" in html
    assert "robust_accuracy.pgd" in html and "by_type.email" in html
    assert "Drift" not in html and "Container CVEs" not in html


def test_images_are_embedded_and_the_page_loads_nothing_from_outside(sample):
    html = render(sample)
    png = next(iter(sample["images"].values())).read_bytes()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    assert [url[:5] for url in re.findall(r'(?:src|href)="([^"]*)"', html)] == ["data:"]
    assert "<link" not in html and "url(" not in html and "<script" not in html
    with pytest.raises(GateInputError, match="scorecard images must be one of"):
        render(sample, images={"report": next(iter(sample["images"].values())).with_suffix(".html")})


def test_coverage_compliance_and_decision_history_are_shown(sample):
    page = read_page(render(sample))
    coverage = {row[0]: row[1] for row in page.tables["coverage"][1:]}
    assert coverage["Repudiation"] == "COVERED" and coverage["Spoofing"] == "ACCEPTED"
    compliance = {row[0]: row for row in page.tables["compliance"][1:]}
    assert compliance["model.robustness"][1] == "✔ PASSED"
    assert "AML.T0043" in compliance["model.robustness"][5] and "ML01:2023" in compliance["model.robustness"][4]
    assert compliance["monitor.drift"][1] == "no evidence"
    decisions = page.tables["decisions"][1:]
    assert [d[2] for d in decisions] == ["BLOCKED", "PROMOTED"]
    assert decisions[1][4] == "1 → 2"
