"""Per-client and global sliding-window limits, counted in Redis so every worker shares them.

A storage error refuses the request (503): a limit that cannot be counted is not enforced, and mlgate
fails closed. ``memory://`` storage is for unit tests only: each worker would count on its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    scope: str = ""
    retry_after_s: int = 0


class LimitUnavailable(Exception):
    """The shared counters could not be read or written."""


class RateLimits:
    def __init__(self, storage_uri: str, client_limit: str, global_limit: str, prefix: str) -> None:
        from limits import parse
        from limits.aio.strategies import SlidingWindowCounterRateLimiter
        from limits.storage import storage_from_string

        options = ({"key_prefix": prefix, "wrap_exceptions": True, "implementation": "redispy"}
                   if "redis" in storage_uri else {})
        self._storage = storage_from_string(storage_uri, **options)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._client, self._global = parse(client_limit), parse(global_limit)

    async def hit(self, client: str) -> Verdict:
        """Count one request of ``client`` against its limit, then against the global one."""
        from limits.errors import StorageError

        try:
            for scope, item, keys in (("client", self._client, ("client", client)), ("global", self._global, ("all",))):
                if not await self._limiter.hit(item, *keys):
                    stats = await self._limiter.get_window_stats(item, *keys)
                    return Verdict(False, scope, max(1, math.ceil(stats.reset_time - time.time())))
        except (StorageError, OSError, ConnectionError) as exc:
            raise LimitUnavailable(type(exc).__name__) from None
        return Verdict(True)
