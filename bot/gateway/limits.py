"""Per-identity and per-address rate limits: fixed one-minute windows in the shared state.

A fixed window is coarse (a burst at a window's edge can reach twice the limit) but needs one
counter per subject and works the same in memory and in Redis; that is enough to keep one
sender from starving everyone else.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

from bot.gateway.state import SharedState

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class RateLimiter:
    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock

    async def hit(self, kind: str, subject: str, limit: int) -> Verdict:
        """Count one message from `subject` (an identity or an address) against `limit` a minute."""
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        # Subjects are hashed: the counters never hold a user ID or an IP address in clear.
        digest = hashlib.sha256(subject.encode()).hexdigest()[:24]
        count = await self._state.incr(f"rate:{kind}:{digest}:{window}", WINDOW_SECONDS * 2)
        if count <= limit:
            return Verdict(True)
        return Verdict(False, retry_after=max(1, int((window + 1) * WINDOW_SECONDS - now)))
