"""The SLA clock applied to stored requests: catalog service, office hours and calendar.

The clock itself (bot.sla.clock) is pure; this supplies what it needs from the live catalog:
the service, its first office channel (whose hours minutes and hours count within), and a
ThaiCalendar with the catalog's special days, rebuilt only when the catalog changes.

Stored due dates
----------------
So that "which requests are late" is a SQL filter, the registry stores with every change (in
the same transaction) a `DueRecord`: the deadline the clock gives the request's recorded
history, and the SLA basis it was computed under. Lateness then follows from the record alone
(`late_by_record`, and the same condition in SQL, bot.casework.rows.late_clause):

  * closed: late (completed late) when `closed_at > due_at`;
  * open: late when `due_at < now`.

This is exactly `is_late` (the clock's `late` or `completed_late`) because, once the history is
recorded, the clock's `due_at` no longer depends on `now`: pauses have ended, steps were
entered, a closed request's clock stopped. The one exception is a pause still running (waiting
for the citizen): the clock counts it up to `now`, so its deadline keeps moving. A pause that
began before the deadline moves it past `now`, whatever `now` is: such a request cannot be late
while it waits, and its record has `due_at` None. A pause that began at or after the deadline
does not move it: the request stays late while it waits, and its record keeps that deadline.
When the pause ends (any other status), the change stores the deadline the pause moved.

A request whose service left the catalog cannot be judged (never late): `due_at` None.

`basis` fingerprints every input of the clock besides the request itself (each service's time
target, step durations and office channel, the special days, the `holidays` package, and
`RULES_VERSION`), so records computed under another catalog are recognised and recomputed.
Like `is_late`, the stored record assumes `now` is not before the request's recorded changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Callable, Optional

import holidays

from bot.calendar import ThaiCalendar
from bot.casework.errors import UnknownService
from bot.casework.request import ServiceRequest
from bot.catalog.loader import Catalog
from bot.catalog.schema import Channel, Duration, Service
from bot.sla import clock
from bot.sla.clock import Assessment

LATE_STATES = frozenset({"late", "completed_late"})
# Bump when bot.sla.clock's rules change: every stored due date is then recomputed.
RULES_VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueRecord:
    """What the registry stores with a request: its deadline (None: cannot be late) and SLA basis."""

    due_at: Optional[dt.datetime]
    basis: str


def office_channel(service: Service) -> Optional[Channel]:
    return next((c for c in service.channels if c.kind == "office"), None)


def late_by_record(due_at: Optional[dt.datetime], closed_at: Optional[dt.datetime], now: dt.datetime) -> bool:
    """Late (or completed late) by the stored record: the condition `late_clause` puts in SQL."""
    if due_at is None:
        return False
    return closed_at > due_at if closed_at is not None else due_at < now


def sla_basis(catalog: Catalog) -> str:
    """A fingerprint of everything besides the request that the clock's `due_at` depends on."""

    def duration(d: Duration) -> list:
        return [d.value, d.unit]

    def channel(c: Optional[Channel]) -> Optional[list]:
        if c is None:
            return None
        return [[[b.days, b.open, b.close] for b in c.hours], c.always_open, c.open_on_public_holidays]

    inputs = {
        "rules": RULES_VERSION,
        "holidays": holidays.__version__,
        "special_days": [[d.date.isoformat(), d.kind, d.name] for d in catalog.special_days],
        "services": {
            s.id: [duration(s.time_target), [duration(step.duration) for step in s.steps], channel(office_channel(s))]
            for s in sorted(catalog.services.values(), key=lambda s: s.id)
        },
    }
    encoded = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


class SlaView:
    def __init__(self, catalog: Callable[[], Catalog]) -> None:
        self._catalog = catalog
        self._calendar: tuple[str, ThaiCalendar] | None = None
        self._basis: tuple[str, str] | None = None

    def calendar(self, catalog: Catalog) -> ThaiCalendar:
        cached = self._calendar
        if cached is None or cached[0] != catalog.fingerprint:
            cached = (catalog.fingerprint, ThaiCalendar(catalog.special_days))
            self._calendar = cached
        return cached[1]

    def basis(self, catalog: Optional[Catalog] = None) -> str:
        """The current catalog's SLA basis (`sla_basis`), computed once per catalog version."""
        catalog = catalog or self._catalog()
        cached = self._basis
        if cached is None or cached[0] != catalog.fingerprint:
            cached = (catalog.fingerprint, sla_basis(catalog))
            self._basis = cached
        return cached[1]

    def assess(self, request: ServiceRequest, now: dt.datetime) -> Assessment:
        """Raises UnknownService when the request's service left the catalog."""
        return self._assess(self._catalog(), request, now)

    def _assess(self, catalog: Catalog, request: ServiceRequest, now: dt.datetime) -> Assessment:
        service = catalog.service(request.service_id)
        if service is None:
            raise UnknownService(f"service {request.service_id!r} is no longer in the catalog", field="service_id")
        return clock.assess(
            service,
            office_channel(service),
            self.calendar(catalog),
            request.submitted_at,
            request.step_records(),
            request.pauses(),
            now,
            completed_at=request.closed_at,
        )

    def assess_or_none(self, request: ServiceRequest, now: dt.datetime) -> Optional[Assessment]:
        try:
            return self.assess(request, now)
        except UnknownService:
            return None

    def is_late(self, request: ServiceRequest, now: dt.datetime) -> bool:
        """Late now, or completed late; a request whose service left the catalog cannot be judged (False)."""
        assessment = self.assess_or_none(request, now)
        return assessment is not None and assessment.state in LATE_STATES

    def due_record(self, request: ServiceRequest) -> DueRecord:
        """The deadline to store with `request` as recorded (see the module's notes)."""
        catalog = self._catalog()
        basis = self.basis(catalog)
        pauses = request.pauses()
        waiting = request.closed_at is None and bool(pauses) and pauses[-1].end is None
        # Any moment not before the recorded changes gives the same deadline; while waiting, the
        # pause's start, when the running pause has not moved the deadline yet.
        at = pauses[-1].start if waiting else request.last_change_at
        try:
            due = self._assess(catalog, request, at).due_at
        except UnknownService:
            return DueRecord(None, basis)
        except ValueError as exc:  # e.g. a recorded step the catalog's service no longer has
            log.warning("no SLA deadline for %s: %s", request.tracking_number, exc)
            return DueRecord(None, basis)
        if waiting and due > at:
            return DueRecord(None, basis)
        return DueRecord(due, basis)

    @staticmethod
    def notice_due(assessment: Assessment, last_notice_at: Optional[dt.datetime], now: dt.datetime) -> bool:
        return clock.delay_notice_due(assessment, last_notice_at, now)
