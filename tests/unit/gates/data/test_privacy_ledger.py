from __future__ import annotations

import json
import math

import pytest

from mlgate.core.errors import GateInputError, MlgateError
from mlgate.gates.data.privacy_ledger import Budget, BudgetExceededError, Budgets, Spend, SqlLedger
from tests.ledger_race import assert_no_overspend

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "ab" * 32
BUDGET = Budget(epsilon=1.0, delta=1e-5)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(url):
    opened = SqlLedger(url)
    yield opened
    opened.close()


def test_spends_accumulate_and_are_recorded_in_order(ledger):
    first = ledger.spend(DIGEST, 0.25, 1e-6, "profile", "alice", budget=BUDGET, release_digest="sha256:r1")
    second = ledger.spend(DIGEST, 0.5, 0.0, "profile", "bob", budget=BUDGET)
    assert (first.epsilon_total, second.epsilon_total) == (0.25, 0.75)
    assert ledger.spent(DIGEST) == (0.75, 1e-6)
    assert ledger.history(DIGEST) == [first, second]
    assert ledger.spent("sha256:other") == (0.0, 0.0) and ledger.history("sha256:other") == []


def test_a_spend_is_one_json_line(ledger):
    spend = ledger.spend(DIGEST, 0.1, 0.0, "profile", "alice", budget=BUDGET, release_digest="sha256:r")
    line = spend.to_json_line()
    assert line.endswith("\n") and line.count("\n") == 1
    assert Spend(**json.loads(line)) == spend


@pytest.mark.parametrize(("epsilon", "delta"), [(1.01, 0.0), (0.5, 2e-5)], ids=["epsilon", "delta"])
def test_exceeding_the_budget_raises_and_records_nothing(ledger, epsilon, delta):
    ledger.spend(DIGEST, 0.5, 0.0, "profile", "alice", budget=BUDGET)
    with pytest.raises(BudgetExceededError) as info:
        ledger.spend(DIGEST, epsilon, delta, "profile", "mallory", budget=BUDGET)
    assert isinstance(info.value, MlgateError)
    assert info.value.spent == (0.5, 0.0) and info.value.requested == (epsilon, delta)
    assert "spent ε=0.5" in str(info.value) and "budget ε=1" in str(info.value)
    assert ledger.spent(DIGEST) == (0.5, 0.0) and len(ledger.history(DIGEST)) == 1


def test_float_shares_of_a_budget_can_all_be_spent(ledger):
    for _ in range(3):
        ledger.spend(DIGEST, 0.1, 0.0, "share", "alice", budget=Budget(epsilon=0.3))
    assert math.isclose(ledger.spent(DIGEST)[0], 0.3)
    with pytest.raises(BudgetExceededError):
        ledger.spend(DIGEST, 1e-6, 0.0, "share", "alice", budget=Budget(epsilon=0.3))


@pytest.mark.parametrize(("digest", "epsilon", "delta"),
                         [("", 0.1, 0.0), (DIGEST, -0.1, 0.0), (DIGEST, math.nan, 0.0), (DIGEST, math.inf, 0.0),
                          (DIGEST, 0.1, 1.0), (DIGEST, 0.1, -1e-9)],
                         ids=["empty-digest", "negative", "nan", "inf", "delta-one", "negative-delta"])
def test_invalid_spends_are_input_errors(ledger, digest, epsilon, delta):
    with pytest.raises(GateInputError):
        ledger.spend(digest, epsilon, delta, "profile", "alice", budget=BUDGET)
    assert ledger.spent(DIGEST) == (0.0, 0.0)


def test_the_ledger_survives_reopening(url):
    first = SqlLedger(url)
    first.spend(DIGEST, 0.75, 0.0, "profile", "alice", budget=BUDGET)
    first.close()
    reopened = SqlLedger(url)
    assert reopened.spent(DIGEST) == (0.75, 0.0)
    with pytest.raises(BudgetExceededError):
        reopened.spend(DIGEST, 0.5, 0.0, "profile", "alice", budget=BUDGET)
    reopened.close()


def test_unsupported_databases_are_refused():
    with pytest.raises(GateInputError, match="unsupported database"):
        SqlLedger("mysql+pymysql://user@127.0.0.1/db")


def test_budgets_apply_overrides_by_digest():
    budgets = Budgets(default=Budget(epsilon=1.0), overrides={DIGEST: Budget(epsilon=5.0, delta=1e-6)})
    assert budgets.for_dataset(DIGEST) == Budget(epsilon=5.0, delta=1e-6)
    assert budgets.for_dataset("sha256:other") == Budget(epsilon=1.0)


@pytest.mark.parametrize(("spenders", "ask", "winners"), [(2, 0.5, 1), (4, 0.25, 3)],
                         ids=["two-over-half", "four-over-a-third"])
def test_concurrent_spenders_never_overspend(url, spenders, ask, winners):
    """The budget row exists (0.1 of 1.0 spent) before the race, so only the row lock can serialise the spenders."""
    assert_no_overspend(url, spenders, ask, winners)
