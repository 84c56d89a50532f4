"""The SLA clock applied to stored requests: catalog service, office hours and calendar.

The clock itself (bot.sla.clock) is pure; this supplies what it needs from the live catalog:
the service, its first office channel (whose hours minutes and hours count within), and a
ThaiCalendar with the catalog's special days, rebuilt only when the catalog changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Optional

from bot.calendar import ThaiCalendar
from bot.casework.errors import UnknownService
from bot.casework.request import ServiceRequest
from bot.catalog.loader import Catalog
from bot.catalog.schema import Channel, Service
from bot.sla import clock
from bot.sla.clock import Assessment

LATE_STATES = frozenset({"late", "completed_late"})


def office_channel(service: Service) -> Optional[Channel]:
    return next((c for c in service.channels if c.kind == "office"), None)


class SlaView:
    def __init__(self, catalog: Callable[[], Catalog]) -> None:
        self._catalog = catalog
        self._calendar: tuple[str, ThaiCalendar] | None = None

    def calendar(self, catalog: Catalog) -> ThaiCalendar:
        cached = self._calendar
        if cached is None or cached[0] != catalog.fingerprint:
            cached = (catalog.fingerprint, ThaiCalendar(catalog.special_days))
            self._calendar = cached
        return cached[1]

    def assess(self, request: ServiceRequest, now: dt.datetime) -> Assessment:
        """Raises UnknownService when the request's service left the catalog."""
        catalog = self._catalog()
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

    @staticmethod
    def notice_due(assessment: Assessment, last_notice_at: Optional[dt.datetime], now: dt.datetime) -> bool:
        return clock.delay_notice_due(assessment, last_notice_at, now)
