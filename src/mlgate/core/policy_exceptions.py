"""Policy exceptions: a finding a gate may let through, for a reason, with an owner, until a date.

An exception is never open-ended: on its ``expires`` date it stops counting, the finding it covered
blocks again, and the expired exception itself is reported (a finding naming its id, owner and date),
so the owner sees why the gate turned red. Exceptions of other gates are ignored.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.results import Finding, Severity


class PolicyException(BaseModel):
    """One excepted finding id (a CVE, a bandit test id, a check id) of one gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="the finding id it covers, e.g. CVE-2018-18074")
    gate: str = Field(min_length=1, description="the gate id it applies to, e.g. code.dependencies")
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: datetime.date = Field(description="the first day the exception no longer applies")

    def active(self, today: datetime.date) -> bool:
        return today < self.expires


def split_exceptions(exceptions: Iterable[PolicyException], gate: str,
                     today: datetime.date | None = None) -> tuple[set[str], list[PolicyException]]:
    """The finding ids ``gate`` may let through today, and ``gate``'s expired exceptions."""
    today = today or datetime.date.today()
    mine = [e for e in exceptions if e.gate == gate]
    return {e.id for e in mine if e.active(today)}, [e for e in mine if not e.active(today)]


def expired_findings(expired: Iterable[PolicyException], gate: str) -> list[Finding]:
    """One medium finding per expired exception: it names the exception, its owner and its expiry."""
    return [Finding(f"{gate}.exception-expired", Severity.MEDIUM,
                    f"exception for {e.id} (owner {e.owner}) expired on {e.expires.isoformat()}; "
                    "it no longer lets the finding through", "policy.exceptions")
            for e in sorted(expired, key=lambda e: (e.expires, e.id))]
