"""Between the ORM rows and the plain values callers get, what the audit trail records, and the
SQL conditions on stored due dates (bot.casework.timing explains them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import ColumnElement, and_, not_, or_, select
from sqlalchemy.orm import Session

from bot.casework.request import ServiceRequest, StatusChange, StepEntry
from bot.db.models import ServiceRequestRow
from bot.settings import TIMEZONE


def find_row(session: Session, number: Optional[str], for_update: bool = False) -> Optional[ServiceRequestRow]:
    query = select(ServiceRequestRow).where(ServiceRequestRow.tracking_number == number)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def to_domain(row: ServiceRequestRow) -> ServiceRequest:
    return ServiceRequest(
        tracking_number=row.tracking_number,
        agency_code=row.agency_code,
        service_id=row.service_id,
        office=row.office,
        status=row.status,
        submitted_at=in_bangkok(row.submitted_at),
        updated_at=in_bangkok(row.updated_at),
        closed_at=in_bangkok(row.closed_at),
        last_delay_notice_at=in_bangkok(row.last_delay_notice_at),
        steps=tuple(
            StepEntry(s.step_index, in_bangkok(s.entered_at), in_bangkok(s.left_at), s.note) for s in row.steps
        ),
        status_changes=tuple(StatusChange(c.from_status, c.to_status, in_bangkok(c.at)) for c in row.status_changes),
    )


def late_clause(now: dt.datetime) -> ColumnElement[bool]:
    """SQL for `late_by_record`: late now or completed late, by the stored due date (never NULL)."""
    row = ServiceRequestRow
    return and_(
        row.due_at.is_not(None),
        or_(
            and_(row.closed_at.is_(None), row.due_at < now),
            and_(row.closed_at.is_not(None), row.closed_at > row.due_at),
        ),
    )


def not_late_clause(now: dt.datetime) -> ColumnElement[bool]:
    """The complement of `late_clause` (which is never NULL, so NOT is exact)."""
    return not_(late_clause(now))


def stale_clause(basis: str) -> ColumnElement[bool]:
    """Rows whose stored due date is missing or was computed under another SLA basis."""
    column = ServiceRequestRow.due_basis
    return or_(column.is_(None), column != basis)


def in_bangkok(value: Any) -> Any:
    """Bangkok time whether the value was just set (caller's zone) or read back (UtcDateTime)."""
    return value.astimezone(TIMEZONE) if value is not None else None


def snapshot(request: ServiceRequest) -> dict[str, Any]:
    """What the audit trail records of a request (never its verifier)."""
    return {
        "tracking_number": request.tracking_number,
        "agency_code": request.agency_code,
        "service_id": request.service_id,
        "office": request.office,
        "status": request.status,
        "step_index": request.step_index,
        "note": request.note,
        "submitted_at": request.submitted_at,
        "closed_at": request.closed_at,
    }


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changed = [key for key in after if before.get(key) != after[key]]
    return {"before": {k: before.get(k) for k in changed}, "after": {k: after[k] for k in changed}}
