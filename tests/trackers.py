"""Capture the trackers Rasa gives the actions, from real conversations (`make fixtures`).

For each conversation in tests/data/conversations.yml, every message is sent to the Rasa
server's REST channel under a fresh sender; then the tracker is read back through Rasa's HTTP
API up to the moment the last custom action ran (`until`), which is exactly the state the
action server received. The result is written to tests/data/trackers/<name>.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.settings import PROJECT_ROOT

DATA = PROJECT_ROOT / "tests" / "data"
CONVERSATIONS = DATA / "conversations.yml"
TRACKERS = DATA / "trackers"
# What an action receives (rasa_sdk.Tracker's fields), in a stable order.
TRACKER_FIELDS = (
    "sender_id", "slots", "latest_message", "events", "paused", "followup_action",
    "active_loop", "latest_action_name",
)


def conversations() -> dict[str, list[str]]:
    return yaml.safe_load(CONVERSATIONS.read_text(encoding="utf-8"))


def capture(client: httpx.Client, rasa_url: str, token: str, name: str, messages: list[str]) -> dict[str, Any]:
    """Run one conversation; the tracker its last custom action received, and that action's name."""
    sender = f"fixture-{name}-{uuid.uuid4().hex[:8]}"
    for message in messages:
        response = client.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": message})
        response.raise_for_status()
    url = f"{rasa_url}/conversations/{sender}/tracker"
    events = client.get(url, params={"token": token}).json()["events"]
    actions = [
        e for e in events
        if e["event"] == "action" and (e["name"].startswith("action_") or e["name"].endswith("_form"))
        and e["name"] not in ("action_listen", "action_session_start")
    ]
    last = actions[-1]
    before = client.get(url, params={"token": token, "until": last["timestamp"] - 1e-6}).json()
    tracker = {field: before.get(field) for field in TRACKER_FIELDS}
    tracker["sender_id"] = f"fixture-{name}"
    return {"action": last["name"], "tracker": tracker}


def main() -> int:
    from bot.runtime.stack import Stack, private_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = private_settings(Path(tmp))
        with open(Path(tmp) / "stack.log", "w") as log, Stack(settings, output=log):
            with httpx.Client(timeout=60) as client:
                for name, messages in conversations().items():
                    captured = capture(client, settings.rasa_url, settings.rasa_token, name, messages)
                    path = TRACKERS / f"{name}.json"
                    path.write_text(json.dumps(captured, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
                    print(f"{path.relative_to(PROJECT_ROOT)}: {captured['action']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
