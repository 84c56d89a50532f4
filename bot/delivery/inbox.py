"""The durable inbox and its dispatcher: every accepted platform event is answered once, in order.

`DurableInbox.accept(event)` is one INSERT into `inbound_events` that ignores a (channel,
event_id) seen before, so a webhook redelivered after a restart is still dropped. The webhook
answers the platform only after it returned: an accepted event survives a crash.

The `Dispatcher` (an asyncio task in the gateway) claims pending events (bot.delivery.queue:
an identity's events strictly in order and one at a time, identities concurrently, `workers`
at most; replicas never take the same event) and gives each to its channel's adapter,
`handle(event, conversation, outbox)`. Then:

* `handle` returns: the event is `done`. Its text and reply token are cleared (the row stays
  RETENTION as the dedupe record), and the identity's outage flag is dropped.
* `handle` raises `RetryLater` (the adapter's way to say "the conversation is unavailable,
  keep this message"; `after` is honoured) or times out: the event waits with backoff and is
  tried again; the identity's later events wait behind it.
* `handle` raises anything else: retried the same way, but given up after `max_errors`.
* `handle` raises `Undeliverable`: the event cannot be answered (the user blocked the bot):
  `failed`, nothing sent.

Giving up (after `max_attempts` or `max_age`): logged, the event marked `failed`, and the
citizen gets one short Thai "please send your message again" through the outbox (key
`resend:<channel>:<event id>`, so once, whatever retries or replicas do). When the service was
unavailable, the messages the citizen sent meanwhile (still waiting behind it) are failed with
it: the one "send again" covers them, and they would come out of context hours later.
Follow and unfollow events are never failed that way.

Follow and unfollow events also set the identity's opt-out (bot.delivery.flags) before the
adapter sees them, so pushes stop on unfollow whatever the adapter does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Mapping, Optional

from sqlalchemy import Engine, delete, or_, select, update

from bot.answers.reply import Reply
from bot.db import transaction, writer
from bot.db.dialect import insert_on_conflict
from bot.db.models import InboundEventRow
from bot.delivery.flags import OptOuts, Outages
from bot.delivery.outbox import DurableOutbox
from bot.delivery.queue import PENDING, Clock, LeasedTable, Pump, RetryPolicy, utc_now
from bot.delivery.types import ChannelAdapter, InboundEvent, RetryLater, Undeliverable

if TYPE_CHECKING:
    from bot.gateway.conversation import Conversation

logger = logging.getLogger(__name__)

INBOX_POLICY = RetryPolicy(first_delay=2.0, max_delay=60.0, max_attempts=20, max_age=dt.timedelta(minutes=15))
SEND_AGAIN = (
    "ขออภัย ระบบไม่สามารถตอบข้อความของท่านได้ในขณะนี้ "
    "กรุณาส่งข้อความอีกครั้งในภายหลัง หรือโทรสายด่วนรัฐบาล 1111"
)
# Events that carry a citizen's words: the ones a "send again" speaks for.
MESSAGE_KINDS = ("message", "button", "command", "unsupported")
MAX_TEXT = 20_000
MAX_EVENT_ID = 128
MAX_REPLY_TOKEN = 256


class DurableInbox:
    """The `Inbox` of bot.delivery.types, in the database. `wake` (set by `Delivery`) nudges the dispatcher."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._writer = writer(engine)
        self._clock = clock
        self.wake = lambda: None

    def accept_sync(self, event: InboundEvent) -> bool:
        if not event.identity.startswith(f"{event.channel}:") or len(event.identity) > 200:
            raise ValueError(f"identity of an event from {event.channel!r} must be '{event.channel}:<id>'")
        if not event.event_id or len(event.event_id) > MAX_EVENT_ID:
            raise ValueError(f"event_id must have 1 to {MAX_EVENT_ID} characters")
        token = event.reply_token if event.reply_token and len(event.reply_token) <= MAX_REPLY_TOKEN else None
        table = InboundEventRow.__table__
        with transaction(self._writer) as session:
            row = insert_on_conflict(session, table).values(
                channel=event.channel, event_id=event.event_id, identity=event.identity, kind=event.kind,
                text=event.text[:MAX_TEXT], reply_token=token, extra=dict(event.extra), received_at=event.received_at,
                state=PENDING, attempts=0, next_attempt_at=event.received_at,
            )
            added = session.execute(
                row.on_conflict_do_nothing(index_elements=[table.c.channel, table.c.event_id])
            ).rowcount == 1
        if added:
            self.wake()
        return added

    async def accept(self, event: InboundEvent) -> bool:
        """Store the event durably; False if this (channel, event_id) was accepted before."""
        return await asyncio.to_thread(self.accept_sync, event)


def to_event(row: Mapping[str, Any]) -> InboundEvent:
    return InboundEvent(
        channel=row["channel"],
        event_id=row["event_id"],
        identity=row["identity"],
        kind=row["kind"],
        received_at=row["received_at"],
        text=row["text"],
        reply_token=row["reply_token"],
        extra=dict(row["extra"] or {}),
    )


class Dispatcher:
    """Hands accepted events to their adapters (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        conversation: "Conversation",
        outbox: DurableOutbox,
        adapters: Mapping[str, ChannelAdapter],
        opt_outs: OptOuts,
        *,
        policy: RetryPolicy = INBOX_POLICY,
        workers: int = 8,
        poll: float = 1.0,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        handle_timeout: float = 120.0,
        clock: Clock = utc_now,
    ) -> None:
        self._writer = writer(engine)
        self._conversation = conversation
        self._outbox = outbox
        self._adapters = adapters
        self._opt_outs = opt_outs
        self.policy = policy
        self._timeout = handle_timeout
        self._clock = clock
        self.table = LeasedTable(engine, InboundEventRow.__table__, lease=lease)
        self.pump = Pump("inbox", self.table, self._dispatch, workers=workers, poll=poll, clock=clock)
        self.handled = self.retried = self.failed = 0

    async def _dispatch(self, row: Mapping[str, Any]) -> None:
        event = to_event(row)
        adapter = self._adapters.get(event.channel)
        if adapter is None:
            await asyncio.to_thread(self._give_up, row, f"no channel adapter for {event.channel!r}", False, False)
            return
        if event.kind == "unfollow":
            await asyncio.to_thread(self._opt_outs.add, event.identity, self._clock())
        elif event.kind == "follow":
            await asyncio.to_thread(self._opt_outs.remove, event.identity)
        after: Optional[float] = None
        unavailable = unexpected = False
        try:
            await asyncio.wait_for(adapter.handle(event, self._conversation, self._outbox), self._timeout)
        except RetryLater as exc:
            error, after, unavailable = f"retry later: {exc}", exc.after, True
        except Undeliverable as exc:
            await asyncio.to_thread(self._give_up, row, f"undeliverable: {exc}", False, False)
            return
        except asyncio.TimeoutError:
            error, unavailable = f"not handled within {self._timeout:g} s", True
        except Exception as exc:
            logger.exception("inbox: %s event %s failed", event.channel, event.event_id)
            error, unexpected = f"{type(exc).__name__}: {exc}", True
        else:
            await asyncio.to_thread(self._done, row)
            return
        now = self._clock()
        if self.policy.exhausted(row["attempts"], row["received_at"], now, unexpected=unexpected):
            await asyncio.to_thread(self._give_up, row, f"gave up after {row['attempts']} attempts: {error}", True,
                                    unavailable)
            return
        self.retried += 1
        at = now + dt.timedelta(seconds=self.policy.delay(row["attempts"], after))
        await asyncio.to_thread(self.table.retry, row["id"], at, error)

    def _done(self, row: Mapping[str, Any]) -> None:
        t = InboundEventRow.__table__
        with transaction(self._writer) as session:
            done = session.execute(
                update(t).where(self.table.leased(row["id"])).values(
                    state="done", text="", reply_token=None, lease_owner=None, lease_until=None,
                    finished_at=self._clock(), last_error=None,
                )
            ).rowcount == 1
            Outages.end_in(session, row["identity"])
        if done:
            self.handled += 1
        else:
            logger.warning("inbox: %s event %s was taken over by another dispatcher", row["channel"], row["event_id"])

    def _give_up(self, row: Mapping[str, Any], error: str, tell_citizen: bool, with_backlog: bool) -> None:
        """Fail the event (and, when the service was unavailable, the identity's waiting messages);
        ask the citizen once to send again. One transaction: the failure and the message go together."""
        t = InboundEventRow.__table__
        now = self._clock()
        identity = row["identity"]
        finished = dict(state="failed", text="", reply_token=None, lease_owner=None, lease_until=None, finished_at=now)
        with transaction(self._writer) as session:
            if session.execute(update(t).where(self.table.leased(row["id"])).values(**finished, last_error=error[:500])
                               ).rowcount != 1:
                logger.warning("inbox: %s event %s was taken over by another dispatcher", row["channel"],
                               row["event_id"])
                return
            kinds = [row["kind"]]
            if with_backlog:
                waiting = (t.c.identity == identity, t.c.state == PENDING, t.c.id > row["id"],
                           t.c.kind.in_(MESSAGE_KINDS), or_(t.c.lease_until.is_(None), t.c.lease_until <= now))
                kinds += list(session.scalars(select(t.c.kind).where(*waiting)))
                session.execute(
                    update(t).where(*waiting).values(**finished, last_error=f"given up with event {row['event_id']}")
                )
            Outages.end_in(session, identity)
            told = False
            if tell_citizen and any(kind in MESSAGE_KINDS for kind in kinds) and not OptOuts.contains_in(
                session, identity
            ):
                told = self._outbox.insert(session, identity, [Reply(SEND_AGAIN)],
                                           f"resend:{row['channel']}:{row['event_id']}", now)
        self.failed += len(kinds)
        logger.warning(
            "inbox: gave up on %s event %s (%s)%s%s", row["channel"], row["event_id"], error,
            f" and {len(kinds) - 1} waiting after it" if len(kinds) > 1 else "",
            "; asked the citizen to send again" if told else "",
        )
        if told:
            self._outbox.wake()


def purge(engine: Engine, before: dt.datetime) -> int:
    """Delete handled and failed events received before `before` (their dedupe records)."""
    t = InboundEventRow.__table__
    with transaction(writer(engine)) as session:
        return session.execute(delete(t).where(t.c.state != PENDING, t.c.received_at < before)).rowcount
