"""`Delivery`: the inbox, dispatcher, outbox, sender, notifier and schedulers, built and run together.

Wiring in the gateway (bot/gateway/app.py, inside the lifespan, after the engine, registry,
live assistant and conversation exist):

    delivery = Delivery(engine, conversation, registry, lambda: live.current(), settings)
    line_channel = LineChannel.from_settings(settings)
    if line_channel:
        line_channel.on_follow = delivery.notifier.opt_in      # optional: the dispatcher already
        line_channel.on_unfollow = delivery.notifier.opt_out   # does this for follow/unfollow events
        delivery.register(line_channel)
        app.include_router(line.router(line_channel, delivery.inbox))
    ...                                       # Telegram the same way (its router gets delivery.inbox)
    await delivery.start()                    # after every register()
    app.state.delivery = delivery
    try:
        yield
    finally:
        await delivery.stop()                 # before the adapters' clients and the engine close

The webhook routes get `delivery.inbox` (`await inbox.accept(event)` before answering 200).
The adapters get the conversation and the outbox from the dispatcher, in `handle(event,
conversation, outbox)`; they need nothing else (a helper for the apology:
`bot.delivery.types.apology_due(outbox, identity)`). The agency API, after a change, calls
`delivery.status_changed_sync(changed)` (its routes are sync functions, run in a thread) or
`await delivery.status_changed(changed)`. `/healthz` can add `await delivery.health()`.

Routes are included when the app is built, before the lifespan runs; a route may therefore
receive the inbox through `app.state` or a small forwarder if `Delivery` is built in the
lifespan. `Delivery` does not touch the database until `start()` (and `inbox.accept`).

Everything here runs in the gateway's event loop; every database call runs in a thread
(asyncio.to_thread). On SQLite (one gateway process) `start()` frees leases a previous run left,
so events accepted just before a restart are answered at once; on PostgreSQL leases run out
(LEASE) and any replica takes the rows over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from sqlalchemy import Engine, delete

from bot.casework.request import ServiceRequest
from bot.db import transaction, writer
from bot.db.models import OutboundMessageRow
from bot.delivery.flags import OptOuts
from bot.delivery.inbox import INBOX_POLICY, Dispatcher, DurableInbox, purge
from bot.delivery.notices import NOTICE_EVERY, DelayNotices, StatusPush
from bot.delivery.notifier import Notifier
from bot.delivery.outbox import OUTBOX_POLICY, DurableOutbox, Sender
from bot.delivery.queue import Clock, RetryPolicy, utc_now
from bot.delivery.types import ChannelAdapter

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.casework.registry import Registry
    from bot.gateway.conversation import Conversation
    from bot.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """The knobs; the defaults are the gateway's. Tests shorten the delays."""

    inbox: RetryPolicy = INBOX_POLICY
    outbox: RetryPolicy = OUTBOX_POLICY
    workers: int = 8  # events (and, separately, pushes) handled at once by one gateway
    poll: float = 1.0  # seconds between claims when nothing woke the loops (retries, other replicas)
    lease: dt.timedelta = dt.timedelta(seconds=60)  # renewed every third while working
    handle_timeout: float = 120.0  # one adapter.handle() at most
    deliver_timeout: float = 30.0  # one adapter.deliver() at most
    notice_interval: dt.timedelta = NOTICE_EVERY  # how often the delay-notice scheduler looks
    notices: bool = True  # run the delay-notice scheduler in this gateway
    keep_events: dt.timedelta = dt.timedelta(days=7)  # dedupe records of handled events
    keep_messages: dt.timedelta = dt.timedelta(days=30)  # sent / failed outbox rows
    stop_grace: float = 5.0


@dataclass
class _Health:
    at: float = 0.0
    value: dict[str, Any] = field(default_factory=dict)


class Delivery:
    """The durable delivery machinery of one gateway process (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        conversation: "Conversation",
        registry: "Registry",
        assistant_provider: Callable[[], "Assistant"],
        settings: Optional["Settings"] = None,
        *,
        policy: DeliveryPolicy = DeliveryPolicy(),
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = policy
        self._clock = clock
        self.adapters: dict[str, ChannelAdapter] = {}
        self.opt_outs = OptOuts(engine)
        self.inbox = DurableInbox(engine, clock=clock)
        self.outbox = DurableOutbox(engine, clock=clock)
        self.notifier = Notifier(self.outbox, self.opt_outs, self.adapters.keys(), clock=clock)
        self.dispatcher = Dispatcher(
            engine, conversation, self.outbox, self.adapters, self.opt_outs, policy=policy.inbox,
            workers=policy.workers, poll=policy.poll, lease=policy.lease, handle_timeout=policy.handle_timeout,
            clock=clock,
        )
        self.sender = Sender(
            engine, self.adapters, self.opt_outs, policy=policy.outbox, workers=policy.workers, poll=policy.poll,
            lease=policy.lease, deliver_timeout=policy.deliver_timeout, clock=clock,
        )
        self.inbox.wake = self.dispatcher.pump.wake
        self.outbox.wake = self.sender.pump.wake
        self.notices = DelayNotices(
            engine, registry, self.notifier, assistant_provider, interval=policy.notice_interval
        )
        self.status = StatusPush(engine, self.notifier, assistant_provider)
        self._housekeeping: Optional[asyncio.Task] = None
        self._health = _Health()
        self.started = False

    def register(self, adapter: ChannelAdapter) -> None:
        """Make a channel's adapter handle its events and deliver its pushes (before `start`)."""
        if self.started:
            raise RuntimeError("register every channel adapter before Delivery.start()")
        if adapter.name in self.adapters:
            raise ValueError(f"a {adapter.name} adapter is registered already")
        self.adapters[adapter.name] = adapter

    async def start(self) -> None:
        if self.started:
            return
        if self.engine.dialect.name == "sqlite":  # one gateway process: nobody else can hold a lease
            freed = await asyncio.to_thread(self.dispatcher.table.release_all)
            freed += await asyncio.to_thread(self.sender.table.release_all)
            if freed:
                logger.info("delivery: resuming %d event(s) or message(s) left in flight by the last run", freed)
        self.dispatcher.pump.start()
        self.sender.pump.start()
        if self.policy.notices:
            self.notices.start()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="delivery-housekeeping")
        self.started = True

    async def stop(self) -> None:
        """Stop taking work; what is in flight gets `stop_grace` seconds, then is given back to the queue."""
        if not self.started:
            return
        self.started = False
        await self.notices.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        await self.dispatcher.pump.stop(self.policy.stop_grace)  # first: handling events enqueues pushes
        await self.sender.pump.stop(self.policy.stop_grace)

    # -- the agency side ----------------------------------------------------------------------

    def status_changed_sync(self, request: ServiceRequest) -> int:
        """Push a request's new step/status/note to its linked chats (once per change); messages queued."""
        try:
            return self.status.changed(request)
        except Exception:  # the change is recorded; a failed push must not fail the agency's call
            logger.exception("status change of %s not pushed", request.tracking_number)
            return 0

    async def status_changed(self, request: ServiceRequest) -> int:
        return await asyncio.to_thread(self.status_changed_sync, request)

    # -- health -------------------------------------------------------------------------------

    async def health(self, max_age: float = 5.0) -> dict[str, Any]:
        """Queue sizes and failures for /healthz (cached `max_age` seconds); never raises."""
        if time.monotonic() - self._health.at < max_age:
            return self._health.value
        try:
            value = await asyncio.to_thread(self._counts)
        except Exception as exc:
            value = {"status": "down", "error": type(exc).__name__}
        value["running"] = self.started
        self._health = _Health(time.monotonic(), value)
        return value

    def _counts(self) -> dict[str, Any]:
        now = self._clock()
        day = now - dt.timedelta(days=1)
        inbox = self.dispatcher.table.counts(now, day, "received_at")
        outbox = self.sender.table.counts(now, day, "created_at")
        inbox.update(handled=self.dispatcher.handled, retried=self.dispatcher.retried, given_up=self.dispatcher.failed)
        outbox.update(sent=self.sender.sent, retried=self.sender.retried, given_up=self.sender.failed)
        return {"status": "ok", "inbox": inbox, "outbox": outbox, "channels": sorted(self.adapters)}

    # -- housekeeping -------------------------------------------------------------------------

    def purge_sync(self) -> tuple[int, int]:
        """Delete old dedupe records and finished outbox rows; (events, messages) deleted."""
        now = self._clock()
        events = purge(self.engine, now - self.policy.keep_events)
        t = OutboundMessageRow.__table__
        with transaction(writer(self.engine)) as session:
            messages = session.execute(
                delete(t).where(t.c.state != "pending", t.c.created_at < now - self.policy.keep_messages)
            ).rowcount
        return events, messages

    async def _housekeep(self) -> None:
        while True:
            try:
                events, messages = await asyncio.to_thread(self.purge_sync)
                if events or messages:
                    logger.info("delivery: purged %d old event(s) and %d old message(s)", events, messages)
            except Exception as exc:
                logger.warning("delivery: housekeeping failed: %s", type(exc).__name__)
            await asyncio.sleep(3600)
