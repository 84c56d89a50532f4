"""The conversation pipeline every channel adapter goes through: one message in, replies out.

A channel adapter verifies who is speaking (a web session, a signed LINE event, Telegram's
secret token) and calls `Conversation.handle(identity, text)`. The pipeline then:

1. limits how often one identity may write (polite Thai answer when exceeded);
2. decides what the bot is told: a `/intent{...}` payload reaches Rasa only when it is a
   button this pipeline offered to this identity; anything else that starts with `/` is the
   citizen's words and loses its leading slashes, so nobody can set an intent or an entity
   by typing Rasa's message syntax;
3. sends the text to the Rasa server's REST channel and reads the replies (`Reply`), starting
   a new Rasa session every SESSION_TURNS messages so a long conversation stays as cheap;
4. remembers the buttons it offers, and pages buttons beyond the channel's limit with a
   "more" button it answers itself;
5. keeps the 4 verification digits of a status lookup away from Rasa: when the bot asks for
   them (a control message naming the tracking number), the citizen's next message, if it
   holds four digits, is replaced by a keyed token (`verifier_token`) carried in a payload
   the gateway writes itself. The digits are never stored, logged or seen by the NLU;
6. lets a LINE or Telegram photo or location reach the complaint form: when the form asks for
   a place or photos it sends a control message (`expects`), remembered for that turn only, and
   the channel adapter then passes what the citizen sent as a payload the gateway writes itself
   (`handle(..., gateway_payload=...)`), never one a citizen could type;
7. keeps a phone number typed for the complaint form out of Rasa's store: when the form asks
   for it (`expects` "complaint_phone"), a number in the citizen's next message goes to Rasa
   sealed (`phone_in_transit`, opened only by the action server), not as the citizen typed it.

When Rasa or the action server is down, the citizen gets a short apology, never silence.
Rasa's REST channel is called through `RasaHTTP` (kept-alive connections, a prepared request),
because that call was the largest part of what the gateway adds to a turn; the health probes,
which are rare, use the shared aiohttp client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

import aiohttp

from bot.answers.reply import Button, Reply, intent_payload
from bot.casework.lookup import EXPECTS_CODE
from bot.casework.verification import normalize_digits, verifier_token
from bot.complaints.contact import find_phone, phone_in_transit
from bot.gateway.limits import RateLimiter
from bot.gateway.rasa_http import RasaHTTP, RasaHTTPError
from bot.gateway.state import SharedState

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1000
OFFER_TTL_SECONDS = 24 * 3600
# Buttons of the last few replies stay valid: a citizen may tap an older one.
OFFERS_KEPT = 60
MORE_PAYLOAD = "/__more__"
MORE_TITLE = "ดูเพิ่มเติม ›"
UNAVAILABLE = "ขออภัย ระบบขัดข้องชั่วคราว กรุณาลองใหม่อีกครั้งในอีกสักครู่ หรือโทรสายด่วนรัฐบาล 1111"
TOO_FAST = "ขออภัย ส่งข้อความถี่เกินไป กรุณารอสักครู่ ({seconds} วินาที) แล้วพิมพ์ใหม่อีกครั้ง"
TOO_LONG = "ข้อความยาวเกินไป กรุณาพิมพ์คำถามให้สั้นลง ไม่เกิน {limit:,} ตัวอักษร"
EMPTY = "กรุณาพิมพ์คำถามเป็นข้อความ เช่น \"ต่อใบขับขี่ใช้เอกสารอะไร\""
_LEADING_SLASHES = re.compile(r"^[\s/]+")
HEALTH_CACHE_SECONDS = 2.0
RASA_TIMEOUT_SECONDS = 30.0
# Rasa replays and ships a conversation's whole current session every turn, so the gateway
# starts a new session every SESSION_TURNS messages; the actions carry the service slots over.
SESSION_TURNS = 20
SESSION_START = "/session_start"
CODE_TTL_SECONDS = 15 * 60
# The complaint form's questions that a photo or a location may answer (actions/complaints.py).
EXPECTS_MEDIA = ("complaint_location", "complaint_photo")
EXPECTS_PHONE = "complaint_phone"
MEDIA_TTL_SECONDS = 60 * 60
_DIGIT = re.compile(r"[0-9\u0e50-\u0e59]")


def verification_code(text: str) -> str | None:
    """The four digits of a short answer such as "1234", "๑๒๓๔" or "รหัส 12 34 ค่ะ"; else None."""
    digits = _DIGIT.findall(text)
    if len(digits) != 4 or len(text.strip()) > 30:
        return None
    return normalize_digits("".join(digits))


class ConversationUnavailable(Exception):
    """Rasa could not be reached or answered with an error; the citizen should retry later."""


@dataclass(frozen=True)
class Turn:
    """What one incoming message produced. `refused` is set when the message never reached Rasa."""

    replies: list[Reply]
    refused: str | None = None  # "rate_limited", "too_long", "empty", "unavailable"
    retry_after: int = 0


def as_plain_words(text: str) -> str:
    """Text that Rasa will read as words: leading slashes (Rasa's intent syntax) removed."""
    return _LEADING_SLASHES.sub("", text).strip()


class Conversation:
    def __init__(
        self,
        rasa_url: str | Sequence[str],
        client: aiohttp.ClientSession,
        state: SharedState,
        *,
        actions_url: str = "",
        token: str = "",
        rate_limit: int = 20,
        verification_secret: str = "",
    ) -> None:
        urls = [rasa_url] if isinstance(rasa_url, str) else list(rasa_url)
        self._rasa_urls = [url.rstrip("/") for url in urls]
        self._rasa = {url: RasaHTTP(url) for url in self._rasa_urls}
        self._actions_url = actions_url.rstrip("/")
        self._client = client
        self._state = state
        self._token = token
        self._limiter = RateLimiter(state)
        self._rate_limit = rate_limit
        self._verification_secret = verification_secret
        self._health: tuple[float, dict[str, str]] | None = None

    async def handle(
        self, identity: str, text: str, *, max_buttons: int | None = None, gateway_payload: str | None = None
    ) -> Turn:
        """Deliver one message from a verified `identity`; the replies to show, in order.

        `gateway_payload`: a payload a channel adapter wrote itself for what the citizen sent
        (a stored photo, a shared location); it goes to Rasa as is, and `text` is ignored.
        """
        text = gateway_payload if gateway_payload is not None else text.strip()
        if not text:
            return Turn([Reply(EMPTY)], refused="empty")
        if len(text) > MAX_MESSAGE_CHARS:
            return Turn([Reply(TOO_LONG.format(limit=MAX_MESSAGE_CHARS))], refused="too_long")
        verdict = await self._limiter.hit("identity", identity, self._rate_limit)
        if not verdict.allowed:
            return Turn(
                [Reply(TOO_FAST.format(seconds=verdict.retry_after))],
                refused="rate_limited",
                retry_after=verdict.retry_after,
            )
        offer = await self._offer(identity)
        if text == MORE_PAYLOAD and offer.more:
            page = Reply("", tuple(offer.more))
            return Turn([await self._present(identity, page, max_buttons, offer)])
        message = text if gateway_payload is not None or text in offer.payloads else as_plain_words(text)
        pending = await self._state.get(f"verify:{identity}") if gateway_payload is None else None
        if pending:
            await self._state.set(f"verify:{identity}", "", 1)
            code = verification_code(text)
            if code is not None:
                token = verifier_token(self._verification_secret, pending, code)
                message = intent_payload("check_status", verification_token=token)
        elif gateway_payload is None and message == as_plain_words(text):
            message = await self._seal_phone(identity, message)
        if not message:
            return Turn([Reply(EMPTY)], refused="empty")
        try:
            turn = await self._state.incr(f"turns:{identity}", OFFER_TTL_SECONDS)
            if turn % SESSION_TURNS == 0:
                await self._ask_rasa(identity, SESSION_START)
            replies = await self._ask_rasa(identity, message, turn)
        except ConversationUnavailable:
            return Turn([Reply(UNAVAILABLE)], refused="unavailable")
        if not replies and (await self.health(fresh=True)).get("actions") == "down":
            # Rasa answers an empty list when it cannot reach the action server.
            return Turn([Reply(UNAVAILABLE)], refused="unavailable")
        return Turn([await self._present(identity, reply, max_buttons, offer) for reply in replies])

    def _rasa_for(self, identity: str) -> str:
        """The Rasa server of this conversation: always the same one, so its turns never overlap
        (each server's lock store is its own) and its tracker stays warm there."""
        urls = self._rasa_urls
        return urls[0] if len(urls) == 1 else urls[zlib.crc32(identity.encode("utf-8")) % len(urls)]

    async def _ask_rasa(self, identity: str, message: str, turn: int = 0) -> list[Reply]:
        """Rasa's replies to `message`; control messages (`custom`) are acted on, not shown."""
        body = json.dumps({"sender": identity, "message": message}, ensure_ascii=False).encode("utf-8")
        try:
            answer = await self._rasa[self._rasa_for(identity)].post_json(
                "/webhooks/rest/webhook", body, timeout=RASA_TIMEOUT_SECONDS
            )
            payload = json.loads(answer)
        except (RasaHTTPError, OSError, asyncio.TimeoutError, ValueError) as exc:
            logger.warning("Rasa did not answer: %s", type(exc).__name__)
            raise ConversationUnavailable from exc
        replies = []
        for item in payload:
            if not isinstance(item, dict):
                continue
            control = item.get("custom")
            if isinstance(control, dict):
                await self._control(identity, control, turn)
            else:
                replies.append(Reply.from_rasa(item))
        return replies

    async def _control(self, identity: str, control: dict, turn: int = 0) -> None:
        """A control message from the actions: expect the verification digits for a number, or a
        photo or location for the complaint form (until the citizen's next message)."""
        number = control.get("tracking_number")
        expects = control.get("expects")
        if expects == EXPECTS_CODE and isinstance(number, str):
            await self._state.set(f"verify:{identity}", number, CODE_TTL_SECONDS)
        elif expects in EXPECTS_MEDIA or expects == EXPECTS_PHONE:
            await self._state.set(f"media:{identity}", f"{expects}@{turn}", MEDIA_TTL_SECONDS)

    async def _seal_phone(self, identity: str, message: str) -> str:
        """The complaint form asked for a phone number: if the citizen typed one, Rasa (which
        stores every message) gets it sealed, for the action server alone to open."""
        phone = find_phone(message) if self._verification_secret else None  # before any state lookup
        if phone is None or await self.expected_media(identity) != EXPECTS_PHONE:
            return message
        return intent_payload("file_complaint", phone_token=phone_in_transit(self._verification_secret, phone))

    async def expected_media(self, identity: str) -> str | None:
        """What the complaint form's open question accepts ("complaint_location", "complaint_photo",
        "complaint_phone"), or None: it holds only while no other message came after the question."""
        raw = await self._state.get(f"media:{identity}")
        if not raw:
            return None
        expects, _, turn = raw.partition("@")
        return expects if await self._state.get(f"turns:{identity}") == turn else None

    async def _offer(self, identity: str) -> "_Offer":
        raw = await self._state.get(f"offer:{identity}")
        return _Offer.from_json(raw) if raw else _Offer([], [])

    async def _present(self, identity: str, reply: Reply, max_buttons: int | None, offer: "_Offer") -> Reply:
        """Cut the buttons to the channel's limit (the rest behind "more") and remember the offer."""
        if not reply.buttons:
            return reply
        buttons = list(reply.buttons)
        rest: list[Button] = []
        if max_buttons is not None and len(buttons) > max_buttons:
            buttons, rest = buttons[: max_buttons - 1], buttons[max_buttons - 1 :]
            buttons.append(Button(MORE_TITLE, MORE_PAYLOAD))
        offer.add([b.payload for b in buttons if b.payload != MORE_PAYLOAD], rest)
        await self._state.set(f"offer:{identity}", offer.to_json(), OFFER_TTL_SECONDS)
        return Reply(reply.text, tuple(buttons))

    def close(self) -> None:
        """Close the idle connections to Rasa (the aiohttp client is its owner's to close)."""
        for rasa in self._rasa.values():
            rasa.close()

    async def health(self, *, fresh: bool = False) -> dict[str, str]:
        """"ok" or "down" for Rasa (with a loaded model) and the action server; cached briefly."""
        now = time.monotonic()
        if not fresh and self._health and now - self._health[0] < HEALTH_CACHE_SECONDS:
            return self._health[1]
        parts = {
            "rasa" if i == 0 else f"rasa{i + 1}": await self._probe(
                f"{url}/status",
                lambda body: isinstance(body, dict) and bool(body.get("model_file")),
                params={"token": self._token} if self._token else None,
            )
            for i, url in enumerate(self._rasa_urls)
        }
        if self._actions_url:
            parts["actions"] = await self._probe(f"{self._actions_url}/health", lambda body: True)
        self._health = (now, parts)
        return parts

    async def _probe(
        self, url: str, healthy: Callable[[Any], bool], params: dict[str, str] | None = None
    ) -> str:
        """"ok" when `url` answers 200 and `healthy(its JSON body)`; "down" otherwise."""
        try:
            async with self._client.get(url, params=params, timeout=aiohttp.ClientTimeout(total=2.0)) as response:
                if response.status != 200:
                    return "down"
                return "ok" if healthy(await response.json(content_type=None)) else "down"
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return "down"


async def handle_showing_progress(
    conversation: Conversation,
    identity: str,
    text: str,
    *,
    max_buttons: int | None,
    gateway_payload: str | None,
    slow_after: float,
    show_progress: Callable[[], Awaitable[None]],
) -> Turn:
    """`conversation.handle`, calling `show_progress` (LINE's loading animation, Telegram's
    "typing…") once if the answer takes longer than `slow_after` seconds."""
    extra = {"gateway_payload": gateway_payload} if gateway_payload is not None else {}
    task = asyncio.ensure_future(conversation.handle(identity, text, max_buttons=max_buttons, **extra))
    try:
        done, _ = await asyncio.wait({task}, timeout=slow_after)
        if not done:
            await show_progress()
        return await task
    finally:
        if not task.done():
            task.cancel()


@dataclass
class _Offer:
    """The payloads offered to one identity (oldest first) and the buttons behind "more"."""

    payloads: list[str]
    more: list[Button]

    def add(self, payloads: list[str], more: list[Button]) -> None:
        self.payloads = [p for p in self.payloads if p not in payloads] + payloads
        del self.payloads[:-OFFERS_KEPT]
        self.more = more

    def to_json(self) -> str:
        more = [{"title": b.title, "payload": b.payload} for b in self.more]
        return json.dumps({"payloads": self.payloads, "more": more}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> "_Offer":
        data = json.loads(raw)
        return cls(list(data["payloads"]), [Button(**b) for b in data["more"]])
