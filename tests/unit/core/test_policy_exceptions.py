"""Policy exceptions: validation, expiry, and the finding an expired exception becomes."""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from mlgate.core.policy_exceptions import PolicyException, expired_findings, split_exceptions
from mlgate.core.results import Severity

pytestmark = pytest.mark.unit

EXPIRES = datetime.date(2026, 6, 30)


def exception(**overrides) -> PolicyException:
    fields = {"id": "CVE-2018-18074", "gate": "code.dependencies", "reason": "no fix deployable yet",
              "owner": "ml-platform@example.com", "expires": EXPIRES, **overrides}
    return PolicyException(**fields)


@pytest.mark.parametrize("overrides", [
    {"reason": ""}, {"owner": ""}, {"id": ""}, {"gate": ""}, {"expires": "next year"}, {"ticket": "X-1"},
], ids=["empty-reason", "empty-owner", "empty-id", "empty-gate", "not-a-date", "unknown-key"])
def test_an_exception_needs_an_id_a_reason_an_owner_and_a_date(overrides):
    with pytest.raises(ValidationError):
        exception(**overrides)


def test_an_exception_reads_from_policy_yaml_values():
    parsed = PolicyException.model_validate({"id": "B602", "gate": "code.static", "reason": "r", "owner": "o",
                                             "expires": "2026-06-30"})
    assert parsed.expires == EXPIRES


@pytest.mark.parametrize(("today", "active", "expired"), [
    (datetime.date(2026, 6, 29), {"CVE-2018-18074"}, []),
    (EXPIRES, set(), ["CVE-2018-18074"]),
    (datetime.date(2027, 1, 1), set(), ["CVE-2018-18074"]),
], ids=["day-before-expiry-active", "on-expiry-date-expired", "after-expiry-expired"])
def test_split_by_expiry(today, active, expired):
    ids, gone = split_exceptions([exception()], "code.dependencies", today)
    assert (ids, [e.id for e in gone]) == (active, expired)


def test_exceptions_of_another_gate_neither_count_nor_report():
    others = [exception(gate="deploy.container"),
              exception(gate="deploy.container", expires=datetime.date(2020, 1, 1))]
    assert split_exceptions(others, "code.dependencies", datetime.date(2026, 1, 1)) == (set(), [])


def test_an_expired_exception_is_reported_with_its_id_owner_and_date():
    [finding] = expired_findings([exception()], "code.dependencies")
    assert (finding.id, finding.severity) == ("code.dependencies.exception-expired", Severity.MEDIUM)
    for part in ("CVE-2018-18074", "ml-platform@example.com", "2026-06-30"):
        assert part in finding.message
