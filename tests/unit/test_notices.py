"""Messages sent unasked, on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set: the
Licensing Facilitation Act's 7-day delay notice (once per 7 days per request, never twice even when
the scheduler runs twice, on two replicas, or crashes before recording it; only to linked identities
that can be pushed to) and the push after an agency's status change (once per change)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from bot.answers.reply import Reply
from bot.assistant import Assistant
from bot.casework import Registry, verifier_token
from bot.casework.recipients import linked_identities
from bot.catalog import load_catalog
from bot.db import transaction, writer
from bot.db.models import IdentityLinkRow
from bot.delivery import Delivery, DeliveryPolicy, RetryPolicy
from bot.settings import PROJECT_ROOT
from tests.unit.databases import FakeClock, bangkok, database_url, engine  # noqa: F401
from tests.unit.test_delivery import FakeAdapter, until

SECRET = "test-verification-secret"
NOW = bangkok(2026, 6, 15, 10, 0)  # a Monday
CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
DIGITS = "9797"
POLICY = DeliveryPolicy(
    outbox=RetryPolicy(first_delay=0.05, max_delay=0.2, max_attempts=4),
    poll=0.02,
    lease=dt.timedelta(seconds=3),
    notices=False,
    stop_grace=1.0,
)
LINKED = ("line:U-linked", "telegram:4242", "web:session-1", "line:U-blocked")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def registry(engine, clock) -> Registry:  # noqa: F811
    return Registry(engine, SECRET, lambda: CATALOG, clock=clock)


@pytest.fixture
def assistant(clock) -> Assistant:
    return Assistant.from_catalog(CATALOG, clock=clock)


@pytest.fixture
def rig(engine, registry, assistant):  # noqa: F811
    line, telegram = FakeAdapter("line"), FakeAdapter("telegram")
    delivery = Delivery(engine, None, registry, lambda: assistant, policy=POLICY)
    delivery.register(line)
    delivery.register(telegram)
    delivery.notifier.opt_out_sync("line:U-blocked")  # blocked the LINE account (unfollow)
    return delivery, line, telegram


def late_request(registry: Registry, identities=LINKED) -> str:
    number = registry.create_request(
        "DCA", "passport", "กรมการกงสุล ถนนแจ้งวัฒนะ", DIGITS, submitted_at=NOW - dt.timedelta(days=30), actor="k1"
    ).tracking_number
    for identity in identities:
        assert registry.verify(number, verifier_token(SECRET, number, DIGITS), identity) == "ok"
    return number


# -- who is linked ---------------------------------------------------------------------------


def test_a_verified_identity_is_kept_beside_its_hash_for_pushing(engine, registry):  # noqa: F811
    number = late_request(registry, ("line:U1", "web:session-1", "telegram:7"))
    assert linked_identities(engine, number) == ["line:U1", "telegram:7"]  # a web session has no push: hashed only
    assert registry.is_linked("web:session-1", number)
    with transaction(engine) as session:
        kept = set(session.scalars(sa.select(IdentityLinkRow.identity)))
    assert kept == {"line:U1", "telegram:7"} | ({None} if len(kept) > 2 else set())
    assert "web:session-1" not in kept
    assert linked_identities(engine, number.lower().replace("-", " ")) == ["line:U1", "telegram:7"]
    assert linked_identities(engine, "DCA-2569-999999") == [] and linked_identities(engine, "nonsense") == []
    with transaction(writer(engine)) as session:  # a link made before identities were kept: not pushable
        session.execute(sa.update(IdentityLinkRow.__table__).where(
            IdentityLinkRow.__table__.c.identity == "telegram:7").values(identity=None))
    assert linked_identities(engine, number) == ["line:U1"]
    assert registry.verify(number, verifier_token(SECRET, number, DIGITS), "telegram:7") == "ok"  # verified again
    assert linked_identities(engine, number) == ["line:U1", "telegram:7"]
    assert registry.is_linked("telegram:7", number)


# -- delay notices ---------------------------------------------------------------------------


def test_the_delay_notice_goes_once_per_7_days_to_pushable_linked_identities(rig, registry, clock):
    delivery, line, telegram = rig
    number = late_request(registry)
    unlinked_but_known = late_request(registry, ())  # late, but nobody linked: nothing to push
    registry.verify(number, verifier_token(SECRET, number, "0000"), "line:U-stranger")  # wrong code: not linked

    run = delivery.notices.run_once(NOW)
    assert (run.due, run.notified, run.queued, run.unreachable, run.errors) == (2, 1, 2, 1, 0)
    entries = delivery.outbox.entries()
    assert sorted(e.identity for e in entries) == ["line:U-linked", "telegram:4242"]
    assert all(e.key.startswith(f"delay:{number}:") for e in entries)
    assert registry.get(number).last_delay_notice_at == NOW
    assert registry.get(unlinked_but_known).last_delay_notice_at is None  # the agency still owes it in writing

    for later in (NOW, NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=6, hours=23)):
        clock.now = later
        assert delivery.notices.run_once(later).queued == 0
    clock.now = NOW + dt.timedelta(days=7)
    run = delivery.notices.run_once(clock.now)
    assert run.queued == 2 and len(delivery.outbox.entries()) == 4
    assert registry.get(number).last_delay_notice_at == NOW + dt.timedelta(days=7)


def test_the_notice_reads_well_in_thai(rig, registry):
    delivery, line, telegram = rig
    number = late_request(registry, ("line:U1",))
    delivery.notices.run_once(NOW)
    [entry] = delivery.outbox.entries()
    with transaction(delivery.engine) as session:
        payload = session.execute(sa.text("SELECT payload FROM outbound_messages")).scalar_one()
    if isinstance(payload, str):
        import json

        payload = json.loads(payload)
    [message] = payload
    text = message["text"]
    assessment = registry.assess(registry.get(number), NOW)
    assert message["buttons"] == []  # a pushed message offers no button the conversation did not offer
    assert number in text and "หนังสือเดินทาง" in text
    assert f"ล่าช้ากว่ากำหนด {assessment.late_working_days} วันทำการ" in text
    assert "กรมการกงสุล" in text and "สายด่วน" in text and "7 วัน" in text
    assert "พ.ร.บ.การอำนวยความสะดวก" in text


def test_a_crash_before_recording_does_not_send_the_notice_twice(rig, registry, monkeypatch):
    delivery, line, telegram = rig
    number = late_request(registry)
    real_record = registry.record_delay_notice

    def crash(*args, **kwargs):
        raise RuntimeError("the gateway died here")

    monkeypatch.setattr(registry, "record_delay_notice", crash)
    run = delivery.notices.run_once(NOW)
    assert (run.queued, run.notified, run.errors) == (2, 0, 1)
    assert registry.get(number).last_delay_notice_at is None
    monkeypatch.setattr(registry, "record_delay_notice", real_record)
    run = delivery.notices.run_once(NOW + dt.timedelta(minutes=5))  # the next pass: same basis, same keys
    assert (run.queued, run.notified) == (0, 1)
    assert len(delivery.outbox.entries()) == 2
    assert registry.get(number).last_delay_notice_at == NOW + dt.timedelta(minutes=5)


def test_two_replicas_running_the_scheduler_at_once_send_one_notice(rig, registry, engine, assistant):  # noqa: F811
    delivery, line, telegram = rig
    other = Delivery(engine, None, registry, lambda: assistant, policy=POLICY)
    other.register(FakeAdapter("line"))
    other.register(FakeAdapter("telegram"))
    late_request(registry)
    start = threading.Barrier(2)
    runs = []

    def replica(d: Delivery) -> None:
        start.wait()
        runs.append(d.notices.run_once(NOW))

    threads = [threading.Thread(target=replica, args=(d,)) for d in (delivery, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(run.queued for run in runs) == 2  # one per identity, whoever queued it
    assert len(delivery.outbox.entries()) == 2


async def test_the_scheduler_delivers_the_notice_through_the_channels(rig, registry):
    delivery, line, telegram = rig
    number = late_request(registry)
    await delivery.start()
    try:
        run = await asyncio.to_thread(delivery.notices.run_once, NOW)
        assert run.queued == 2
        await until(lambda: line.delivered and telegram.delivered)
        await asyncio.sleep(0.2)
        [(identity, [text], _)] = line.delivered
        assert identity == "line:U-linked" and number in text
        assert [who for who, _, _ in telegram.delivered] == ["telegram:4242"]
    finally:
        await delivery.stop()


# -- status changes --------------------------------------------------------------------------


def test_a_status_change_is_pushed_once_per_change(rig, registry, clock):
    delivery, line, telegram = rig
    number = late_request(registry)
    clock.advance(minutes=1)
    changed = registry.set_status(number, "DCA", "waiting_for_citizen", note="กรุณานำสำเนาทะเบียนบ้านมาเพิ่ม",
                                  actor="k1")
    assert delivery.status_changed_sync(changed) == 2
    entries = delivery.outbox.entries()
    assert sorted(e.identity for e in entries) == ["line:U-linked", "telegram:4242"]
    assert all(e.key.startswith(f"status:{number}:") for e in entries)

    # The agency's system retries the same call: the registry records no change, nothing is pushed.
    clock.advance(minutes=1)
    retried = registry.set_status(number, "DCA", "waiting_for_citizen", actor="k1")
    assert retried.updated_at == changed.updated_at
    assert delivery.status_changed_sync(retried) == 0
    assert delivery.status_changed_sync(changed) == 0  # or the gateway calls twice

    clock.advance(minutes=1)
    moved = registry.move_to_step(number, "DCA", 1, actor="k1")
    assert delivery.status_changed_sync(moved) == 2
    assert len(delivery.outbox.entries()) == 4


def test_the_status_message_says_what_changed(rig, registry, assistant, clock):
    delivery, line, telegram = rig
    number = late_request(registry, ("line:U1",))
    clock.advance(minutes=1)
    changed = registry.set_status(number, "DCA", "waiting_for_citizen", note="กรุณานำสำเนาทะเบียนบ้านมาเพิ่ม",
                                  actor="k1")
    reply = assistant.answers.status_changed(changed)
    assert isinstance(reply, Reply) and reply.buttons == ()
    assert number in reply.text and "รอเอกสารหรือการดำเนินการจากผู้ยื่นคำขอ" in reply.text
    assert "กรุณานำสำเนาทะเบียนบ้านมาเพิ่ม" in reply.text and "หนังสือเดินทาง" in reply.text
    closed = registry.set_status(number, "DCA", "completed", actor="k1")
    assert "ดำเนินการเสร็จสิ้น" in assistant.answers.status_changed(closed).text
    assert "ขั้นตอนปัจจุบัน" not in assistant.answers.status_changed(closed).text


def test_a_request_nobody_can_be_pushed_about_pushes_nothing(rig, registry, clock):
    delivery, line, telegram = rig
    number = late_request(registry, ("web:session-1",))
    clock.advance(minutes=1)
    changed = registry.set_status(number, "DCA", "in_progress", actor="k1")
    assert delivery.status_changed_sync(changed) == 0
    assert delivery.outbox.entries() == []
