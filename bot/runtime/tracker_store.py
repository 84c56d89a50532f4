"""The tracker store the Rasa server uses (named in the endpoints `bot.runtime.stack` writes).

Rasa's SQL tracker store, which loads only the current conversation session, with one cost
removed: before each save Rasa re-queried and counted the session's stored events to find the
new ones (a third of the time it spent saving). Trackers it retrieved remember how many events
were stored, so a save only inserts what was added since. Rasa's lock store gives one process
at a time a conversation, so nothing else writes between that retrieve and that save; a tracker
created here (`init_tracker`, called by `create_tracker` only after `retrieve` found no event
of the current session) has none stored.
Loaded by the Rasa server, in the Rasa environment.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

STORED = "_sla_bot_stored_events"


class SessionTrackerStore(SQLTrackerStore):
    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            setattr(tracker, STORED, len(tracker.events))
        return tracker

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
