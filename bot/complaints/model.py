"""A complaint as the rest of the app sees it: plain frozen values, never ORM rows.

Three views of one complaint, by who is looking:

* `Complaint`: what filing returns and the queues list (no contact details, no reporter).
* `OfficerCase`: a complaint with its messages and routing history, for an officer allowed to
  see it; `contact` says whether the reporter can be reached ("phone"), chose not to be
  ("anonymous"), or may not be by this officer ("withheld": a misconduct report seen by the
  agency complained about). The number itself comes only from `contact_for_officer`, audited.
* `ReporterStatus`: what the citizen who filed it (or proved its digits) is told.

Statuses: received -> acknowledged -> in_progress -> resolved, then closed (final); a resolved
complaint may be reopened once by its reporter, and is then handled again like a new one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Optional

Status = Literal["received", "acknowledged", "in_progress", "resolved", "closed", "reopened"]
STATUSES: tuple[str, ...] = ("received", "acknowledged", "in_progress", "resolved", "closed", "reopened")
# Waiting for the receiving agency to acknowledge (its acknowledge-by deadline runs).
UNACKNOWLEDGED = frozenset({"received", "reopened"})
# Still the agency's to resolve (its resolve-by deadline runs).
OPEN = frozenset({"received", "acknowledged", "in_progress", "reopened"})
# What an officer may set, from each status. Reopening is the citizen's (once, after resolution).
OFFICER_TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"acknowledged", "in_progress", "resolved", "closed"}),
    "acknowledged": frozenset({"in_progress", "resolved", "closed"}),
    "in_progress": frozenset({"resolved", "closed"}),
    "reopened": frozenset({"acknowledged", "in_progress", "resolved", "closed"}),
    "resolved": frozenset({"closed"}),
    "closed": frozenset(),
}
MAX_REOPENS = 1
ContactState = Literal["phone", "anonymous", "withheld"]


@dataclass(frozen=True)
class Officer:
    """Who acts in the portal or through an agency's key: an officer of `agency_code`, or a central
    triage officer (`central`, who sees and acts on every complaint). `actor` names them in the
    audit trail (e.g. "officer:somchai" or an API key id)."""

    agency_code: str
    actor: str
    central: bool = False

    def may_see(self, agency_code: str) -> bool:
        return self.central or self.agency_code.upper() == agency_code


@dataclass(frozen=True)
class Photo:
    id: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Message:
    """An officer's reply or resolution (shown to the citizen), or the citizen's reason to reopen."""

    at: dt.datetime
    author: Literal["officer", "citizen"]
    kind: str  # reply, resolution, reopen, close
    agency_code: Optional[str]
    text: str


@dataclass(frozen=True)
class RouteDecision:
    """One routing decision: filing, a transfer by an officer, an escalation by the clock."""

    at: dt.datetime
    kind: str  # filed, transfer, escalation
    from_agency: Optional[str]
    to_agency: str
    reason: str
    actor: str


@dataclass(frozen=True)
class Complaint:
    tracking_number: str
    status: str
    agency_code: str  # the agency it is routed to now
    route_reason: str
    about_agency: Optional[str]  # the agency it is about (None: nothing routable was named)
    misconduct: bool
    service_id: Optional[str]
    step_index: Optional[int]
    description: str
    place: Optional[str]
    latitude: Optional[float]
    longitude: Optional[float]
    photos: tuple[Photo, ...]
    reporter_channel: str
    anonymous: bool
    filed_at: dt.datetime
    updated_at: dt.datetime
    routed_at: dt.datetime  # when the current agency received it
    acknowledge_due_at: dt.datetime
    resolve_due_at: dt.datetime
    next_due_at: Optional[dt.datetime]
    acknowledged_at: Optional[dt.datetime]
    resolved_at: Optional[dt.datetime]
    closed_at: Optional[dt.datetime]
    reopen_count: int
    escalation_count: int
    version: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: dt.datetime) -> bool:
        """Past the deadline that matters now (acknowledge, else resolve)."""
        return self.next_due_at is not None and self.next_due_at < now


@dataclass(frozen=True)
class OfficerCase:
    complaint: Complaint
    contact: ContactState
    messages: tuple[Message, ...]
    routes: tuple[RouteDecision, ...]


@dataclass(frozen=True)
class ReporterStatus:
    tracking_number: str
    status: str
    agency_code: str
    agency_name: str
    filed_at: dt.datetime
    acknowledge_due_at: dt.datetime
    resolve_due_at: dt.datetime
    latest_reply: Optional[Message]
    can_reopen: bool
