from __future__ import annotations

import asyncio

import pytest

from mlgate.serving.rate_limits import LimitUnavailable, RateLimits

pytestmark = pytest.mark.unit


def hits(limits, clients):
    async def run():
        return [await limits.hit(c) for c in clients]
    return asyncio.run(run())


def test_per_client_then_global():
    limits = RateLimits("async+memory://", "2/minute", "3/minute", "t")
    verdicts = hits(limits, ["a", "a", "a", "b", "c"])
    assert [v.allowed for v in verdicts] == [True, True, False, True, False]
    assert verdicts[2].scope == "client" and verdicts[4].scope == "global"
    assert all(v.retry_after_s >= 1 for v in verdicts if not v.allowed)


def test_unreachable_counters_refuse():
    limits = RateLimits("async+redis://127.0.0.1:1/0", "2/minute", "3/minute", "t")
    with pytest.raises(LimitUnavailable):
        hits(limits, ["a"])
