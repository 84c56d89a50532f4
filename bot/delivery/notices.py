"""Messages the bot sends unasked: the Act's 7-day delay notices, and status changes.

Both go to the chat identities linked to the request (bot.casework.recipients) that can be
pushed to (bot.delivery.notifier: LINE or Telegram, not blocked), through the durable outbox.

Delay notices. The Licensing Facilitation Act B.E. 2558 (s. 10) has the agency tell the
applicant every 7 days while a request is late. `DelayNotices.run_once(now)` asks the registry
which requests are due one (`due_delay_notices`), queues the notice (rendered from
`templates/th/delay_notice.j2`) for each linked identity and records it on the request
(`record_delay_notice`), so the next one is due 7 days later. The outbox key is
`delay:<number>:<basis>:<identity tag>`, where the basis is what made the notice due: the last
notice (when it counts, i.e. it was sent after the current deadline) or else the deadline.
Two runs reading the same request (the scheduler twice, two replicas, a crash before the
notice was recorded) derive the same key and the outbox keeps one; the next notice can only be
due after one was recorded, which changes the basis. A request with no identity to push to is
not recorded (the agency still owes its notice in writing). `start()` runs it every
`interval` in the gateway.

Status changes. After the agency API records a step, status or note, `StatusPush.changed(request)`
queues "your request moved on" (`templates/th/status_changed.j2`) under
`status:<number>:<updated_at>:<identity tag>`. `updated_at` changes with each recorded change and
only then, so an API call retried with the same values (which the registry answers without a
change) derives the same key: never two pushes for one change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from sqlalchemy import Engine

from bot.casework.recipients import linked_identities
from bot.casework.request import ServiceRequest
from bot.delivery.notifier import Notifier, identity_tag, stamp

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.casework.registry import DueNotice, Registry

logger = logging.getLogger(__name__)

NOTICE_EVERY = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class NoticeRun:
    """What one pass of the delay-notice scheduler did."""

    due: int = 0  # requests the registry said are due a notice
    notified: int = 0  # of those, requests notified (queued now or before) and recorded
    queued: int = 0  # messages queued now
    unreachable: int = 0  # requests with no linked identity that can be pushed to
    errors: int = 0


def notice_basis(due: "DueNotice") -> dt.datetime:
    """What made this notice due: the last notice if it counts (sent after the deadline), else the deadline."""
    last = due.request.last_delay_notice_at
    return last if last is not None and last >= due.assessment.due_at else due.assessment.due_at


class DelayNotices:
    def __init__(
        self,
        engine: Engine,
        registry: "Registry",
        notifier: Notifier,
        assistant: Callable[[], "Assistant"],
        *,
        interval: dt.timedelta = NOTICE_EVERY,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._notifier = notifier
        self._assistant = assistant
        self.interval = interval
        self._task: Optional[asyncio.Task] = None
        self.last_run: Optional[NoticeRun] = None

    def run_once(self, now: Optional[dt.datetime] = None) -> NoticeRun:
        """Queue every delay notice due at `now` (default: the registry's now) and record them. Sync."""
        now = now or self._registry.now()
        due_notices = self._registry.due_delay_notices(now)
        notified = queued = unreachable = errors = 0
        for due in due_notices:
            number = due.request.tracking_number
            try:
                recipients = [i for i in linked_identities(self._engine, number) if self._notifier.can_push(i)]
                if not recipients:
                    unreachable += 1
                    continue
                reply = self._assistant().answers.delay_notice(due.request, due.assessment)
                basis = stamp(notice_basis(due))
                for identity in recipients:
                    # False: queued before under this key (a second run, another replica): still notified.
                    if self._notifier.notify_sync(identity, reply, f"delay:{number}:{basis}:{identity_tag(identity)}"):
                        queued += 1
                self._registry.record_delay_notice(number, at=now)
                notified += 1
            except Exception:
                errors += 1
                logger.exception("delay notice for %s not sent", number)
        run = NoticeRun(len(due_notices), notified, queued, unreachable, errors)
        if queued or errors:
            logger.info("delay notices: %s", run)
        self.last_run = run
        return run

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="delay-notices")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # the database is down: try again next time
                logger.exception("delay notices: the scheduler's pass failed")
            await asyncio.sleep(self.interval.total_seconds())


class StatusPush:
    def __init__(self, engine: Engine, notifier: Notifier, assistant: Callable[[], "Assistant"]) -> None:
        self._engine = engine
        self._notifier = notifier
        self._assistant = assistant

    def changed(self, request: ServiceRequest) -> int:
        """Push `request`'s new state to its linked identities; how many messages were queued now. Sync."""
        recipients = [i for i in linked_identities(self._engine, request.tracking_number) if self._notifier.can_push(i)]
        if not recipients:
            return 0
        reply = self._assistant().answers.status_changed(request)
        change = stamp(request.updated_at)
        queued = 0
        for identity in recipients:
            key = f"status:{request.tracking_number}:{change}:{identity_tag(identity)}"
            queued += self._notifier.notify_sync(identity, reply, key)
        return queued

    async def changed_async(self, request: ServiceRequest) -> int:
        return await asyncio.to_thread(self.changed, request)
