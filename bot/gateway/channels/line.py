"""LINE: the `POST /webhooks/line` route and the adapter that answers through the Messaging API.

The route does as little as LINE's two-second patience allows: it reads the body (at most
MAX_BODY_BYTES, else 413), checks `X-Line-Signature` with the SDK's `WebhookParser` (400 when
missing or wrong: nothing is processed), turns each event into an `InboundEvent` and hands it
to the durable `Inbox` (which drops redeliveries by `webhookEventId`), then answers 200. The
console's "Verify" call (`{"events": []}`, signed) gets 200 like any other. The identity is
`line:<userId>` of the event's verified source, never anything in a message.

The dispatcher later calls `LineChannel.handle` for each event, one at a time per user:

- text and postbacks (the quick-reply buttons, whose data is the button's payload) go through
  the conversation pipeline with at most 13 buttons (LINE's quick-reply limit);
- a follow event is answered with the greeting and its privacy notice: the adapter sends the
  conversation WELCOME_TEXT ("สวัสดี"), so the words come from the catalog's answer templates
  like every other answer; `on_follow` / `on_unfollow` (set by the wiring) tell the notifier
  to resume or stop pushing to that user;
- a location, or an image (fetched with the blob API, JPEG or PNG up to the photo store's
  limit), goes to the complaint form when its open question takes one (`channels.media`);
- stickers, audio, video, files, and images and locations nobody asked for (and message types
  LINE adds later) get a polite "please type your question" with the help menu's buttons.

Answers use the event's reply token (free, valid once and only for a while) when it is fresh,
at most 5 messages; the rest, or everything when the token is stale or refused, are pushed
(`deliver`) at once, so they reach the chat before the user's next message is answered; a
push LINE refuses for now (429, 5xx) goes to the `Outbox`, which retries `deliver`. Push calls
carry an `X-Line-Retry-Key` derived from the event id, so a retried push is never shown twice.
When an answer takes longer than LOADING_AFTER_SECONDS, the chat shows LINE's loading
animation meanwhile.

Rasa or the action server down: the citizen gets the pipeline's apology once per outage (the
outbox's `apology_due` decides; with the reply token while it is fresh, else pushed under a
key of the event), and `handle` raises `RetryLater`, so the dispatcher keeps the message and
answers it (by push) when the service is back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import aiohttp
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
    UserSource,
)

from bot.answers.reply import Reply
from bot.complaints.photos import MAX_PHOTO_BYTES, PhotoStore
from bot.delivery.types import InboundEvent, Inbox, Outbox, RetryLater, Undeliverable, apology_due
from bot.gateway.channels import media
from bot.gateway.channels.line_messages import (
    MESSAGES_PER_CALL,
    QUICK_REPLY_MAX,
    batches,
    line_sized,
    retry_key,
    to_messages,
)
from bot.gateway.channels.webhooks import read_body
from bot.gateway.conversation import Conversation, Turn, handle_showing_progress
from bot.settings import Settings

logger = logging.getLogger(__name__)

NAME = "line"
WEBHOOK_PATH = "/webhooks/line"
MAX_BODY_BYTES = 1024 * 1024
# LINE does not promise how long a reply token lives ("reply soon after the webhook"); one older
# than this is treated as expired and the answer is pushed instead.
REPLY_TOKEN_TTL_SECONDS = 50.0
LOADING_AFTER_SECONDS = 1.0
LOADING_SECONDS = 20  # LINE: 5 to 60, a multiple of 5; it stops by itself when the answer arrives
API_TIMEOUT_SECONDS = 10.0
USED_TOKENS_KEPT = 10_000

# What the adapter says to the conversation on a follow event (the greeting, with the privacy
# notice, comes back), and to fetch the help menu's buttons.
WELCOME_TEXT = "สวัสดี"
HELP_TEXT = "ทำอะไรได้บ้าง"
PLEASE_TYPE = (
    "ขออภัย ผู้ช่วยนี้อ่านได้เฉพาะข้อความที่พิมพ์ ยังไม่รองรับสติกเกอร์ รูปภาพ เสียง วิดีโอ ไฟล์ หรือตำแหน่ง "
    "กรุณาพิมพ์คำถามเป็นข้อความ หรือเลือกหัวข้อจากปุ่มด้านล่าง"
)
UNSUPPORTED_MESSAGES = ("sticker", "image", "audio", "video", "file", "location")
# Where LINE serves the content users send (the blob API has its own host).
BLOB_HOST = "https://api-data.line.me"

Hook = Callable[[str], Awaitable[None]]


class BadWebhook(ValueError):
    """A signed body that is not a LINE webhook payload."""


class LineChannel:
    """The LINE adapter (ChannelAdapter): webhook events in, Messaging API calls out.

    The SDK's aiohttp session belongs to the event loop that first uses it, so the API client
    is made on first use (inside the gateway's loop), once, and closed by `close()`.
    """

    name = NAME
    max_buttons = QUICK_REPLY_MAX

    def __init__(
        self,
        channel_secret: str,
        access_token: str,
        api_base_url: str = "",
        *,
        reply_token_ttl: float = REPLY_TOKEN_TTL_SECONDS,
        loading_after: float = LOADING_AFTER_SECONDS,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        if not channel_secret or not access_token:
            raise ValueError("LINE needs both LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        self.parser = WebhookParser(channel_secret)
        self._configuration = Configuration(access_token=access_token, host=api_base_url.rstrip("/") or None)
        self._configuration.connection_pool_maxsize = 64
        self._blob_configuration = Configuration(access_token=access_token, host=api_base_url.rstrip("/") or BLOB_HOST)
        self._client: AsyncApiClient | None = None
        self._api: AsyncMessagingApi | None = None
        self._blob_client: AsyncApiClient | None = None
        self._blob: AsyncMessagingApiBlob | None = None
        # Set by the wiring: where photos sent for a complaint are kept (none: photos are not taken).
        self.photos: PhotoStore | None = None
        self.reply_token_ttl = reply_token_ttl
        self.loading_after = loading_after
        self._now = now
        self._used_tokens: OrderedDict[str, None] = OrderedDict()
        self._apologised: OrderedDict[str, None] = OrderedDict()  # event ids (the outbox's flag survives restarts)
        # Set by the wiring: called with the identity when a user follows (again) or blocks the account.
        self.on_follow: Hook | None = None
        self.on_unfollow: Hook | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "LineChannel | None":
        """The channel when LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are set, else None."""
        if not settings.line_enabled:
            return None
        # Keep the clients' request logs (URLs, bodies) out of the gateway's log.
        for name in ("aiohttp", "linebot", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        return cls(settings.line_channel_secret, settings.line_channel_access_token, settings.line_api_base_url)

    def api(self) -> AsyncMessagingApi:
        """The SDK's async Messaging API client, made on first use in the running loop."""
        if self._api is None:
            self._client = AsyncApiClient(self._configuration)
            self._api = AsyncMessagingApi(self._client)
        return self._api

    def blob(self) -> AsyncMessagingApiBlob:
        """The SDK's blob API client (the content users send), made on first use."""
        if self._blob is None:
            self._blob_client = AsyncApiClient(self._blob_configuration)
            self._blob = AsyncMessagingApiBlob(self._blob_client)
        return self._blob

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._api = None
        if self._blob_client is not None:
            await self._blob_client.close()
            self._blob_client = self._blob = None

    # -- webhook -> events ---------------------------------------------------------------

    def inbound(self, body: str, signature: str, received_at: dt.datetime) -> list[InboundEvent]:
        """The events of a webhook body worth handling; raises InvalidSignatureError or BadWebhook.

        Events from groups and rooms, in standby mode (another channel is answering), and of
        kinds this bot does not act on (join, beacon, unsend ...) are left out: acknowledged,
        never answered.
        """
        try:
            parsed = self.parser.parse(body, signature)
            raw_events = json.loads(body)["events"]
        except InvalidSignatureError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadWebhook(type(exc).__name__) from exc
        if not isinstance(raw_events, list) or len(raw_events) != len(parsed):
            raise BadWebhook("events is not a list")
        events = []
        for sdk_event, raw in zip(parsed, raw_events, strict=True):
            event = self._convert(sdk_event, raw if isinstance(raw, dict) else {}, received_at)
            if event is not None:
                events.append(event)
        return events

    def _convert(self, event: Any, raw: dict, received_at: dt.datetime) -> InboundEvent | None:
        source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
        user_id = source.get("userId")
        event_id = raw.get("webhookEventId")
        if source.get("type") != "user" or not isinstance(user_id, str) or not user_id:
            return None  # groups and rooms are not served; nor is an event without a user
        if not isinstance(event_id, str) or not event_id or raw.get("mode", "active") != "active":
            return None
        context = raw.get("deliveryContext") if isinstance(raw.get("deliveryContext"), dict) else {}
        extra: dict[str, Any] = {
            "user_id": user_id,
            "redelivery": bool(context.get("isRedelivery")),
            "line_timestamp_ms": raw.get("timestamp") if isinstance(raw.get("timestamp"), int) else None,
        }
        reply_token = raw.get("replyToken") if isinstance(raw.get("replyToken"), str) else None

        def make(kind: str, text: str = "") -> InboundEvent:
            return InboundEvent(
                channel=NAME,
                event_id=event_id,
                identity=f"line:{user_id}",
                kind=kind,  # type: ignore[arg-type]
                received_at=received_at,
                text=text,
                reply_token=reply_token,
                extra=extra,
            )

        if isinstance(event, MessageEvent) and isinstance(event.source, UserSource):
            if isinstance(event.message, TextMessageContent):
                return make("message", event.message.text)
            extra["message_type"] = getattr(event.message, "type", "unknown")
            if isinstance(event.message, ImageMessageContent):
                provider = getattr(event.message.content_provider, "type", None)
                if provider == "line":  # an external URL is not fetched on a citizen's behalf
                    extra["message_id"] = event.message.id
            elif isinstance(event.message, LocationMessageContent):
                extra["location"] = {
                    "latitude": event.message.latitude, "longitude": event.message.longitude,
                    "name": " ".join(x for x in (event.message.title, event.message.address) if x),
                }
            return make("unsupported")
        if isinstance(event, PostbackEvent):
            return make("button", event.postback.data)
        if isinstance(event, FollowEvent):
            return make("follow")
        if isinstance(event, UnfollowEvent):
            return make("unfollow")
        if raw.get("type") == "message" and reply_token:
            # A message the SDK cannot read (a type newer than the SDK, a text without text).
            message = raw.get("message") if isinstance(raw.get("message"), dict) else {}
            extra["message_type"] = str(message.get("type", "unknown"))[:40]
            return make("unsupported")
        return None

    # -- events -> answers ---------------------------------------------------------------

    async def handle(self, event: InboundEvent, conversation: Conversation, outbox: Outbox) -> None:
        """Answer one accepted event (see the module docstring). Safe to run again for the same event."""
        if event.kind == "unfollow":
            if self.on_unfollow is not None:
                await self.on_unfollow(event.identity)
            return
        if event.kind == "unsupported":
            turn = await self._media(event, conversation)
            if turn is None:
                turn = await self._converse(conversation, event, HELP_TEXT, gateway_payload=media.HELP_PAYLOAD)
                buttons = () if turn.refused else next((r.buttons for r in turn.replies if r.buttons), ())
                await self._answer(event, [Reply(PLEASE_TYPE, buttons)], outbox)
                return
            if turn.refused == "unavailable":
                if await apology_due(outbox, event.identity):
                    await self._apologise(event, turn.replies, outbox)
                raise RetryLater("the conversation is unavailable (Rasa or the action server is down)")
            await self._answer(event, turn.replies, outbox)
            return
        if event.kind == "follow":
            if self.on_follow is not None:
                await self.on_follow(event.identity)
            text = WELCOME_TEXT
        elif event.kind in ("message", "button"):
            text = event.text
        else:
            return
        turn = await self._converse(conversation, event, text)
        if turn.refused == "unavailable":
            if await apology_due(outbox, event.identity):
                await self._apologise(event, turn.replies, outbox)
            raise RetryLater("the conversation is unavailable (Rasa or the action server is down)")
        await self._answer(event, turn.replies, outbox)

    async def _media(self, event: InboundEvent, conversation: Conversation) -> Turn | None:
        """A location or photo for the complaint form's open question; None when none takes it."""
        return await media.take_media(conversation, event, self.photos, "message_id", self._content, self.max_buttons)

    async def _content(self, message_id: str) -> bytes:
        """The bytes of an image a user sent (the blob API); PhotoTooLarge past the store's limit.

        LINE caps what users send (10 MB for images), so reading it whole is bounded."""
        data = await self.blob().get_message_content(message_id)
        if len(data) > MAX_PHOTO_BYTES:
            raise media.PhotoTooLarge(str(len(data)))
        return bytes(data)

    async def _converse(
        self, conversation: Conversation, event: InboundEvent, text: str, gateway_payload: str | None = None
    ) -> Turn:
        """Run the conversation; show the loading animation if it takes longer than a moment."""
        user_id = event.extra.get("user_id") or event.identity.removeprefix("line:")
        return await handle_showing_progress(
            conversation, event.identity, text, max_buttons=self.max_buttons, gateway_payload=gateway_payload,
            slow_after=self.loading_after, show_progress=lambda: self._show_loading(user_id),
        )

    async def _show_loading(self, user_id: str) -> None:
        try:
            await self.api().show_loading_animation(
                ShowLoadingAnimationRequest(chat_id=user_id, loading_seconds=LOADING_SECONDS),
                _request_timeout=API_TIMEOUT_SECONDS,
            )
        except (ApiException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            logger.info("LINE loading animation not shown: %s", _describe(exc))

    def reply_token_fresh(self, event: InboundEvent) -> bool:
        """Whether the event's reply token is young enough to use (and not used by this process)."""
        if not event.reply_token or event.reply_token in self._used_tokens:
            return False
        born = event.received_at
        if born.tzinfo is None:  # a store that drops the zone keeps UTC
            born = born.replace(tzinfo=dt.timezone.utc)
        stamp = event.extra.get("line_timestamp_ms")
        if event.extra.get("redelivery") and isinstance(stamp, int):
            # A redelivered event carries the token LINE issued with the first attempt.
            born = min(born, dt.datetime.fromtimestamp(stamp / 1000, dt.timezone.utc))
        return (self._now() - born).total_seconds() < self.reply_token_ttl

    def _take_token(self, token: str) -> None:
        self._used_tokens[token] = None
        while len(self._used_tokens) > USED_TOKENS_KEPT:
            self._used_tokens.popitem(last=False)

    async def _reply(self, event: InboundEvent, replies: list[Reply]) -> bool:
        """Send up to 5 line-sized replies with the event's reply token; False if it could not be used."""
        if not self.reply_token_fresh(event):
            return False
        assert event.reply_token is not None
        self._take_token(event.reply_token)
        try:
            await self.api().reply_message(
                ReplyMessageRequest(reply_token=event.reply_token, messages=to_messages(replies)),
                _request_timeout=API_TIMEOUT_SECONDS,
            )
            return True
        except (ApiException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # "Invalid reply token" (expired or used), a rate limit, LINE unavailable: push instead.
            logger.info("LINE reply for event %s not sent (%s); pushing instead", event.event_id, _describe(exc))
            return False

    async def _answer(self, event: InboundEvent, replies: list[Reply], outbox: Outbox) -> None:
        sized = line_sized(replies)
        if not sized:
            return
        head, rest = sized[:MESSAGES_PER_CALL], sized[MESSAGES_PER_CALL:]
        if await self._reply(event, head):
            if rest:
                await self._push(event.identity, rest, f"line:{event.event_id}:rest", outbox)
            return
        await self._push(event.identity, sized, f"line:{event.event_id}:answer", outbox)

    async def _push(self, identity: str, replies: list[Reply], key: str, outbox: Outbox) -> None:
        """Push now, so this answer reaches the chat before the user's next one is answered; when
        LINE says "not now", leave it to the outbox. Both use the same key, hence the same
        X-Line-Retry-Key: a push that went through but looked failed is not shown twice.
        Undeliverable (the user blocked the account) propagates: the event cannot be answered."""
        try:
            await self.deliver(identity, replies, key)
        except RetryLater as exc:
            logger.info("LINE push %s deferred to the outbox: %s", key, exc)
            await outbox.enqueue(identity, replies, key)

    async def _apologise(self, event: InboundEvent, replies: list[Reply], outbox: Outbox) -> None:
        """The pipeline's apology: with the reply token if it is fresh, else pushed; once per event."""
        if event.event_id in self._apologised:
            return
        self._apologised[event.event_id] = None
        while len(self._apologised) > USED_TOKENS_KEPT:
            self._apologised.popitem(last=False)
        sized = line_sized(replies)[:MESSAGES_PER_CALL]
        if sized and not await self._reply(event, sized):
            try:
                await self._push(event.identity, sized, f"line:{event.event_id}:apology", outbox)
            except Undeliverable:
                pass

    async def deliver(self, identity: str, replies: list[Reply], retry_key_base: str) -> None:
        """Push `replies` to `identity` now, 5 messages a call, each call with its X-Line-Retry-Key.

        LINE answers 409 to a retry key it has accepted before: that call's messages were
        delivered already, so it counts as sent. 429, 5xx, 401 and network errors raise
        RetryLater (with LINE's Retry-After when given); any other refusal is Undeliverable.
        """
        prefix = f"{NAME}:"
        if not identity.startswith(prefix) or len(identity) == len(prefix):
            raise Undeliverable(f"not a LINE identity: {identity.split(':', 1)[0]}")
        user_id = identity[len(prefix) :]
        for index, batch in enumerate(batches(line_sized(replies))):
            try:
                await self.api().push_message(
                    PushMessageRequest(to=user_id, messages=to_messages(batch)),
                    x_line_retry_key=retry_key(retry_key_base, index),
                    _request_timeout=API_TIMEOUT_SECONDS,
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue
                if exc.status in (401, 429) or (exc.status or 0) >= 500:
                    raise RetryLater(f"LINE push: {_describe(exc)}", after=_retry_after(exc)) from exc
                raise Undeliverable(f"LINE push refused: {_describe(exc)}") from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RetryLater(f"LINE push: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """Status and LINE's message, for logs: never headers (no token is in them, but keep it so)."""
    if isinstance(exc, ApiException):
        message = ""
        try:
            body = json.loads(exc.body) if exc.body else {}
            message = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
        except (ValueError, TypeError):
            pass
        return f"{exc.status} {message}".strip()
    return type(exc).__name__


def _retry_after(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


# -- the route ---------------------------------------------------------------------------


def router(
    channel: LineChannel, inbox: Inbox | Callable[[], Inbox], *, max_body_bytes: int = MAX_BODY_BYTES
) -> APIRouter:
    """`POST /webhooks/line`: verify, store each event in the inbox, answer 200 at once.

    `inbox` may also be a function returning it, for an inbox made later (in the app's lifespan).
    """
    routes = APIRouter()

    def current_inbox() -> Inbox:
        return inbox if hasattr(inbox, "accept") else inbox()  # type: ignore[operator,return-value]

    @routes.post(WEBHOOK_PATH, include_in_schema=False)
    async def line_webhook(request: Request) -> JSONResponse:
        received_at = dt.datetime.now(dt.timezone.utc)
        body = await read_body(request, max_body_bytes)
        if body is None:
            return JSONResponse({"detail": f"body larger than {max_body_bytes} bytes"}, status_code=413)
        signature = request.headers.get("x-line-signature")
        if not signature:
            return JSONResponse({"detail": "missing X-Line-Signature"}, status_code=400)
        try:
            text = body.decode("utf-8")
            events = channel.inbound(text, signature, received_at)
        except InvalidSignatureError:
            logger.warning("LINE webhook with a bad signature refused")
            return JSONResponse({"detail": "invalid signature"}, status_code=400)
        except (UnicodeDecodeError, BadWebhook):
            return JSONResponse({"detail": "not a LINE webhook payload"}, status_code=400)
        try:
            for event in events:
                await current_inbox().accept(event)
        except Exception:  # storage down: LINE redelivers (redelivery on), duplicates are dropped then
            logger.exception("LINE events could not be stored")
            return JSONResponse({"detail": "try again later"}, status_code=503)
        return JSONResponse({})

    return routes
