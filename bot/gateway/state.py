"""Short-lived state the gateway keeps per chat identity: offered buttons, rate-limit counters.

In memory on the embedded default (one gateway process); in Redis when `REDIS_URL` is set,
so several gateway replicas behind a load balancer share it. Values are small strings with
a time to live; nothing here must survive a restart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Protocol

import redis.asyncio as aioredis

KEY_PREFIX = "sla-bot:gateway:"


class SharedState(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def incr(self, key: str, ttl_seconds: int) -> int:
        """Add one to a counter (created at 1 with `ttl_seconds` to live) and return it."""
        ...

    async def close(self) -> None: ...


class MemoryState:
    """One process's state; bounded, least recently used entries go first."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def _live(self, key: str) -> tuple[str, float] | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item

    def _put(self, key: str, value: str, expires: float) -> None:
        self._items[key] = (value, expires)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def get(self, key: str) -> str | None:
        item = self._live(key)
        return item[0] if item else None

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._put(key, value, self._clock() + ttl_seconds)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        item = self._live(key)
        count = int(item[0]) + 1 if item else 1
        self._put(key, str(count), item[1] if item else self._clock() + ttl_seconds)
        return count

    async def close(self) -> None:
        self._items.clear()


class RedisState:
    """State shared by every gateway replica through Redis."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url, decode_responses=True)

    async def get(self, key: str) -> str | None:
        return await self._redis.get(KEY_PREFIX + key)

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        await self._redis.set(KEY_PREFIX + key, value, ex=ttl_seconds)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(KEY_PREFIX + key)
            pipe.expire(KEY_PREFIX + key, ttl_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


def open_state(redis_url: str) -> SharedState:
    return RedisState(redis_url) if redis_url else MemoryState()
