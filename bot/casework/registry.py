"""The registry of citizens' service requests: the one implementation the agency API, the
chat lookup and the portal share.

Every method runs one short, synchronous transaction (callers in an event loop run it in a
thread) and returns plain frozen values (bot.casework.request), never ORM rows. Changes are
checked against the catalog (service, agency, step index), refused on closed requests, and
written to the audit trail in the same transaction. Time comes from the injected `clock`, so
tests can move it; changes may be dated in the past (`at`, for imports and demo data) but never
before the request's last recorded change nor in the future.

Each change also stores the request's SLA deadline (`due_at`, with the basis it was computed
under; bot.casework.timing explains what is stored and why it is exact), so the late filters
of `list_for_agency` and `due_delay_notices` run in SQL. Rows without a current deadline (filed
before revision 0002_due_dates, or computed under a catalog whose durations, office hours or
special days have since changed) are judged in Python when a filter meets them, and the
deadline computed is stored; `recompute_due_dates` (run by `sla-bot db upgrade`) does them all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import ColumnElement, Engine, Select, String, and_, bindparam, cast, or_, select, union_all, update
from sqlalchemy.orm import Session

from bot.casework import audit, verification
from bot.casework.api_keys import ApiKeys
from bot.casework.errors import (
    InvalidDigits,
    InvalidInput,
    InvalidTransition,
    NotFound,
    RequestClosed,
    StepOutOfRange,
    UnknownAgency,
    UnknownService,
    UnknownStatus,
    check_text,
)
from bot.casework.numbers import allocate_number, numbers_agency
from bot.casework.request import (
    CLOSED_STATUSES,
    INITIAL,
    STATUSES,
    ServiceRequest,
    bangkok_now,
)
from bot.casework.rows import (
    difference,
    find_row,
    late_clause,
    not_late_clause,
    snapshot,
    stale_clause,
    to_domain,
)
from bot.casework.timing import DueRecord, SlaView, late_by_record
from bot.catalog.loader import Catalog
from bot.catalog.schema import Service
from bot.db import transaction, writer
from bot.db.models import IdentityLinkRow, ServiceRequestRow, StatusChangeRow, StepRow, UtcDateTime
from bot.settings import TIMEZONE
from bot.sla.clock import NOTICE_INTERVAL, Assessment
from bot.tracking import normalize_tracking_number

MAX_NOTE = 2000
MAX_OFFICE = 200
MAX_IDENTITY = 200
MAX_PAGE = 500
# How far ahead of the registry's clock a given time may be (the callers' clocks drift a little).
CLOCK_SKEW = dt.timedelta(minutes=5)
# Most rows read at a time when stale due dates are judged in Python, and when recomputing them.
JUDGE_BATCH = 500
RECOMPUTE_BATCH = 500
# After recomputing this many, PostgreSQL's planner statistics (which may say "no due dates") are refreshed.
ANALYZE_AFTER = 1000
# A row's updated_at as the database stores it (text on SQLite): a due date computed from a row
# read is stored only if this has not changed since (see store_due).
STORED_UPDATED_AT = cast(ServiceRequestRow.updated_at, String).label("stored_updated_at")
# (row id, its STORED_UPDATED_AT when read, the due record computed from it)
Computed = tuple[int, str, DueRecord]


@dataclass(frozen=True)
class DueNotice:
    """A late request whose applicant is owed a delay notice (Licensing Facilitation Act: every 7 days)."""

    request: ServiceRequest
    assessment: Assessment


class Registry:
    def __init__(
        self,
        engine: Engine,
        verification_secret: str,
        catalog: Callable[[], Catalog],
        *,
        clock: Callable[[], dt.datetime] = bangkok_now,
    ) -> None:
        if not verification_secret:
            raise ValueError("the registry needs a verification secret (VERIFICATION_SECRET)")
        self._engine = engine
        self._writer = writer(engine)
        self._secret = verification_secret
        self._catalog = catalog
        self._clock = clock
        self.sla = SlaView(catalog)
        self.api_keys = ApiKeys(engine, catalog=catalog, clock=clock)

    def now(self) -> dt.datetime:
        return self._clock().astimezone(TIMEZONE)

    # -- creating and reading -------------------------------------------------------------

    def create_request(
        self,
        agency_code: str,
        service_id: str,
        office: str,
        phone_last4: str,
        submitted_at: Optional[dt.datetime] = None,
        *,
        actor: str,
    ) -> ServiceRequest:
        """File a new request at step 0, status received; its number comes from the filing year."""
        audit.check_actor(actor)
        now = self.now()
        code = (agency_code or "").strip().upper()
        if not numbers_agency(self._catalog(), code):
            raise UnknownAgency(f"unknown agency code {agency_code!r}", field="agency_code")
        service = self._service(service_id)
        if code not in (service.agency, *service.partner_agencies):
            raise InvalidInput(f"{code} does not provide {service_id}", field="service_id")
        office = check_text(office, "office", MAX_OFFICE, required=True)
        if verification.normalize_digits(phone_last4) is None:
            raise InvalidDigits("phone_last4 must be the last 4 digits of the applicant's phone", field="phone_last4")
        filed = self._time(submitted_at, "submitted_at", now)
        with transaction(self._writer) as session:
            number = allocate_number(session, code, filed)
            token = verification.verifier_token(self._secret, number, phone_last4)
            row = ServiceRequestRow(
                tracking_number=number, agency_code=code, service_id=service.id, office=office,
                verifier_hash=verification.stored_verifier(token), status=INITIAL, current_step=0,
                submitted_at=filed, updated_at=now,
            )
            row.steps.append(StepRow(step_index=0, entered_at=filed))
            row.status_changes.append(StatusChangeRow(from_status=None, to_status=INITIAL, at=filed))
            session.add(row)
            request = to_domain(row)
            _set_due(row, self.sla.due_record(request))
            audit.record(
                session, at=now, actor=actor, action="create", subject=number, agency_code=code,
                after=snapshot(request),
            )
            return request

    def get(self, number: str, agency_code: Optional[str] = None) -> Optional[ServiceRequest]:
        """The request, or None when unknown or (given `agency_code`) another agency's."""
        canonical = normalize_tracking_number(number or "")
        if canonical is None:
            return None
        with transaction(self._engine) as session:
            row = find_row(session, canonical)
            if row is None or (agency_code is not None and row.agency_code != agency_code.upper()):
                return None
            return to_domain(row)

    def list_for_agency(
        self,
        agency_code: str,
        *,
        status: Optional[str] = None,
        late: Optional[bool] = None,
        limit: int = 50,
        offset: int = 0,
        now: Optional[dt.datetime] = None,
    ) -> list[ServiceRequest]:
        """A page of an agency's requests, newest filing first.

        `late=True` keeps those the SLA clock judges late or completed late (`SlaView.is_late`
        at `now`); `late=False` the rest. The filter, the order and the page are SQL on the
        stored due dates; rows whose due date is stale are judged in Python on the way (and
        their due dates stored), which only happens until they are all recomputed.
        """
        if status is not None and status not in STATUSES:
            raise UnknownStatus(f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="status")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset 0 or more", field="limit")
        conditions = [ServiceRequestRow.agency_code == agency_code.upper()]
        if status is not None:
            conditions.append(ServiceRequestRow.status == status)
        if late is None:
            with transaction(self._engine) as session:
                query = _newest_first(select(ServiceRequestRow).where(*conditions)).limit(limit).offset(offset)
                return [to_domain(row) for row in session.scalars(query)]
        moment = now or self.now()
        judged = late_clause(moment) if late else not_late_clause(moment)
        basis = self.sla.basis()
        with transaction(self._engine) as session:
            if not _any_stale(session, conditions, basis):
                query = _newest_first(select(ServiceRequestRow).where(*conditions, judged)).limit(limit).offset(offset)
                return [to_domain(row) for row in session.scalars(query)]
            found, computed = self._judge_stale(session, conditions, judged, basis, late, moment, offset + limit)
        self._store_due(computed)
        return found[offset:]

    def _judge_stale(
        self,
        session: Session,
        conditions: list[ColumnElement[bool]],
        judged: ColumnElement[bool],
        basis: str,
        late: bool,
        moment: dt.datetime,
        wanted: int,
    ) -> tuple[list[ServiceRequest], list[Computed]]:
        """The first `wanted` requests the late filter keeps, newest first, when some due dates are
        stale: SQL keeps the rows it can judge and every stale one, the clock judges the stale
        ones. Also returns what it computed for them, to be stored."""
        found: list[ServiceRequest] = []
        computed: list[Computed] = []
        batch = wanted  # enough when the rows met were judged before; more each time it is not
        query = _newest_first(
            select(ServiceRequestRow, STORED_UPDATED_AT).where(*conditions, or_(judged, stale_clause(basis)))
        )
        after: Optional[ServiceRequestRow] = None
        while True:
            page = query if after is None else query.where(_filed_before(after))
            rows = session.execute(page.limit(batch)).all()
            for row, stored_updated_at in rows:
                request = to_domain(row)
                if row.due_basis != basis:
                    record = self.sla.due_record(request)
                    computed.append((row.id, stored_updated_at, record))
                    if late_by_record(record.due_at, request.closed_at, moment) != late:
                        continue
                found.append(request)
                if len(found) == wanted:
                    return found, computed
            if len(rows) < batch:
                return found, computed
            after = rows[-1][0]
            batch = min(batch * 2, JUDGE_BATCH)

    # -- changes --------------------------------------------------------------------------

    def move_to_step(
        self,
        number: str,
        agency_code: str,
        step_index: int,
        note: Optional[str] = None,
        *,
        actor: str,
        at: Optional[dt.datetime] = None,
    ) -> ServiceRequest:
        """Move the request to a catalog step (forward or back); moving to the current one only sets `note`."""
        note = check_text(note, "note", MAX_NOTE)

        def change(row: ServiceRequestRow, service: Service, when: dt.datetime) -> Optional[str]:
            if isinstance(step_index, bool) or not isinstance(step_index, int) or not (
                0 <= step_index < len(service.steps)
            ):
                raise StepOutOfRange(
                    f"step_index must be 0 to {len(service.steps) - 1} for {service.id}", field="step_index"
                )
            current = row.steps[-1]
            if step_index == row.current_step:
                if note is None:
                    return None
                current.note = note
                return "note"
            current.left_at = when
            row.steps.append(StepRow(step_index=step_index, entered_at=when, note=note))
            row.current_step = step_index
            return "step"

        return self._change(number, agency_code, actor, at, change)

    def set_status(
        self,
        number: str,
        agency_code: str,
        status: str,
        note: Optional[str] = None,
        *,
        actor: str,
        at: Optional[dt.datetime] = None,
    ) -> ServiceRequest:
        """Change the status; `note` (e.g. what the citizen must bring) becomes the current step's note.

        Completed, rejected and cancelled close the request (and its current step) for good;
        no request goes back to received. Setting the current status again only sets `note`.
        """
        if status not in STATUSES:
            raise UnknownStatus(f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="status")
        note = check_text(note, "note", MAX_NOTE)

        def change(row: ServiceRequestRow, service: Service, when: dt.datetime) -> Optional[str]:
            current = row.steps[-1]
            if status == row.status:
                if note is None:
                    return None
                current.note = note
                return "note"
            if status == INITIAL:
                raise InvalidTransition(f"a request cannot go back to {INITIAL}", field="status")
            row.status_changes.append(StatusChangeRow(from_status=row.status, to_status=status, at=when))
            row.status = status
            if note is not None:
                current.note = note
            if status in CLOSED_STATUSES:
                row.closed_at = when
                current.left_at = when
            return "status"

        return self._change(number, agency_code, actor, at, change)

    def add_note(
        self, number: str, agency_code: str, note: str, *, actor: str, at: Optional[dt.datetime] = None
    ) -> ServiceRequest:
        """Set the officer's note to the citizen on the current step (the audit trail keeps the old one)."""
        text = check_text(note, "note", MAX_NOTE, required=True)

        def change(row: ServiceRequestRow, service: Service, when: dt.datetime) -> Optional[str]:
            if row.steps[-1].note == text:
                return None
            row.steps[-1].note = text
            return "note"

        return self._change(number, agency_code, actor, at, change)

    def _change(
        self,
        number: str,
        agency_code: str,
        actor: str,
        at: Optional[dt.datetime],
        change: Callable[[ServiceRequestRow, Service, dt.datetime], Optional[str]],
    ) -> ServiceRequest:
        """Lock the agency's open request, apply `change`, audit what it did (its return value)."""
        audit.check_actor(actor)
        now = self.now()
        canonical = normalize_tracking_number(number or "")
        with transaction(self._writer) as session:
            row = find_row(session, canonical, for_update=True) if canonical else None
            if row is None or row.agency_code != (agency_code or "").upper():
                raise NotFound(f"no request {number!r} for agency {agency_code}", field="tracking_number")
            before = to_domain(row)
            if before.is_closed:
                raise RequestClosed(f"{before.tracking_number} is {before.status}; it cannot change any more")
            when = self._time(at, "at", now, not_before=before.last_change_at)
            action = change(row, self._service(row.service_id), when)
            if action is None:
                return before
            row.updated_at = now
            after = to_domain(row)
            _set_due(row, self.sla.due_record(after))
            change_values = difference(snapshot(before), snapshot(after))
            if at is not None:  # dated in the past: the trail shows both when it happened and when it was recorded
                change_values["after"]["effective_at"] = when
            audit.record(
                session, at=now, actor=actor, action=action, subject=after.tracking_number,
                agency_code=after.agency_code, **change_values,
            )
            return after

    # -- verification (the chat side) -----------------------------------------------------

    def verifier_token(self, number: str, digits: str) -> str:
        """`verification.verifier_token` with this registry's secret (for the chat side and demo data)."""
        return verification.verifier_token(self._secret, number, digits)

    def verify(
        self, number: str, token: str, identity: str, now: Optional[dt.datetime] = None
    ) -> verification.VerifyResult:
        """"ok" (and the identity is linked to the request), "wrong" (also for an unknown number) or "locked"."""
        identity = _identity(identity)
        now = (now or self.now()).astimezone(TIMEZONE)
        canonical = normalize_tracking_number(number or "") or (number or "").strip().upper()[:32]
        with transaction(self._writer) as session:
            attempts = verification.Attempts(session, self._secret, canonical, identity, now)
            if attempts.locked():
                return "locked"
            found = session.execute(
                select(ServiceRequestRow.id, ServiceRequestRow.verifier_hash).where(
                    ServiceRequestRow.tracking_number == canonical
                )
            ).first()
            if verification.token_matches(token, found.verifier_hash if found else None):
                verification.link(session, self._secret, identity, found.id, now)
                return "ok"
            return attempts.fail()

    def is_linked(self, identity: str, number: str) -> bool:
        canonical = normalize_tracking_number(number or "")
        if canonical is None or not identity:
            return False
        query = (
            select(IdentityLinkRow.request_id)
            .join(ServiceRequestRow, ServiceRequestRow.id == IdentityLinkRow.request_id)
            .where(
                IdentityLinkRow.identity_hash == verification.identity_hash(self._secret, identity),
                ServiceRequestRow.tracking_number == canonical,
            )
        )
        with transaction(self._engine) as session:
            return session.execute(query).first() is not None

    def linked_requests(self, identity: str) -> list[ServiceRequest]:
        """The requests this chat identity has verified, most recently linked first."""
        if not identity:
            return []
        query = (
            select(ServiceRequestRow)
            .join(IdentityLinkRow, ServiceRequestRow.id == IdentityLinkRow.request_id)
            .where(IdentityLinkRow.identity_hash == verification.identity_hash(self._secret, identity))
            .order_by(IdentityLinkRow.linked_at.desc(), ServiceRequestRow.id.desc())
        )
        with transaction(self._engine) as session:
            return [to_domain(row) for row in session.scalars(query)]

    # -- the SLA clock --------------------------------------------------------------------

    def assess(self, request: ServiceRequest, now: Optional[dt.datetime] = None) -> Assessment:
        """The SLA clock's verdict on `request` (bot.sla.clock.assess with the catalog's service)."""
        return self.sla.assess(request, now or self.now())

    def due_delay_notices(
        self, now: Optional[dt.datetime] = None, agency_code: Optional[str] = None
    ) -> list[DueNotice]:
        """Open, late requests whose applicant is due a delay notice now, in filing order (id).

        SQL keeps the candidates by their stored due dates (open, past due, and no notice since
        the deadline or none for 7 days) and any with a stale due date; the clock judges those.
        """
        moment = now or self.now()
        basis = self.sla.basis()
        row_ = ServiceRequestRow
        notice = row_.last_delay_notice_at
        candidate = and_(
            row_.due_at < moment,
            or_(notice.is_(None), notice < row_.due_at, notice <= moment - NOTICE_INTERVAL),
        )
        query = (
            select(row_, STORED_UPDATED_AT)
            .where(row_.closed_at.is_(None), or_(candidate, stale_clause(basis)))
            .order_by(row_.id)
        )
        if agency_code is not None:
            query = query.where(row_.agency_code == agency_code.upper())
        with transaction(self._engine) as session:
            found = [(to_domain(row), row.id, stored, row.due_basis) for row, stored in session.execute(query)]
        due: list[DueNotice] = []
        computed: list[Computed] = []
        for request, row_id, stored_updated_at, stored_basis in found:
            if stored_basis != basis:
                computed.append((row_id, stored_updated_at, self.sla.due_record(request)))
            assessment = self.sla.assess_or_none(request, moment)
            if assessment is not None and self.sla.notice_due(assessment, request.last_delay_notice_at, moment):
                due.append(DueNotice(request, assessment))
        self._store_due(computed)
        return due

    # -- stored due dates -------------------------------------------------------------------

    def recompute_due_dates(self, agency_code: Optional[str] = None) -> int:
        """Compute and store every due date that is missing or stale; how many were computed."""
        return recompute_due_dates(self._engine, self.sla, agency_code)

    def _store_due(self, computed: list[Computed]) -> None:
        store_due(self._writer, computed)

    def record_delay_notice(
        self, number: str, at: Optional[dt.datetime] = None, *, actor: str = audit.SYSTEM
    ) -> ServiceRequest:
        """Remember that the applicant was sent a delay notice at `at` (default: now)."""
        audit.check_actor(actor)
        now = self.now()
        when = self._time(at, "at", now)
        canonical = normalize_tracking_number(number or "")
        with transaction(self._writer) as session:
            row = find_row(session, canonical, for_update=True) if canonical else None
            if row is None:
                raise NotFound(f"no request {number!r}", field="tracking_number")
            before = row.last_delay_notice_at
            row.last_delay_notice_at = when
            audit.record(
                session, at=now, actor=actor, action="delay_notice", subject=row.tracking_number,
                agency_code=row.agency_code, before={"last_delay_notice_at": before},
                after={"last_delay_notice_at": when},
            )
            return to_domain(row)

    # -- audit ----------------------------------------------------------------------------

    def audit_trail(
        self, subject: Optional[str] = None, agency_code: Optional[str] = None, limit: int = 100
    ) -> list[audit.AuditEntry]:
        """Audit entries, newest first, for a tracking number or key id and/or an agency."""
        with transaction(self._engine) as session:
            return audit.entries(session, subject=subject, agency_code=agency_code, limit=limit)

    # -- checks ---------------------------------------------------------------------------

    def _service(self, service_id: str) -> Service:
        service = self._catalog().service(service_id or "")
        if service is None:
            raise UnknownService(f"unknown service {service_id!r}", field="service_id")
        return service

    @staticmethod
    def _time(
        value: Optional[dt.datetime], field: str, now: dt.datetime, not_before: Optional[dt.datetime] = None
    ) -> dt.datetime:
        if value is None:
            value = now
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise InvalidInput(f"{field} must be a date and time with its time zone", field=field)
        if value > now + CLOCK_SKEW:
            raise InvalidInput(f"{field} is in the future", field=field)
        if not_before is not None and value < not_before:
            raise InvalidInput(f"{field} is before the request's last change ({not_before.isoformat()})", field=field)
        return value.astimezone(TIMEZONE)




def _identity(identity: str) -> str:
    if not isinstance(identity, str) or not identity.strip() or len(identity) > MAX_IDENTITY:
        raise InvalidInput("a chat identity is needed (web:…, line:…, telegram:…)", field="identity")
    return identity


def recompute_due_dates(engine: Engine, sla: SlaView, agency_code: Optional[str] = None) -> int:
    """Compute and store the due dates that are missing (rows filed before 0002_due_dates) or were
    computed under another SLA basis (a catalog change), in batches of short transactions; the
    number computed. `sla-bot db upgrade` runs it; it needs the catalog, not the registry's secret.
    After a large backfill PostgreSQL re-analyzes the table, so that the planner does not go on
    believing the due dates are all NULL (and pick the due-date index for "due_at IS NOT NULL")."""
    basis = sla.basis()
    query = select(ServiceRequestRow, STORED_UPDATED_AT).where(stale_clause(basis)).order_by(ServiceRequestRow.id)
    if agency_code is not None:
        query = query.where(ServiceRequestRow.agency_code == agency_code.upper())
    total, last_id = 0, 0
    while True:
        with transaction(engine) as session:
            rows = session.execute(query.where(ServiceRequestRow.id > last_id).limit(RECOMPUTE_BATCH)).all()
            computed = [(row.id, stored, sla.due_record(to_domain(row))) for row, stored in rows]
        store_due(writer(engine), computed)
        total += len(computed)
        if len(rows) < RECOMPUTE_BATCH:
            break
        last_id = rows[-1][0].id
    if total >= ANALYZE_AFTER and engine.dialect.name == "postgresql":
        with writer(engine).begin() as connection:
            connection.exec_driver_sql(f"ANALYZE {ServiceRequestRow.__tablename__}")
    return total


def store_due(engine: Engine, computed: list[Computed]) -> None:
    """Store due dates computed outside a change (`Computed`), for rows still as they were read:
    a change since then (another updated_at, or the new basis already stored) wins."""
    if not computed:
        return
    table = ServiceRequestRow.__table__
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            cast(table.c.updated_at, String) == bindparam("read_updated_at", type_=String()),
            or_(table.c.due_basis.is_(None), table.c.due_basis != bindparam("new_basis")),
        )
        .values(due_at=bindparam("new_due_at", type_=UtcDateTime()), due_basis=bindparam("new_basis"))
    )
    params = [
        {"row_id": row_id, "read_updated_at": read_updated_at, "new_due_at": record.due_at, "new_basis": record.basis}
        for row_id, read_updated_at, record in computed
    ]
    with transaction(engine) as session:
        session.execute(statement, params)


def _any_stale(session: Session, conditions: list[ColumnElement[bool]], basis: str) -> bool:
    """Whether any row meeting `conditions` has a stale due date: three index probes (a basis
    missing, before or after the current one), as neither database turns `<>` into ranges. The
    order makes the index the only quick way, even when the planner's statistics predate the
    due dates (a sequential scan "soon finding one" reads the whole table when there is none)."""
    column = ServiceRequestRow.due_basis
    probes = [
        select(ServiceRequestRow.id).where(*conditions, stale).order_by(column).limit(1).subquery().select()
        for stale in (column.is_(None), column < basis, column > basis)
    ]
    return session.execute(union_all(*probes).limit(1)).first() is not None


def _set_due(row: ServiceRequestRow, record: DueRecord) -> None:
    row.due_at = record.due_at
    row.due_basis = record.basis


def _newest_first(query: Select) -> Select:
    return query.order_by(ServiceRequestRow.submitted_at.desc(), ServiceRequestRow.id.desc())


def _filed_before(row: ServiceRequestRow) -> ColumnElement[bool]:
    """Rows after `row` in newest-first order."""
    return or_(
        ServiceRequestRow.submitted_at < row.submitted_at,
        and_(ServiceRequestRow.submitted_at == row.submitted_at, ServiceRequestRow.id < row.id),
    )
