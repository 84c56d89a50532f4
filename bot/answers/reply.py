"""The one reply model every layer shares: text, and the buttons offered with it.

Actions build `Reply`s and hand them to Rasa with `to_rasa()`; the gateway reads Rasa's
messages back with `Reply.from_rasa()` and each channel adapter turns them into its
platform's messages. A button's `payload` is a Rasa intent payload (`/ask_fee{"service":
"passport"}`): the gateway lets such a payload through only when it offered that button to
that citizen (see `bot.gateway.conversation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# LINE cuts quick-reply labels at 20 characters; every button title must fit.
BUTTON_TITLE_MAX = 20


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    text: str = ""
    buttons: tuple[Button, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "buttons", tuple(self.buttons))

    def to_rasa(self) -> dict[str, Any]:
        """Keyword arguments for rasa_sdk's `dispatcher.utter_message`."""
        buttons = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        return {"text": self.text, "buttons": buttons or None}

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons]}

    @classmethod
    def from_rasa(cls, item: dict[str, Any]) -> "Reply":
        """One message of Rasa's REST channel output; malformed buttons are dropped."""
        buttons = tuple(
            Button(str(b["title"]), str(b["payload"]))
            for b in item.get("buttons") or []
            if isinstance(b, dict) and b.get("title") and b.get("payload")
        )
        return cls(text=str(item.get("text") or ""), buttons=buttons)


def intent_payload(intent: str, **entities: str) -> str:
    """A Rasa payload that asks `intent`, optionally with entities: /ask_fee{"service": "passport"}."""
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}"
