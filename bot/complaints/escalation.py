"""Escalation: a complaint whose agency missed a deadline moves up, once per missed deadline.

`escalate_overdue(desk, now)` (a scheduler runs it every few minutes; tests pass `now`) finds
the complaints past the deadline that matters now (`next_due_at`, in SQL): not acknowledged by
the acknowledge-by deadline, or not resolved by the resolve-by deadline. Each goes to its
agency's parent in the catalog (BORA -> DOPA, LAO -> DLA), or else to the central public
service centre (OPM), where it is received with that agency's deadlines from now; the decision
is stored with its reason, audited (actor "system"), pushed to the reporter and sent to both
agencies' webhooks. A complaint already at the centre has nowhere higher to go: the missed
deadline is recorded (and stays visible as overdue in the queue) once.

Each missed deadline is a `breach` ("acknowledge:<deadline>" or "resolve:<deadline>") stored
with the routing decision, unique per complaint: running twice, or on two replicas at once,
escalates once per breach. The complaint row is locked and the breach re-checked in the
transaction that escalates it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from bot.casework import audit
from bot.catalog.loader import Catalog
from bot.complaints import messages, notify
from bot.complaints.desk import Desk
from bot.complaints.model import OPEN, UNACKNOWLEDGED
from bot.complaints.officers import audit_values, reroute
from bot.complaints.rows import find_row, next_due, snapshot, to_domain
from bot.db import transaction
from bot.db.models import ComplaintRouteRow, ComplaintRow
from bot.delivery.notifier import stamp

BATCH = 200


@dataclass(frozen=True)
class Escalation:
    tracking_number: str
    breach: str
    from_agency: str
    to_agency: str  # the same as from_agency when it was already at the centre


def breach_of(row: ComplaintRow, now: dt.datetime) -> Optional[tuple[str, dt.datetime]]:
    """The deadline `row` has missed at `now` ("acknowledge" first), or None."""
    if row.status in UNACKNOWLEDGED and row.acknowledge_due_at < now:
        return "acknowledge", row.acknowledge_due_at
    if row.status in OPEN and row.resolve_due_at < now:
        return "resolve", row.resolve_due_at
    return None


def breach_key(kind: str, due: dt.datetime) -> str:
    return f"{kind}:{stamp(due)}"


def escalate_overdue(desk: Desk, now: Optional[dt.datetime] = None) -> list[Escalation]:
    """Escalate every complaint past its current deadline at `now`, once per missed deadline."""
    when = desk.now(now)
    done: list[Escalation] = []
    after_id = 0
    while True:
        with transaction(desk.engine) as session:
            rows = session.scalars(
                select(ComplaintRow)
                .where(ComplaintRow.next_due_at < when, ComplaintRow.id > after_id)
                .order_by(ComplaintRow.id)
                .limit(BATCH)
            ).all()
            recorded = set(
                session.execute(
                    select(ComplaintRouteRow.complaint_id, ComplaintRouteRow.breach).where(
                        ComplaintRouteRow.complaint_id.in_([r.id for r in rows]), ComplaintRouteRow.breach.is_not(None)
                    )
                ).tuples()
            )
            due = []
            for row in rows:
                missed = breach_of(row, when)
                if missed is not None and (row.id, breach_key(*missed)) not in recorded:
                    due.append(row.tracking_number)
        for number in due:
            escalation = _escalate(desk, number, when)
            if escalation is not None:
                done.append(escalation)
        if len(rows) < BATCH:
            return done
        after_id = rows[-1].id


def _escalate(desk: Desk, number: str, when: dt.datetime) -> Optional[Escalation]:
    catalog = desk.catalog()
    with transaction(desk.writer) as session:
        row = find_row(session, number, for_update=True)
        missed = breach_of(row, when) if row is not None else None
        if row is None or missed is None:
            return None
        kind, due = missed
        breach = breach_key(kind, due)
        exists = session.execute(
            select(ComplaintRouteRow.id).where(
                ComplaintRouteRow.complaint_id == row.id, ComplaintRouteRow.breach == breach
            )
        ).first()
        if exists is not None:
            return None
        before, previous = snapshot(row), row.agency_code
        target = _higher(catalog, previous)
        reason = _reason(catalog, previous, target, kind, due)
        if target is None:  # at the centre already: record the missed deadline, nowhere to move it
            session.add(
                ComplaintRouteRow(
                    complaint_id=row.id, at=when, kind="escalation", from_agency=previous, to_agency=previous,
                    reason=reason, actor=audit.SYSTEM, breach=breach,
                )
            )
            audit.record(
                session, at=when, actor=audit.SYSTEM, action="overdue", subject=row.tracking_number,
                agency_code=previous, after={"breach": breach},
            )
            return Escalation(row.tracking_number, breach, previous, previous)
        reroute(desk, session, row, catalog, target, "escalation", audit.SYSTEM, when, reason, breach=breach)
        row.escalation_count += 1
        row.next_due_at = next_due(row)
        row.updated_at, row.version = when, row.version + 1
        values = audit_values(before, snapshot(row))
        values["after"]["breach"] = breach
        audit.record(
            session, at=when, actor=audit.SYSTEM, action="escalate", subject=row.tracking_number,
            agency_code=row.agency_code, **values,
        )
        agency = catalog.agency(row.agency_code) or catalog.central
        reply = messages.transferred(to_domain(row), agency, escalated=True)
        pushed = notify.push(desk, session, row, [reply], "escalate", when)
        events = notify.routed(session, row, previous, when)
        escalation = Escalation(row.tracking_number, breach, previous, row.agency_code)
    desk.committed(pushed=pushed, events=events > 0)
    return escalation


def _higher(catalog: Catalog, code: str) -> Optional[str]:
    """The catalog parent of `code`, else the centre; None at the centre."""
    agency = catalog.agency(code)
    if agency is not None and agency.parent and catalog.agency(agency.parent) is not None:
        return agency.parent
    central = catalog.central.code
    return None if code == central else central


def _reason(catalog: Catalog, code: str, target: Optional[str], kind: str, due: dt.datetime) -> str:
    agency = catalog.agency(code)
    name_th, name_en = (agency.name, agency.name_en) if agency else (code, code)
    missed_th = "ไม่ตอบรับเรื่อง" if kind == "acknowledge" else "ไม่แก้ไขเรื่องให้แล้วเสร็จ"
    missed_en = "did not acknowledge it" if kind == "acknowledge" else "did not resolve it"
    head_th = f"{name_th}{missed_th}ภายในกำหนด {messages.thai_datetime(due)}"
    head_en = f"{name_en} {missed_en} by {due.isoformat()}"
    if target is None:
        return f"{head_th} (อยู่ที่ศูนย์กลางแล้ว) / {head_en} (already at central triage)"
    higher = catalog.agency(target)
    assert higher is not None
    return f"{head_th} จึงยกระดับถึง{higher.name} / {head_en}: escalated to {higher.name_en}"
