"""The agencies' side: the queue, a complaint's case file, and what officers do with it.

Every function takes the `Officer` acting. An officer sees and acts on a complaint only while
it is routed to their agency; a central officer on every complaint. Anything else is NotFound,
exactly like an unknown number, so numbers cannot be probed. Every change is written to the
audit trail (actor: the officer's `actor`) in the transaction that makes it, together with the
reporter's notification and the agencies' webhook events (bot.complaints.notify).

A change that changes nothing (acknowledging an acknowledged complaint, a retried request)
returns the complaint as it is and records, notifies and queues nothing.

The reporter's phone number is never part of a case file: `contact_for_officer` opens it for
an officer who may contact the reporter, and audits that it did. Officers of the agency a
misconduct report is about never get it, whichever role they have.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Optional

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from bot.answers.reply import Reply
from bot.casework import audit
from bot.casework.errors import InvalidInput, InvalidTransition, NotFound, UnknownAgency, UnknownStatus, check_text
from bot.catalog.loader import Catalog
from bot.complaints import messages, notify
from bot.complaints.desk import Desk
from bot.complaints.model import (
    OFFICER_TRANSITIONS,
    OPEN,
    STATUSES,
    UNACKNOWLEDGED,
    Complaint,
    Officer,
    OfficerCase,
)
from bot.complaints.rows import canonical_number, find_row, next_due, routes, snapshot, to_domain
from bot.complaints.rows import messages as message_rows
from bot.db import transaction
from bot.db.models import ComplaintMessageRow, ComplaintRouteRow, ComplaintRow
from bot.tracking import COMPLAINT_CODE

MAX_REPLY = 2000
MAX_TRANSFER_REASON = 500
MAX_PAGE = 500


# -- reading ----------------------------------------------------------------------------------------


def queue(
    desk: Desk,
    officer: Officer,
    *,
    status: Optional[str] = None,
    overdue: Optional[bool] = None,
    agency_code: Optional[str] = None,
    limit: int = 50,
    offset: int = 0,
    now: Optional[dt.datetime] = None,
) -> list[Complaint]:
    """The officer's complaints, most urgent first (the deadline that matters now; done ones last).

    Open complaints unless `status` says otherwise; `overdue` keeps those past (or not past)
    their current deadline at `now`. A central officer sees every agency's, or `agency_code`'s."""
    if status is not None and status not in STATUSES:
        raise UnknownStatus(f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="status")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset 0 or more", field="limit")
    row = ComplaintRow
    conditions = [row.status == status] if status is not None else [row.status.in_(sorted(OPEN))]
    if not officer.central:
        conditions.append(row.agency_code == officer.agency_code.upper())
    elif agency_code is not None:
        conditions.append(row.agency_code == agency_code.upper())
    if overdue is not None:
        moment = desk.now(now)
        late = and_(row.next_due_at.is_not(None), row.next_due_at < moment)
        conditions.append(late if overdue else ~late)
    query = (
        select(row)
        .where(*conditions)
        .order_by(row.next_due_at.is_(None), row.next_due_at, row.filed_at, row.id)
        .limit(limit)
        .offset(offset)
    )
    with transaction(desk.engine) as session:
        return [to_domain(r) for r in session.scalars(query)]


def case_for_officer(desk: Desk, number: str, officer: Officer) -> OfficerCase:
    """The complaint with its messages and routing decisions; NotFound unless the officer may see it."""
    with transaction(desk.engine) as session:
        row = _visible(session, number, officer)
        return OfficerCase(
            complaint=to_domain(row),
            contact=notify.contact_state(row, officer.agency_code),
            messages=message_rows(session, row.id),
            routes=routes(session, row.id),
        )


def contact_for_officer(desk: Desk, number: str, officer: Officer, now: Optional[dt.datetime] = None) -> Optional[str]:
    """The reporter's phone number, for an officer who may contact them (audited); None when the
    reporter is anonymous, the number was erased after its retention date, or it is withheld from
    this officer's agency (a misconduct report about it)."""
    audit.check_actor(officer.actor)
    when = desk.now(now)
    with transaction(desk.writer) as session:
        row = _visible(session, number, officer)
        if notify.contact_state(row, officer.agency_code) != "phone":
            return None
        audit.record(
            session, at=when, actor=officer.actor, action="view_contact", subject=row.tracking_number,
            agency_code=row.agency_code, after={"officer_agency": officer.agency_code.upper()},
        )
        return desk.contacts.open(row.contact_sealed or "")


def history(desk: Desk, number: str, officer: Officer, limit: int = 100) -> list[audit.AuditEntry]:
    """The complaint's audit trail, newest first."""
    with transaction(desk.engine) as session:
        row = _visible(session, number, officer)
        return audit.entries(session, subject=row.tracking_number, limit=limit)


# -- acting -------------------------------------------------------------------------------------------


def acknowledge(
    desk: Desk, number: str, officer: Officer, note: Optional[str] = None, *, now: Optional[dt.datetime] = None
) -> Complaint:
    """The agency has the complaint and will handle it; the reporter is told by when it answers."""
    return set_status(desk, number, officer, "acknowledged", note, now=now)


def resolve(desk: Desk, number: str, officer: Officer, outcome: str, *, now: Optional[dt.datetime] = None) -> Complaint:
    """Resolved, with what was done (shown to the reporter, who may reopen it once)."""
    return set_status(desk, number, officer, "resolved", outcome, now=now)


def set_status(
    desk: Desk,
    number: str,
    officer: Officer,
    status: str,
    note: Optional[str] = None,
    *,
    now: Optional[dt.datetime] = None,
) -> Complaint:
    """Move the complaint on (model.OFFICER_TRANSITIONS); `note` is a reply to the reporter, and for
    `resolved` the outcome it must state. Leaving received/reopened acknowledges the complaint."""
    if status not in STATUSES:
        raise UnknownStatus(f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="status")
    text = check_text(note, "note", MAX_REPLY, required=status == "resolved")

    def change(session: Session, row: ComplaintRow, catalog: Catalog, when: dt.datetime) -> Optional[list[Reply]]:
        if row.status == status:
            if text is None:
                return None
            return _reply(session, row, catalog, officer, text, when)
        if status not in OFFICER_TRANSITIONS[row.status]:
            raise InvalidTransition(f"a {row.status} complaint cannot become {status}", field="status")
        agency = catalog.agency(row.agency_code) or catalog.central
        replies: list[Reply] = []
        if row.status in UNACKNOWLEDGED and status != "closed":
            row.acknowledged_at = when
            if status != "resolved":
                replies.append(messages.acknowledged(to_domain(row), agency))
        row.status = status
        if status == "resolved":
            row.resolved_at = when
            _message(session, row, officer, "resolution", text, when)
            replies.append(messages.resolved(to_domain(row), agency, text))
        elif status == "closed":
            row.closed_at = when
            if text is not None:
                _message(session, row, officer, "close", text, when)
        elif text is not None:
            replies.extend(_reply(session, row, catalog, officer, text, when))
        return replies

    return _change(desk, number, officer, "status", now, change)


def reply(desk: Desk, number: str, officer: Officer, text: str, *, now: Optional[dt.datetime] = None) -> Complaint:
    """Answer the reporter (kept, shown to them, pushed to their chat). A reply acknowledges an
    unacknowledged complaint: whoever answers has it."""
    body = check_text(text, "text", MAX_REPLY, required=True)

    def change(session: Session, row: ComplaintRow, catalog: Catalog, when: dt.datetime) -> Optional[list[Reply]]:
        if row.status == "closed":
            raise InvalidTransition("a closed complaint takes no more replies", field="status")
        replies: list[Reply] = []
        if row.status in UNACKNOWLEDGED:
            row.status, row.acknowledged_at = "acknowledged", when
            replies.append(messages.acknowledged(to_domain(row), catalog.agency(row.agency_code) or catalog.central))
        return replies + _reply(session, row, catalog, officer, body, when)

    return _change(desk, number, officer, "reply", now, change)


def transfer(
    desk: Desk, number: str, officer: Officer, to_agency: str, reason: str, *, now: Optional[dt.datetime] = None
) -> Complaint:
    """Send an open complaint to another agency, with the reason (same tracking number). It starts
    there as received, with that agency's deadlines from now."""
    code = (to_agency or "").strip().upper()
    why = check_text(reason, "reason", MAX_TRANSFER_REASON, required=True)

    def change(session: Session, row: ComplaintRow, catalog: Catalog, when: dt.datetime) -> Optional[list[Reply]]:
        target = catalog.agency(code) if code != COMPLAINT_CODE else None
        if target is None:
            raise UnknownAgency(f"unknown agency code {to_agency!r}", field="to_agency")
        if row.status not in OPEN:
            raise InvalidTransition(f"a {row.status} complaint cannot be transferred", field="status")
        if target.code == row.agency_code:
            raise InvalidInput(f"the complaint is already with {target.code}", field="to_agency")
        source = catalog.agency(row.agency_code)
        source_th = source.name if source else row.agency_code
        source_en = source.name_en if source else row.agency_code
        reroute(
            desk, session, row, catalog, target.code, "transfer", officer.actor, when,
            f"{source_th} โอนเรื่อง: {why} / transferred by {source_en}: {why}",
        )
        return [messages.transferred(to_domain(row), target, escalated=False)]

    return _change(desk, number, officer, "transfer", now, change)


# -- shared with escalation ---------------------------------------------------------------------------


def reroute(
    desk: Desk,
    session: Session,
    row: ComplaintRow,
    catalog: Catalog,
    to_agency: str,
    kind: str,
    actor: str,
    when: dt.datetime,
    reason: str,
    breach: Optional[str] = None,
) -> None:
    """Route the complaint to `to_agency` now: received there, its deadlines from `when`, the decision
    and its reason stored. The caller bumps the version and queues the events."""
    target = catalog.agency(to_agency) or catalog.central
    dues = desk.dues(catalog, target, when)
    session.add(
        ComplaintRouteRow(
            complaint_id=row.id, at=when, kind=kind, from_agency=row.agency_code, to_agency=target.code,
            reason=reason, actor=actor, breach=breach,
        )
    )
    row.agency_code, row.route_reason, row.routed_at = target.code, reason, when
    row.status, row.acknowledged_at = "received", None
    row.acknowledge_due_at, row.resolve_due_at = dues.acknowledge_by, dues.resolve_by


def _change(
    desk: Desk,
    number: str,
    officer: Officer,
    action: str,
    now: Optional[dt.datetime],
    change: Callable[[Session, ComplaintRow, Catalog, dt.datetime], Optional[list[Reply]]],
) -> Complaint:
    """Lock the complaint (if the officer may see it), apply `change`, and when it changed something:
    bump the version, store the deadline, audit, push the replies it returns, queue webhook events."""
    audit.check_actor(officer.actor)
    when = desk.now(now)
    catalog = desk.catalog()
    with transaction(desk.writer) as session:
        row = _visible(session, number, officer, for_update=True)
        before, previous = snapshot(row), row.agency_code
        replies = change(session, row, catalog, when)
        if replies is None:
            return to_domain(row)
        row.next_due_at = next_due(row)
        row.updated_at, row.version = when, row.version + 1
        values = audit_values(before, snapshot(row))
        audit.record(
            session, at=when, actor=officer.actor, action=action, subject=row.tracking_number,
            agency_code=row.agency_code, **values,
        )
        pushed = notify.push(desk, session, row, replies, action, when)
        events = notify.routed(session, row, previous, when) if row.agency_code != previous else 0
        complaint = to_domain(row)
    desk.committed(pushed=pushed, events=events > 0)
    return complaint


def audit_values(before: dict, after: dict) -> dict:
    changed = [key for key in after if before.get(key) != after[key]]
    return {"before": {k: before.get(k) for k in changed}, "after": {k: after[k] for k in changed}}


def _visible(session: Session, number: str, officer: Officer, for_update: bool = False) -> ComplaintRow:
    row = find_row(session, canonical_number(number), for_update=for_update)
    if row is None or not officer.may_see(row.agency_code):
        raise NotFound(f"no complaint {number!r} for {officer.agency_code}", field="tracking_number")
    return row


def _reply(
    session: Session, row: ComplaintRow, catalog: Catalog, officer: Officer, text: str, when: dt.datetime
) -> list[Reply]:
    _message(session, row, officer, "reply", text, when)
    return [messages.replied(to_domain(row), catalog.agency(row.agency_code) or catalog.central, text)]


def _message(session: Session, row: ComplaintRow, officer: Officer, kind: str, text: str, when: dt.datetime) -> None:
    session.add(
        ComplaintMessageRow(
            complaint_id=row.id, at=when, author="officer", kind=kind, agency_code=row.agency_code,
            actor=officer.actor, text=text,
        )
    )
