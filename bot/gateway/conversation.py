"""The conversation pipeline every channel adapter goes through: one message in, replies out.

Talks to the Rasa server's REST channel. Channel adapters translate their platform's events
into `send()` calls and the neutral `BotMessage`s back into their platform's messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickReply:
    title: str
    payload: str


@dataclass(frozen=True)
class BotMessage:
    text: str = ""
    buttons: list[QuickReply] = field(default_factory=list)


class ConversationUnavailable(Exception):
    """Rasa could not be reached or answered with an error; the citizen should retry later."""


class Conversation:
    def __init__(self, rasa_url: str, client: httpx.AsyncClient, token: str = "") -> None:
        self._rasa_url = rasa_url.rstrip("/")
        self._client = client
        self._token = token

    async def send(self, sender_id: str, text: str) -> list[BotMessage]:
        """Deliver one citizen message and return the bot's replies, in order."""
        try:
            response = await self._client.post(
                f"{self._rasa_url}/webhooks/rest/webhook",
                json={"sender": sender_id, "message": text},
            )
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("Rasa did not answer: %s", type(exc).__name__)
            raise ConversationUnavailable from exc
        return [_message(item) for item in payload if isinstance(item, dict)]

    async def ready(self) -> bool:
        """True once Rasa answers its status endpoint with a loaded model."""
        try:
            response = await self._client.get(
                f"{self._rasa_url}/status", params={"token": self._token} if self._token else None
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and bool(response.json().get("model_file"))


def _message(item: dict) -> BotMessage:
    buttons = [
        QuickReply(str(b.get("title", "")), str(b.get("payload", "")))
        for b in item.get("buttons") or []
        if isinstance(b, dict) and b.get("title") and b.get("payload")
    ]
    return BotMessage(text=str(item.get("text") or ""), buttons=buttons)
