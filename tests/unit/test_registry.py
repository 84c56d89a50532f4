"""The registry on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set: tracking numbers
(also under concurrent creation), agencies' isolation, step and status history, closed requests,
the audit trail, verification with lockout, the SLA hooks (the stored due dates' SQL late filter
against the clock itself) and API keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
import random
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.casework import (
    InvalidDigits,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Registry,
    RequestClosed,
    StepOutOfRange,
    UnknownAgency,
    UnknownService,
    UnknownStatus,
    verifier_token,
)
from bot.casework.numbers import buddhist_year
from bot.catalog import load_catalog
from bot.catalog.schema import Duration
from bot.db import transaction, writer
from bot.db.models import Base, ServiceRequestRow
from bot.settings import PROJECT_ROOT
from bot.sla.clock import Pause, StepRecord
from tests.unit.databases import FakeClock, bangkok, database_url, engine  # noqa: F401

SECRET = "test-verification-secret"
NOW = bangkok(2026, 6, 15, 10, 0)  # a Monday
CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
# Four digits that appear nowhere else in these tests' data (times, numbers, hashes are fixed).
DIGITS = "9797"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def registry(engine, clock) -> Registry:  # noqa: F811
    return Registry(engine, SECRET, lambda: CATALOG, clock=clock)


def _file(registry: Registry, agency: str = "DLT", service: str = "driving_licence_renewal", **kw):
    kw.setdefault("actor", "key1")
    return registry.create_request(agency, service, "สำนักงานขนส่งกรุงเทพมหานคร พื้นที่ 1", DIGITS, **kw)


# -- tracking numbers ------------------------------------------------------------------------


def test_a_new_request_gets_the_next_number_of_its_agency_and_filing_year(registry):
    first, second = _file(registry), _file(registry)
    other = _file(registry, "DCA", "passport")
    assert (first.tracking_number, second.tracking_number) == ("DLT-2569-000001", "DLT-2569-000002")
    assert other.tracking_number == "DCA-2569-000001"
    assert first.status == "received" and first.step_index == 0 and first.submitted_at == NOW
    assert first.steps[0].entered_at == NOW and first.steps[0].left_at is None
    assert registry.get("dlt 2569 000001") == first  # typed any way the citizen types it


def test_the_year_rolls_over_at_midnight_in_bangkok_and_restarts_the_sequence(registry, clock):
    clock.now = bangkok(2027, 1, 2, 9, 0)
    old = _file(registry, submitted_at=bangkok(2026, 12, 31, 23, 59))
    new = _file(registry, submitted_at=dt.datetime(2026, 12, 31, 17, 0, 30, tzinfo=dt.timezone.utc))  # 00:00:30 +07
    again = _file(registry, submitted_at=bangkok(2026, 12, 30, 12, 0))
    assert old.tracking_number == "DLT-2569-000001"
    assert new.tracking_number == "DLT-2570-000001"
    assert again.tracking_number == "DLT-2569-000002"
    assert buddhist_year(bangkok(2026, 1, 1)) == 2569


def test_numbers_never_repeat_under_concurrent_creation(registry, engine):  # noqa: F811
    """8 threads x 25 creates over two agencies: every number distinct, each agency's gap-free."""
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def create(worker: int) -> None:
        agency, service = ("DLT", "driving_licence_renewal") if worker % 2 else ("DCA", "passport")
        try:
            start.wait()
            for _ in range(25):
                request = _file(registry, agency, service)
                with lock:
                    numbers.append(request.tracking_number)
        except BaseException as exc:  # noqa: B036 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(numbers) == len(set(numbers)) == 200
    for agency in ("DLT", "DCA"):
        serials = sorted(int(n.rsplit("-", 1)[1]) for n in numbers if n.startswith(agency))
        assert serials == list(range(1, 101))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM service_requests")).scalar() == 200


def test_a_failed_creation_uses_no_number(registry):
    with pytest.raises(InvalidDigits):
        registry.create_request("DLT", "driving_licence_renewal", "ขนส่ง", "12a4", actor="key1")
    assert _file(registry).tracking_number == "DLT-2569-000001"


@pytest.mark.parametrize(
    "agency, service, office, digits, error, field",
    [
        ("XYZ", "passport", "x", "1234", UnknownAgency, "agency_code"),
        ("CMP", "passport", "x", "1234", UnknownAgency, "agency_code"),
        ("DCA", "no_such_service", "x", "1234", UnknownService, "service_id"),
        ("DLT", "passport", "x", "1234", InvalidInput, "service_id"),  # not DLT's service
        ("DCA", "passport", "  ", "1234", InvalidInput, "office"),
        ("DCA", "passport", "x", "123", InvalidDigits, "phone_last4"),
    ],
)
def test_creation_is_checked_against_the_catalog(registry, agency, service, office, digits, error, field):
    with pytest.raises(error) as raised:
        registry.create_request(agency, service, office, digits, actor="key1")
    assert raised.value.field == field and 400 <= raised.value.http_status < 500


def test_a_partner_agency_files_a_service_it_delivers(registry):
    partner = CATALOG.service("id_card").partner_agencies[0]
    assert registry.create_request(partner, "id_card", "ที่ว่าการอำเภอ", "1234", actor="k").agency_code == partner


def test_filing_times_must_be_aware_and_not_in_the_future(registry, clock):
    with pytest.raises(InvalidInput, match="future"):
        _file(registry, submitted_at=clock.now + dt.timedelta(hours=1))
    with pytest.raises(InvalidInput, match="time zone"):
        _file(registry, submitted_at=dt.datetime(2026, 6, 1, 9, 0))


# -- agencies see only their own ----------------------------------------------------------------


def test_another_agencys_request_is_invisible_and_unchangeable(registry):
    dlt = _file(registry)
    dca = _file(registry, "DCA", "passport")
    assert registry.get(dlt.tracking_number, "DCA") is None
    assert registry.get(dlt.tracking_number, "DLT") == dlt
    assert registry.get("DLT-2569-999999") is None and registry.get("not a number") is None
    assert [r.tracking_number for r in registry.list_for_agency("DCA")] == [dca.tracking_number]
    for change in (
        lambda: registry.move_to_step(dlt.tracking_number, "DCA", 1, actor="k"),
        lambda: registry.set_status(dlt.tracking_number, "DCA", "in_progress", actor="k"),
        lambda: registry.add_note(dlt.tracking_number, "DCA", "hello", actor="k"),
    ):
        with pytest.raises(NotFound) as raised:
            change()
        assert raised.value.http_status == 404
    assert registry.get(dlt.tracking_number) == dlt


def test_list_filters_by_status_and_pages_newest_first(registry, clock):
    made = []
    for _ in range(5):
        made.append(_file(registry))
        clock.advance(minutes=1)
    registry.set_status(made[1].tracking_number, "DLT", "in_progress", actor="k")
    newest_first = [r.tracking_number for r in reversed(made)]
    assert [r.tracking_number for r in registry.list_for_agency("DLT", limit=2, offset=1)] == newest_first[1:3]
    in_progress = registry.list_for_agency("DLT", status="in_progress")
    assert [r.tracking_number for r in in_progress] == [made[1].tracking_number]
    with pytest.raises(UnknownStatus):
        registry.list_for_agency("DLT", status="lost")
    with pytest.raises(InvalidInput):
        registry.list_for_agency("DLT", limit=0)


# -- steps, statuses, notes ----------------------------------------------------------------------


def test_step_history_keeps_entries_exits_and_notes(registry, clock):
    request = _file(registry)
    number = request.tracking_number
    clock.advance(minutes=20)
    moved = registry.move_to_step(number, "DLT", 2, "ตรวจสุขภาพแล้ว รออบรม", actor="k")
    clock.advance(minutes=30)
    back = registry.move_to_step(number, "DLT", 1, actor="k")  # back a step: allowed
    assert [(s.step_index, s.entered_at, s.left_at) for s in back.steps] == [
        (0, NOW, NOW + dt.timedelta(minutes=20)),
        (2, NOW + dt.timedelta(minutes=20), NOW + dt.timedelta(minutes=50)),
        (1, NOW + dt.timedelta(minutes=50), None),
    ]
    assert moved.note == "ตรวจสุขภาพแล้ว รออบรม" and back.note is None and back.step_index == 1
    noted = registry.add_note(number, "DLT", "  โปรดรอเรียกชื่อ  ", actor="k")
    assert noted.note == "โปรดรอเรียกชื่อ" and noted.steps[1].note == "ตรวจสุขภาพแล้ว รออบรม"
    assert registry.get(number) == noted
    assert back.step_records() == (
        StepRecord(0, NOW, NOW + dt.timedelta(minutes=20)),
        StepRecord(2, NOW + dt.timedelta(minutes=20), NOW + dt.timedelta(minutes=50)),
        StepRecord(1, NOW + dt.timedelta(minutes=50), None),
    )


@pytest.mark.parametrize("step", [-1, 5, True, "1"])
def test_a_step_outside_the_catalog_service_is_refused(registry, step):
    request = _file(registry)  # driving_licence_renewal has 5 steps: 0..4
    with pytest.raises(StepOutOfRange) as raised:
        registry.move_to_step(request.tracking_number, "DLT", step, actor="k")
    assert raised.value.field == "step_index"


def test_waiting_for_the_citizen_becomes_the_clocks_pauses(registry, clock):
    number = _file(registry, "DCA", "passport").tracking_number
    t1 = clock.advance(hours=1)
    registry.set_status(number, "DCA", "waiting_for_citizen", "โปรดนำสูติบัตรฉบับจริงมาแสดง", actor="k")
    t2 = clock.advance(days=2)
    registry.set_status(number, "DCA", "in_progress", actor="k")
    t3 = clock.advance(hours=3)
    request = registry.set_status(number, "DCA", "waiting_for_citizen", actor="k")
    assert request.pauses() == (Pause(t1, t2), Pause(t3, None))
    assert request.note == "โปรดนำสูติบัตรฉบับจริงมาแสดง" and request.status == "waiting_for_citizen"
    assert [c.to_status for c in request.status_changes] == [
        "received", "waiting_for_citizen", "in_progress", "waiting_for_citizen",
    ]


def test_status_checks(registry):
    number = _file(registry).tracking_number
    with pytest.raises(UnknownStatus):
        registry.set_status(number, "DLT", "lost", actor="k")
    registry.set_status(number, "DLT", "in_progress", actor="k")
    with pytest.raises(InvalidTransition):
        registry.set_status(number, "DLT", "received", actor="k")
    same = registry.set_status(number, "DLT", "in_progress", actor="k")  # again: nothing changes
    assert [c.to_status for c in same.status_changes] == ["received", "in_progress"]


@pytest.mark.parametrize("final", ["completed", "rejected", "cancelled"])
def test_a_closed_request_refuses_every_change(registry, clock, final):
    number = _file(registry).tracking_number
    closed_at = clock.advance(hours=2)
    closed = registry.set_status(number, "DLT", final, "ขอบคุณที่ใช้บริการ", actor="k")
    assert closed.is_closed and closed.closed_at == closed_at and closed.current.left_at == closed_at
    for change in (
        lambda: registry.move_to_step(number, "DLT", 1, actor="k"),
        lambda: registry.set_status(number, "DLT", "in_progress", actor="k"),
        lambda: registry.add_note(number, "DLT", "x", actor="k"),
    ):
        with pytest.raises(RequestClosed) as raised:
            change()
        assert raised.value.http_status == 409
    assert registry.get(number) == closed


def test_changes_may_be_dated_back_but_not_before_the_last_change_nor_ahead(registry, clock):
    number = _file(registry, submitted_at=NOW - dt.timedelta(days=3)).tracking_number
    moved = registry.move_to_step(number, "DLT", 1, actor="k", at=NOW - dt.timedelta(days=2))
    assert moved.current.entered_at == NOW - dt.timedelta(days=2)
    with pytest.raises(InvalidInput, match="before the request's last change"):
        registry.set_status(number, "DLT", "in_progress", actor="k", at=NOW - dt.timedelta(days=2, hours=1))
    with pytest.raises(InvalidInput, match="future"):
        registry.add_note(number, "DLT", "x", actor="k", at=NOW + dt.timedelta(days=1))
    with pytest.raises(InvalidInput):
        registry.add_note(number, "DLT", "", actor="k")
    with pytest.raises(InvalidInput, match="at most"):
        registry.add_note(number, "DLT", "ก" * 2001, actor="k")


# -- audit -----------------------------------------------------------------------------------------


def test_every_change_lands_in_the_audit_trail_with_before_and_after(registry, clock):
    number = _file(registry, actor="key-a").tracking_number
    clock.advance(minutes=5)
    registry.move_to_step(number, "DLT", 1, "ตรวจเอกสาร", actor="key-a")
    registry.set_status(number, "DLT", "in_progress", actor="key-b")
    registry.add_note(number, "DLT", "รอผลตรวจ", actor="cli")
    registry.move_to_step(number, "DLT", 1, actor="key-a")  # no change: no row
    registry.add_note(number, "DLT", "ย้อนหลัง", actor="key-a", at=NOW + dt.timedelta(minutes=5))
    trail = list(reversed(registry.audit_trail(number)))
    assert [(e.action, e.actor) for e in trail] == [
        ("create", "key-a"), ("step", "key-a"), ("status", "key-b"), ("note", "cli"), ("note", "key-a"),
    ]
    create, step, status, note, dated = trail
    assert create.before is None and create.after["status"] == "received" and create.after["step_index"] == 0
    assert create.agency_code == "DLT" and create.at == NOW and step.at == NOW + dt.timedelta(minutes=5)
    assert (step.before, step.after) == ({"step_index": 0, "note": None}, {"step_index": 1, "note": "ตรวจเอกสาร"})
    assert (status.before, status.after) == ({"status": "received"}, {"status": "in_progress"})
    assert (note.before, note.after) == ({"note": "ตรวจเอกสาร"}, {"note": "รอผลตรวจ"})
    assert dated.after["effective_at"] == (NOW + dt.timedelta(minutes=5)).isoformat()
    assert registry.audit_trail(agency_code="DCA") == []
    with pytest.raises(InvalidInput):
        registry.add_note(number, "DLT", "x", actor="")


# -- verification -------------------------------------------------------------------------------------


def test_verification_ok_links_the_identity(registry):
    request = _file(registry)
    number = request.tracking_number
    token = verifier_token(SECRET, number, "๙๗๙๗")  # Thai digits normalised
    assert token == verifier_token(SECRET, number.lower(), "97 97") == registry.verifier_token(number, DIGITS)
    assert not registry.is_linked("web:alice", number)
    assert registry.verify(number, token, "web:alice") == "ok"
    assert registry.is_linked("web:alice", number) and not registry.is_linked("web:bob", number)
    assert registry.linked_requests("web:alice") == [request]
    assert registry.linked_requests("web:bob") == []
    assert registry.verify(number, token, "web:alice") == "ok"  # again: still one link
    assert registry.linked_requests("web:alice") == [request]
    with pytest.raises(InvalidDigits):
        verifier_token(SECRET, number, "97979")


def test_an_unknown_number_and_a_wrong_code_both_fail_as_wrong(registry):
    number = _file(registry).tracking_number
    assert registry.verify(number, verifier_token(SECRET, number, "1111"), "web:a") == "wrong"
    assert registry.verify("DLT-2569-000999", verifier_token(SECRET, "DLT-2569-000999", DIGITS), "web:a") == "wrong"
    assert registry.verify(number, "not a token", "web:a") == "wrong"
    assert registry.verify(number, verifier_token("another secret", number, DIGITS), "web:a") == "wrong"
    assert not registry.is_linked("web:a", number)


def test_five_failures_for_one_number_lock_it_for_an_hour(registry, clock):
    number = _file(registry).tracking_number
    good = verifier_token(SECRET, number, DIGITS)
    bad = verifier_token(SECRET, number, "0000")
    results = [registry.verify(number, bad, f"web:guesser{i}") for i in range(5)]  # five identities
    assert results == ["wrong"] * 4 + ["locked"]
    assert registry.verify(number, good, "web:owner") == "locked"  # even the right code, from anyone
    other = _file(registry).tracking_number
    assert registry.verify(other, verifier_token(SECRET, other, DIGITS), "web:owner") == "ok"  # others unaffected
    clock.advance(minutes=59)
    assert registry.verify(number, good, "web:owner") == "locked"
    clock.advance(minutes=2)
    assert registry.verify(number, good, "web:owner") == "ok"


def test_five_failures_from_one_identity_lock_it_for_an_hour(registry, clock):
    numbers = [_file(registry).tracking_number for _ in range(6)]
    results = [registry.verify(n, verifier_token(SECRET, n, "0000"), "line:U123") for n in numbers[:5]]
    assert results == ["wrong"] * 4 + ["locked"]
    last = numbers[5]
    assert registry.verify(last, verifier_token(SECRET, last, DIGITS), "line:U123") == "locked"
    assert registry.verify(last, verifier_token(SECRET, last, DIGITS), "line:U456") == "ok"
    clock.advance(hours=1, seconds=1)
    assert registry.verify(last, verifier_token(SECRET, last, DIGITS), "line:U123") == "ok"


def test_failures_older_than_an_hour_do_not_count(registry, clock):
    number = _file(registry).tracking_number
    bad = verifier_token(SECRET, number, "0000")
    for _ in range(4):
        assert registry.verify(number, bad, "web:x") == "wrong"
    clock.advance(minutes=61)
    for _ in range(4):
        assert registry.verify(number, bad, "web:x") == "wrong"
    assert registry.verify(number, bad, "web:x") == "locked"


def test_verification_digits_and_identities_are_never_stored_in_clear(registry, engine, database_url, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    request = _file(registry)
    number = request.tracking_number
    thai = "๙๗๙๗"
    registry.verify(number, verifier_token(SECRET, number, thai), "web:citizen-session")
    registry.verify(number, verifier_token(SECRET, number, "0000"), "telegram:424242")
    registry.move_to_step(number, "DLT", 1, actor="k")
    rows = _all_rows_as_text(engine)
    for secret in (DIGITS, thai, "citizen-session", "424242", verifier_token(SECRET, number, DIGITS)):
        assert secret not in rows
        assert secret not in caplog.text
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # the file, its WAL and shm
        assert DIGITS.encode() not in raw and thai.encode() not in raw and b"citizen-session" not in raw
    token = verifier_token(SECRET, number, DIGITS)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT verifier_hash FROM service_requests")).scalar()
    assert stored == hashlib.sha256(token.encode()).hexdigest()


# -- the SLA clock ------------------------------------------------------------------------------------


def test_late_requests_are_listed_and_due_delay_notices(registry, clock):
    late = _file(registry, "DCA", "passport", submitted_at=NOW - dt.timedelta(days=30)).tracking_number
    fresh = _file(registry, "DCA", "passport").tracking_number
    done = _file(registry, "DCA", "passport", submitted_at=NOW - dt.timedelta(days=40)).tracking_number
    registry.set_status(done, "DCA", "completed", actor="k", at=NOW - dt.timedelta(days=39))

    assert registry.assess(registry.get(late)).state == "late"
    assert registry.assess(registry.get(fresh)).state in ("on_time", "at_risk")
    assert registry.assess(registry.get(done)).state == "completed_on_time"
    assert [r.tracking_number for r in registry.list_for_agency("DCA", late=True)] == [late]
    assert {r.tracking_number for r in registry.list_for_agency("DCA", late=False)} == {fresh, done}
    assert registry.list_for_agency("DLT", late=True) == []

    due = registry.due_delay_notices()
    assert [(d.request.tracking_number, d.assessment.state) for d in due] == [(late, "late")]
    noticed = registry.record_delay_notice(late)
    assert noticed.last_delay_notice_at == NOW
    assert registry.due_delay_notices() == []
    clock.advance(days=7)
    assert [d.request.tracking_number for d in registry.due_delay_notices(agency_code="DCA")] == [late]
    assert registry.due_delay_notices(agency_code="DLT") == []
    assert registry.audit_trail(late)[0].actor == "system"


def test_a_request_waiting_for_the_citizen_is_not_late(registry, clock):
    number = _file(registry, "DCA", "passport", submitted_at=NOW - dt.timedelta(days=30)).tracking_number
    registry.set_status(number, "DCA", "waiting_for_citizen", actor="k", at=NOW - dt.timedelta(days=29, hours=23))
    assert registry.assess(registry.get(number)).state != "late"
    assert registry.list_for_agency("DCA", late=True) == []


# -- stored due dates: the SQL late filter is the clock's verdict -----------------------------------


def _log_minutes(rng: random.Random, most: float) -> dt.timedelta:
    """Between a minute and `most` minutes, spread evenly over the orders of magnitude."""
    return dt.timedelta(minutes=math.exp(rng.uniform(0, math.log(most))))


def _varied_requests(registry: Registry, count: int, seed: int = 7) -> list[str]:
    """`count` requests of every service, filed up to 90 days before NOW (at any hour), each with
    up to five changes at random later times: steps (also outside the target), in progress,
    waiting for the citizen (pauses that end and pauses that last), approved, and closing; some
    with delay notices sent. Then the cases that must be there whatever the dice say.
    The tracking numbers, in filing order."""
    rng = random.Random(seed)
    services = sorted(CATALOG.services.values(), key=lambda s: s.id)
    numbers = []
    for _ in range(count):
        service = rng.choice(services)
        agency = service.agency
        if service.partner_agencies and rng.random() < 0.2:
            agency = rng.choice(service.partner_agencies)
        filed = NOW - _log_minutes(rng, 90 * 24 * 60)
        number = registry.create_request(agency, service.id, "สำนักงาน", DIGITS, filed, actor="k").tracking_number
        numbers.append(number)
        when = filed
        for _ in range(rng.randrange(6)):
            when += _log_minutes(rng, 20 * 24 * 60)
            if when > NOW:
                break
            kind = rng.choice(("step", "step", "in_progress", "waiting", "waiting", "approved", "close"))
            if kind == "step":
                registry.move_to_step(number, agency, rng.randrange(len(service.steps)), actor="k", at=when)
            elif kind == "close":
                final = rng.choice(("completed", "completed", "rejected", "cancelled"))
                registry.set_status(number, agency, final, actor="k", at=when)
                break
            else:
                status = "waiting_for_citizen" if kind == "waiting" else kind
                registry.set_status(number, agency, status, actor="k", at=when)
        if rng.random() < 0.3:
            registry.record_delay_notice(number, at=filed + (NOW - filed) * rng.random())

    def made(agency: str, service: str, filed_ago: dt.timedelta, *changes: tuple[dt.timedelta, str]) -> str:
        number = registry.create_request(agency, service, "สำนักงาน", DIGITS, NOW - filed_ago, actor="k").tracking_number
        for ago, status in changes:
            registry.set_status(number, agency, status, actor="k", at=NOW - ago)
        numbers.append(number)
        return number

    day, hour = dt.timedelta(days=1), dt.timedelta(hours=1)
    made("DCA", "passport", hour, (hour / 2, "waiting_for_citizen"))  # paused before its deadline
    made("DLT", "vehicle_tax_renewal", 10 * day, (day, "waiting_for_citizen"))  # paused when already late
    made("DCA", "passport", 20 * day, (19 * day, "waiting_for_citizen"), (2 * day, "in_progress"))  # pause ended
    made("BORA", "id_card", 3 * day, (day, "completed"))  # completed late
    made("LAO", "food_shop_permit", 5 * day, (4 * day, "completed"))  # completed on time
    made("DOE", "foreign_worker_permit", 60 * day, (59 * day, "waiting_for_citizen"), (30 * day, "cancelled"))
    # A pause that starts at the very moment of the deadline does not move it.
    edge = made("DCA", "passport", 30 * day)
    deadline = registry.assess(registry.get(edge)).due_at
    registry.set_status(edge, "DCA", "waiting_for_citizen", actor="k", at=deadline)
    # Completed at the very moment of the deadline: on time.
    edge = made("DOE", "foreign_worker_permit", 30 * day)
    deadline = registry.assess(registry.get(edge)).due_at
    registry.set_status(edge, "DOE", "completed", actor="k", at=deadline)
    return numbers


def _requests(registry: Registry, numbers: list[str]) -> list:
    """The requests in filing (id) order, checking that the unfiltered listing pages them newest first."""
    requests = [registry.get(n) for n in numbers]
    grouped: dict[str, list] = {}
    for request in sorted(requests, key=lambda r: (r.submitted_at, numbers.index(r.tracking_number)), reverse=True):
        grouped.setdefault(request.agency_code, []).append(request)
    for agency, expected in grouped.items():
        assert registry.list_for_agency(agency, limit=MAX_LIST) == expected
    return requests


MAX_LIST = 500
PAGES = ((1, 0), (3, 2), (7, 5), (50, 1), (MAX_LIST, 0), (5, 1000))


def _assert_filter_is_the_clock(registry: Registry, requests: list, moment: dt.datetime) -> None:
    """list_for_agency(late=...) (every page, with and without a status) and due_delay_notices give
    exactly what the clock says at `moment` of each of `requests` (all of them, in filing order)."""
    verdicts = {r.tracking_number: registry.sla.is_late(r, moment) for r in requests}
    newest_first = sorted(requests, key=lambda r: (r.submitted_at, requests.index(r)), reverse=True)
    for agency in sorted({r.agency_code for r in requests}):
        for late in (True, False):
            expected = [r for r in newest_first if r.agency_code == agency and verdicts[r.tracking_number] == late]
            for limit, offset in PAGES:
                page = registry.list_for_agency(agency, late=late, limit=limit, offset=offset, now=moment)
                assert page == expected[offset:offset + limit], (agency, late, limit, offset, moment)
            for status in ("waiting_for_citizen", "completed", "in_progress"):
                kept = registry.list_for_agency(agency, status=status, late=late, limit=MAX_LIST, now=moment)
                assert kept == [r for r in expected if r.status == status]
    expected_notices = _assert_notices_are_the_clocks(registry, requests, moment)
    for agency in ("DCA", "DLT"):
        assert [d.request.tracking_number for d in registry.due_delay_notices(now=moment, agency_code=agency)] == [
            n for n, _ in expected_notices if n.startswith(agency + "-")
        ]


def _assert_notices_are_the_clocks(registry: Registry, requests: list, moment: dt.datetime) -> list:
    expected = []
    for request in requests:  # filing order is id order
        assessment = registry.sla.assess_or_none(request, moment)
        if (
            not request.is_closed and assessment is not None
            and registry.sla.notice_due(assessment, request.last_delay_notice_at, moment)
        ):
            expected.append((request.tracking_number, assessment))
    notices = registry.due_delay_notices(now=moment)
    assert [(d.request.tracking_number, d.assessment) for d in notices] == expected
    return expected


def _stored_due(engine) -> dict[str, tuple]:  # noqa: F811
    with transaction(engine) as session:
        rows = session.execute(sa.select(ServiceRequestRow.tracking_number, ServiceRequestRow.due_at,
                                         ServiceRequestRow.due_basis))
        return {number: (due, basis) for number, due, basis in rows}


LATER = (dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(days=3), dt.timedelta(days=40), dt.timedelta(days=400))


def test_the_sql_late_filter_returns_exactly_what_the_clock_judges_late(registry, clock, engine):  # noqa: F811
    requests = _requests(registry, _varied_requests(registry, 300))
    states: dict[tuple[str, bool], int] = {}
    stored = _stored_due(engine)
    for request in requests:
        assessment = registry.assess(request)
        state = (assessment.state, request.status == "waiting_for_citizen")
        states[state] = states.get(state, 0) + 1
        due, basis = stored[request.tracking_number]
        assert basis == registry.sla.basis()
        if request.status == "waiting_for_citizen":  # the deadline is kept only if it passed before the pause
            assert (due is not None) == (assessment.state == "late")
            assert due is None or due == assessment.due_at
        else:
            assert due == assessment.due_at  # as the clock says, whatever the moment
    for needed in (("late", False), ("late", True), ("at_risk", True), ("completed_late", False),
                   ("completed_on_time", False)):
        assert states.get(needed), f"no {needed} request among {states}"
    assert any(r.pauses() and r.pauses()[0].end for r in requests)  # and pauses that ended

    for later in LATER:
        clock.now = NOW + later
        _assert_filter_is_the_clock(registry, requests, clock.now)
    assert _stored_due(engine) == stored  # reading stored nothing: every due date was current


def test_due_dates_missing_or_from_another_catalog_are_judged_by_the_clock_and_stored(registry, clock, engine):  # noqa: F811
    """Rows filed before 0002_due_dates (NULL) or computed under another catalog (another basis,
    here with a due date that would be wrong) give the same results, get stored as they are met,
    and `recompute_due_dates` stores the rest: the same due dates the changes stored."""
    requests = _requests(registry, _varied_requests(registry, 150, seed=11))
    current = _stored_due(engine)
    basis = registry.sla.basis()

    def make_stale() -> int:
        with transaction(writer(engine)) as session:  # as an old database, or another catalog, left them
            session.execute(sa.text("UPDATE service_requests SET due_at = NULL, due_basis = NULL WHERE id % 3 = 0"))
            session.execute(sa.text(
                "UPDATE service_requests SET due_at = submitted_at, due_basis = '0000000000000000' WHERE id % 3 = 1"
            ))
        return sum(b != basis for _, b in _stored_due(engine).values())

    stale = make_stale()
    assert stale == sum(1 for row_id in range(1, len(requests) + 1) if row_id % 3 != 2)
    first = registry.list_for_agency("DCA", late=True, limit=1)
    assert first == [r for r in _newest(requests, "DCA") if registry.sla.is_late(r, NOW)][:1]
    met = sum(_stored_due(engine)[n] == current[n] for n in current) - (len(requests) - stale)
    assert 0 < met < stale  # what the page met is stored, no more
    assert registry.recompute_due_dates() == stale - met
    assert _stored_due(engine) == current and registry.recompute_due_dates() == 0

    make_stale()
    assert len(_assert_notices_are_the_clocks(registry, requests, NOW)) > 10  # stale rows among them
    make_stale()
    for later in LATER[:3]:
        clock.now = NOW + later
        _assert_filter_is_the_clock(registry, requests, clock.now)
    assert _stored_due(engine) == current  # every row was met, so every due date is stored again


def _newest(requests: list, agency: str) -> list:
    return sorted((r for r in requests if r.agency_code == agency), key=lambda r: (r.submitted_at, requests.index(r)),
                  reverse=True)


def test_a_catalog_change_to_the_sla_is_followed(engine, clock):  # noqa: F811
    """A shorter passport target and a service that left the catalog: the new basis makes every
    stored due date stale, and the filter keeps following the clock with the live catalog."""
    live = {"catalog": CATALOG}
    registry = Registry(engine, SECRET, lambda: live["catalog"], clock=clock)
    requests = _requests(registry, _varied_requests(registry, 80, seed=3))
    before = registry.sla.basis()
    late_before = [registry.sla.is_late(r, NOW) for r in requests]
    passport = dataclasses.replace(CATALOG.service("passport"), time_target=Duration(1, "working_days"))
    services = {**CATALOG.services, "passport": passport}
    del services["id_card"]
    live["catalog"] = dataclasses.replace(CATALOG, services=services, fingerprint="changed")
    assert registry.sla.basis() != before
    assert [registry.sla.is_late(r, NOW) for r in requests] != late_before
    _assert_filter_is_the_clock(registry, requests, NOW)
    registry.recompute_due_dates()
    stored = _stored_due(engine)
    for request in requests:
        due, basis = stored[request.tracking_number]
        assert basis == registry.sla.basis()
        assert due is None or request.service_id != "id_card"
    _assert_filter_is_the_clock(registry, requests, NOW + dt.timedelta(days=2))
    # And the basis ignores what the clock does not read (a fee, a summary, the fingerprint alone).
    live["catalog"] = dataclasses.replace(live["catalog"], fingerprint="reworded")
    assert registry.sla.basis() == stored[requests[0].tracking_number][1]


# -- API keys ------------------------------------------------------------------------------------------


def test_api_keys_are_shown_once_and_stored_hashed(registry, engine):  # noqa: F811
    created = registry.api_keys.create("dlt", "DLT e-Service")
    key, info = created.key, created.info
    assert key.startswith(f"slb_{info.key_id}_") and len(key) > 60
    assert info.agency_code == "DLT" and info.active
    principal = registry.api_keys.authenticate(key)
    assert (principal.agency_code, principal.key_id) == ("DLT", info.key_id)
    rows = _all_rows_as_text(engine)
    assert key not in rows and key.rsplit("_", 1)[1] not in rows
    assert hashlib.sha256(key.encode()).hexdigest() in rows

    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for wrong in (forged, "", "Bearer " + key, key + "x", f"slb_{'0' * 16}_{key.rsplit('_', 1)[1]}"):
        assert registry.api_keys.authenticate(wrong) is None
    other = registry.api_keys.create("DCA", "")
    assert other.info.name == "DCA" and registry.api_keys.authenticate(other.key).agency_code == "DCA"

    revoked = registry.api_keys.revoke(info.key_id, actor="cli")
    assert not revoked.active and registry.api_keys.authenticate(key) is None
    assert registry.api_keys.authenticate(other.key) is not None
    assert [k.key_id for k in registry.api_keys.list_keys("DLT")] == [info.key_id]
    with pytest.raises(NotFound):
        registry.api_keys.revoke("ffffffffffffffff")
    with pytest.raises(UnknownAgency):
        registry.api_keys.create("CMP", "complaints are not an agency")
    trail = registry.audit_trail(info.key_id)
    assert [(e.action, e.agency_code) for e in reversed(trail)] == [("key_create", "DLT"), ("key_revoke", "DLT")]
    assert trail[0].before == {"revoked_at": None} and trail[0].after["revoked_at"]


def _all_rows_as_text(engine) -> str:  # noqa: F811
    """Every value in every table, as one string to search."""
    with engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(sa.select(table))
        )
