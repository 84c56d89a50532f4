"""The action tests' tracker fixtures still match what the real Rasa server sends.

Each conversation in tests/data/conversations.yml is replayed against the running stack; the
captured tracker must agree with the committed fixture on the action, the intent, the
entities and the slots. When the model or domain changes on purpose, run `make fixtures`.
"""

from __future__ import annotations

import json

import httpx
import pytest

from bot.runtime.stack import Stack
from tests.trackers import TRACKERS, capture, conversations


def _essentials(captured: dict) -> dict:
    tracker = captured["tracker"]
    message = tracker["latest_message"]
    return {
        "action": captured["action"],
        "intent": message["intent"]["name"],
        "entities": [(e["entity"], e["value"]) for e in message["entities"]],
        "slots": {k: v for k, v in tracker["slots"].items() if k != "session_started_metadata"},
    }


@pytest.mark.parametrize("name", sorted(conversations()))
def test_fixture_matches_a_fresh_capture(stack: Stack, name: str):
    committed = json.loads((TRACKERS / f"{name}.json").read_text(encoding="utf-8"))
    with httpx.Client(timeout=60) as client:
        fresh = capture(client, stack.settings.rasa_url, stack.settings.rasa_token, name, conversations()[name])
    assert _essentials(fresh) == _essentials(committed), "fixture out of date: run `make fixtures`"
