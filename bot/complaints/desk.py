"""The complaint desk: what every complaint operation needs, built once by whoever owns the process.

    desk = Desk(engine, settings.verification_secret, lambda: live_assistant.catalog,
                photos=PhotoStore(settings.data_dir / "photos"), outbox=delivery.outbox,
                can_push=notifier.can_push)
    complaint = file_complaint(desk, reporter="line:U123", idempotency_key=..., description=...)

Operations (bot.complaints.intake, .officers, .escalation, .webhooks) are functions taking the
desk: each runs one short transaction and returns plain values (bot.complaints.model). Time
comes from the desk's `clock` unless an operation is given `now` (tests, the escalation
scheduler). Messages to the reporter go into the durable outbox (`outbox.insert`) in the
transaction of the change they announce, and the sender is woken after the commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Optional

from sqlalchemy import Engine

from bot.calendar import ThaiCalendar
from bot.casework.request import bangkok_now
from bot.casework.timing import SlaView
from bot.catalog.loader import Catalog
from bot.catalog.schema import Agency
from bot.complaints.contact import Sealer
from bot.complaints.deadlines import Dues, complaint_dues
from bot.complaints.photos import PhotoStore
from bot.db import writer
from bot.delivery.notifier import NO_PUSH
from bot.delivery.outbox import DurableOutbox, channel_of
from bot.settings import TIMEZONE


def default_can_push(identity: str) -> bool:
    """Without the gateway's notifier: every chat channel but the web chat (which only answers)."""
    channel = channel_of(identity)
    return bool(channel) and channel not in NO_PUSH


class Desk:
    def __init__(
        self,
        engine: Engine,
        secret: str,
        catalog: Callable[[], Catalog],
        *,
        photos: Optional[PhotoStore] = None,
        outbox: Optional[DurableOutbox] = None,
        can_push: Optional[Callable[[str], bool]] = None,
        clock: Callable[[], dt.datetime] = bangkok_now,
    ) -> None:
        if not secret:
            raise ValueError("the complaint desk needs a secret (VERIFICATION_SECRET)")
        self.engine = engine
        self.writer = writer(engine)
        self.secret = secret
        self._catalog = catalog
        self.photos = photos
        self.outbox = outbox or DurableOutbox(engine)
        self.can_push = can_push or default_can_push
        self.clock = clock
        self.contacts = Sealer(secret, "complaint-contact")
        self.webhook_secrets = Sealer(secret, "webhook-secret")
        # Set by the process running the webhook sender (`WebhookSender.pump.wake`).
        self.wake_webhooks: Callable[[], None] = lambda: None
        self._sla = SlaView(catalog)

    def catalog(self) -> Catalog:
        return self._catalog()

    def now(self, given: Optional[dt.datetime] = None) -> dt.datetime:
        moment = given if given is not None else self.clock()
        if moment.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return moment.astimezone(TIMEZONE)

    def calendar(self, catalog: Catalog) -> ThaiCalendar:
        return self._sla.calendar(catalog)

    def dues(self, catalog: Catalog, agency: Agency, start: dt.datetime) -> Dues:
        return complaint_dues(agency, self.calendar(catalog), start)

    def committed(self, *, pushed: bool = False, events: bool = False) -> None:
        """After a commit: wake the senders that have new rows."""
        if pushed:
            self.outbox.wake()
        if events:
            self.wake_webhooks()
