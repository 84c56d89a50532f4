"""What a change to a complaint tells others, inside the change's own transaction.

* The reporter: a Thai message (bot.complaints.messages) queued in the durable outbox for the
  chat identity that filed it, when that channel can push (LINE, Telegram; never the web chat),
  keyed `complaint:<number>:v<version>:<what>`: the version changes with every change and only
  then, so a retried officer action that changed nothing queues nothing, and one that did
  queues once, whatever the retries.
* The agency's systems: a webhook event (bot.complaints.webhooks.enqueue_event) keyed
  `<event>:<number>:v<version>`, for every subscription of the agency concerned.

Both are rows written with the change: committed together or not at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional, Sequence

from sqlalchemy.orm import Session

from bot.answers.reply import Reply
from bot.complaints.model import ContactState
from bot.complaints.rows import to_domain
from bot.complaints.webhooks import enqueue_event
from bot.db.models import ComplaintRow


def contact_state(row: ComplaintRow, agency_code: Optional[str]) -> ContactState:
    """How the reporter may be reached by `agency_code`: never by the agency a misconduct report is about."""
    if row.contact_sealed is None:
        return "anonymous"
    if row.misconduct and agency_code is not None and agency_code.upper() == row.about_agency:
        return "withheld"
    return "phone"


def agency_view(row: ComplaintRow, agency_code: str) -> dict[str, Any]:
    """The complaint as an agency's system receives it: no reporter, no contact details."""
    complaint = to_domain(row)
    return {
        "tracking_number": complaint.tracking_number,
        "status": complaint.status,
        "agency_code": complaint.agency_code,
        "about_agency": complaint.about_agency,
        "misconduct": complaint.misconduct,
        "route_reason": complaint.route_reason,
        "service_id": complaint.service_id,
        "step_index": complaint.step_index,
        "description": complaint.description,
        "place": complaint.place,
        "lat": complaint.latitude,
        "long": complaint.longitude,
        "photos": [photo.id for photo in complaint.photos],
        "contact": contact_state(row, agency_code),
        "filed_at": complaint.filed_at,
        "routed_at": complaint.routed_at,
        "acknowledge_due_at": complaint.acknowledge_due_at,
        "resolve_due_at": complaint.resolve_due_at,
        "version": complaint.version,
    }


def event(
    session: Session, row: ComplaintRow, name: str, now: dt.datetime, *, agency_code: Optional[str] = None,
    extra: Optional[dict[str, Any]] = None,
) -> int:
    """Queue webhook event `name` about `row` for `agency_code` (default: the agency it is routed to)."""
    code = agency_code or row.agency_code
    data = agency_view(row, code) | (extra or {})
    return enqueue_event(session, code, name, f"{name}:{row.tracking_number}:v{row.version}", data, now)


def routed(session: Session, row: ComplaintRow, previous: Optional[str], now: dt.datetime) -> int:
    """Tell the agency that now has the complaint (and the one that had it, if another) by webhook."""
    queued = event(session, row, "complaint.received", now)
    if previous is not None and previous != row.agency_code:
        queued += event(session, row, "complaint.transferred", now, agency_code=previous)
    return queued


def push(desk: Any, session: Session, row: ComplaintRow, replies: Sequence[Reply], what: str, now: dt.datetime) -> bool:
    """Queue `replies` for the reporter, if their channel can push; whether a message was queued."""
    identity = row.reporter_identity
    if not replies or identity is None or not desk.can_push(identity):
        return False
    key = f"complaint:{row.tracking_number}:v{row.version}:{what}"
    return desk.outbox.insert(session, identity, list(replies), key, now)
