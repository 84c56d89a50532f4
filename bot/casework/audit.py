"""The audit trail: every change to a request or an API key, who made it, when, before and after.

Actors are an API key id, "cli" (an operator's `sla-bot` command) or "system" (the app itself,
e.g. a delay notice). Rows are written in the same transaction as the change they describe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.casework.errors import InvalidInput
from bot.db.models import AuditRow

CLI = "cli"
SYSTEM = "system"
MAX_ACTOR = 64


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    agency_code: Optional[str]
    subject: str
    before: Optional[dict[str, Any]]
    after: Optional[dict[str, Any]]


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR:
        raise InvalidInput(f"actor must be an API key id, {CLI!r} or {SYSTEM!r}", field="actor")
    return actor


def record(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    agency_code: Optional[str] = None,
    before: Optional[dict[str, Any]] = None,
    after: Optional[dict[str, Any]] = None,
) -> None:
    session.add(
        AuditRow(
            at=at, actor=check_actor(actor), action=action, subject=subject, agency_code=agency_code,
            before=_jsonable(before), after=_jsonable(after),
        )
    )


def entries(
    session: Session, *, subject: Optional[str] = None, agency_code: Optional[str] = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries first, for one subject (tracking number or key id) and/or agency."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditRow.subject == subject)
    if agency_code is not None:
        query = query.where(AuditRow.agency_code == agency_code)
    return [
        AuditEntry(r.id, r.at, r.actor, r.action, r.agency_code, r.subject, r.before, r.after)
        for r in session.scalars(query)
    ]


def _jsonable(values: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    if values is None:
        return None
    return {k: v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v for k, v in values.items()}
