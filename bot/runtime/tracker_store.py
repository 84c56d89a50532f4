"""The tracker store the Rasa server uses (named in the endpoints `bot.runtime.stack` writes).

Rasa's SQL tracker store, which loads only the current conversation session, with its avoidable
costs removed (the table and what is stored in it are Rasa's own, so Rasa's store reads them):
loading reads only the `data` column instead of an ORM object per event, saving inserts the new
events in one statement instead of through the ORM's unit of work, and before each save Rasa
re-queried and counted the session's stored events to find the new ones (a third of the time
it spent saving).

It also keeps the trackers it saved last (`KEPT_CONVERSATIONS`, least recently used dropped):
the next turn of a conversation usually takes its tracker from memory instead of rebuilding it
from every event of the session (2 ms at a session's tenth turn; 0.08 ms from memory). A kept
tracker is a snapshot, pickled as it was saved: one object per conversation for Python's
garbage collector instead of some 260, whose every full collection walks them all (with 2,000
conversations kept as objects it stopped the server for 360 ms). A snapshot is used only while
the database holds no newer event of that conversation (one indexed `max(id)` query; another
replica may have answered in between), and only while it holds what loading it would give (the
current session only): after a new session starts it is rebuilt from the database, so a long
conversation does not grow in memory. Pickles made and read by this process only.

Trackers it retrieved remember how many events were stored, so a save only inserts what was
added since. Rasa's lock store gives one process at a time a conversation, so nothing else
writes between that retrieve and that save; a tracker created here (`init_tracker`, called by
`create_tracker` only after `retrieve` found no event of the current session) has none stored.
Loaded by the Rasa server, in the Rasa environment.
"""

from __future__ import annotations

import itertools
import json
import logging
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Text

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)
STORED = "_sla_bot_stored_events"
KEPT_CONVERSATIONS = 5000
# Rasa's queries (`SQLTrackerStore._event_query`), as plain SQL run on the connection: through
# the ORM session each cost five times as much, and they run on every turn.
LAST_ROW_ID = sa.text("SELECT max(id) FROM events WHERE sender_id = :sender_id")
ALL_SESSIONS = sa.text("SELECT data FROM events WHERE sender_id = :sender_id ORDER BY id")
_IN_CURRENT_SESSION = (
    "sender_id = :sender_id AND ("
    " timestamp >= (SELECT max(timestamp) FROM events WHERE sender_id = :sender_id AND type_name = :start)"
    " OR (SELECT max(timestamp) FROM events WHERE sender_id = :sender_id AND type_name = :start) IS NULL)"
)
CURRENT_SESSION = sa.text(f"SELECT data FROM events WHERE {_IN_CURRENT_SESSION} ORDER BY id")
CURRENT_SESSION_COUNT = sa.text(f"SELECT count(*) FROM events WHERE {_IN_CURRENT_SESSION}")


@dataclass(frozen=True, slots=True)
class _Kept:
    """A tracker pickled as it was saved, and the id of the last event row of its conversation then."""

    pickled: bytes
    last_row_id: Optional[int]


class SessionTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: OrderedDict[Text, _Kept] = OrderedDict()

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        kept = self._kept.get(sender_id)
        if kept is not None:
            with self.session_scope() as session:
                if self._last_row_id(session, sender_id) == kept.last_row_id:
                    self._kept.move_to_end(sender_id)
                    return pickle.loads(kept.pickled)
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            setattr(tracker, STORED, len(tracker.events))
        return tracker

    def _last_row_id(self, session: Any, sender_id: Text) -> Optional[int]:
        return session.connection().execute(LAST_ROW_ID, {"sender_id": sender_id}).scalar()

    def _keep(self, tracker: DialogueStateTracker, last_row_id: Optional[int]) -> None:
        self._kept.pop(tracker.sender_id, None)
        if not _as_loaded(tracker.events):
            return  # rebuilt as the database loads it: the current session
        try:
            pickled = pickle.dumps(tracker, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # then it is loaded next time
            logger.warning("tracker not kept in memory: %s", type(exc).__name__)
            return
        self._kept[tracker.sender_id] = _Kept(pickled, last_row_id)
        while len(self._kept) > KEPT_CONVERSATIONS:
            self._kept.popitem(last=False)

    async def _retrieve(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        query = ALL_SESSIONS if fetch_events_from_all_sessions else CURRENT_SESSION
        with self.session_scope() as session:
            rows = session.connection().execute(query, {"sender_id": sender_id, "start": SessionStarted.type_name})
            events = [json.loads(data) for (data,) in rows]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = [_row(tracker.sender_id, event) for event in self._additional_events(session, tracker)]
            if rows:
                session.connection().execute(sa.insert(self.SQLEvent.__table__), rows)
            last_row_id = self._last_row_id(session, tracker.sender_id)
            session.commit()
        self._keep(tracker, last_row_id)

    def init_tracker(self, sender_id: Text) -> DialogueStateTracker:
        tracker = super().init_tracker(sender_id)
        setattr(tracker, STORED, 0)
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        stored = getattr(tracker, STORED, None)
        if stored is None or stored > len(tracker.events):
            # A tracker this store did not load or create (Rasa's fail-safe wrapper creates each
            # new conversation's): Rasa's count of the stored events of the current session.
            stored = session.connection().execute(
                CURRENT_SESSION_COUNT, {"sender_id": tracker.sender_id, "start": SessionStarted.type_name}
            ).scalar()
        setattr(tracker, STORED, len(tracker.events))
        return itertools.islice(tracker.events, stored, None)


def _as_loaded(events: Any) -> bool:
    """Whether `events` are what `retrieve` loads: those at or after the last session start."""
    starts = [i for i, event in enumerate(events) if isinstance(event, SessionStarted)]
    if not starts:
        return True
    start = events[starts[-1]].timestamp
    return all(event.timestamp >= start for event in itertools.islice(events, 0, starts[-1]))


def _row(sender_id: Text, event: Event) -> dict[str, Any]:
    """The `events` row Rasa's `SQLTrackerStore.save` writes for `event`."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }
