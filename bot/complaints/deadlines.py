"""A complaint's deadlines on the SLA clock: acknowledge by, resolve by.

Each agency's `complaint_targets` (catalog; defaults 1 and 15 working days) count from the
moment the agency received the complaint (filing, transfer, escalation or reopening), by the
same rules as a request's time target (bot.sla.clock): an office day of Mon-Fri 08:30-16:30
on the Thai calendar with the catalog's special days; working days end at closing time on the
last day, and a complaint received after hours starts at the next opening. So a complaint filed
on Friday evening must be acknowledged by Monday 16:30.

The clock module's public `assess` judges a request against a catalog service; complaints
have no service steps, so this reuses the clock's office-time arithmetic (`_Clock`) directly,
with no office channel (government office hours) and no pauses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.calendar import ThaiCalendar
from bot.catalog.schema import Agency, Duration
from bot.settings import TIMEZONE
from bot.sla.clock import _Clock


@dataclass(frozen=True)
class Dues:
    acknowledge_by: dt.datetime
    resolve_by: dt.datetime


def deadline(calendar: ThaiCalendar, start: dt.datetime, duration: Duration) -> dt.datetime:
    """When `duration` of government office time has run from `start` (Bangkok time)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    clock = _Clock(None, calendar, [])
    return clock.due(clock.next_open(start.astimezone(TIMEZONE)), [duration])


def complaint_dues(agency: Agency, calendar: ThaiCalendar, start: dt.datetime) -> Dues:
    """The acknowledge-by and resolve-by deadlines of a complaint `agency` received at `start`."""
    targets = agency.complaint_targets
    return Dues(deadline(calendar, start, targets.acknowledge), deadline(calendar, start, targets.resolve))
