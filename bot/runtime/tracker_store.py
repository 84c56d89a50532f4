"""The tracker store the Rasa server uses (named in the endpoints `bot.runtime.stack` writes).

Rasa's SQL tracker store, which loads only the current conversation session, with its avoidable
costs removed (the table and what is stored in it are Rasa's own, so Rasa's store reads them):
loading reads only the `data` column instead of an ORM object per event, saving inserts the new
events in one statement instead of through the ORM's unit of work, and before each save Rasa
re-queried and counted the session's stored events to find the new ones (a third of the time
it spent saving). Trackers it retrieved remember how many events
were stored, so a save only inserts what was added since. Rasa's lock store gives one process
at a time a conversation, so nothing else writes between that retrieve and that save; a tracker
created here (`init_tracker`, called by `create_tracker` only after `retrieve` found no event
of the current session) has none stored.
Loaded by the Rasa server, in the Rasa environment.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterator, Optional, Text

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

STORED = "_sla_bot_stored_events"


class SessionTrackerStore(SQLTrackerStore):
    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            setattr(tracker, STORED, len(tracker.events))
        return tracker

    async def _retrieve(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions)
            events = [json.loads(data) for (data,) in query.with_entities(self.SQLEvent.data)]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = [_row(tracker.sender_id, event) for event in self._additional_events(session, tracker)]
            if rows:
                session.execute(sa.insert(self.SQLEvent.__table__), rows)
            session.commit()

    def init_tracker(self, sender_id: Text) -> DialogueStateTracker:
        tracker = super().init_tracker(sender_id)
        setattr(tracker, STORED, 0)
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        stored = getattr(tracker, STORED, None)
        if stored is None or stored > len(tracker.events):
            return super()._additional_events(session, tracker)
        setattr(tracker, STORED, len(tracker.events))
        return itertools.islice(tracker.events, stored, None)


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
