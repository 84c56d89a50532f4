"""A service request as the rest of the app sees it: plain frozen values, never ORM rows.

Rows stay inside the registry's short sessions; callers (the agency API, the chat lookup, the
portal) get these, which are safe to pass between threads and to cache.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Optional

from bot.settings import TIMEZONE
from bot.sla.clock import Pause, StepRecord

Status = Literal["received", "in_progress", "waiting_for_citizen", "approved", "rejected", "completed", "cancelled"]
STATUSES: tuple[str, ...] = (
    "received", "in_progress", "waiting_for_citizen", "approved", "rejected", "completed", "cancelled",
)
# Final: no more steps, status changes or notes. Approved is not final (the licence may still
# have to be issued); the SLA clock stops when the request closes.
CLOSED_STATUSES = frozenset({"rejected", "completed", "cancelled"})
WAITING = "waiting_for_citizen"
INITIAL = "received"


def bangkok_now() -> dt.datetime:
    """The default clock: every time the registry returns is Bangkok time."""
    return dt.datetime.now(TIMEZONE)


@dataclass(frozen=True)
class StepEntry:
    """One stay in a catalog step (index into the service's `steps`); `note` is for the citizen."""

    step_index: int
    entered_at: dt.datetime
    left_at: Optional[dt.datetime]
    note: Optional[str]


@dataclass(frozen=True)
class StatusChange:
    from_status: Optional[str]
    to_status: str
    at: dt.datetime


@dataclass(frozen=True)
class ServiceRequest:
    tracking_number: str
    agency_code: str
    service_id: str
    office: str
    status: str
    submitted_at: dt.datetime
    updated_at: dt.datetime
    closed_at: Optional[dt.datetime]
    last_delay_notice_at: Optional[dt.datetime]
    steps: tuple[StepEntry, ...]
    status_changes: tuple[StatusChange, ...]

    @property
    def current(self) -> StepEntry:
        """The step the request is in now (or was in when it closed)."""
        return self.steps[-1]

    @property
    def step_index(self) -> int:
        return self.current.step_index

    @property
    def note(self) -> Optional[str]:
        """The officer's current note to the citizen (the current step's)."""
        return self.current.note

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def status_since(self) -> dt.datetime:
        return self.status_changes[-1].at

    @property
    def last_change_at(self) -> dt.datetime:
        """The latest recorded event: a later change may not be dated before it."""
        return max(self.current.entered_at, self.status_since)

    def step_records(self) -> tuple[StepRecord, ...]:
        """The step history in the SLA clock's terms."""
        return tuple(StepRecord(s.step_index, s.entered_at, s.left_at) for s in self.steps)

    def pauses(self) -> tuple[Pause, ...]:
        """Periods spent waiting for the citizen, which do not count against the agency.

        A pause still running has no end (`end=None`)."""
        return tuple(Pause(start, end) for start, end in waiting_periods(self.status_changes))


def waiting_periods(changes: tuple[StatusChange, ...]) -> list[tuple[dt.datetime, Optional[dt.datetime]]]:
    """(start, end) of each stretch in waiting_for_citizen; end None while it lasts."""
    periods: list[tuple[dt.datetime, Optional[dt.datetime]]] = []
    start: Optional[dt.datetime] = None
    for change in changes:
        if change.to_status == WAITING and start is None:
            start = change.at
        elif change.to_status != WAITING and start is not None:
            periods.append((start, change.at))
            start = None
    if start is not None:
        periods.append((start, None))
    return periods
