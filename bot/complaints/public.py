"""What anyone may read about complaints (Open311's public GET): never misconduct reports, never the reporter.

A complaint is public unless it is a report of bribery or abuse of power (`misconduct`): those
are not listed and a lookup of their number answers like an unknown one, so not even their
existence shows (their reporters are protected from the agency complained about). A public
complaint shows what the agencies' own systems get by webhook minus everything about the
reporter: no identity, channel, contact state or phone, no routing reasons or transfer notes
(internal), no audit trail. Its text and the officers' replies to the reporter are shown as
written, except that anything that looks like contact or identity data a citizen may have typed
into them (phone numbers, e-mail addresses, 13-digit national ID numbers, LINE IDs) is replaced
by `REDACTED` (`redact`).

    public_requests(desk, start=..., end=..., statuses=("open",), service_codes=("passport",))
    public_request(desk, "CMP-2569-000001")   # None for unknown, malformed or misconduct alike
    public_photo(desk, photo_id)              # a public complaint's photo, else None

Complaints filed in chat (LINE, Telegram, the web chat) are listed with their service, agency,
status and dates only: the citizen was told the complaint goes to the agency, not that its text,
place, photos or the officers' replies would be published, so none of these is (PDPA: no use
beyond what the citizen was told). Complaints filed by an agency's own system through Open311
(`reporter_channel` "open311") show their text, place and photos as above: publishing them is
that system's choice, made under its own notice.

Photos are served by their PhotoStore id (128 random bits: unguessable), only while they belong
to a public complaint whose details are shown.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from sqlalchemy import select

from bot.complaints.desk import Desk
from bot.complaints.model import OPEN, Complaint, Photo
from bot.complaints.rows import canonical_number, to_domain
from bot.db import transaction
from bot.db.models import ComplaintMessageRow, ComplaintPhotoRow, ComplaintRow

MAX_PAGE = 1000
REDACTED = "[ข้อมูลส่วนบุคคล]"
_DIGIT = "[0-9๐-๙]"
# A run of digits with single separators (space, dash, dot), not glued to letters, digits or a
# dash before it (so tracking numbers like DLT-2569-000123 stay): 9+ digits is a phone or ID.
_NUMBER = re.compile(rf"(?<![A-Za-z0-9๐-๙\-])\+?{_DIGIT}(?:[ \-.]?{_DIGIT}){{7,}}(?![0-9๐-๙])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_LINE_ID = re.compile(r"(?i)(line\s*(?:id)?|ไลน์|ไอดีไลน์)\s*[:：]?\s*@?[A-Za-z0-9._\-]{3,}")


DETAILS_SHOWN_FOR = "open311"  # the only reporter channel whose text, place and photos are public


@dataclass(frozen=True)
class PublicComplaint:
    complaint: Complaint
    notes: Optional[str]  # the latest officer message to the reporter, redacted

    @property
    def open(self) -> bool:
        return self.complaint.status in OPEN

    @property
    def details_shown(self) -> bool:
        """Whether its text, place, photos and replies are public (module docstring)."""
        return self.complaint.reporter_channel == DETAILS_SHOWN_FOR

    @property
    def description(self) -> Optional[str]:
        return redact(self.complaint.description) if self.details_shown else None

    @property
    def status_notes(self) -> Optional[str]:
        return self.notes if self.details_shown else None


def redact(text: Optional[str]) -> Optional[str]:
    """`text` with phone numbers, e-mail addresses, national ID numbers and LINE IDs replaced."""
    if text is None:
        return None
    text = _EMAIL.sub(REDACTED, text)
    text = _LINE_ID.sub(lambda m: f"{m.group(1)} {REDACTED}", text)

    def number(match: re.Match[str]) -> str:
        digits = sum(ch.isdigit() for ch in match.group(0))
        return REDACTED if digits >= 9 else match.group(0)

    return _NUMBER.sub(number, text)


def public_requests(
    desk: Desk,
    *,
    numbers: Optional[Sequence[str]] = None,
    service_codes: Optional[Sequence[str]] = None,
    start: Optional[dt.datetime] = None,
    end: Optional[dt.datetime] = None,
    statuses: Optional[Iterable[str]] = None,
    limit: int = MAX_PAGE,
    offset: int = 0,
) -> list[PublicComplaint]:
    """Public complaints, newest first. `numbers` (CMP numbers; malformed ones match nothing) or the
    filters: filed in [start, end], about one of `service_codes`, "open" and/or "closed"."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValueError(f"limit must be 1 to {MAX_PAGE} and offset 0 or more")
    row = ComplaintRow
    conditions = [row.misconduct.is_(False)]
    if numbers is not None:
        wanted = sorted({n for n in (canonical_number(x) for x in numbers) if n is not None})
        if not wanted:
            return []
        conditions.append(row.tracking_number.in_(wanted))
    if service_codes is not None:
        conditions.append(row.service_id.in_(sorted(set(service_codes))))
    if start is not None:
        conditions.append(row.filed_at >= start)
    if end is not None:
        conditions.append(row.filed_at <= end)
    if statuses is not None:
        kinds = set(statuses)
        if kinds == {"open"}:
            conditions.append(row.status.in_(sorted(OPEN)))
        elif kinds == {"closed"}:
            conditions.append(row.status.not_in(sorted(OPEN)))
    query = select(row).where(*conditions).order_by(row.filed_at.desc(), row.id.desc()).limit(limit).offset(offset)
    with transaction(desk.engine) as session:
        rows = list(session.scalars(query))
        notes = _latest_notes(session, [r.id for r in rows])
        return [PublicComplaint(to_domain(r), redact(notes.get(r.id))) for r in rows]


def public_request(desk: Desk, number: str) -> Optional[PublicComplaint]:
    """One public complaint; None for an unknown or malformed number and for a misconduct report."""
    found = public_requests(desk, numbers=[number], limit=1) if canonical_number(number) else []
    return found[0] if found else None


def public_photo(desk: Desk, photo_id: str) -> Optional[tuple[Photo, Path]]:
    """A photo of a public complaint and where its bytes are; None otherwise (or when it is gone)."""
    if desk.photos is None or desk.photos.info(photo_id) is None:
        return None
    query = (
        select(ComplaintPhotoRow)
        .join(ComplaintRow, ComplaintRow.id == ComplaintPhotoRow.complaint_id)
        .where(
            ComplaintPhotoRow.photo_id == photo_id,
            ComplaintRow.misconduct.is_(False),
            ComplaintRow.reporter_channel == DETAILS_SHOWN_FOR,
        )
        .limit(1)
    )
    with transaction(desk.engine) as session:
        found = session.scalars(query).first()
        if found is None:
            return None
        photo = Photo(found.photo_id, found.media_type, found.size)
    path = desk.photos.path(photo_id)
    return (photo, path) if path is not None else None


def _latest_notes(session, ids: list[int]) -> dict[int, str]:
    """The latest officer message (reply, resolution, closing note) of each complaint in `ids`."""
    notes: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        query = (
            select(ComplaintMessageRow.complaint_id, ComplaintMessageRow.text)
            .where(ComplaintMessageRow.complaint_id.in_(chunk), ComplaintMessageRow.author == "officer")
            .order_by(ComplaintMessageRow.id)
        )
        for complaint_id, text in session.execute(query):
            notes[complaint_id] = text
    return notes
