"""The complaint desk as the gateway runs it: signed webhook deliveries and the deadline watch.

`ComplaintService.start()` (in the gateway's event loop) starts the `WebhookSender` and a loop
that, every `interval`, escalates complaints past their deadlines (`escalate_overdue`) and
erases contact details past their retention (`purge_expired_contacts`). Both are safe to run on
every replica at once: each missed deadline escalates once, and a purge is idempotent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Optional

from bot.complaints.desk import Desk
from bot.complaints.escalation import escalate_overdue
from bot.complaints.intake import purge_expired_contacts
from bot.complaints.webhooks import WebhookSender

logger = logging.getLogger(__name__)

WATCH_EVERY = dt.timedelta(minutes=5)


class ComplaintService:
    def __init__(self, desk: Desk, *, interval: dt.timedelta = WATCH_EVERY) -> None:
        self.desk = desk
        self.webhooks = WebhookSender(desk)
        self.interval = interval
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        await self.webhooks.start()
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="complaint-deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.webhooks.stop()

    def watch_once(self) -> None:
        """One pass of the deadline watch (blocking: run it in a thread)."""
        escalated = escalate_overdue(self.desk)
        purged = purge_expired_contacts(self.desk)
        if escalated or purged:
            logger.info("complaints: %d escalated, %d contact details erased", len(escalated), purged)

    async def _watch(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.watch_once)
            except Exception:  # the database is down: try again next time
                logger.exception("complaints: the deadline watch failed")
            await asyncio.sleep(self.interval.total_seconds())
