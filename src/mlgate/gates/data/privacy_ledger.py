"""The privacy ledger: how much ε and δ each dataset (by digest) has spent, kept in a database so the
budget survives restarts and is shared by every worker that releases statistics of the same data.

Accounting is basic sequential composition: the ε (and δ) of every release add up. That is exact
for pure ε-DP releases; for many Gaussian releases, zCDP / Rényi accounting or the advanced
composition theorem (ε·sqrt(2k·ln(1/δ')) + kε(e^ε - 1)) would be tighter. Tightening later only
lets more releases through; summing never under-counts.

``SqlLedger.spend`` is one transaction that locks the dataset's budget row (``SELECT … FOR UPDATE``
on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, which has no row locks) before reading what was spent,
so two concurrent spenders cannot both take the last of a budget.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.errors import GateInputError, MlgateError, ToolError

if TYPE_CHECKING:
    import sqlalchemy as sa

# Relative slack on the budget comparison, so that a budget split into float shares (0.1 + 0.2 vs 0.3)
# can still be spent in full. It is many orders of magnitude below any meaningful ε or δ.
_SLACK = 1e-9


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(ge=0, allow_inf_nan=False)
    delta: float = Field(0.0, ge=0, lt=1)


class Budgets(BaseModel):
    """The total ε/δ any dataset may spend over its lifetime, with per-digest overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Budget
    overrides: dict[str, Budget] = Field(default_factory=dict)

    def for_dataset(self, dataset_digest: str) -> Budget:
        return self.overrides.get(dataset_digest, self.default)


class BudgetExceededError(MlgateError):
    """A spend would take a dataset past its budget; nothing was recorded."""

    def __init__(self, dataset_digest: str, spent: tuple[float, float], requested: tuple[float, float],
                 budget: Budget) -> None:
        self.dataset_digest, self.spent, self.requested, self.budget = dataset_digest, spent, requested, budget
        super().__init__(
            f"privacy budget of {dataset_digest} exceeded: spent ε={spent[0]:.6g} δ={spent[1]:.3g}, "
            f"requested ε={requested[0]:.6g} δ={requested[1]:.3g}, budget ε={budget.epsilon:.6g} δ={budget.delta:.3g}")


@dataclass(frozen=True)
class Spend:
    """One recorded spend; ``epsilon_total``/``delta_total`` are the dataset's totals including it."""

    dataset_digest: str
    epsilon: float
    delta: float
    purpose: str
    actor: str
    timestamp: str
    release_digest: str
    epsilon_total: float
    delta_total: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_line(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True) + "\n"


class Ledger(Protocol):
    def spend(self, dataset_digest: str, epsilon: float, delta: float, purpose: str, actor: str, *,
              budget: Budget, release_digest: str = "") -> Spend:
        """Record the spend atomically, or raise ``BudgetExceededError`` and record nothing."""

    def spent(self, dataset_digest: str) -> tuple[float, float]:
        """(ε, δ) spent so far on the dataset; (0, 0) if never touched."""

    def history(self, dataset_digest: str) -> list[Spend]:
        """The dataset's spends, oldest first."""


@functools.cache
def _tables() -> tuple[Any, Any, Any]:
    """The ledger's metadata and tables, built on first use: loading a policy imports this module, and
    SQLAlchemy (about a second) only the ledger itself needs."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    budget_rows = sa.Table(
        "mlgate_privacy_budget", metadata,
        sa.Column("dataset_digest", sa.String(200), primary_key=True),
        sa.Column("epsilon_spent", sa.Double, nullable=False),
        sa.Column("delta_spent", sa.Double, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    spends = sa.Table(
        "mlgate_privacy_spend", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_digest", sa.String(200), nullable=False, index=True),
        sa.Column("epsilon", sa.Double, nullable=False),
        sa.Column("delta", sa.Double, nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("release_digest", sa.String(200), nullable=False),
        sa.Column("epsilon_total", sa.Double, nullable=False),
        sa.Column("delta_total", sa.Double, nullable=False),
    )
    return metadata, budget_rows, spends


def _insert_if_absent(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise GateInputError(f"privacy ledger: unsupported database {dialect!r} (use PostgreSQL or SQLite)")
    return insert(_tables()[1]).on_conflict_do_nothing(index_elements=["dataset_digest"])


def _sqlite_immediate_transactions(engine: sa.Engine) -> None:
    """pysqlite defers BEGIN until the first write; take the write lock when the transaction starts instead."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _check_amounts(dataset_digest: str, epsilon: float, delta: float) -> None:
    if not dataset_digest:
        raise GateInputError("privacy ledger: an empty dataset digest")
    if not (math.isfinite(epsilon) and epsilon >= 0 and math.isfinite(delta) and 0 <= delta < 1):
        raise GateInputError(f"privacy ledger: invalid spend ε={epsilon!r} δ={delta!r}")


class SqlLedger:
    """The ledger on SQLAlchemy: ``postgresql+psycopg://…`` or ``sqlite:///…``. Creates its tables if absent."""

    def __init__(self, url: str, lock_timeout_s: float = 30.0) -> None:
        import sqlalchemy as sa

        url_obj = sa.make_url(url)
        self._insert_if_absent = _insert_if_absent(url_obj.get_backend_name())
        if url_obj.get_backend_name() == "sqlite":
            self.engine = sa.create_engine(url_obj, connect_args={"timeout": lock_timeout_s})
            _sqlite_immediate_transactions(self.engine)
        else:
            self.engine = sa.create_engine(url_obj, pool_pre_ping=True,
                                           connect_args={"options": f"-c lock_timeout={int(lock_timeout_s * 1000)}"})
        _tables()[0].create_all(self.engine)

    def spend(self, dataset_digest: str, epsilon: float, delta: float, purpose: str, actor: str, *,
              budget: Budget, release_digest: str = "") -> Spend:
        _check_amounts(dataset_digest, epsilon, delta)
        import sqlalchemy as sa

        now = datetime.now(UTC).isoformat()
        try:
            return self._spend(dataset_digest, epsilon, delta, purpose, actor, budget, release_digest, now)
        except sa.exc.DBAPIError as exc:
            raise ToolError(f"privacy ledger: the database failed: {type(exc.orig).__name__}") from exc

    def _spend(self, dataset_digest: str, epsilon: float, delta: float, purpose: str, actor: str, budget: Budget,
               release_digest: str, now: str) -> Spend:
        import sqlalchemy as sa

        _, _budget_rows, _spends = _tables()
        with self.engine.begin() as conn:
            conn.execute(self._insert_if_absent.values(dataset_digest=dataset_digest, epsilon_spent=0.0,
                                                       delta_spent=0.0, updated_at=now))
            row = conn.execute(sa.select(_budget_rows.c.epsilon_spent, _budget_rows.c.delta_spent)
                               .where(_budget_rows.c.dataset_digest == dataset_digest).with_for_update()).one()
            epsilon_total, delta_total = row.epsilon_spent + epsilon, row.delta_spent + delta
            if epsilon_total > budget.epsilon * (1 + _SLACK) or delta_total > budget.delta * (1 + _SLACK):
                raise BudgetExceededError(dataset_digest, (row.epsilon_spent, row.delta_spent), (epsilon, delta),
                                          budget)
            conn.execute(sa.update(_budget_rows).where(_budget_rows.c.dataset_digest == dataset_digest)
                         .values(epsilon_spent=epsilon_total, delta_spent=delta_total, updated_at=now))
            record = Spend(dataset_digest, epsilon, delta, purpose, actor, now, release_digest, epsilon_total,
                           delta_total)
            conn.execute(sa.insert(_spends).values(**record.to_dict()))
        return record

    def spent(self, dataset_digest: str) -> tuple[float, float]:
        import sqlalchemy as sa

        _budget_rows = _tables()[1]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_budget_rows.c.epsilon_spent, _budget_rows.c.delta_spent)
                               .where(_budget_rows.c.dataset_digest == dataset_digest)).one_or_none()
        return (row.epsilon_spent, row.delta_spent) if row else (0.0, 0.0)

    def history(self, dataset_digest: str) -> list[Spend]:
        import sqlalchemy as sa

        _spends = _tables()[2]
        columns = [c for c in _spends.c if c.name != "id"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*columns).where(_spends.c.dataset_digest == dataset_digest)
                                .order_by(_spends.c.id)).all()
        return [Spend(**row._asdict()) for row in rows]

    def close(self) -> None:
        self.engine.dispose()
