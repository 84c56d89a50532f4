"""The tracker store saves exactly the events added since it loaded or created a conversation."""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.runtime import rasa_patches
from bot.runtime.tracker_store import SessionTrackerStore

DOMAIN = Domain.from_yaml("version: '3.1'\nintents: [greet]\n")
PG_ENV = "TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Tracker store settings: a fresh SQLite file, or the PostgreSQL database of TEST_DATABASE_URL."""
    if request.param == "sqlite":
        return {"dialect": "sqlite", "db": str(tmp_path / "t.db")}
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    parts = urlsplit(url)
    return {
        "dialect": "postgresql", "url": parts.hostname, "port": parts.port or 5432, "db": parts.path.lstrip("/"),
        "username": parts.username or "", "password": parts.password or "",
    }


def _sender(channel: str) -> str:
    return f"{channel}:{uuid.uuid4().hex}"  # conversations of other runs may share the PostgreSQL table


def _stored(store: SessionTrackerStore, sender: str) -> list[str]:
    with store.session_scope() as session:
        return [row.type_name for row in session.query(store.SQLEvent).filter_by(sender_id=sender).order_by("id")]


def test_new_and_loaded_conversations_store_each_event_once(database: dict):
    rasa_patches.install()
    store = SessionTrackerStore(DOMAIN, **database)
    a = _sender("web")

    async def scenario() -> None:
        tracker = await store.get_or_create_tracker(a)  # new: created, saved with its first event
        assert _stored(store, a) == ["action"]
        tracker.update(UserUttered("สวัสดี", {"name": "greet"}))
        await store.save(tracker)
        loaded = await store.retrieve(a)
        assert loaded is not None and len(loaded.events) == 2
        loaded.update(ActionExecuted("utter_greet"))
        loaded.update(ActionExecuted("action_listen"))
        await store.save(loaded)
        await store.save(loaded)  # saving again adds nothing
        assert _stored(store, a) == ["action", "user", "action", "action"]
        loaded.update(SessionStarted())  # a new session: only it is loaded from now on
        loaded.update(ActionExecuted("action_listen"))
        await store.save(loaded)
        assert [e.type_name for e in (await store.retrieve(a)).events] == ["session_started", "action"]
        # Rasa's own store reads what this one wrote, row for row.
        rasa = SQLTrackerStore(DOMAIN, **database)
        full = await rasa.retrieve_full_tracker(a)
        assert [e.as_dict() for e in full.events] == [e.as_dict() for e in loaded.events]
        current = (await store.retrieve(a)).events
        assert [e.as_dict() for e in (await rasa.retrieve(a)).events] == [e.as_dict() for e in current]
        with rasa.session_scope() as session:
            greeting = session.query(rasa.SQLEvent).filter_by(sender_id=a, type_name="user").one()
            assert (greeting.intent_name, greeting.action_name) == ("greet", None)

    asyncio.run(scenario())


def test_a_kept_tracker_is_used_only_while_it_is_what_the_database_holds(database: dict, monkeypatch):
    rasa_patches.install()
    store = SessionTrackerStore(DOMAIN, **database)
    other_replica = SessionTrackerStore(DOMAIN, **database)
    u1 = _sender("line")
    loads: list[str] = []  # conversations rebuilt from the database
    rebuild = store._retrieve

    async def counted_rebuild(sender_id: str, fetch_events_from_all_sessions: bool):
        loads.append(sender_id)
        return await rebuild(sender_id, fetch_events_from_all_sessions)

    monkeypatch.setattr(store, "_retrieve", counted_rebuild)

    def as_dicts(tracker: DialogueStateTracker) -> list[dict]:
        return [e.as_dict() for e in tracker.events]

    async def scenario() -> None:
        tracker = await store.get_or_create_tracker(u1)
        tracker.update(SessionStarted())
        tracker.update(UserUttered("สวัสดี", {"name": "greet"}))
        await store.save(tracker)
        tracker = await store.retrieve(u1)  # loaded: the current session only
        assert [e.type_name for e in tracker.events] == ["session_started", "user"]
        await store.save(tracker)
        loads.clear()
        kept = await store.retrieve(u1)  # the next turn: from memory, a copy of what was saved
        assert loads == [] and kept is not tracker and as_dicts(kept) == as_dicts(tracker)
        assert kept.current_state() == tracker.current_state()

        kept.update(ActionExecuted("utter_greet"))  # changed after its save (e.g. a turn that failed)
        again = await store.retrieve(u1)
        assert loads == [] and [e.type_name for e in again.events] == ["session_started", "user"]  # as saved
        await store.save(again)

        elsewhere = await other_replica.retrieve(u1)  # another replica answers a turn
        elsewhere.update(ActionExecuted("utter_greet"))
        await other_replica.save(elsewhere)
        fresh = await store.retrieve(u1)
        assert loads == [u1] and [e.type_name for e in fresh.events][-1] == "action"  # rebuilt

        fresh.update(SessionStarted())  # a new session: the next load reads only that one
        fresh.update(UserUttered("สวัสดีอีกครั้ง", {"name": "greet"}))
        await store.save(fresh)
        current = await store.retrieve(u1)
        assert loads == [u1, u1]
        assert [e.type_name for e in current.events] == ["session_started", "user"]

    asyncio.run(scenario())


def test_kept_trackers_are_one_object_each_for_the_garbage_collector(database: dict):
    """What the store keeps in memory does not lengthen Python's full collections (each walks
    every tracked object): one pickled snapshot per conversation, not its events and slots."""
    rasa_patches.install()
    store = SessionTrackerStore(DOMAIN, **database)

    async def scenario() -> None:
        for _ in range(20):
            sender = _sender("web")
            tracker = await store.get_or_create_tracker(sender)
            tracker.update(SessionStarted())
            await store.save(tracker)
            tracker = await store.retrieve(sender)  # the current session: kept from its next save
            for turn in range(10):
                tracker.update(UserUttered(f"ข้อความ {turn}", {"name": "greet"}))
                tracker.update(ActionExecuted("utter_greet"))
                await store.save(tracker)

    asyncio.run(scenario())
    assert len(store._kept) == 20
    for kept in store._kept.values():
        # one object, holding only values the collector does not track (bytes, an int)
        assert not any(gc.is_tracked(value) for value in gc.get_referents(kept) if not isinstance(value, type))


def test_trackers_made_outside_the_store_are_counted_as_rasa_counts(database: dict):
    """Rasa wraps the store (FailSafeTrackerStore), and the wrapper creates new conversations'
    trackers itself; the store then counts what the current session holds, as Rasa does."""
    rasa_patches.install()
    store = SessionTrackerStore(DOMAIN, **database)
    wrapped = FailSafeTrackerStore(store)
    a = _sender("line")

    async def scenario() -> None:
        tracker = await wrapped.get_or_create_tracker(a)
        assert _stored(store, a) == ["action"]
        tracker.update(UserUttered("สวัสดี", {"name": "greet"}))
        await wrapped.save(tracker)
        assert _stored(store, a) == ["action", "user"]
        # A tracker rebuilt from the same events (not loaded by the store): nothing stored twice.
        rebuilt = DialogueStateTracker.from_dict(a, [e.as_dict() for e in tracker.events], DOMAIN.slots)
        rebuilt.update(SessionStarted())
        rebuilt.update(ActionExecuted("action_listen"))
        await wrapped.save(rebuilt)
        assert _stored(store, a) == ["action", "user", "session_started", "action"]
        # In the new session only its own events count: one more is added, once.
        again = DialogueStateTracker.from_dict(a, [e.as_dict() for e in list(rebuilt.events)[2:]], DOMAIN.slots)
        again.update(UserUttered("อีกครั้ง", {"name": "greet"}))
        await wrapped.save(again)
        await wrapped.save(again)
        assert _stored(store, a) == ["action", "user", "session_started", "action", "user"]

    asyncio.run(scenario())
