from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError, PolicyError, ToolError
from mlgate.core.results import Status, Subject
from mlgate.core.runner import run_gate

pytestmark = pytest.mark.unit

SUBJECT = Subject("dataset", "d.csv", "unknown")


@pytest.mark.parametrize(("error", "retryable"), [
    (ToolError("trivy timed out"), True),
    (RuntimeError("bug"), True),
    (PolicyError("bad policy"), False),
    (GateInputError("bad manifest"), False),
], ids=["tool", "unexpected", "policy", "input"])
def test_any_exception_fails_closed_with_exit_code_2(error, retryable):
    def check():
        raise error

    outcome = run_gate("data.integrity", SUBJECT, check, lambda: "sha256:p")
    assert outcome.result.status is Status.ERROR
    assert outcome.exit_code == 2
    assert outcome.retryable is retryable
    assert outcome.result.policy_digest == "sha256:p"
    assert str(error) in outcome.result.findings[0].message


def test_an_unloadable_policy_still_yields_an_error_result():
    def broken():
        raise PolicyError("p.yaml: invalid")

    outcome = run_gate("data.integrity", SUBJECT, broken, broken)
    assert outcome.result.policy_digest == "unknown"
    assert "p.yaml: invalid" in outcome.result.findings[0].message
