"""Between the complaint rows and the plain values callers get; what the audit trail records."""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.casework.rows import in_bangkok
from bot.complaints.model import OPEN, UNACKNOWLEDGED, Complaint, Message, Photo, RouteDecision
from bot.db.models import ComplaintMessageRow, ComplaintRouteRow, ComplaintRow
from bot.tracking import normalize_tracking_number


def canonical_number(number: str) -> Optional[str]:
    """The canonical complaint number (CMP-YYYY-NNNNNN) in `number`, else None."""
    canonical = normalize_tracking_number(number or "") if isinstance(number, str) else None
    return canonical if canonical is not None and canonical.startswith("CMP-") else None


def find_row(session: Session, number: Optional[str], for_update: bool = False) -> Optional[ComplaintRow]:
    if number is None:
        return None
    query = select(ComplaintRow).where(ComplaintRow.tracking_number == number)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def next_due(row: ComplaintRow) -> Any:
    """The deadline that matters now: acknowledge while unacknowledged, else resolve; None once done."""
    if row.status in UNACKNOWLEDGED:
        return min(row.acknowledge_due_at, row.resolve_due_at)
    if row.status in OPEN:
        return row.resolve_due_at
    return None


def to_domain(row: ComplaintRow) -> Complaint:
    return Complaint(
        tracking_number=row.tracking_number,
        status=row.status,
        agency_code=row.agency_code,
        route_reason=row.route_reason,
        about_agency=row.about_agency,
        misconduct=row.misconduct,
        service_id=row.service_id,
        step_index=row.step_index,
        description=row.description,
        place=row.place,
        latitude=row.latitude,
        longitude=row.longitude,
        photos=tuple(Photo(p.photo_id, p.media_type, p.size) for p in row.photos),
        reporter_channel=row.reporter_channel,
        anonymous=row.contact_sealed is None,
        filed_at=in_bangkok(row.filed_at),
        updated_at=in_bangkok(row.updated_at),
        routed_at=in_bangkok(row.routed_at),
        acknowledge_due_at=in_bangkok(row.acknowledge_due_at),
        resolve_due_at=in_bangkok(row.resolve_due_at),
        next_due_at=in_bangkok(row.next_due_at),
        acknowledged_at=in_bangkok(row.acknowledged_at),
        resolved_at=in_bangkok(row.resolved_at),
        closed_at=in_bangkok(row.closed_at),
        reopen_count=row.reopen_count,
        escalation_count=row.escalation_count,
        version=row.version,
    )


def messages(session: Session, complaint_id: int) -> tuple[Message, ...]:
    query = select(ComplaintMessageRow).where(ComplaintMessageRow.complaint_id == complaint_id)
    return tuple(
        Message(in_bangkok(m.at), m.author, m.kind, m.agency_code, m.text)  # type: ignore[arg-type]
        for m in session.scalars(query.order_by(ComplaintMessageRow.id))
    )


def latest_officer_message(session: Session, complaint_id: int) -> Optional[Message]:
    query = (
        select(ComplaintMessageRow)
        .where(ComplaintMessageRow.complaint_id == complaint_id, ComplaintMessageRow.author == "officer")
        .order_by(ComplaintMessageRow.id.desc())
        .limit(1)
    )
    m = session.scalars(query).first()
    return Message(in_bangkok(m.at), "officer", m.kind, m.agency_code, m.text) if m is not None else None


def routes(session: Session, complaint_id: int) -> tuple[RouteDecision, ...]:
    query = select(ComplaintRouteRow).where(ComplaintRouteRow.complaint_id == complaint_id)
    return tuple(
        RouteDecision(in_bangkok(r.at), r.kind, r.from_agency, r.to_agency, r.reason, r.actor)
        for r in session.scalars(query.order_by(ComplaintRouteRow.id))
    )


def snapshot(row: ComplaintRow) -> dict[str, Any]:
    """What the audit trail records of a complaint: never the description, contact or reporter."""
    return {
        "tracking_number": row.tracking_number,
        "status": row.status,
        "agency_code": row.agency_code,
        "about_agency": row.about_agency,
        "misconduct": row.misconduct,
        "service_id": row.service_id,
        "step_index": row.step_index,
        "acknowledge_due_at": row.acknowledge_due_at,
        "resolve_due_at": row.resolve_due_at,
        "acknowledged_at": row.acknowledged_at,
        "resolved_at": row.resolved_at,
        "closed_at": row.closed_at,
        "reopen_count": row.reopen_count,
        "escalation_count": row.escalation_count,
    }
