"""The tracker store saves exactly the events added since it loaded or created a conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered

from bot.runtime import rasa_patches
from bot.runtime.tracker_store import SessionTrackerStore

DOMAIN = Domain.from_yaml("version: '3.1'\nintents: [greet]\n")


def _stored(store: SessionTrackerStore, sender: str) -> list[str]:
    with store.session_scope() as session:
        return [row.type_name for row in session.query(store.SQLEvent).filter_by(sender_id=sender).order_by("id")]


def test_new_and_loaded_conversations_store_each_event_once(tmp_path: Path):
    rasa_patches.install()
    store = SessionTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))

    async def scenario() -> None:
        tracker = await store.get_or_create_tracker("web:a")  # new: created, saved with its first event
        assert _stored(store, "web:a") == ["action"]
        tracker.update(UserUttered("สวัสดี", {"name": "greet"}))
        await store.save(tracker)
        loaded = await store.retrieve("web:a")
        assert loaded is not None and len(loaded.events) == 2
        loaded.update(ActionExecuted("utter_greet"))
        loaded.update(ActionExecuted("action_listen"))
        await store.save(loaded)
        await store.save(loaded)  # saving again adds nothing
        assert _stored(store, "web:a") == ["action", "user", "action", "action"]
        loaded.update(SessionStarted())  # a new session: only it is loaded from now on
        loaded.update(ActionExecuted("action_listen"))
        await store.save(loaded)
        assert [e.type_name for e in (await store.retrieve("web:a")).events] == ["session_started", "action"]
        # Rasa's own store reads what this one wrote, row for row.
        rasa = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
        full = await rasa.retrieve_full_tracker("web:a")
        assert [e.as_dict() for e in full.events] == [e.as_dict() for e in loaded.events]
        with rasa.session_scope() as session:
            greeting = session.query(rasa.SQLEvent).filter_by(sender_id="web:a", type_name="user").one()
            assert (greeting.intent_name, greeting.action_name) == ("greet", None)

    asyncio.run(scenario())


def test_a_kept_tracker_is_used_only_while_it_is_what_the_database_holds(tmp_path: Path):
    rasa_patches.install()
    db = str(tmp_path / "t.db")
    store = SessionTrackerStore(DOMAIN, dialect="sqlite", db=db)
    other_replica = SessionTrackerStore(DOMAIN, dialect="sqlite", db=db)

    async def scenario() -> None:
        tracker = await store.get_or_create_tracker("line:U1")
        tracker.update(SessionStarted())
        tracker.update(UserUttered("สวัสดี", {"name": "greet"}))
        await store.save(tracker)
        tracker = await store.retrieve("line:U1")  # loaded: the current session only
        assert [e.type_name for e in tracker.events] == ["session_started", "user"]
        await store.save(tracker)
        assert await store.retrieve("line:U1") is tracker  # the next turn: from memory

        tracker.update(ActionExecuted("utter_greet"))  # changed after its save (e.g. a turn that failed)
        again = await store.retrieve("line:U1")
        assert again is not tracker and len(again.events) == 2  # rebuilt as the database has it
        await store.save(again)

        elsewhere = await other_replica.retrieve("line:U1")  # another replica answers a turn
        elsewhere.update(ActionExecuted("utter_greet"))
        await other_replica.save(elsewhere)
        fresh = await store.retrieve("line:U1")
        assert fresh is not again and [e.type_name for e in fresh.events][-1] == "action"

        fresh.update(SessionStarted())  # a new session: the next load reads only that one
        fresh.update(UserUttered("สวัสดีอีกครั้ง", {"name": "greet"}))
        await store.save(fresh)
        current = await store.retrieve("line:U1")
        assert current is not fresh
        assert [e.type_name for e in current.events] == ["session_started", "user"]

    asyncio.run(scenario())
