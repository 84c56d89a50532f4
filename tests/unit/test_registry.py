"""The registry on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set: tracking numbers
(also under concurrent creation), agencies' isolation, step and status history, closed requests,
the audit trail, verification with lockout, the SLA hooks and API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
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
from bot.db.models import Base
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
