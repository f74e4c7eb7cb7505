"""The privacy ledger on a real PostgreSQL: row locks under concurrent spenders, and restarts."""

from __future__ import annotations

import pytest

from mlgate.gates.data.privacy_ledger import Budget, BudgetExceededError, SqlLedger
from tests.fixtures.postgres import throwaway_database
from tests.ledger_race import assert_no_overspend

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "cd" * 32
BUDGET = Budget(epsilon=1.0, delta=1e-5)


@pytest.fixture(scope="module")
def url():
    with throwaway_database("mlgate_ledger") as uri:
        yield uri


def test_exceeding_the_budget_blocks_and_the_ledger_survives_reopening(url):
    first = SqlLedger(url)
    first.spend(DIGEST, 0.75, 1e-6, "profile", "alice", budget=BUDGET, release_digest="sha256:r1")
    with pytest.raises(BudgetExceededError):
        first.spend(DIGEST, 0.5, 0.0, "profile", "mallory", budget=BUDGET)
    first.close()
    reopened = SqlLedger(url)
    assert reopened.spent(DIGEST) == (0.75, 1e-6)
    assert [(s.actor, s.release_digest) for s in reopened.history(DIGEST)] == [("alice", "sha256:r1")]
    with pytest.raises(BudgetExceededError):
        reopened.spend(DIGEST, 0.5, 0.0, "profile", "mallory", budget=BUDGET)
    reopened.spend(DIGEST, 0.25, 0.0, "profile", "bob", budget=BUDGET)
    assert reopened.spent(DIGEST)[0] == 1.0
    reopened.close()


@pytest.mark.parametrize(("spenders", "ask", "winners"), [(2, 0.5, 1), (4, 0.25, 3)],
                         ids=["two-over-half", "four-over-a-third"])
def test_concurrent_spenders_never_overspend(url, spenders, ask, winners):
    """The budget row exists (0.1 of 1.0 spent) before the race, so only the row lock can serialise the spenders."""
    assert_no_overspend(url, spenders, ask, winners)
