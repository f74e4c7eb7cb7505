"""Concurrent spenders on one privacy ledger, released together by a barrier: the lost-update test."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mlgate.core.privacy_ledger import Budget, BudgetExceededError, SqlLedger


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
