"""The durable inbox, dispatcher and outbox, on SQLite always and on PostgreSQL when TEST_DATABASE_URL
is set: dedupe across a restart, per-identity order with identities concurrent, retries with backoff,
giving up with one "send again", the apology once per outage, opt-outs, RetryLater's `after`, and
at-most-once delivery with two dispatchers or two senders racing on one database. The channel is a
fake in-memory adapter (the real LINE and Telegram adapters are tested against fake platforms)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import replace
from itertools import pairwise
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from bot.answers.reply import Button, Reply
from bot.db import make_engine, transaction, writer
from bot.db.models import InboundEventRow, OutboundMessageRow
from bot.delivery import (
    SEND_AGAIN,
    Delivery,
    DeliveryPolicy,
    DurableInbox,
    InboundEvent,
    RetryLater,
    RetryPolicy,
    Undeliverable,
    apology_due,
)
from bot.delivery.queue import LeasedTable
from tests.unit.databases import database_url, engine  # noqa: F401

FAST = DeliveryPolicy(
    inbox=RetryPolicy(first_delay=0.05, max_delay=0.2, max_attempts=4, max_age=dt.timedelta(minutes=5), max_errors=3),
    outbox=RetryPolicy(first_delay=0.05, max_delay=0.2, max_attempts=4, max_age=dt.timedelta(minutes=5), max_errors=3),
    poll=0.02,
    lease=dt.timedelta(seconds=3),
    handle_timeout=5.0,
    deliver_timeout=5.0,
    notices=False,
    stop_grace=1.0,
)


def utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def event(identity: str, event_id: str, text: str = "", kind: str = "message", channel: str = "line") -> InboundEvent:
    return InboundEvent(channel, event_id, identity, kind, utc(), text or event_id, reply_token=None, extra={"n": 1})


class FakeAdapter:
    """A channel in memory: `handle` answers through the outbox, `deliver` records what was pushed.

    `fail_handle(text)` and `fail_deliver(key)` say, per attempt, what to raise (None: succeed)."""

    def __init__(self, name: str = "line", handle_seconds: float = 0.0) -> None:
        self.name = name
        self.handle_seconds = handle_seconds
        self.attempts: list[tuple[str, str, float]] = []  # (identity, text, monotonic time)
        self.handled: list[tuple[str, str]] = []
        self.delivered: list[tuple[str, list[str], str]] = []
        self.deliver_times: dict[str, list[float]] = defaultdict(list)
        self.fail_handle: Callable[[InboundEvent, int], BaseException | None] = lambda e, n: None
        self.fail_deliver: Callable[[str, int], BaseException | None] = lambda key, n: None
        self.active: dict[str, int] = defaultdict(int)
        self.max_active_per_identity = 0
        self.max_active = 0
        self._running = 0
        self._handle_tries: dict[str, int] = defaultdict(int)
        self._deliver_tries: dict[str, int] = defaultdict(int)

    async def handle(self, event: InboundEvent, conversation: Any, outbox: Any) -> None:
        self.attempts.append((event.identity, event.text, time.monotonic()))
        self._handle_tries[event.event_id] += 1
        self.active[event.identity] += 1
        self._running += 1
        self.max_active_per_identity = max(self.max_active_per_identity, self.active[event.identity])
        self.max_active = max(self.max_active, self._running)
        try:
            await asyncio.sleep(self.handle_seconds)
            failure = self.fail_handle(event, self._handle_tries[event.event_id])
            if failure is not None:
                raise failure
            self.handled.append((event.identity, event.text))  # before the answer, which may arrive at once
            if event.kind in ("message", "button"):
                answer = [Reply(f"ตอบ {event.text}")]
                await outbox.enqueue(event.identity, answer, f"{self.name}:{event.event_id}:answer")
        finally:
            self.active[event.identity] -= 1
            self._running -= 1

    async def deliver(self, identity: str, replies: list[Reply], retry_key: str) -> None:
        self._deliver_tries[retry_key] += 1
        self.deliver_times[retry_key].append(time.monotonic())
        failure = self.fail_deliver(retry_key, self._deliver_tries[retry_key])
        if failure is not None:
            raise failure
        self.delivered.append((identity, [r.text for r in replies], retry_key))

    def texts_to(self, identity: str) -> list[str]:
        return [text for who, texts, _ in self.delivered if who == identity for text in texts]


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def delivery(engine, *adapters: FakeAdapter, policy: DeliveryPolicy = FAST) -> Delivery:  # noqa: F811
    d = Delivery(engine, conversation=None, registry=None, assistant_provider=lambda: None, policy=policy)
    for adapter in adapters:
        d.register(adapter)
    return d


def states(engine, table) -> dict[str, str]:  # noqa: F811
    key = table.c.event_id if table is InboundEventRow.__table__ else table.c.key
    with transaction(engine) as session:
        return dict(session.execute(sa.select(key, table.c.state)).all())


INBOX = InboundEventRow.__table__
OUTBOX = OutboundMessageRow.__table__


# -- the inbox -------------------------------------------------------------------------------


async def test_a_redelivered_event_is_dropped_also_after_a_restart(engine, database_url):  # noqa: F811
    first = DurableInbox(engine)
    assert await first.accept(event("line:U1", "ev-1", "สวัสดี"))
    assert not await first.accept(event("line:U1", "ev-1", "สวัสดี"))
    restarted = make_engine(database_url)  # a new process: new engine, new inbox, same database
    try:
        again = DurableInbox(restarted)
        assert not await again.accept(event("line:U1", "ev-1", "สวัสดี"))
        assert await again.accept(event("telegram:7", "ev-1", channel="telegram"))  # ids are per channel
    finally:
        restarted.dispose()
    with transaction(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(INBOX)).scalar_one() == 2


async def test_an_event_must_come_from_its_channels_identity(engine):  # noqa: F811
    with pytest.raises(ValueError):
        await DurableInbox(engine).accept(event("web:abc", "ev-1"))


async def test_one_identity_in_order_and_one_at_a_time_while_identities_run_concurrently(engine):  # noqa: F811
    adapter = FakeAdapter(handle_seconds=0.03)
    d = delivery(engine, adapter)
    await d.start()
    try:
        users = [f"line:U{i}" for i in range(4)]
        sent = {user: [f"{user[-2:]}-{n}" for n in range(6)] for user in users}

        async def write(user: str) -> None:
            for n, text in enumerate(sent[user]):
                assert await d.inbox.accept(event(user, f"{user}-{n}", text))

        await asyncio.gather(*(write(user) for user in users))
        await until(lambda: len(adapter.delivered) == 24)
        for user in users:
            assert [text for who, text in adapter.handled if who == user] == sent[user]
            assert adapter.texts_to(user) == [f"ตอบ {text}" for text in sent[user]]  # pushes in order too
        assert adapter.max_active_per_identity == 1
        assert adapter.max_active > 1  # different identities were handled at the same time
        await until(lambda: set(states(engine, INBOX).values()) == {"done"})
        with transaction(engine) as session:  # the citizen's words are not kept once answered
            assert set(session.scalars(sa.select(INBOX.c.text))) == {""}
    finally:
        await d.stop()


async def test_events_accepted_before_a_crash_are_answered_after_the_restart(engine):  # noqa: F811
    inbox = DurableInbox(engine)  # the webhook accepted these, then the gateway died
    await inbox.accept(event("line:U1", "ev-1", "หนึ่ง"))
    await inbox.accept(event("line:U1", "ev-2", "สอง"))
    # ... and it had claimed the first one: its lease is left behind by a dead process.
    dead = LeasedTable(engine, INBOX, lease=dt.timedelta(seconds=2), owner="dead-replica")
    assert [row["event_id"] for row in dead.claim(5, utc)] == ["ev-1"]
    adapter = FakeAdapter()
    d = delivery(engine, adapter)
    await d.start()
    try:
        await until(lambda: len(adapter.delivered) == 2)
        assert adapter.handled == [("line:U1", "หนึ่ง"), ("line:U1", "สอง")]
    finally:
        await d.stop()


async def test_retry_with_backoff_keeps_the_order_and_does_not_block_others(engine):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_handle = lambda e, n: RetryLater("rasa is down") if e.text == "first" and n <= 2 else None
    d = delivery(engine, adapter)
    await d.start()
    try:
        await d.inbox.accept(event("line:A", "a1", "first"))
        await d.inbox.accept(event("line:A", "a2", "second"))
        await d.inbox.accept(event("line:B", "b1", "other"))
        await until(lambda: len(adapter.delivered) == 3)
        tries = [at for who, text, at in adapter.attempts if text == "first"]
        assert len(tries) == 3
        gaps = [later - earlier for earlier, later in pairwise(tries)]
        assert gaps[0] >= 0.04 and gaps[1] >= 0.08  # 0.05 s, then 0.1 s (less 10% jitter)
        assert [text for who, text in adapter.handled if who == "line:A"] == ["first", "second"]
        assert adapter.handled.index(("line:B", "other")) < adapter.handled.index(("line:A", "first"))
        assert sorted(key for _, _, key in adapter.delivered) == ["line:a1:answer", "line:a2:answer", "line:b1:answer"]
        assert d.dispatcher.retried == 2
    finally:
        await d.stop()


async def test_giving_up_tells_the_citizen_once_to_send_again(engine, caplog):  # noqa: F811
    adapter = FakeAdapter()
    down = True
    adapter.fail_handle = lambda e, n: RetryLater("the conversation is unavailable") if down else None
    d = delivery(engine, adapter)
    await d.start()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.delivery"):
            for n in range(3):
                await d.inbox.accept(event("line:A", f"a{n}", f"ข้อความ {n}"))
            await until(lambda: adapter.delivered)
            await asyncio.sleep(0.3)  # nothing more comes
        assert adapter.delivered == [("line:A", [SEND_AGAIN], "resend:line:a0")]
        assert len([a for a in adapter.attempts if a[1] == "ข้อความ 0"]) == FAST.inbox.max_attempts
        assert not [a for a in adapter.attempts if a[1] != "ข้อความ 0"]  # the ones waiting behind were failed with it
        assert states(engine, INBOX) == {"a0": "failed", "a1": "failed", "a2": "failed"}
        assert any("gave up on line event a0" in r.getMessage() for r in caplog.records)
        health = await d.health(max_age=0)
        assert health["inbox"]["failed_24h"] == 3 and health["inbox"]["given_up"] == 3
        down = False  # the citizen sends again once it is back: answered as usual
        await d.inbox.accept(event("line:A", "a3", "อีกครั้ง"))
        await until(lambda: len(adapter.delivered) == 2)
        assert adapter.delivered[1] == ("line:A", ["ตอบ อีกครั้ง"], "line:a3:answer")
    finally:
        await d.stop()


async def test_an_unexpected_error_gives_up_on_that_event_only(engine):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_handle = lambda e, n: ValueError("adapter bug") if e.text == "poison" else None
    d = delivery(engine, adapter)
    await d.start()
    try:
        await d.inbox.accept(event("line:A", "a1", "poison"))
        await d.inbox.accept(event("line:A", "a2", "fine"))
        await until(lambda: len(adapter.delivered) == 2)
        assert len([a for a in adapter.attempts if a[1] == "poison"]) == FAST.inbox.max_errors
        assert adapter.delivered == [
            ("line:A", [SEND_AGAIN], "resend:line:a1"),
            ("line:A", ["ตอบ fine"], "line:a2:answer"),
        ]
    finally:
        await d.stop()


async def test_an_event_that_cannot_be_answered_fails_without_a_message(engine):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_handle = lambda e, n: Undeliverable("blocked")
    d = delivery(engine, adapter)
    await d.start()
    try:
        await d.inbox.accept(event("line:A", "a1"))
        await until(lambda: states(engine, INBOX) == {"a1": "failed"})
        await asyncio.sleep(0.1)
        assert len(adapter.attempts) == 1 and adapter.delivered == []
    finally:
        await d.stop()


async def test_the_apology_goes_once_per_outage(engine):  # noqa: F811
    """The adapter's side of Rasa being down: apologise when `apology_due` says so, raise RetryLater."""
    adapter = FakeAdapter()
    down = True

    async def handle(event: InboundEvent, conversation: Any, outbox: Any) -> None:
        adapter.attempts.append((event.identity, event.text, time.monotonic()))
        if down:
            if await apology_due(outbox, event.identity):
                await outbox.enqueue(event.identity, [Reply("ขออภัย ระบบขัดข้อง")], f"line:{event.event_id}:sorry")
            raise RetryLater("unavailable")
        await outbox.enqueue(event.identity, [Reply(f"ตอบ {event.text}")], f"line:{event.event_id}:answer")

    adapter.handle = handle  # type: ignore[method-assign]
    policy = replace(FAST, inbox=RetryPolicy(first_delay=0.05, max_delay=0.05, max_attempts=1000))
    d = delivery(engine, adapter, policy=policy)
    await d.start()
    try:
        await d.inbox.accept(event("line:A", "a1", "หนึ่ง"))
        await d.inbox.accept(event("line:A", "a2", "สอง"))
        await d.inbox.accept(event("line:B", "b1", "บี"))
        await until(lambda: len([a for a in adapter.attempts if a[1] == "หนึ่ง"]) >= 4)
        assert adapter.texts_to("line:A") == ["ขออภัย ระบบขัดข้อง"]
        assert adapter.texts_to("line:B") == ["ขออภัย ระบบขัดข้อง"]
        down = False
        await until(lambda: len(adapter.delivered) == 5)
        assert adapter.texts_to("line:A") == ["ขออภัย ระบบขัดข้อง", "ตอบ หนึ่ง", "ตอบ สอง"]
        down = True  # a new outage: a new apology
        await d.inbox.accept(event("line:A", "a3", "สาม"))
        await until(lambda: len(adapter.delivered) == 6)
        assert adapter.texts_to("line:A")[-1] == "ขออภัย ระบบขัดข้อง"
        down = False
        await until(lambda: len(adapter.delivered) == 7)
    finally:
        await d.stop()


async def test_unfollow_stops_pushes_and_follow_resumes_them(engine):  # noqa: F811
    adapter = FakeAdapter()
    d = delivery(engine, adapter)
    await d.start()
    try:
        assert d.notifier.can_push("line:A")
        assert not d.notifier.can_push("web:abc") and not d.notifier.can_push("telegram:1")  # no such adapter
        await d.inbox.accept(event("line:A", "u1", kind="unfollow"))
        await until(lambda: d.notifier.opted_out("line:A"))
        assert not await d.notifier.notify("line:A", Reply("ข่าว"), "news-1")
        await d.outbox.enqueue("line:A", [Reply("ค้างอยู่")], "queued-before")  # queued: cancelled, not sent
        await until(lambda: d.outbox.state_of("queued-before") == "cancelled")
        await d.inbox.accept(event("line:A", "f1", kind="follow"))
        await until(lambda: not d.notifier.opted_out("line:A"))
        assert await d.notifier.notify("line:A", Reply("ข่าว"), "news-1")
        await until(lambda: adapter.delivered == [("line:A", ["ข่าว"], "news-1")])
    finally:
        await d.stop()


async def test_two_dispatchers_never_handle_an_event_twice_nor_one_identity_at_once(engine, database_url):  # noqa: F811
    adapter = FakeAdapter(handle_seconds=0.01)  # shared: it sees both replicas' calls
    other_engine = make_engine(database_url)
    replicas = [delivery(engine, adapter), delivery(other_engine, adapter)]
    try:
        for replica in replicas:
            await replica.start()
        users = [f"line:U{i}" for i in range(6)]
        for n in range(8):
            for user in users:
                assert await replicas[n % 2].inbox.accept(event(user, f"{user}-{n}", f"{user}-{n}"))
        await until(lambda: len(adapter.delivered) == 48, timeout=30)
        assert len(adapter.attempts) == 48 and adapter.max_active_per_identity == 1
        for user in users:
            assert [text for who, text in adapter.handled if who == user] == [f"{user}-{n}" for n in range(8)]
        assert len({key for _, _, key in adapter.delivered}) == 48
    finally:
        for replica in replicas:
            await replica.stop()
        other_engine.dispose()


# -- the outbox ------------------------------------------------------------------------------


async def test_a_key_is_queued_and_delivered_once(engine):  # noqa: F811
    adapter = FakeAdapter()
    d = delivery(engine, adapter)
    buttons = (Button("ค่าธรรมเนียม", '/ask_fee{"service": "passport"}'),)
    assert await d.outbox.enqueue("line:A", [Reply("หนึ่ง", buttons), Reply("สอง")], "k1")
    assert not await d.outbox.enqueue("line:A", [Reply("อื่น")], "k1")
    await d.start()
    try:
        await until(lambda: adapter.delivered)
        assert not await d.outbox.enqueue("line:A", [Reply("อื่น")], "k1")  # also once it was sent
        await asyncio.sleep(0.2)
        assert adapter.delivered == [("line:A", ["หนึ่ง", "สอง"], "k1")]
        assert [e.state for e in d.outbox.entries()] == ["sent"]
    finally:
        await d.stop()


async def test_the_outbox_honours_retry_after(engine):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_deliver = lambda key, n: RetryLater("429", after=0.6) if n == 1 else None
    d = delivery(engine, adapter)
    await d.start()
    try:
        await d.outbox.enqueue("line:A", [Reply("ข่าว")], "k1")
        await until(lambda: adapter.delivered)
        first, second = adapter.deliver_times["k1"]
        assert second - first >= 0.6  # not the 0.05 s backoff
        assert d.outbox.entries()[0].attempts == 2
    finally:
        await d.stop()


async def test_the_outbox_backs_off_then_gives_up_visibly(engine, caplog):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_deliver = lambda key, n: RetryLater("503") if key == "k1" else (
        Undeliverable("400 bad request") if key == "k2" else None)
    d = delivery(engine, adapter)
    await d.start()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.delivery"):
            await d.outbox.enqueue("line:A", [Reply("ข่าว")], "k1")
            await d.outbox.enqueue("line:B", [Reply("ข่าว")], "k2")
            await until(lambda: set(states(engine, OUTBOX).values()) == {"failed"})
        times = adapter.deliver_times["k1"]
        assert len(times) == FAST.outbox.max_attempts and len(adapter.deliver_times["k2"]) == 1
        assert all(later - earlier >= 0.04 for earlier, later in pairwise(times))
        assert adapter.delivered == []
        failed = d.outbox.entries("failed")
        assert {e.key: e.last_error.split(":")[0] for e in failed} == {"k1": "gave up after 4 attempts", "k2":
                                                                      "undeliverable"}
        assert any("gave up on k1" in r.getMessage() for r in caplog.records)
        health = await d.health(max_age=0)
        assert health["outbox"]["failed_24h"] == 2 and health["outbox"]["pending"] == 0
    finally:
        await d.stop()


async def test_a_later_message_to_an_identity_waits_for_the_earlier_one(engine):  # noqa: F811
    adapter = FakeAdapter()
    adapter.fail_deliver = lambda key, n: RetryLater("429", after=0.3) if key == "first" and n == 1 else None
    d = delivery(engine, adapter)
    await d.start()
    try:
        await d.outbox.enqueue("line:A", [Reply("1")], "first")
        await d.outbox.enqueue("line:A", [Reply("2")], "second")
        await d.outbox.enqueue("line:B", [Reply("b")], "other")
        await until(lambda: len(adapter.delivered) == 3)
        assert [key for _, _, key in adapter.delivered] == ["other", "first", "second"]
    finally:
        await d.stop()


async def test_a_claim_that_waited_for_the_write_lock_is_not_born_expired(engine):  # noqa: F811
    await DurableInbox(engine).accept(event("line:U1", "ev-1", "หนึ่ง"))
    table = LeasedTable(engine, INBOX, lease=dt.timedelta(seconds=0.3), owner="slow-replica")

    def claim() -> tuple[list, dt.datetime]:
        return table.claim(1, utc), utc()

    # Another replica holds SQLite's write lock for longer than a lease (PostgreSQL does not block).
    with transaction(writer(engine)) as other:
        other.execute(sa.update(INBOX).where(INBOX.c.event_id == "nothing").values(text=""))
        claiming = asyncio.create_task(asyncio.to_thread(claim))
        await asyncio.sleep(0.5)
    [row], claimed_at = await claiming
    assert row["lease_until"] > claimed_at


async def test_two_senders_racing_deliver_each_key_once(engine, database_url):  # noqa: F811
    adapter = FakeAdapter()

    async def slow_deliver(identity: str, replies: list[Reply], retry_key: str) -> None:
        await asyncio.sleep(0.005)
        adapter.delivered.append((identity, [r.text for r in replies], retry_key))

    adapter.deliver = slow_deliver  # type: ignore[method-assign]
    other_engine = make_engine(database_url)
    replicas = [delivery(engine, adapter), delivery(other_engine, adapter)]
    try:
        keys = [f"k{n}" for n in range(80)]
        # Both started before anything is queued: on SQLite a starting gateway frees every lease
        # (one process per SQLite file, so any lease is a crashed run's), which would free the
        # other replica's. The race under test is the claiming.
        await asyncio.gather(*(replica.start() for replica in replicas))
        for n, key in enumerate(keys):
            assert await replicas[n % 2].outbox.enqueue(f"line:U{n % 10}", [Reply(str(n))], key)
        await until(lambda: len(adapter.delivered) >= 80, timeout=30)
        await asyncio.sleep(0.3)
        assert sorted(key for _, _, key in adapter.delivered) == sorted(keys)  # each once
        for user in range(10):
            assert adapter.texts_to(f"line:U{user}") == [str(n) for n in range(80) if n % 10 == user]
    finally:
        for replica in replicas:
            await replica.stop()
        other_engine.dispose()


async def test_stopping_gives_unfinished_work_back(engine):  # noqa: F811
    adapter = FakeAdapter(handle_seconds=5)
    d = delivery(engine, adapter)
    await d.start()
    await d.inbox.accept(event("line:A", "a1"))
    await until(lambda: adapter.attempts)
    await d.stop()  # grace 1 s, then cancelled
    with transaction(engine) as session:
        row = session.execute(sa.select(INBOX.c.state, INBOX.c.attempts, INBOX.c.lease_owner)).one()
    assert tuple(row) == ("pending", 0, None)
    adapter.handle_seconds = 0
    again = delivery(engine, adapter)
    await again.start()
    try:
        await until(lambda: adapter.delivered)
    finally:
        await again.stop()
