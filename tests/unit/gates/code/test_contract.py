"""The data contract of code.dynamic: a GX suite's row-level expectations as per-column constraints."""

from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.code.contract import load_contract, parse_contract
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def suite(*expectations):
    return {"expectations": [{"type": t, "kwargs": k} for t, k in expectations]}


def test_the_demo_suite_types_each_column_from_the_suite_values_and_the_sample():
    contract = load_contract(ROOT / "expectations" / "loans.json", {"age": "int64", "employment_years": "float64",
                                                                     "ssn": "str"})
    columns = {c.name: c for c in contract.columns}
    assert len(columns) == 14 and contract.names[0] == "applicant_name"
    assert (columns["age"].kind, columns["age"].typed_by, columns["age"].nullable) == ("int", "sample", False)
    assert (columns["age"].minimum, columns["age"].maximum) == (18, 100)
    assert columns["annual_income"].strict_min and columns["annual_income"].kind == "float"  # typed by its bounds
    assert (columns["term_months"].kind, columns["term_months"].value_set) == ("int", (12, 24, 36, 48, 60))
    assert columns["home_ownership"].kind == "str" and columns["ssn"].nullable
    assert contract.unmodelled == ("expect_table_row_count_to_be_between",
                                   "expect_column_mean_to_be_between(defaulted)")
    assert {"mortgage", "18", "100"} <= contract.public_values()


@pytest.mark.parametrize(("expectations", "check"), [
    ([("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "mostly": 0.9})],
     lambda c: c.columns[0].minimum is None and c.unmodelled == ("expect_column_values_to_be_between(x)",)),
    ([("expect_column_values_to_be_of_type", {"column": "x", "type_": "int64"}),
      ("expect_column_values_to_be_in_set", {"column": "x", "value_set": ["a"]})],
     lambda c: c.columns[0].kind == "int" and c.columns[0].typed_by == "suite"),
    ([("expect_column_values_to_match_regex", {"column": "x", "regex": "^[A-Z]{3}$"})],
     lambda c: c.columns[0].regex == "^[A-Z]{3}$" and "regex_mismatch" in c.columns[0].violations()),
    ([("expect_column_values_to_not_be_null", {"column": "x"})],
     lambda c: c.columns[0].violations() == ("missing_column", "wrong_type", "null")),
    ([("expect_column_values_to_be_between", {"column": "x", "min_value": 0, "max_value": 1})],
     lambda c: {"below_min", "above_max", "non_finite"} <= set(c.columns[0].violations())),
], ids=["mostly-does-not-bind", "suite-type-wins", "regex", "not-null", "range"])
def test_expectations_narrow_a_column(expectations, check):
    assert check(parse_contract(suite(*expectations)))


@pytest.mark.parametrize(("data", "message"), [
    ({"expectations": "no"}, "no 'expectations' list"),
    (suite(("expect_table_row_count_to_be_between", {"min_value": 1})), "names no column"),
    (suite(("expect_column_values_to_match_regex", {"column": "x", "regex": "("})), "invalid regex"),
    (suite(("expect_column_values_to_be_between", {"column": "x", "min_value": "a"})), "expected a number"),
    (suite(("expect_column_values_to_be_of_type", {"column": "x", "type_": "Decimal"})), "cannot generate"),
], ids=["not-a-suite", "no-column", "bad-regex", "bad-bound", "unknown-type"])
def test_a_suite_that_cannot_drive_generation_is_an_input_error(data, message):
    with pytest.raises(GateInputError, match=message):
        parse_contract(data)
