"""Complaints on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set: routing (table-driven),
deadlines on the SLA clock, idempotent filing (also concurrent), photos, sealed contact with consent,
officers' actions limited to their agency with an audit trail, misconduct reports that never expose
the reporter to the agency complained about, escalation with a controllable clock (once per missed
deadline), the citizen's view without an oracle, reopening once, notifications queued with the
change, and signed webhooks to a receiver that fails and times out at random."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from alembic import command

from bot.calendar import ThaiCalendar
from bot.casework import InvalidInput, InvalidTransition, NotFound, Registry, StepOutOfRange, UnknownAgency
from bot.casework.errors import UnknownService, UnknownStatus
from bot.catalog import load_catalog
from bot.catalog.schema import ComplaintTargets, Duration
from bot.complaints import (
    Desk,
    Officer,
    PhotoStore,
    Subject,
    acknowledge,
    case_for_officer,
    complaint_dues,
    contact_for_officer,
    deliveries,
    escalate_overdue,
    file_complaint,
    history,
    my_complaints,
    purge_expired_contacts,
    queue,
    reopen,
    reply,
    resend,
    resolve,
    revoke,
    route,
    set_status,
    status_for_reporter,
    subscribe,
    transfer,
    verifier_token,
    verify,
)
from bot.complaints.contact import Sealer, normalize_phone
from bot.complaints.service import ComplaintService
from bot.complaints.webhooks import WebhookSender, signature, verify_signature
from bot.db import migrate, transaction, writer
from bot.db.migrations import alembic_config
from bot.db.models import ComplaintRouteRow, ComplaintRow, OutboundMessageRow, WebhookDeliveryRow
from bot.delivery.queue import RetryPolicy
from bot.misconduct import mentions_misconduct
from bot.settings import PROJECT_ROOT
from tests.unit.databases import FakeClock, bangkok, database_url, engine  # noqa: F401

SECRET = "test-complaints-secret"
NOW = bangkok(2026, 6, 15, 10, 0)  # a Monday
CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
LINE = "line:U0123456789abcdef"
PHONE = "081-234-5678"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def _variant() -> Any:
    """The catalog with id_card's third step done by the district office alone (DOPA, a partner)."""
    id_card = CATALOG.services["id_card"]
    steps = list(id_card.steps)
    steps[2] = dataclasses.replace(steps[2], unit="นายทะเบียนอำเภอ")
    changed = dataclasses.replace(id_card, steps=steps)
    return dataclasses.replace(CATALOG, services={**CATALOG.services, "id_card": changed})


VARIANT = _variant()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def desk(engine, clock, tmp_path) -> Desk:  # noqa: F811
    return Desk(engine, SECRET, lambda: CATALOG, photos=PhotoStore(tmp_path / "photos"), clock=clock)


def _file(desk: Desk, key: str = "k1", reporter: str = LINE, **kw: Any):
    kw.setdefault("description", "เจ้าหน้าที่พูดจาไม่สุภาพ รอคิวนานกว่า 3 ชั่วโมง")
    return file_complaint(desk, reporter=reporter, idempotency_key=key, **kw)


def _outbox(engine) -> list[OutboundMessageRow]:  # noqa: F811
    with transaction(engine) as session:
        return list(session.scalars(sa.select(OutboundMessageRow).order_by(OutboundMessageRow.id)))


DLT = Officer("DLT", actor="officer:dlt1")
DOPA = Officer("DOPA", actor="officer:dopa1")
PACC = Officer("PACC", actor="officer:pacc1")
CENTRAL = Officer("OPM", actor="officer:central1", central=True)


# -- routing (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "catalog, subject, misconduct, agency, about, rule",
    [
        # The example: the conversation was about ID cards, the citizen named ขนส่ง.
        (CATALOG, Subject("id_card", "DLT"), False, "DLT", "DLT", "named_agency"),
        (CATALOG, Subject(agency_code="RTP"), False, "RTP", "RTP", "named_agency"),
        (VARIANT, Subject("id_card", step_index=2), False, "DOPA", "DOPA", "step_unit"),
        # "นายทะเบียนอำเภอหรือนายทะเบียนท้องถิ่น" names two agencies: the owner receives it.
        (CATALOG, Subject("id_card", step_index=2), False, "BORA", "BORA", "service"),
        # "งานทะเบียนและภาษีรถ" reads like the civil registry, which takes no part in vehicle tax.
        (CATALOG, Subject("vehicle_tax_renewal", step_index=0), False, "DLT", "DLT", "service"),
        (CATALOG, Subject("criminal_record_check", step_index=2), False, "RTP", "RTP", "step_unit"),
        (CATALOG, Subject("passport"), False, "DCA", "DCA", "service"),
        (CATALOG, Subject("driving_licence_renewal"), True, "PACC", "DLT", "service"),
        (CATALOG, Subject("passport", "RTP"), True, "PACC", "RTP", "named_agency"),
        (CATALOG, Subject(agency_code="PACC"), True, "OPM", "PACC", "named_agency"),
        (CATALOG, Subject(), True, "PACC", None, "central"),
        (CATALOG, Subject(), False, "OPM", None, "central"),
        (CATALOG, Subject("no_such_service"), False, "OPM", None, "central"),
    ],
)
def test_routing_table(catalog, subject, misconduct, agency, about, rule):
    decision = route(catalog, subject, misconduct)
    assert (decision.agency_code, decision.about_agency, decision.rule, decision.misconduct) == (
        agency, about, rule, misconduct,
    )
    assert " / " in decision.reason  # Thai, then English
    if misconduct:
        assert "ไม่เปิดเผยข้อมูลติดต่อ" in decision.reason and "withheld" in decision.reason
    if rule == "central" and not misconduct:
        assert "1111" in decision.reason


@pytest.mark.parametrize(
    "text, expected",
    [
        ("เจ้าหน้าที่เรียกเงินใต้โต๊ะ 500 บาท", True),
        ("เขาเรียก เงิน เพิ่มถึงจะทำให้", True),
        ("มีการรับสินบนที่ด่านตรวจ", True),
        ("ตำรวจรีดไถคนขับ", True),
        ("ใช้อำนาจข่มขู่ประชาชน", True),
        ("เจ้าหน้าที่ทุจริต", True),
        ("ต้องจ่ายค่าน้ำร้อนน้ำชา", True),
        ("รอคิวนานมาก เจ้าหน้าที่พูดจาไม่ดี", False),
        ("ค่าธรรมเนียมแพงไป", False),
        ("", False),
    ],
)
def test_misconduct_words(text, expected):
    assert mentions_misconduct(text) is expected


# -- deadlines ------------------------------------------------------------------------------------


def test_deadlines_count_working_days_and_office_hours():
    cal = ThaiCalendar(CATALOG.special_days)
    dlt = CATALOG.agency("DLT")
    monday = complaint_dues(dlt, cal, NOW)
    assert monday.acknowledge_by == bangkok(2026, 6, 16, 16, 30)  # the day of filing does not count
    assert monday.resolve_by == bangkok(2026, 7, 6, 16, 30)  # 15 working days
    friday_evening = complaint_dues(dlt, cal, bangkok(2026, 6, 19, 18, 0))
    assert friday_evening.acknowledge_by == bangkok(2026, 6, 22, 16, 30)  # starts Monday 08:30, Monday counts
    quick = dataclasses.replace(dlt, complaint_targets=ComplaintTargets(Duration(2, "hours"), Duration(3, "days")))
    late_monday = complaint_dues(quick, cal, bangkok(2026, 6, 15, 15, 30))
    assert late_monday.acknowledge_by == bangkok(2026, 6, 16, 9, 30)  # 1 h on Monday, 1 h on Tuesday


# -- filing ----------------------------------------------------------------------------------------


def test_filing_routes_numbers_and_sets_deadlines(desk, engine):  # noqa: F811
    complaint = _file(desk, service_id="id_card", agency_code="dlt", place="ขนส่งพื้นที่ 1", latitude=13.75,
                      longitude=100.5)
    assert complaint.tracking_number == "CMP-2569-000001"
    assert (complaint.agency_code, complaint.about_agency, complaint.misconduct) == ("DLT", "DLT", False)
    assert "กรมการขนส่งทางบก" in complaint.route_reason
    assert complaint.status == "received" and complaint.anonymous
    assert complaint.acknowledge_due_at == bangkok(2026, 6, 16, 16, 30)
    assert complaint.resolve_due_at == bangkok(2026, 7, 6, 16, 30)
    assert complaint.next_due_at == complaint.acknowledge_due_at
    assert (complaint.place, complaint.latitude, complaint.longitude) == ("ขนส่งพื้นที่ 1", 13.75, 100.5)
    assert _file(desk, "k2", service_id="passport").tracking_number == "CMP-2569-000002"
    # Complaint numbers and DLT's request numbers are separate sequences.
    registry = Registry(engine, SECRET, lambda: CATALOG, clock=lambda: NOW)
    assert registry.create_request("DLT", "vehicle_tax_renewal", "x", "1234", actor="k").tracking_number == (
        "DLT-2569-000001"
    )
    case = case_for_officer(desk, complaint.tracking_number, DLT)
    assert [(r.kind, r.to_agency) for r in case.routes] == [("filed", "DLT")]
    assert [e.action for e in history(desk, complaint.tracking_number, DLT)] == ["file"]


def test_the_same_key_files_once_and_keys_are_per_reporter(desk, engine):  # noqa: F811
    first = _file(desk, "form-1")
    again = _file(desk, "form-1", description="แก้ข้อความแล้วกดส่งซ้ำ")
    other = _file(desk, "form-1", reporter="telegram:42")
    assert again == first
    assert other.tracking_number != first.tracking_number
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM complaints")).scalar() == 2


def test_concurrent_double_submits_file_one_and_distinct_keys_never_share_a_number(desk, engine):  # noqa: F811
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def submit(worker: int) -> None:
        try:
            start.wait()
            for i in range(5):
                # Every worker submits the shared form, and one of its own, interleaved.
                key = "shared" if i % 2 == 0 else f"own-{worker}-{i}"
                number = _file(desk, key).tracking_number
                with lock:
                    results.append(f"{key}={number}")
        except BaseException as exc:  # noqa: B036 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    shared = {r.split("=")[1] for r in results if r.startswith("shared=")}
    own = [r.split("=")[1] for r in results if r.startswith("own-")]
    assert len(shared) == 1 and len(own) == len(set(own)) == 16
    serials = sorted(int(n.rsplit("-", 1)[1]) for n in shared | set(own))
    assert serials == list(range(1, 18))  # gap-free: a racer's number was rolled back
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM complaints")).scalar() == 17


@pytest.mark.parametrize(
    "kw, error, field",
    [
        ({"description": "  "}, InvalidInput, "description"),
        ({"description": "ก" * 2001}, InvalidInput, "description"),
        ({"service_id": "nope"}, UnknownService, "service_id"),
        ({"agency_code": "CMP"}, UnknownAgency, "agency_code"),
        ({"agency_code": "XYZ"}, UnknownAgency, "agency_code"),
        ({"step_index": 1}, StepOutOfRange, "step_index"),
        ({"service_id": "passport", "step_index": 9}, StepOutOfRange, "step_index"),
        ({"reporter": "sms:0812345678"}, InvalidInput, "reporter"),
        ({"reporter": "line:"}, InvalidInput, "reporter"),
        ({"phone": PHONE}, InvalidInput, "consent"),
        ({"phone": "12345", "consent": True}, InvalidInput, "phone"),
        ({"latitude": 13.7}, InvalidInput, "latitude"),
        ({"latitude": 95.0, "longitude": 100.0}, InvalidInput, "latitude"),
        ({"photo_ids": ["../../etc/passwd"]}, InvalidInput, "photo_ids"),
        ({"idempotency_key": ""}, InvalidInput, "idempotency_key"),
    ],
)
def test_filing_is_checked(desk, kw, error, field):
    kw.setdefault("idempotency_key", "k")
    with pytest.raises(error) as raised:
        file_complaint(desk, **{"reporter": LINE, "description": "เรื่องร้องเรียน", **kw})
    assert raised.value.field == field


def test_photos_are_stored_outside_the_database_by_type_and_size(desk, tmp_path):
    store = desk.photos
    jpeg, png = store.save(JPEG), store.save(PNG)
    assert (jpeg.media_type, png.media_type) == ("image/jpeg", "image/png") and jpeg.size == len(JPEG)
    assert store.read(jpeg.id) == JPEG and store.path(png.id).is_relative_to(tmp_path / "photos")
    with pytest.raises(InvalidInput):
        store.save(b"GIF89a" + b"\x00" * 10)
    with pytest.raises(InvalidInput):
        store.save(b"")
    with pytest.raises(InvalidInput):
        PhotoStore(tmp_path / "small", max_bytes=50).save(JPEG)
    assert store.info("../" + jpeg.id) is None and store.path("x.jpg") is None
    complaint = _file(desk, photo_ids=[jpeg.id, png.id, jpeg.id])
    assert [p.id for p in complaint.photos] == [jpeg.id, png.id]
    with pytest.raises(InvalidInput):
        _file(desk, "k2", photo_ids=[store.save(JPEG).id for _ in range(6)])


def test_the_phone_is_kept_sealed_with_consent_and_retention_and_never_in_clear(desk, engine, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    complaint = _file(desk, phone=PHONE, consent=True)
    assert not complaint.anonymous
    digits = normalize_phone(PHONE)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT * FROM complaints")).mappings().one()
        dumped = " ".join(str(v) for v in row.values())
        audit_rows = " ".join(str(r) for r in connection.execute(sa.text("SELECT * FROM audit_log")).all())
    assert digits not in dumped and PHONE not in dumped
    assert digits not in audit_rows and digits not in caplog.text
    assert Sealer(SECRET, "complaint-contact").open(row["contact_sealed"]) == digits
    with pytest.raises(ValueError):
        Sealer("another-secret", "complaint-contact").open(row["contact_sealed"])
    assert row["consent_at"] is not None and row["contact_retain_until"] is not None
    assert contact_for_officer(desk, complaint.tracking_number, CENTRAL) == digits
    assert [e.action for e in history(desk, complaint.tracking_number, CENTRAL)][0] == "view_contact"


# -- officers ---------------------------------------------------------------------------------------


def test_an_officer_sees_and_acts_only_on_their_agencys_complaints(desk):
    mine = _file(desk, "a", agency_code="DLT")
    theirs = _file(desk, "b", agency_code="DOPA")
    assert [c.tracking_number for c in queue(desk, DLT)] == [mine.tracking_number]
    assert {c.tracking_number for c in queue(desk, CENTRAL)} == {mine.tracking_number, theirs.tracking_number}
    assert [c.tracking_number for c in queue(desk, CENTRAL, agency_code="DOPA")] == [theirs.tracking_number]
    for act in (
        lambda: case_for_officer(desk, theirs.tracking_number, DLT),
        lambda: acknowledge(desk, theirs.tracking_number, DLT),
        lambda: reply(desk, theirs.tracking_number, DLT, "ตอบ"),
        lambda: transfer(desk, theirs.tracking_number, DLT, "DLT", "ของเรา"),
        lambda: contact_for_officer(desk, theirs.tracking_number, DLT),
        lambda: case_for_officer(desk, "CMP-2569-999999", DLT),
    ):
        with pytest.raises(NotFound):
            act()
    assert acknowledge(desk, theirs.tracking_number, CENTRAL).status == "acknowledged"


def test_acknowledge_reply_resolve_notify_the_reporter_once_each(desk, engine, clock):  # noqa: F811
    number = _file(desk, agency_code="DLT").tracking_number
    clock.advance(hours=1)
    acked = acknowledge(desk, number, DLT)
    assert acked.status == "acknowledged" and acked.acknowledged_at == clock.now
    assert acked.next_due_at == acked.resolve_due_at
    assert acknowledge(desk, number, DLT) == acked  # a retry changes, records and sends nothing
    clock.advance(hours=1)
    replied = reply(desk, number, DLT, "ขออภัยในความไม่สะดวก กำลังตรวจสอบกับสำนักงาน")
    assert replied.status == "acknowledged"
    set_status(desk, number, DLT, "in_progress")
    with pytest.raises(InvalidInput):
        resolve(desk, number, DLT, " ")
    done = resolve(desk, number, DLT, "ตักเตือนเจ้าหน้าที่และจัดอบรมการบริการแล้ว")
    assert done.status == "resolved" and done.next_due_at is None
    sent = _outbox(engine)
    assert [m.key.rsplit(":", 1)[1] for m in sent] == ["status", "reply", "status"]
    assert {m.identity for m in sent} == {LINE} and len({m.key for m in sent}) == 3
    ack_text, reply_text, resolved_text = (m.payload[0]["text"] for m in sent)
    assert number in ack_text and "ตอบรับแล้ว" in ack_text and "6 ก.ค. 2569 เวลา 16:30 น." in ack_text
    assert "กำลังตรวจสอบกับสำนักงาน" in reply_text and "กรมการขนส่งทางบก" in reply_text
    assert "ดำเนินการแล้วเสร็จ" in resolved_text and "ได้ 1 ครั้ง" in resolved_text
    assert f"เรื่องร้องเรียน {number} ถึงไหนแล้ว" in resolved_text, "how to reopen it, in words that reach the status answer"
    for text in (ack_text, reply_text, resolved_text):
        assert "ครับ" not in text and "ค่ะ" not in text
    actions = [e.action for e in history(desk, number, DLT)]
    assert actions == ["status", "status", "reply", "status", "file"]
    status = status_for_reporter(desk, number, LINE)
    assert status.status == "resolved" and status.latest_reply.kind == "resolution" and status.can_reopen


def test_a_reply_acknowledges_and_web_reporters_get_no_push(desk, engine):  # noqa: F811
    number = _file(desk, reporter="web:abc", agency_code="DLT").tracking_number
    assert reply(desk, number, DLT, "รับเรื่องแล้ว").status == "acknowledged"
    assert _outbox(engine) == []
    assert status_for_reporter(desk, number, "web:abc").latest_reply.text == "รับเรื่องแล้ว"


def test_status_transitions_are_checked(desk):
    number = _file(desk, agency_code="DLT").tracking_number
    with pytest.raises(UnknownStatus):
        set_status(desk, number, DLT, "done")
    with pytest.raises(InvalidTransition):
        set_status(desk, number, DLT, "reopened")  # the reporter's to do
    assert set_status(desk, number, DLT, "received").version == 1  # as it is: nothing changes
    acknowledge(desk, number, DLT)
    with pytest.raises(InvalidTransition):
        set_status(desk, number, DLT, "received")
    set_status(desk, number, DLT, "closed", "ซ้ำกับเรื่อง CMP-2569-000009")
    for act in (lambda: reply(desk, number, DLT, "x"), lambda: set_status(desk, number, DLT, "in_progress")):
        with pytest.raises(InvalidTransition):
            act()
    with pytest.raises(InvalidTransition):
        transfer(desk, number, DLT, "DOPA", "ผิดหน่วย")


def test_a_transfer_keeps_the_number_and_restarts_the_deadlines_at_the_new_agency(desk, engine, clock):  # noqa: F811
    number = _file(desk, service_id="driving_licence_renewal").tracking_number
    acknowledge(desk, number, DLT)
    clock.now = bangkok(2026, 6, 17, 9, 0)  # Wednesday
    with pytest.raises(InvalidInput):
        transfer(desk, number, DLT, "DLT", "ของเราเอง")
    with pytest.raises(UnknownAgency):
        transfer(desk, number, DLT, "XYZ", "ไม่มี")
    moved = transfer(desk, number, DLT, "dopa", "เป็นเรื่องของที่ว่าการอำเภอ")
    assert (moved.tracking_number, moved.agency_code, moved.status) == (number, "DOPA", "received")
    assert moved.acknowledge_due_at == bangkok(2026, 6, 18, 16, 30) and moved.acknowledged_at is None
    with pytest.raises(NotFound):
        case_for_officer(desk, number, DLT)
    case = case_for_officer(desk, number, DOPA)
    assert [(r.kind, r.from_agency, r.to_agency) for r in case.routes] == [("filed", None, "DLT"),
                                                                           ("transfer", "DLT", "DOPA")]
    assert "เป็นเรื่องของที่ว่าการอำเภอ" in case.routes[-1].reason == case.complaint.route_reason
    entry = history(desk, number, DOPA)[0]
    assert (entry.action, entry.actor, entry.before["agency_code"], entry.after["agency_code"]) == (
        "transfer", "officer:dlt1", "DLT", "DOPA",
    )
    texts = [m.payload[0]["text"] for m in _outbox(engine)]
    assert "กรมการปกครอง" in texts[-1] and "เลขที่เรื่องเดิม" in texts[-1]


def test_a_misconduct_report_never_gives_the_accused_agency_the_reporters_contact(desk):
    complaint = _file(desk, description="เจ้าหน้าที่ขนส่งเรียกเงินใต้โต๊ะ 500 บาท", agency_code="DLT",
                      phone=PHONE, consent=True)
    number = complaint.tracking_number
    assert (complaint.agency_code, complaint.about_agency, complaint.misconduct) == ("PACC", "DLT", True)
    assert case_for_officer(desk, number, PACC).contact == "phone"
    assert contact_for_officer(desk, number, PACC) == "0812345678"
    with pytest.raises(NotFound):
        case_for_officer(desk, number, DLT)
    transfer(desk, number, PACC, "DLT", "ขอข้อเท็จจริงจากหน่วยงาน")
    case = case_for_officer(desk, number, DLT)
    assert case.contact == "withheld" and "0812345678" not in repr(case)
    assert contact_for_officer(desk, number, DLT) is None
    # Even a central officer of the accused agency does not get it.
    accused_opm = _file(desk, "k2", description="สำนักนายกรัฐมนตรีเรียกรับสินบน", agency_code="OPM",
                        phone=PHONE, consent=True)
    assert accused_opm.agency_code == "PACC"
    assert case_for_officer(desk, accused_opm.tracking_number, CENTRAL).contact == "withheld"
    assert contact_for_officer(desk, accused_opm.tracking_number, CENTRAL) is None
    # The flag passed explicitly wins over the words.
    fine = _file(desk, "k3", description="เรียกเงินค่าปรับตามกฎหมาย", agency_code="DLT", misconduct=False)
    assert fine.agency_code == "DLT"


# -- escalation ---------------------------------------------------------------------------------------


async def test_the_gateways_deadline_watch_escalates_on_its_own(desk, clock):  # noqa: F811
    number = _file(desk, service_id="id_card").tracking_number
    clock.now = bangkok(2026, 6, 16, 17, 0)  # past the acknowledge-by deadline
    service = ComplaintService(desk, interval=dt.timedelta(seconds=0.05))
    await service.start()
    try:
        for _ in range(100):
            if case_for_officer(desk, number, CENTRAL).complaint.agency_code == "DOPA":
                break
            await asyncio.sleep(0.05)
        assert case_for_officer(desk, number, CENTRAL).complaint.agency_code == "DOPA"
    finally:
        await service.stop()


def test_escalation_moves_up_once_per_missed_deadline(desk, engine, clock):  # noqa: F811
    number = _file(desk, service_id="id_card").tracking_number  # BORA, whose parent is DOPA
    assert escalate_overdue(desk, bangkok(2026, 6, 16, 16, 30)) == []  # due, not yet past
    up = escalate_overdue(desk, bangkok(2026, 6, 16, 17, 0))
    assert [(e.tracking_number, e.breach.split(":")[0], e.from_agency, e.to_agency) for e in up] == [
        (number, "acknowledge", "BORA", "DOPA"),
    ]
    assert escalate_overdue(desk, bangkok(2026, 6, 16, 17, 0)) == []
    assert escalate_overdue(desk, bangkok(2026, 6, 17, 12, 0)) == []
    case = case_for_officer(desk, number, DOPA)
    assert case.complaint.status == "received" and case.complaint.escalation_count == 1
    assert case.complaint.acknowledge_due_at == bangkok(2026, 6, 17, 16, 30)  # from 17:00: next morning, that day
    assert "ยกระดับ" in case.complaint.route_reason and case.routes[-1].actor == "system"
    # DOPA misses it too: it has no parent, so the centre (OPM) gets it.
    assert [e.to_agency for e in escalate_overdue(desk, bangkok(2026, 6, 17, 17, 0))] == ["OPM"]
    # At the centre there is nowhere higher: the missed deadline is recorded once.
    at_centre = escalate_overdue(desk, bangkok(2026, 6, 19, 9, 0))
    assert [(e.from_agency, e.to_agency) for e in at_centre] == [("OPM", "OPM")]
    assert escalate_overdue(desk, bangkok(2026, 6, 22, 9, 0)) == []
    assert queue(desk, CENTRAL, overdue=True, now=bangkok(2026, 6, 22, 9, 0))[0].tracking_number == number
    actions = [e.action for e in history(desk, number, CENTRAL)]
    assert actions == ["overdue", "escalate", "escalate", "file"]
    pushes = [m for m in _outbox(engine)]
    assert len(pushes) == 2 and all("ไม่ทันกำหนด" in m.payload[0]["text"] for m in pushes)


def test_an_unresolved_complaint_escalates_after_its_resolve_deadline(desk):
    number = _file(desk, agency_code="LAO").tracking_number
    acknowledge(desk, number, Officer("LAO", actor="officer:lao"))
    assert escalate_overdue(desk, bangkok(2026, 7, 6, 16, 0)) == []
    up = escalate_overdue(desk, bangkok(2026, 7, 6, 17, 0))
    assert [(e.breach.split(":")[0], e.to_agency) for e in up] == [("resolve", "DLA")]


def test_concurrent_escalations_escalate_once(desk, engine):  # noqa: F811
    numbers = [_file(desk, f"k{i}", service_id="id_card").tracking_number for i in range(5)]
    results: list[Any] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        results.extend(escalate_overdue(desk, bangkok(2026, 6, 16, 17, 0)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.tracking_number for e in results) == numbers
    with transaction(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).where(ComplaintRouteRow.kind == "escalation")) == 5


# -- the citizen's side -----------------------------------------------------------------------------------


def test_only_the_reporter_or_a_verified_identity_sees_the_status(desk, engine):  # noqa: F811
    number = _file(desk, agency_code="DLT", phone=PHONE, consent=True).tracking_number
    anonymous = _file(desk, "k2", agency_code="DLT").tracking_number
    registry = Registry(engine, SECRET, lambda: CATALOG, clock=lambda: NOW)
    request = registry.create_request("DLT", "vehicle_tax_renewal", "x", "5678", actor="k").tracking_number
    mine = status_for_reporter(desk, number, LINE)
    assert (mine.status, mine.agency_code, mine.agency_name, mine.latest_reply) == (
        "received", "DLT", "กรมการขนส่งทางบก", None,
    )
    stranger = "telegram:999"
    assert {status_for_reporter(desk, n, stranger) for n in (number, "CMP-2569-999999", "junk", request)} == {None}
    assert verify(desk, number, verifier_token(desk, number, "1111"), stranger) == "wrong"
    assert verify(desk, anonymous, verifier_token(desk, anonymous, "0000"), stranger) == "wrong"
    assert verify(desk, number, verifier_token(desk, number, "๕๖๗๘"), stranger) == "ok"
    assert status_for_reporter(desk, number, stranger).tracking_number == number
    assert status_for_reporter(desk, anonymous, stranger) is None
    for _ in range(3):
        verify(desk, anonymous, verifier_token(desk, anonymous, "0000"), "web:x")
    assert verify(desk, anonymous, verifier_token(desk, anonymous, "0000"), "web:x") == "locked"
    assert [s.tracking_number for s in my_complaints(desk, LINE)] == [anonymous, number]


def test_a_resolved_complaint_reopens_once_with_the_reason(desk, engine, clock):  # noqa: F811
    number = _file(desk, agency_code="DLT").tracking_number
    with pytest.raises(InvalidTransition):
        reopen(desk, number, LINE, "ยังไม่ได้แก้")
    resolve(desk, number, DLT, "แก้ไขแล้ว")
    with pytest.raises(NotFound):
        reopen(desk, number, "line:someone-else", "ยังไม่ได้แก้")
    clock.now = bangkok(2026, 6, 22, 10, 0)
    status = reopen(desk, number, LINE, "ยังไม่ได้รับการแก้ไข เจ้าหน้าที่คนเดิมยังพูดจาไม่ดี")
    assert (status.status, status.agency_code, status.can_reopen) == ("reopened", "DLT", False)
    assert status.acknowledge_due_at == bangkok(2026, 6, 23, 16, 30)
    case = case_for_officer(desk, number, DLT)
    assert case.messages[-1].author == "citizen" and "คนเดิม" in case.messages[-1].text
    assert [c.tracking_number for c in queue(desk, DLT)] == [number]
    resolve(desk, number, DLT, "ย้ายเจ้าหน้าที่แล้ว")
    with pytest.raises(InvalidTransition):
        reopen(desk, number, LINE, "อีกครั้ง")
    assert "ได้ 1 ครั้ง" not in _outbox(engine)[-1].payload[0]["text"]


def test_contacts_are_erased_after_their_retention_date(desk, engine):  # noqa: F811
    number = _file(desk, agency_code="DLT", phone=PHONE, consent=True).tracking_number
    assert purge_expired_contacts(desk, bangkok(2027, 6, 14, 0, 0)) == 0
    assert purge_expired_contacts(desk, bangkok(2027, 6, 16, 0, 0)) == 1
    assert contact_for_officer(desk, number, DLT) is None
    assert verify(desk, number, verifier_token(desk, number, "5678"), "web:x") == "wrong"
    assert case_for_officer(desk, number, DLT).contact == "anonymous"


# -- webhooks -----------------------------------------------------------------------------------------------


def test_webhook_signatures_verify_and_refuse_tampering_and_old_timestamps():
    body = '{"a":1}'
    header = signature("s3cret", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("s3cret", header, body, now=1_700_000_100)
    assert not verify_signature("s3cret", header, body + " ", now=1_700_000_100)
    assert not verify_signature("other", header, body, now=1_700_000_100)
    assert not verify_signature("s3cret", header, body, now=1_700_001_000)
    assert not verify_signature("s3cret", "garbage", body)


def test_subscriptions_are_checked_and_their_secrets_sealed(desk, engine):  # noqa: F811
    for url in ("http://agency.example/hook", "ftp://127.0.0.1/x", "https://user:pw@agency.example/", ""):
        with pytest.raises(InvalidInput):
            subscribe(desk, "DLT", url, actor="cli")
    with pytest.raises(UnknownAgency):
        subscribe(desk, "CMP", "https://agency.example/hook", actor="cli")
    subscription, secret = subscribe(desk, "dlt", "https://agency.example/hook", actor="cli")
    assert subscription.agency_code == "DLT" and secret.startswith("whsec_")
    with engine.connect() as connection:
        assert secret not in str(connection.execute(sa.text("SELECT * FROM webhook_subscriptions")).all())
    number = _file(desk, agency_code="DLT", phone=PHONE, consent=True).tracking_number
    [delivery] = deliveries(desk, agency_code="DLT")
    assert delivery.key == f"complaint.received:{number}:v1:s{subscription.id}" and delivery.state == "pending"
    with transaction(engine) as session:
        body = json.loads(session.scalar(sa.select(WebhookDeliveryRow.body)))
    assert body["event"] == "complaint.received" and body["data"]["tracking_number"] == number
    assert body["data"]["contact"] == "phone" and "0812345678" not in json.dumps(body)
    revoke(desk, subscription.id, actor="cli")
    assert deliveries(desk, agency_code="DLT")[0].state == "cancelled"
    with pytest.raises(NotFound):
        revoke(desk, subscription.id, actor="cli", agency_code="DOPA")


class Receiver:
    """A local agency system that answers 500 or too late at random, and remembers what arrived."""

    def __init__(self, secrets_by_path: dict[str, str], *, fail: float, slow: float, seed: int = 7) -> None:
        self.secrets = secrets_by_path
        self.fail, self.slow = fail, slow
        self.random = random.Random(seed)
        self.arrivals: list[tuple[str, str, str]] = []  # (path, idempotency key, body)
        self.processed: dict[str, str] = {}  # idempotency key -> body: what a deduplicating receiver keeps
        self.bad_signatures = 0
        self.failed = self.timed_out = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        key = request.headers["Idempotency-Key"]
        if not verify_signature(self.secrets[request.path], request.headers["X-SLA-Signature"], body):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.arrivals.append((request.path, key, body))
        roll = self.random.random()
        if roll < self.fail:
            self.failed += 1
            return web.Response(status=500)
        self.processed.setdefault(key, body)  # stored before the answer, which may come too late
        if roll < self.fail + self.slow:
            self.timed_out += 1
            await asyncio.sleep(0.5)
        return web.Response(status=200)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


FAST = RetryPolicy(first_delay=0.02, max_delay=0.2, max_attempts=60, max_age=dt.timedelta(hours=1), max_errors=60)


async def _until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _states(engine) -> Counter:  # noqa: F811
    with transaction(engine) as session:
        return Counter(session.scalars(sa.select(WebhookDeliveryRow.state)))


async def test_every_event_reaches_a_flaky_receiver_once_by_key_across_a_restart(engine, tmp_path):  # noqa: F811
    desk = Desk(engine, SECRET, lambda: CATALOG)  # real time, like the sender's
    receiver = Receiver({}, fail=0.3, slow=0.15)
    url = await receiver.start()
    try:
        for path, agency in (("/dlt-a", "DLT"), ("/dlt-b", "DLT"), ("/dca", "DCA")):
            _, secret = subscribe(desk, agency, url + path, actor="cli")
            receiver.secrets[path] = secret
        for i in range(8):
            await asyncio.to_thread(_file, desk, f"a{i}", agency_code="DLT" if i % 2 else "DCA")
        sender = WebhookSender(desk, policy=FAST, poll=0.05, timeout=0.3, workers=4)
        await sender.start()
        await _until(lambda: _states(engine)["sent"] >= 4)
        await sender.stop(grace=0.1)  # the gateway restarts: nothing in flight is lost
        for i in range(8, 16):
            await asyncio.to_thread(_file, desk, f"a{i}", agency_code="DLT" if i % 2 else "DCA")
        sender = WebhookSender(desk, policy=FAST, poll=0.05, timeout=0.3, workers=4)
        await sender.start()
        await _until(lambda: _states(engine)["pending"] == 0)
        await sender.stop(grace=0.1)
    finally:
        await receiver.stop()
    with transaction(engine) as session:
        expected = set(session.scalars(sa.select(WebhookDeliveryRow.key)))
    assert len(expected) == 8 * 2 + 8  # DLT's complaints to both of its receivers, DCA's to one
    assert _states(engine) == Counter({"sent": len(expected)})
    assert receiver.bad_signatures == 0 and receiver.failed > 0 and receiver.timed_out > 0
    assert set(receiver.processed) == expected  # every event arrived ...
    for path, key, body in receiver.arrivals:  # ... and a repeat is recognisably the same event
        assert body == receiver.processed.get(key, body) and json.loads(body)["id"] == key
        assert key.endswith(f":s{[p for p in receiver.secrets].index(path) + 1}")
    repeats = Counter(key for _, key, _ in receiver.arrivals)
    assert sum(repeats.values()) > len(expected)  # retries happened, all under the same keys


async def test_a_dead_letter_is_listed_and_resent(engine):  # noqa: F811
    desk = Desk(engine, SECRET, lambda: CATALOG)  # real time, like the sender's
    receiver = Receiver({}, fail=1.0, slow=0.0)
    url = await receiver.start()
    try:
        _, receiver.secrets["/dlt"] = subscribe(desk, "DLT", url + "/dlt", actor="cli")
        number = (await asyncio.to_thread(_file, desk, agency_code="DLT")).tracking_number
        policy = dataclasses.replace(FAST, max_attempts=3)
        sender = WebhookSender(desk, policy=policy, poll=0.05, timeout=1.0)
        await sender.start()
        await _until(lambda: _states(engine)["failed"] == 1)
        [dead] = deliveries(desk, state="failed")
        assert dead.attempts == 3 and "HTTP 500" in dead.last_error and number in dead.key
        assert len(receiver.arrivals) == 3
        with pytest.raises(NotFound):
            resend(desk, dead.key, actor="officer:dlt1", agency_code="DOPA")
        with pytest.raises(NotFound):
            resend(desk, "no-such-key", actor="cli")
        receiver.fail = 0.0
        assert resend(desk, dead.key, actor="officer:dlt1", agency_code="DLT")
        await _until(lambda: _states(engine)["sent"] == 1)
        assert not resend(desk, dead.key, actor="cli")  # sent: nothing to resend
        await sender.stop(grace=0.1)
    finally:
        await receiver.stop()
    assert set(receiver.processed) == {dead.key}


# -- storage ------------------------------------------------------------------------------------------------


def test_the_migration_downgrades_to_0003_and_upgrades_again(desk, engine):  # noqa: F811
    _file(desk)
    command.downgrade(alembic_config(writer(engine)), "0003_delivery")
    tables = set(sa.inspect(engine).get_table_names())
    assert not tables & {"complaints", "complaint_routes", "webhook_deliveries", "webhook_subscriptions"}
    assert {"service_requests", "outbound_messages", "tracking_sequences"} <= tables
    migrate(engine)
    with transaction(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ComplaintRow)) == 0
