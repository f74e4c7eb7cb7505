from __future__ import annotations

import json

import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status
from mlgate.demo.dataset import generate_loans
from mlgate.gates.data.expectations import check_expectations
from mlgate.gates.data.integrity import build_manifest
from tests.helpers import default_policy

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def loans(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "loans.csv"
    generate_loans(2000).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def policy():
    return parse_policy(default_policy())


def test_clean_data_passes_the_shipped_suite_and_binds_the_data_version(loans, policy, tmp_path):
    result = check_expectations(loans, policy, report_dir=tmp_path)
    assert result.status is Status.PASSED, result.top_failures()
    assert result.metrics["evaluated"] >= 20
    assert result.subject.digest == build_manifest(loans).digest
    assert json.loads((tmp_path / "data.expectations.gx.json").read_text())["success"] is True


def test_parquet_is_read_too(loans, policy, tmp_path):
    import pandas as pd

    parquet = tmp_path / "loans.parquet"
    pd.read_csv(loans).to_parquet(parquet)
    assert check_expectations(parquet, policy).status is Status.PASSED


def test_bad_rows_block_and_every_failing_expectation_is_named(loans, policy, tmp_path):
    import pandas as pd

    frame = pd.read_csv(loans)
    frame.loc[3, "credit_score"] = 1200
    frame.loc[5, "home_ownership"] = "castle"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = check_expectations(bad, policy, report_dir=tmp_path)
    assert result.status is Status.BLOCKED
    named = {(f.id, f.location) for f in result.findings}
    assert named == {("data.expectations.expect_column_values_to_be_between", "column credit_score"),
                     ("data.expectations.expect_column_values_to_be_in_set", "column home_ownership")}
    assert "1 of 2000 values unexpected" in result.findings[0].message


def test_evidence_never_holds_the_unexpected_values(loans, policy, tmp_path):
    """An unexpected value may be PII: counts and row indexes are kept, values are not."""
    import pandas as pd

    frame = pd.read_csv(loans)
    canary = "castle-4111111111111111"
    frame.loc[7, "home_ownership"] = canary
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = check_expectations(bad, policy, report_dir=tmp_path)
    assert result.status is Status.BLOCKED
    assert canary not in result.to_json()
    assert canary not in (tmp_path / "data.expectations.gx.json").read_text()


def test_a_deleted_suite_is_an_input_error_naming_the_suite(loans, tmp_path):
    data = default_policy()
    data["gates"]["data.expectations"]["suite"] = str(tmp_path / "gone.json")
    with pytest.raises(GateInputError, match="gone.json: cannot read the expectation suite"):
        check_expectations(loans, parse_policy(data))


@pytest.mark.parametrize(("content", "match"), [
    ('{"name": "s", "expectations": []}', "holds no expectations"),
    ('{"name": "s", "expectations": [{"type": "expect_nothing_real", "kwargs": {}}]}', "not a valid GX"),
    ("{", "not a valid GX"),
], ids=["empty", "unknown-expectation", "garbage"])
def test_a_suite_that_proves_nothing_is_an_input_error(loans, tmp_path, content, match):
    suite = tmp_path / "suite.json"
    suite.write_text(content)
    data = default_policy()
    data["gates"]["data.expectations"]["suite"] = str(suite)
    with pytest.raises(GateInputError, match=match):
        check_expectations(loans, parse_policy(data))


def test_unreadable_data_is_an_input_error(policy, tmp_path):
    text = tmp_path / "data.txt"
    text.write_text("hello")
    with pytest.raises(GateInputError, match="expected CSV or Parquet"):
        check_expectations(text, policy)
