"""Concurrent spenders on one privacy ledger, released together by a barrier: the lost-update test."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from mlgate.gates.data.privacy_ledger import Budget, BudgetExceededError, SqlLedger


def race(open_ledger: Callable[[], SqlLedger], digest: str, spenders: int, ask: float,
         budget: Budget) -> tuple[int, int, list[BaseException]]:
    """Each spender opens its own ledger (its own engine, as separate workers would) and asks for ``ask``
    at the same moment. Returns (successes, refusals, unexpected errors)."""
    ledgers = [open_ledger() for _ in range(spenders)]
    barrier = threading.Barrier(spenders)
    outcomes: list[str | BaseException] = []
    lock = threading.Lock()

    def spend(ledger: SqlLedger, index: int) -> None:
        barrier.wait()
        try:
            ledger.spend(digest, ask, 0.0, "race", f"worker-{index}", budget=budget)
            outcome: str | BaseException = "ok"
        except BudgetExceededError:
            outcome = "refused"
        except BaseException as exc:  # noqa: BLE001 - reported to the test, never swallowed
            outcome = exc
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=spend, args=(ledger, i)) for i, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for ledger in ledgers:
        ledger.close()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return outcomes.count("ok"), outcomes.count("refused"), errors


def assert_no_overspend(url: str, spenders: int, ask: float, winners: int, rounds: int = 20) -> None:
    """``rounds`` races of ``spenders`` each asking ``ask`` of a 1.0 budget already 0.1 spent: exactly
    ``winners`` succeed each time, and the ledger holds exactly what they spent."""
    setup = SqlLedger(url)
    for round_ in range(rounds):
        digest = f"sha256:race-{spenders}-{round_}"
        setup.spend(digest, 0.1, 0.0, "setup", "alice", budget=Budget(epsilon=1.0))
        ok, refused, errors = race(lambda: SqlLedger(url), digest, spenders, ask, Budget(epsilon=1.0))
        assert errors == []
        assert (ok, refused) == (winners, spenders - winners), f"round {round_}"
        assert math.isclose(setup.spent(digest)[0], 0.1 + winners * ask)
        assert len(setup.history(digest)) == 1 + winners
    setup.close()
