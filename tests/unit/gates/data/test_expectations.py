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


def test_a_suite_naming_a_missing_column_is_a_config_error_quoting_gx(loans, policy, tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}}]}))
    with pytest.raises(GateInputError) as caught:
        check_expectations(loans, policy, suite, report_dir=tmp_path)
    message = str(caught.value)
    assert "cannot apply to" in message and "1 expectation(s) could not be evaluated" in message
    assert "(column 'no_such_column'): Error: The column \"no_such_column\" in BatchData does not exist" in message
    assert (tmp_path / "data.expectations.gx.json").exists()  # GX's full answer is still kept


def test_an_unknown_expectation_quotes_gx_and_keeps_its_traceback_and_chatter_out_of_the_log(loans, tmp_path,
                                                                                          caplog):
    import logging

    suite = tmp_path / "suite.json"
    suite.write_text('{"name": "s", "expectations": [{"type": "expect_column_to_be_purple", "kwargs": {}}]}')
    with caplog.at_level(logging.DEBUG), pytest.raises(GateInputError, match="GX says: .*purple not found"):
        check_expectations(loans, parse_policy({"version": 1, "gates": {"data.expectations": {"suite": str(suite)}}}))
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")]
    assert "Traceback" not in caplog.text


def test_gx_info_chatter_stays_out_of_an_info_level_log(repo_root):
    """A task log is at INFO: importing GX there used to add ~200 "Skipping registering function" lines."""
    import subprocess
    import sys

    script = ("import logging, pathlib; logging.basicConfig(level=logging.INFO)\n"
              "from mlgate.gates.data.expectations import load_suite, read_table, validate\n"
              f"suite = load_suite(pathlib.Path({str(repo_root / 'expectations' / 'loans.json')!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "great_expectations" not in done.stderr
