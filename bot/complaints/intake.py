"""The citizen's side: filing a complaint, looking it up, proving the digits, reopening it.

Filing is idempotent: the chat form sends one idempotency key per complaint it collected, and
the same reporter filing again with the same key (a retried request, a double-tapped submit,
two replicas racing) gets the complaint already filed, never a second one. The key is unique
per reporter in the database; the filing transaction first takes the CMP number (which on
PostgreSQL queues concurrent filers on the sequence row, and on SQLite holds the write lock),
then looks for the key, so a racer sees the first filing and rolls its number back; a unique
violation that still happens is answered the same way.

Lookups never tell a stranger anything: an unknown number, another reporter's complaint and a
malformed number all give None (the chat says the same words for each), and only the identity
that filed the complaint, or one that proved its verification digits (`verify`, counted and
locked like the registry's), sees its state and the latest officer reply.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
from typing import Any, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.casework import audit, verification
from bot.casework.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    StepOutOfRange,
    UnknownAgency,
    UnknownService,
    check_text,
)
from bot.casework.numbers import allocate_number
from bot.complaints import notify
from bot.complaints.contact import CONTACT_RETENTION, check_phone
from bot.complaints.desk import Desk
from bot.complaints.model import MAX_REOPENS, Complaint, Photo, ReporterStatus
from bot.complaints.photos import MAX_PHOTOS
from bot.complaints.routing import Subject, route
from bot.complaints.rows import canonical_number, find_row, latest_officer_message, next_due, snapshot, to_domain
from bot.db import transaction
from bot.db.dialect import insert_on_conflict
from bot.db.models import ComplaintLinkRow, ComplaintMessageRow, ComplaintPhotoRow, ComplaintRouteRow, ComplaintRow
from bot.misconduct import mentions_misconduct
from bot.tracking import COMPLAINT_CODE

MAX_DESCRIPTION = 2000
MAX_PLACE = 200
MAX_REASON = 1000
MAX_KEY = 128
MAX_IDENTITY = 200
CHANNELS = ("web", "line", "telegram", "open311")  # open311:<AGENCY>: filed by an agency's system (Open311 POST)
CITIZEN = "citizen"  # the audit trail's actor for what the reporter does (never their identity)
PUSHABLE = ("line", "telegram")


class _Filed(Exception):
    """Raised inside the filing transaction to roll it back when the key was filed before."""

    def __init__(self, complaint: Complaint) -> None:
        self.complaint = complaint


def file_complaint(
    desk: Desk,
    *,
    reporter: str,
    idempotency_key: str,
    description: str,
    service_id: Optional[str] = None,
    agency_code: Optional[str] = None,
    step_index: Optional[int] = None,
    misconduct: Optional[bool] = None,
    place: Optional[str] = None,
    latitude: Optional[float] = None,
    longitude: Optional[float] = None,
    photo_ids: Sequence[str] = (),
    phone: Optional[str] = None,
    consent: bool = False,
    now: Optional[dt.datetime] = None,
) -> Complaint:
    """File a complaint (or return the one this reporter filed under `idempotency_key`).

    `reporter`: the verified chat identity (`web:…`, `line:…`, `telegram:…`). What it is about:
    any of `service_id`, `agency_code` (a named agency) and `step_index` (of the service).
    `misconduct`: a report of bribery or abuse of power; None lets the description decide
    (`bot.misconduct.mentions_misconduct`). `phone` only with `consent` (the PDPA consent line was shown and
    accepted): anonymous otherwise. `photo_ids` from the desk's PhotoStore. The complaint comes
    back routed (`agency_code`, `route_reason`) with its acknowledge-by and resolve-by deadlines.
    """
    reporter = check_identity(reporter)
    key = check_text(idempotency_key, "idempotency_key", MAX_KEY, required=True)
    text = check_text(description, "description", MAX_DESCRIPTION, required=True)
    place = check_text(place, "place", MAX_PLACE)
    latitude, longitude = _location(latitude, longitude)
    catalog = desk.catalog()
    subject = _subject(catalog, service_id, agency_code, step_index)
    photos = _photos(desk, photo_ids)
    if phone is not None and str(phone).strip():
        if consent is not True:
            raise InvalidInput("a phone number is kept only with the reporter's consent", field="consent")
        phone = check_phone(phone)
    else:
        phone = None
    flagged = mentions_misconduct(text) if misconduct is None else bool(misconduct)
    decision = route(catalog, subject, flagged)
    when = desk.now(now)
    reporter_hash = identity_hash(desk, reporter)
    agency = catalog.agency(decision.agency_code)
    assert agency is not None, "routing returns catalog agencies"
    dues = desk.dues(catalog, agency, when)
    channel = reporter.split(":", 1)[0]
    try:
        with transaction(desk.writer) as session:
            number = allocate_number(session, COMPLAINT_CODE, when)
            existing = _by_key(session, reporter_hash, key)
            if existing is not None:
                raise _Filed(to_domain(existing))
            row = ComplaintRow(
                tracking_number=number, idempotency_key=key, reporter_hash=reporter_hash,
                reporter_identity=reporter if channel in PUSHABLE else None, reporter_channel=channel,
                service_id=subject.service_id, step_index=subject.step_index, named_agency=subject.agency_code,
                about_agency=decision.about_agency, agency_code=decision.agency_code, route_reason=decision.reason,
                misconduct=decision.misconduct, description=text, place=place, latitude=latitude, longitude=longitude,
                status="received", version=1, filed_at=when, updated_at=when, routed_at=when,
                acknowledge_due_at=dues.acknowledge_by, resolve_due_at=dues.resolve_by,
                reopen_count=0, escalation_count=0,
            )
            if phone is not None:
                row.contact_sealed = desk.contacts.seal(phone)
                token = verification.verifier_token(desk.secret, number, phone[-4:])
                row.verifier_hash = verification.stored_verifier(token)
                row.consent_at = when
                row.contact_retain_until = when + CONTACT_RETENTION
            row.next_due_at = next_due(row)
            row.photos.extend(
                ComplaintPhotoRow(position=i, photo_id=p.id, media_type=p.media_type, size=p.size)
                for i, p in enumerate(photos)
            )
            session.add(row)
            session.flush()
            session.add(
                ComplaintRouteRow(
                    complaint_id=row.id, at=when, kind="filed", from_agency=None, to_agency=row.agency_code,
                    reason=decision.reason, actor=CITIZEN,
                )
            )
            after = snapshot(row) | {"anonymous": phone is None, "photos": len(photos), "rule": decision.rule}
            audit.record(
                session, at=when, actor=CITIZEN, action="file", subject=number, agency_code=row.agency_code,
                after=after,
            )
            events = notify.routed(session, row, None, when)
            complaint = to_domain(row)
    except _Filed as filed:
        return filed.complaint
    except IntegrityError:
        with transaction(desk.engine) as session:
            existing = _by_key(session, reporter_hash, key)
            if existing is None:
                raise
            return to_domain(existing)
    desk.committed(events=events > 0)
    return complaint


def status_for_reporter(desk: Desk, number: str, identity: str) -> Optional[ReporterStatus]:
    """The complaint's state and latest officer reply, for its reporter (or a verified identity) only.

    None for anything else: an unknown or malformed number, or someone else's complaint, alike."""
    canonical = canonical_number(number)
    if canonical is None or not isinstance(identity, str) or not identity:
        return None
    with transaction(desk.engine) as session:
        row = find_row(session, canonical)
        if row is None or not _may_see(desk, session, row, identity):
            return None
        return _reporter_status(desk, session, row)


def my_complaints(desk: Desk, identity: str, limit: int = 10) -> list[ReporterStatus]:
    """The complaints this identity filed, newest first ("เรื่องร้องเรียนของฉัน")."""
    if not isinstance(identity, str) or not identity:
        return []
    query = (
        select(ComplaintRow)
        .where(ComplaintRow.reporter_hash == identity_hash(desk, identity))
        .order_by(ComplaintRow.filed_at.desc(), ComplaintRow.id.desc())
        .limit(limit)
    )
    with transaction(desk.engine) as session:
        return [_reporter_status(desk, session, row) for row in session.scalars(query)]


def verifier_token(desk: Desk, number: str, digits: str) -> str:
    """The keyed token of a complaint number and the last 4 digits of the phone given with it."""
    return verification.verifier_token(desk.secret, number, digits)


def verify(
    desk: Desk, number: str, token: str, identity: str, now: Optional[dt.datetime] = None
) -> verification.VerifyResult:
    """"ok" (and the identity may see the complaint from now on), "wrong" (also for an unknown number
    or an anonymous complaint) or "locked" (five failures in an hour, per number or identity)."""
    identity = check_identity(identity)
    when = desk.now(now)
    canonical = canonical_number(number) or (number or "").strip().upper()[:32]
    with transaction(desk.writer) as session:
        attempts = verification.Attempts(session, desk.secret, canonical, identity, when)
        if attempts.locked():
            return "locked"
        found = session.execute(
            select(ComplaintRow.id, ComplaintRow.verifier_hash).where(ComplaintRow.tracking_number == canonical)
        ).first()
        if verification.token_matches(token, found.verifier_hash if found else None):
            links = ComplaintLinkRow.__table__
            link = insert_on_conflict(session, links).values(
                identity_hash=identity_hash(desk, identity), complaint_id=found.id, linked_at=when
            )
            session.execute(link.on_conflict_do_nothing())
            return "ok"
        return attempts.fail()


def reopen(
    desk: Desk, number: str, identity: str, reason: str, now: Optional[dt.datetime] = None
) -> ReporterStatus:
    """The reporter says a resolved complaint is not fixed: it goes back to the agency that resolved it,
    with new deadlines, once. NotFound for anyone else; InvalidTransition when not resolved or
    already reopened once."""
    text = check_text(reason, "reason", MAX_REASON, required=True)
    when = desk.now(now)
    canonical = canonical_number(number)
    catalog = desk.catalog()
    with transaction(desk.writer) as session:
        row = find_row(session, canonical, for_update=True)
        if row is None or not _may_see(desk, session, row, identity):
            raise NotFound(f"no complaint {number!r}", field="tracking_number")
        if row.status != "resolved":
            raise InvalidTransition("only a resolved complaint can be reopened", field="status")
        if row.reopen_count >= MAX_REOPENS:
            raise InvalidTransition("this complaint was already reopened once", field="status")
        before = snapshot(row)
        agency = catalog.agency(row.agency_code) or catalog.central
        dues = desk.dues(catalog, agency, when)
        row.agency_code = agency.code
        row.status, row.reopened_at, row.reopen_count = "reopened", when, row.reopen_count + 1
        row.resolved_at = None
        row.acknowledge_due_at, row.resolve_due_at, row.routed_at = dues.acknowledge_by, dues.resolve_by, when
        row.next_due_at = next_due(row)
        row.updated_at, row.version = when, row.version + 1
        session.add(
            ComplaintMessageRow(
                complaint_id=row.id, at=when, author="citizen", kind="reopen", agency_code=None, actor=CITIZEN,
                text=text,
            )
        )
        audit.record(
            session, at=when, actor=CITIZEN, action="reopen", subject=row.tracking_number, agency_code=row.agency_code,
            before=before, after=snapshot(row),
        )
        events = notify.event(session, row, "complaint.reopened", when, extra={"reason": text})
        status = _reporter_status(desk, session, row)
    desk.committed(events=events > 0)
    return status


def purge_expired_contacts(desk: Desk, now: Optional[dt.datetime] = None) -> int:
    """Erase the phone numbers (and their verifiers) kept past their retention date; how many (PDPA)."""
    when = desk.now(now)
    with transaction(desk.writer) as session:
        rows = session.scalars(
            select(ComplaintRow)
            .where(ComplaintRow.contact_sealed.is_not(None), ComplaintRow.contact_retain_until <= when)
            .with_for_update()
        ).all()
        for row in rows:
            row.contact_sealed = row.verifier_hash = None
            audit.record(
                session, at=when, actor=audit.SYSTEM, action="purge_contact", subject=row.tracking_number,
                agency_code=row.agency_code, after={"retained_until": row.contact_retain_until},
            )
        return len(rows)


# -- helpers ---------------------------------------------------------------------------------------


def identity_hash(desk: Desk, identity: str) -> str:
    return verification.keyed_hash(desk.secret, "complaint-reporter", identity)


def check_identity(identity: str) -> str:
    if not isinstance(identity, str) or len(identity) > MAX_IDENTITY:
        raise InvalidInput("a reporter identity is needed (web:…, line:…, telegram:…, open311:…)", field="reporter")
    channel, _, rest = identity.partition(":")
    if channel not in CHANNELS or not rest.strip():
        raise InvalidInput("a reporter identity is needed (web:…, line:…, telegram:…, open311:…)", field="reporter")
    return identity


def _may_see(desk: Desk, session: Any, row: ComplaintRow, identity: str) -> bool:
    if not isinstance(identity, str) or not identity:
        return False
    hashed = identity_hash(desk, identity)
    if hmac.compare_digest(row.reporter_hash, hashed):
        return True
    link = session.execute(
        select(ComplaintLinkRow.complaint_id).where(
            ComplaintLinkRow.identity_hash == hashed, ComplaintLinkRow.complaint_id == row.id
        )
    ).first()
    return link is not None


def _reporter_status(desk: Desk, session: Any, row: ComplaintRow) -> ReporterStatus:
    complaint = to_domain(row)
    agency = desk.catalog().agency(row.agency_code)
    return ReporterStatus(
        tracking_number=complaint.tracking_number,
        status=complaint.status,
        agency_code=complaint.agency_code,
        agency_name=agency.name if agency is not None else complaint.agency_code,
        filed_at=complaint.filed_at,
        acknowledge_due_at=complaint.acknowledge_due_at,
        resolve_due_at=complaint.resolve_due_at,
        latest_reply=latest_officer_message(session, row.id),
        can_reopen=complaint.status == "resolved" and complaint.reopen_count < MAX_REOPENS,
    )


def _by_key(session: Any, reporter_hash: str, key: str) -> Optional[ComplaintRow]:
    query = select(ComplaintRow).where(ComplaintRow.reporter_hash == reporter_hash, ComplaintRow.idempotency_key == key)
    return session.scalars(query).first()


def _subject(catalog: Any, service_id: Optional[str], agency_code: Optional[str], step_index: Optional[int]) -> Subject:
    service = None
    if service_id is not None and str(service_id).strip():
        service = catalog.service(str(service_id).strip())
        if service is None:
            raise UnknownService(f"unknown service {service_id!r}", field="service_id")
    code = None
    if agency_code is not None and str(agency_code).strip():
        code = str(agency_code).strip().upper()
        if code == COMPLAINT_CODE or catalog.agency(code) is None:
            raise UnknownAgency(f"unknown agency code {agency_code!r}", field="agency_code")
    if step_index is not None:
        if service is None:
            raise StepOutOfRange("a step needs the service it belongs to", field="step_index")
        if isinstance(step_index, bool) or not isinstance(step_index, int) or not 0 <= step_index < len(service.steps):
            last = len(service.steps) - 1
            raise StepOutOfRange(f"step_index must be 0 to {last} for {service.id}", field="step_index")
    return Subject(service.id if service else None, code, step_index)


def _photos(desk: Desk, photo_ids: Sequence[str]) -> list[Photo]:
    ids = list(dict.fromkeys(photo_ids or ()))
    if len(ids) > MAX_PHOTOS:
        raise InvalidInput(f"at most {MAX_PHOTOS} photos", field="photo_ids")
    if ids and desk.photos is None:
        raise InvalidInput("photos cannot be stored here", field="photo_ids")
    found = []
    for photo_id in ids:
        info = desk.photos.info(photo_id) if desk.photos is not None else None
        if info is None:
            raise InvalidInput(f"unknown photo {photo_id!r}", field="photo_ids")
        found.append(Photo(info.id, info.media_type, info.size))
    return found


def _location(latitude: Optional[float], longitude: Optional[float]) -> tuple[Optional[float], Optional[float]]:
    if latitude is None and longitude is None:
        return None, None
    try:
        lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidInput("a location needs both latitude and longitude as numbers", field="latitude") from exc
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput("latitude must be -90 to 90 and longitude -180 to 180", field="latitude")
    return lat, lon
