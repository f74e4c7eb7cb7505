"""code.dynamic end to end: the real search in the real isolated child, on the demo's code and on seeded defects
(tests/fixtures/dynamic_defects.py). Each defect blocks with a shrunk input named by digest and shape only."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from mlgate.core.errors import ToolError
from mlgate.core.policy import load_policy
from mlgate.core.results import Status
from mlgate.demo.dataset import write_loans
from mlgate.gates.code import dynamic
from mlgate.gates.code.dynamic import check_dynamic
from tests.conftest import ROOT
from tests.helpers import default_policy

pytestmark = [pytest.mark.unit, pytest.mark.timeout(600)]

DEFECTS = "tests.fixtures.dynamic_defects"
DIGEST = re.compile(r"shrunk input \d+x\d+ sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_loans(tmp_path_factory.mktemp("dynamic") / "loans.csv", rows=1200)


@pytest.fixture
def policy(tmp_path):
    data = default_policy()
    # 1 s per call: room for a loaded machine (at 400 ms `reject_loudly` once also ran over), far below the
    # 3 s sleep of `slow_features`
    data["gates"]["code.dynamic"] = {"max_examples": 60, "call_budget_ms": 1000}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path)


def assert_no_values(result) -> None:
    """Evidence names inputs by digest and shape: no canary token, no quoted text, no repr of a row."""
    text = result.to_json()
    assert "cnry" not in text and "unseen-" not in text and "{'" not in text and "mortgage" not in text


def test_the_demo_training_code_passes(policy, data):
    result = check_dynamic(policy, training_callable="mlgate.demo.train:train_loan_model", data_path=str(data),
                           seed=3)
    assert result.status is Status.PASSED, result.top_failures()
    assert result.metrics["targets"] == 1 and result.metrics["inputs"] >= 2 * 60
    assert result.metrics["first_failure_s"] is None and result.metrics["sandbox"] in ("bwrap", "process")
    assert result.subject.kind == "code" and result.subject.uri.endswith("mlgate/demo")


@pytest.mark.parametrize(("callable_", "finding", "says"), [
    ("income_per_year_employed", "non_finite", "returned NaN or inf.* on an in contract input"),
    ("ownership_code", "exception", r"raised KeyError at (tests/fixtures/)?dynamic_defects.py:\d+ in <lambda> "
                                    "on an in contract input"),
    ("income_sigmoid", "non_finite", "returned NaN or inf.* on an in contract input"),
    ("reject_loudly", "input_leak", r"quoted an input value .* ValueError at .*reject_loudly on an out of contract"),
    ("log_rows", "input_leak", "quoted an input value in an exception or a log line on an in contract input"),
    ("noisy_features", "nondeterministic", "gave two answers"),
    ("slow_features", "budget", "ran over its budget"),
], ids=["division-by-zero", "unseen-category-keyerror", "nan-for-extreme-value", "canary-in-exception",
        "canary-in-log-line", "nondeterminism", "time-budget"])
def test_a_seeded_defect_blocks_with_a_shrunk_input(policy, data, callable_, finding, says):
    result = check_dynamic(policy, callables=[f"{DEFECTS}:{callable_}"], data_path=str(data))
    assert result.status is Status.BLOCKED
    blocking = [f for f in result.findings if f.severity != "info"]
    assert [f.id for f in blocking] == [f"code.dynamic.{finding}"], result.top_failures()
    assert re.search(says, blocking[0].message) and DIGEST.search(blocking[0].message), blocking[0].message
    assert result.metrics["first_failure_s"] is not None
    assert_no_values(result)


def test_the_clean_preprocessing_passes_both_phases(policy, data):
    result = check_dynamic(policy, callables=[f"{DEFECTS}:clean_features"], data_path=str(data))
    assert result.status is Status.PASSED, result.top_failures()


def test_a_malformed_answer_from_the_child_is_a_tool_error(policy, data, monkeypatch):
    monkeypatch.setattr(dynamic, "TARGET", f"{DEFECTS}:malformed_answer")
    with pytest.raises(ToolError, match="malformed"):
        check_dynamic(policy, callables=[f"{DEFECTS}:clean_features"])


def test_the_cli_blocks_a_leaking_callable(tmp_path, data):
    data_policy = default_policy()
    data_policy["gates"]["code.dynamic"] = {"max_examples": 40}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data_policy))
    run = subprocess.run([sys.executable, "-m", "mlgate.cli", "check", "code.dynamic", "--policy",
                          str(tmp_path / "policy.yaml"), "--callable", f"{DEFECTS}:reject_loudly", "--data", str(data),
                          "--json", str(tmp_path / "result.json")], capture_output=True, text=True, cwd=ROOT,
                         timeout=500)
    assert run.returncode == 1, run.stderr
    assert "code.dynamic.input_leak" in run.stderr and "cnry" not in run.stderr
