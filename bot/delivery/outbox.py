"""The durable outbox: messages pushed to an identity on its channel, each key at most once.

`DurableOutbox.enqueue(identity, replies, key)` stores the messages in `outbound_messages`; a
second enqueue with the same key (a retried event, a scheduler running twice, another replica)
is refused (False), however long after. The `Sender` then calls the channel adapter's
`deliver(identity, replies, key)`:

* success: `sent`;
* `RetryLater`: tried again after the platform's `after` (Retry-After) when given, else with
  exponential backoff; the messages of one identity stay in order (a later one waits for the
  earlier, see bot.delivery.queue);
* `Undeliverable` (blocked, bad request): `failed` at once;
* any other error or a timeout: retried like RetryLater;
* after `max_attempts` or `max_age`: `failed`, with a warning in the log and in the health counts.

An identity that blocked the bot (opt-out) gets nothing: its messages are `cancelled`.

Delivered at most once: a row is leased by one sender at a time (also across replicas) and
marked sent in the transaction after `deliver` returns. The one gap is a crash between the
platform accepting a push and that commit: the push is tried again, under the same `key`,
which the adapter passes to the platform as its retry key (LINE's X-Line-Retry-Key answers 409
for a key it has accepted: nothing is shown twice). Telegram has no such key; there the gap is
the few milliseconds of that commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.answers.reply import Button, Reply
from bot.db import transaction, writer
from bot.db.dialect import insert_on_conflict
from bot.db.models import OutboundMessageRow
from bot.delivery.flags import OptOuts, Outages
from bot.delivery.queue import PENDING, Clock, LeasedTable, Pump, RetryPolicy, utc_now
from bot.delivery.types import ChannelAdapter, RetryLater, Undeliverable

logger = logging.getLogger(__name__)

MAX_KEY = 400
MAX_IDENTITY = 200
OUTBOX_POLICY = RetryPolicy(first_delay=2.0, max_delay=300.0, max_attempts=15, max_age=dt.timedelta(hours=6))


def channel_of(identity: str) -> str:
    """The channel an identity belongs to: the part before the first ":" ("line", "telegram", "web")."""
    channel, sep, rest = (identity or "").partition(":")
    return channel if sep and rest else ""


def replies_json(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    return [reply.to_json() for reply in replies]


def replies_from_json(payload: Sequence[Mapping[str, Any]]) -> list[Reply]:
    return [
        Reply(str(item.get("text") or ""), tuple(Button(str(b["title"]), str(b["payload"])) for b in item["buttons"]))
        for item in payload
    ]


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as operators see it (`Delivery.outbox.entries`)."""

    key: str
    identity: str
    channel: str
    state: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: Optional[dt.datetime]
    last_error: Optional[str]


class DurableOutbox:
    """The `Outbox` of bot.delivery.types, in the database. `wake` (set by `Delivery`) nudges the sender."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock
        self._outages = Outages(engine)
        self.wake: Callable[[], None] = lambda: None

    def insert(self, session: Session, identity: str, replies: Sequence[Reply], key: str, now: dt.datetime) -> bool:
        """Queue within the caller's transaction (the sender is not woken: call `wake` after commit)."""
        channel = channel_of(identity)
        if not channel or len(identity) > MAX_IDENTITY:
            raise ValueError("an outbox message needs a chat identity such as line:<id> or telegram:<id>")
        if not key or len(key) > MAX_KEY:
            raise ValueError(f"an outbox key must have 1 to {MAX_KEY} characters")
        table = OutboundMessageRow.__table__
        row = insert_on_conflict(session, table).values(
            key=key, identity=identity, channel=channel, payload=replies_json(replies), state=PENDING,
            attempts=0, next_attempt_at=now, created_at=now,
        )
        return session.execute(row.on_conflict_do_nothing(index_elements=[table.c.key])).rowcount == 1

    def enqueue_sync(self, identity: str, replies: Sequence[Reply], key: str) -> bool:
        """`enqueue` for synchronous callers (a thread, e.g. a sync FastAPI route)."""
        with transaction(self._writer) as session:
            added = self.insert(session, identity, replies, key, self._clock())
        if added:
            self.wake()
        return added

    async def enqueue(self, identity: str, replies: list[Reply], key: str) -> bool:
        """Store messages to push to `identity` on its channel; False if `key` was queued before."""
        return await asyncio.to_thread(self.enqueue_sync, identity, list(replies), key)

    async def apology_due(self, identity: str) -> bool:
        """Whether to tell `identity` now that the service is down: True once per outage.

        Adapters call it through `bot.delivery.types.apology_due(outbox, identity)`."""
        return await asyncio.to_thread(self._outages.apology_due, identity, self._clock())

    def entries(self, state: Optional[str] = None, limit: int = 50) -> list[OutboxEntry]:
        """The newest outbox rows, optionally in one state ("pending", "sent", "failed", "cancelled")."""
        t = OutboundMessageRow
        query = select(t).order_by(t.id.desc()).limit(limit)
        if state is not None:
            query = query.where(t.state == state)
        with transaction(self._engine) as session:
            return [
                OutboxEntry(r.key, r.identity, r.channel, r.state, r.attempts, r.created_at, r.next_attempt_at,
                            r.sent_at, r.last_error)
                for r in session.scalars(query)
            ]

    def state_of(self, key: str) -> Optional[str]:
        with transaction(self._engine) as session:
            return session.scalar(select(OutboundMessageRow.state).where(OutboundMessageRow.key == key))


class Sender:
    """Delivers the outbox through the registered adapters (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        adapters: Mapping[str, ChannelAdapter],
        opt_outs: OptOuts,
        *,
        policy: RetryPolicy = OUTBOX_POLICY,
        workers: int = 8,
        poll: float = 1.0,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        deliver_timeout: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        self._adapters = adapters
        self._opt_outs = opt_outs
        self.policy = policy
        self._timeout = deliver_timeout
        self._clock = clock
        self.table = LeasedTable(engine, OutboundMessageRow.__table__, lease=lease)
        self.pump = Pump("outbox", self.table, self._deliver, workers=workers, poll=poll, clock=clock)
        self.sent = self.retried = self.failed = 0

    async def _deliver(self, row: Mapping[str, Any]) -> None:
        identity, key = row["identity"], row["key"]
        adapter = self._adapters.get(row["channel"])
        if adapter is None:
            await asyncio.to_thread(self._finish, row, "failed", f"no channel adapter for {row['channel']!r}")
            return
        if await asyncio.to_thread(self._opt_outs.contains, identity):
            await asyncio.to_thread(self._finish, row, "cancelled", "the citizen blocked the bot")
            return
        replies = replies_from_json(row["payload"])
        after: Optional[float] = None
        unexpected = False
        try:
            # Positional: adapters name the third parameter as they like (retry_key, retry_key_base).
            await asyncio.wait_for(adapter.deliver(identity, replies, key), self._timeout)
        except RetryLater as exc:
            error, after = f"retry later: {exc}", exc.after
        except Undeliverable as exc:
            await asyncio.to_thread(self._finish, row, "failed", f"undeliverable: {exc}")
            return
        except asyncio.TimeoutError:
            error = f"no answer from {row['channel']} in {self._timeout:g} s"
        except Exception as exc:
            logger.exception("outbox: delivering %s failed unexpectedly", key)
            error, unexpected = f"{type(exc).__name__}: {exc}", True
        else:
            await asyncio.to_thread(self._finish, row, "sent", None)
            return
        now = self._clock()
        if self.policy.exhausted(row["attempts"], row["created_at"], now, unexpected=unexpected):
            await asyncio.to_thread(self._finish, row, "failed", f"gave up after {row['attempts']} attempts: {error}")
            return
        self.retried += 1
        at = now + dt.timedelta(seconds=self.policy.delay(row["attempts"], after))
        await asyncio.to_thread(self.table.retry, row["id"], at, error)

    def _finish(self, row: Mapping[str, Any], state: str, error: Optional[str]) -> None:
        if not self.table.finish(row["id"], state, error, self._clock()):
            logger.warning("outbox: %s was taken over by another sender before it finished", row["key"])
            return
        if state == "sent":
            self.sent += 1
        elif state == "failed":
            self.failed += 1
            logger.warning("outbox: gave up on %s to a %s identity: %s", row["key"], row["channel"], error)
        else:
            logger.info("outbox: %s %s (%s)", row["key"], state, error)
