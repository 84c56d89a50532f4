"""Telegram: `POST /webhooks/telegram`, polling, and the adapter that answers through the Bot API.

The Bot API client is python-telegram-bot's: an `Application` built without its own `Updater`
(`ApplicationBuilder().token(...).base_url(TELEGRAM_API_BASE_URL + "/bot").updater(None)`),
because updates reach it from our side: the webhook route, or our polling loop, turns each
`Update` into an `InboundEvent` for the durable `Inbox`, and the dispatcher later calls
`TelegramChannel.handle`, one event at a time per chat, in order. PTB's handler machinery is
not used on purpose: it swallows a handler's exception (the dispatcher needs it to retry the
event), and it would need the whole update stored, names and all, where the inbox keeps only
what answering needs.

Two ways in, chosen by the settings (`Settings.telegram_mode`):

- webhook (TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET): Telegram POSTs each update with
  `X-Telegram-Bot-Api-Secret-Token`; a missing or wrong secret is 403 and nothing is read
  further. `sla-bot telegram set-webhook URL` registers the URL, the secret, the update types
  and the command list;
- polling (a bot token only, for `make run` without a public URL): `start_polling` runs a
  background task that long-polls `getUpdates`, moving the offset past an update only once
  the inbox has stored it. Polling and a webhook exclude each other at Telegram, so polling
  first removes a webhook left registered for the bot (and says so in the log).

Either way the identity is `telegram:<chat id>` of the update's chat, only private chats are
served (in a group, a status lookup would show a citizen's request to everyone), and
`update_id` is the event id the inbox deduplicates by.

What the bot is told, per update:

- text goes to the conversation as typed; the commands `/start`, `/help`, `/status` become the
  Thai words the NLU understands (COMMANDS), since the conversation lets `/intent` payloads
  through only when they are buttons it offered;
- an inline-keyboard button carries a short token (`telegram_messages.button_token`), because
  `callback_data` holds 64 bytes; the token is mapped back to the exact payload offered, the
  callback query is answered (the spinner stops), and the payload goes to the conversation. A
  token whose mapping has expired is read as the button's label typed as text;
- a location or venue, or a photo (getFile, then the file downloaded; at most the photo
  store's limit, JPEG or PNG), goes to the complaint form when its open question takes one
  (`channels.media`); the file URL holds the token and is never logged;
- stickers, voice, documents, and photos and locations nobody asked for ...: a polite "please
  type" with the help menu;
- the citizen blocking the bot (or unblocking it) calls `on_unfollow` (`on_follow`), which the
  wiring points at the notifier's opt-outs, as LINE's unfollow and follow do.

Answers are sent with `sendMessage` right away: an answer's paragraphs joined into as few
messages as fit, long ones split at 4,096 characters on line breaks, Thai clusters whole.
Whatever Telegram does not take now (429, 5xx, network) goes to the `Outbox` under a key
derived from the update, and `deliver` remembers, per key, how many messages already went
out, so a retry sends only the rest. Rasa or the action server down: the
citizen gets the pipeline's apology once per outage (the outbox's `apology_due`; through the
outbox, keyed by the update, so a retried event never apologises again) and `handle` raises
`RetryLater`, so the dispatcher keeps the message and answers it when the service is back.

Secrets: the token is part of every Bot API URL, and PTB's own messages and reprs can contain
it (`Bot.initialize` on a refused token, `repr(bot)`). Nothing here logs a bot, an application
or a URL; errors are described by type and Telegram's description with the token masked; the
httpx and telegram loggers are kept at WARNING.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import re
import warnings
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, ExtBot
from telegram.warnings import PTBDeprecationWarning

from bot.answers.reply import Reply
from bot.complaints.photos import MAX_PHOTO_BYTES, PhotoStore
from bot.delivery.types import InboundEvent, Inbox, Outbox, RetryLater, Undeliverable
from bot.gateway.channels import media
from bot.gateway.channels import telegram_messages as tm
from bot.gateway.channels.webhooks import read_body
from bot.gateway.conversation import OFFER_TTL_SECONDS, Conversation, Turn, handle_showing_progress
from bot.gateway.state import MemoryState, SharedState, open_state
from bot.settings import Settings

logger = logging.getLogger(__name__)
# PTB 22 warns, even inside its own RetryAfter, that retry_after will become a timedelta; both
# forms are read here (_retry_after).
warnings.filterwarnings("ignore", message=".*`retry_after` will be of type", category=PTBDeprecationWarning)

NAME = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_BASE_URL = "https://api.telegram.org"
# An update is one message (at most 4,096 characters, with entities and the message it replies
# to): a few kilobytes. Anything near this is not from Telegram.
MAX_BODY_BYTES = 512 * 1024
# my_chat_member: a private chat's member status of the bot changes when the citizen blocks it
# ("kicked") or unblocks it ("member"): like LINE's unfollow and follow.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# Telegram allows 1 to 256 characters A-Z, a-z, 0-9, _ and - in a webhook's secret token.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
API_TIMEOUT_SECONDS = 10.0
POLL_TIMEOUT_SECONDS = 25  # long polling: Telegram holds getUpdates open this long when idle
POLL_BACKOFF_MAX_SECONDS = 30.0
TYPING_AFTER_SECONDS = 1.0  # show "typing…" when an answer takes longer than this
BUTTON_TTL_SECONDS = OFFER_TTL_SECONDS  # a button's token lives as long as the conversation's offer
PROGRESS_KEPT = 10_000
ANSWERED_KEPT = 10_000
INVALID_TOKEN_RETRY_SECONDS = 60.0

# The command list (setMyCommands) and what each command says to the conversation: plain Thai
# the NLU understands (the conversation refuses `/intent` payloads it did not offer).
COMMANDS: dict[str, tuple[str, str]] = {
    "start": ("เริ่มต้นใช้งาน และประกาศความเป็นส่วนตัว", "สวัสดี"),
    "help": ("ผู้ช่วยนี้ทำอะไรได้บ้าง", "ทำอะไรได้บ้าง"),
    "status": ("ตรวจสอบสถานะคำขอ", "ตรวจสอบสถานะคำขอ"),
}
# Commands whose words after the command go along (/status DLT-2569-000001).
COMMANDS_WITH_ARGUMENTS = frozenset({"status"})
HELP_TEXT = COMMANDS["help"][1]
PLEASE_TYPE = (
    "ขออภัย ผู้ช่วยนี้อ่านได้เฉพาะข้อความที่พิมพ์ ยังไม่รองรับสติกเกอร์ รูปภาพ เสียง วิดีโอ ไฟล์ หรือตำแหน่ง "
    "กรุณาพิมพ์คำถามเป็นข้อความ หรือเลือกหัวข้อจากปุ่มด้านล่าง"
)
BUTTON_EXPIRED = "ปุ่มนี้หมดอายุแล้ว กรุณาพิมพ์คำถามอีกครั้ง หรือพิมพ์ /help เพื่อดูหัวข้อทั้งหมด"
# Message contents answered with PLEASE_TYPE; other non-text messages (service messages) are ignored.
UNSUPPORTED_CONTENT = (
    "sticker", "photo", "voice", "audio", "video", "video_note", "animation", "document",
    "location", "venue", "contact", "poll", "dice", "game", "story", "paid_media",
)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Hook = Callable[[str], Awaitable[None]]


class TelegramSetupError(Exception):
    """The configuration is wrong (a refused token, a bad webhook URL); the message says what to do."""


class BadUpdate(ValueError):
    """A body with the right secret that is not a Telegram update."""


def quiet_client_loggers() -> None:
    """httpx logs every request URL at INFO, and a Bot API URL contains the token."""
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(logging.WARNING)


class TelegramChannel:
    """The Telegram adapter (ChannelAdapter): updates in, Bot API calls out.

    `state` holds the map from button tokens to payloads: give it the gateway's kind of state
    (Redis with REDIS_URL, so every replica can read a button another one sent).
    """

    name = NAME
    max_buttons = 10

    def __init__(
        self,
        token: str,
        webhook_secret: str = "",
        api_base_url: str = "",
        *,
        state: SharedState | None = None,
        typing_after: float = TYPING_AFTER_SECONDS,
        poll_timeout: int = POLL_TIMEOUT_SECONDS,
    ) -> None:
        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        if webhook_secret and not SECRET_PATTERN.fullmatch(webhook_secret):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET may hold only A-Z, a-z, 0-9, _ and - (1 to 256 characters): "
                "Telegram refuses any other secret token"
            )
        quiet_client_loggers()  # before building: PTB logs the API URL, token and all, at DEBUG
        self._token = token
        self.webhook_secret = webhook_secret
        self.api_base_url = (api_base_url or DEFAULT_API_BASE_URL).rstrip("/")
        self.application: Application = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{self.api_base_url}/bot")
            .base_file_url(f"{self.api_base_url}/file/bot")
            .updater(None)
            .connect_timeout(API_TIMEOUT_SECONDS)
            .read_timeout(API_TIMEOUT_SECONDS)
            .write_timeout(API_TIMEOUT_SECONDS)
            .pool_timeout(API_TIMEOUT_SECONDS)
            .build()
        )
        self._state = state if state is not None else MemoryState()
        self.typing_after = typing_after
        self.poll_timeout = poll_timeout
        self._ready_lock = asyncio.Lock()
        self._ready = False
        self._progress: OrderedDict[str, int] = OrderedDict()  # retry key -> messages sent
        self._answered: OrderedDict[str, None] = OrderedDict()  # callback queries answered
        self._poll_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._offset: int | None = None
        # Set by the wiring: called with the identity when a citizen blocks the bot, or unblocks it.
        self.on_unfollow: Hook | None = None
        self.on_follow: Hook | None = None
        # Set by the wiring: where photos sent for a complaint are kept (none: photos are not taken).
        self.photos: PhotoStore | None = None

    @property
    def mode(self) -> str:
        """"webhook" (Telegram calls us; needs the secret) or "polling" (we ask Telegram)."""
        return "webhook" if self.webhook_secret else "polling"

    @property
    def bot(self) -> ExtBot:
        """The Bot API client. Never log it: its repr holds the token."""
        return self.application.bot

    def describe(self, exc: BaseException) -> str:
        """An error for a log line or a message: its type and text, with the token masked."""
        text = str(exc).replace(self._token, "<TELEGRAM_BOT_TOKEN>")
        return f"{type(exc).__name__}: {text}"[:300]

    async def ready(self) -> None:
        """Initialise the application once (PTB calls getMe); TelegramSetupError on a refused token."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            try:
                await self.application.initialize()
            except InvalidToken:
                # PTB's message quotes the token: never let it reach a log or a traceback.
                raise TelegramSetupError(
                    "Telegram refused TELEGRAM_BOT_TOKEN (Unauthorized): copy the token again from @BotFather"
                ) from None
            self._ready = True

    async def _ready_or_retry(self) -> None:
        try:
            await self.ready()
        except TelegramSetupError as exc:
            logger.error("%s", exc)
            raise RetryLater(str(exc), after=INVALID_TOKEN_RETRY_SECONDS) from None
        except TelegramError as exc:
            raise RetryLater(f"Telegram getMe: {self.describe(exc)}", after=_retry_after(exc)) from None

    async def start(self, inbox: Inbox) -> None:
        """Start what the mode needs: polling, or (webhook) a look at the registered webhook."""
        if self.mode == "polling":
            await self.start_polling(inbox)
        else:
            self._spawn(self._check_webhook(), "telegram-webhook-check")

    async def close(self) -> None:
        await self.stop_polling()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._ready:
            await self.application.shutdown()
            self._ready = False
        await self._state.close()

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- updates -> events ---------------------------------------------------------------

    def parse_update(self, data: Any) -> Update:
        """A webhook body (decoded JSON) as an Update; BadUpdate when it is not one."""
        if not isinstance(data, dict):
            raise BadUpdate("not a JSON object")
        update_id = data.get("update_id")
        if isinstance(update_id, bool) or not isinstance(update_id, int) or update_id < 0:
            raise BadUpdate("no update_id")
        try:
            return Update.de_json(data, self.bot)
        except Exception as exc:  # PTB raises whatever the constructor meets: KeyError, TypeError ...
            raise BadUpdate(type(exc).__name__) from exc

    def inbound(self, update: Update, received_at: dt.datetime) -> InboundEvent | None:
        """The event to answer for `update`, or None for updates the bot does not act on.

        Left out (acknowledged, never answered): chats other than private ones, edited messages,
        channel posts and update types this bot did not ask for, service messages.
        """

        def make(kind: str, chat_id: int, text: str = "", **extra: Any) -> InboundEvent:
            return InboundEvent(
                channel=NAME,
                event_id=str(update.update_id),
                identity=f"{NAME}:{chat_id}",
                kind=kind,  # type: ignore[arg-type]
                received_at=received_at,
                text=text,
                extra=extra,
            )

        member = update.my_chat_member
        if member is not None:
            if member.chat.type != ChatType.PRIVATE:
                return None
            status = member.new_chat_member.status
            if status == ChatMemberStatus.BANNED:
                return make("unfollow", member.chat.id)
            if status == ChatMemberStatus.MEMBER:
                return make("follow", member.chat.id)
            return None
        query = update.callback_query
        if query is not None:
            message = query.message
            chat = getattr(message, "chat", None)
            if chat is None or chat.type != ChatType.PRIVATE:
                return None
            data = query.data or ""
            title = _button_title(message, data)
            extra: dict[str, Any] = {"callback_query_id": query.id}
            if title:
                extra["button_title"] = title
            return make("button", chat.id, data, **extra)
        message = update.message
        if message is None or message.chat.type != ChatType.PRIVATE:
            return None
        if message.text is not None:
            command = command_of(message.text)
            if command in COMMANDS:
                return make("command", message.chat.id, message.text, command=command)
            return make("message", message.chat.id, message.text)
        content = next((name for name in UNSUPPORTED_CONTENT if getattr(message, name, None)), None)
        if content is not None:
            return make("unsupported", message.chat.id, content=content, **_media_of(message))
        return None

    # -- events -> answers ---------------------------------------------------------------

    async def handle(self, event: InboundEvent, conversation: Conversation, outbox: Outbox) -> None:
        """Answer one accepted event (see the module docstring). Safe to run again for the same event."""
        if event.kind in ("follow", "unfollow"):
            # Nothing is said: a citizen who unblocks the bot presses Start, which greets them.
            hook = self.on_follow if event.kind == "follow" else self.on_unfollow
            if hook is not None:
                await hook(event.identity)
            return
        if event.kind == "button":
            await self._answer_callback(event)
            text = await self._payload_of(event)
            if text is None:
                await self._answer(event, [Reply(BUTTON_EXPIRED)], outbox)
                return
        elif event.kind == "command":
            text = command_text(event.text)
        elif event.kind == "message":
            text = event.text
        elif event.kind == "unsupported":
            turn = await self._media(event, conversation)
            if turn is not None:
                if turn.refused == "unavailable":
                    if await _apology_due(outbox, event.identity):
                        await outbox.enqueue(event.identity, turn.replies, f"{NAME}:{event.event_id}:unavailable")
                    raise RetryLater("the conversation is unavailable (Rasa or the action server is down)")
                await self._answer(event, turn.replies, outbox)
                return
            turn = await self._converse(conversation, event, HELP_TEXT, gateway_payload=media.HELP_PAYLOAD)
            if turn.refused == "rate_limited":
                replies = turn.replies
            else:
                buttons = next((r.buttons for r in turn.replies if r.buttons), ()) if not turn.refused else ()
                replies = [Reply(PLEASE_TYPE, buttons)]
            await self._answer(event, replies, outbox)
            return
        else:
            return
        turn = await self._converse(conversation, event, text)
        if turn.refused == "unavailable":
            if await _apology_due(outbox, event.identity):
                await outbox.enqueue(event.identity, turn.replies, f"{NAME}:{event.event_id}:unavailable")
            raise RetryLater("the conversation is unavailable (Rasa or the action server is down)")
        await self._answer(event, turn.replies, outbox)

    async def _media(self, event: InboundEvent, conversation: Conversation) -> Turn | None:
        """A location or photo for the complaint form's open question; None when none takes it."""
        return await media.take_media(
            conversation, event, self.photos, "photo_file_id", self._download, self.max_buttons
        )

    async def _download(self, file_id: str) -> bytes:
        """A photo's bytes: getFile, then the file itself. Its URL holds the bot token: never logged."""
        await self._ready_or_retry()
        file = await self.bot.get_file(file_id)
        if file.file_size is not None and file.file_size > MAX_PHOTO_BYTES:
            raise media.PhotoTooLarge(str(file.file_size))
        data = await file.download_as_bytearray()
        if len(data) > MAX_PHOTO_BYTES:
            raise media.PhotoTooLarge(str(len(data)))
        return bytes(data)

    async def _converse(
        self, conversation: Conversation, event: InboundEvent, text: str, gateway_payload: str | None = None
    ) -> Turn:
        """Run the conversation; show "typing…" if it takes longer than a moment."""
        return await handle_showing_progress(
            conversation, event.identity, text, max_buttons=self.max_buttons, gateway_payload=gateway_payload,
            slow_after=self.typing_after, show_progress=lambda: self._typing(event.identity),
        )

    async def _typing(self, identity: str) -> None:
        try:
            await self._ready_or_retry()
            await self.bot.send_chat_action(_chat_id(identity), ChatAction.TYPING)
        except (TelegramError, RetryLater, Undeliverable) as exc:
            logger.info("Telegram typing indicator not shown: %s", self.describe(exc))

    async def _answer_callback(self, event: InboundEvent) -> None:
        """Stop the button's spinner; a query already answered (or too old) is left alone."""
        query_id = event.extra.get("callback_query_id")
        if not isinstance(query_id, str) or not query_id or query_id in self._answered:
            return
        try:
            await self._ready_or_retry()
            await self.bot.answer_callback_query(query_id)
        except (TelegramError, RetryLater) as exc:
            logger.info("Telegram callback query of update %s not answered: %s", event.event_id, self.describe(exc))
            return
        _remember(self._answered, query_id, None, ANSWERED_KEPT)

    async def _payload_of(self, event: InboundEvent) -> str | None:
        """The payload behind a pressed button's token, else its label as typed words, else None."""
        token = event.text
        if token.startswith(tm.TOKEN_PREFIX):
            payload = await self._state.get(_button_key(event.identity, token))
            if payload:
                return payload
        title = event.extra.get("button_title")
        return title if isinstance(title, str) and title.strip() else None

    async def _answer(self, event: InboundEvent, replies: list[Reply], outbox: Outbox) -> None:
        """Send now; what Telegram does not take now goes to the outbox under the same key."""
        key = f"{NAME}:{event.event_id}:answer"
        try:
            await self.deliver(event.identity, replies, key)
        except RetryLater as exc:
            logger.info("Telegram answer to update %s queued: %s", event.event_id, exc)
            await outbox.enqueue(event.identity, replies, key)
        except Undeliverable as exc:
            logger.info("Telegram answer to update %s dropped: %s", event.event_id, exc)

    async def deliver(self, identity: str, replies: list[Reply], retry_key: str) -> None:
        """Send `replies` to `identity` now; RetryLater or Undeliverable on failure.

        An answer's paragraphs go out joined in as few messages as fit (`telegram_messages.joined`).
        Telegram has no idempotency key, so the channel counts, per `retry_key`, the messages
        already sent, and a retry sends only the rest: one message is never shown twice.
        429 (with its retry_after), 5xx, timeouts and a refused token raise RetryLater; a chat
        that blocked the bot (403), a chat that does not exist and any other refusal are
        Undeliverable.
        """
        chat_id = _chat_id(identity)
        await self._ready_or_retry()
        sent = self._progress.get(retry_key, 0)
        index = 0
        for reply in tm.joined(replies):
            if reply.buttons:
                for button in reply.buttons:
                    key = _button_key(identity, tm.button_token(button.payload))
                    await self._state.set(key, button.payload, BUTTON_TTL_SECONDS)
            for text, keyboard in tm.messages(reply):
                if index >= sent:
                    await self._send(chat_id, text, keyboard)
                    _remember(self._progress, retry_key, index + 1, PROGRESS_KEPT)
                index += 1

    async def _send(self, chat_id: int, text: str, keyboard: Any) -> None:
        try:
            await self.bot.send_message(chat_id, text, reply_markup=keyboard, link_preview_options=NO_PREVIEW)
        except RetryAfter as exc:
            raise RetryLater(f"Telegram 429: {self.describe(exc)}", after=_retry_after(exc)) from None
        except (Forbidden, BadRequest, ChatMigrated) as exc:
            raise Undeliverable(f"Telegram refused: {self.describe(exc)}") from None
        except InvalidToken as exc:
            logger.error("Telegram refused TELEGRAM_BOT_TOKEN: %s", self.describe(exc))
            raise RetryLater("Telegram refused the bot token", after=INVALID_TOKEN_RETRY_SECONDS) from None
        except TelegramError as exc:  # NetworkError (5xx, timeouts), Conflict, anything newer
            raise RetryLater(f"Telegram: {self.describe(exc)}") from None

    # -- set-up calls ---------------------------------------------------------------------

    async def register_commands(self) -> None:
        """The command menu Telegram shows (setMyCommands)."""
        await self.ready()
        await self.bot.set_my_commands([BotCommand(name, words[0]) for name, words in COMMANDS.items()])

    async def set_webhook(self, url: str, *, drop_pending_updates: bool = False) -> str:
        """Register `url` with the secret and the update types, and the command list; a summary."""
        if not self.webhook_secret:
            raise TelegramSetupError(
                "TELEGRAM_WEBHOOK_SECRET is not set: choose one (A-Z, a-z, 0-9, _ and -, e.g. "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`), put it in .env "
                "and give the gateway the same value"
            )
        url = webhook_url(url)
        try:
            await self.ready()
            await self.bot.set_webhook(
                url,
                secret_token=self.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            )
            await self.register_commands()
            info = await self.bot.get_webhook_info()
        except TelegramError as exc:
            raise TelegramSetupError(f"Telegram refused: {self.describe(exc)}") from None
        return (
            f"Telegram now sends @{self.bot.username}'s updates ({', '.join(ALLOWED_UPDATES)}) to {info.url} "
            f"with the secret token; commands {', '.join('/' + c for c in COMMANDS)} registered; "
            f"{info.pending_update_count} update(s) waiting."
        )

    async def _check_webhook(self) -> None:
        """Webhook mode: warn in the log when Telegram does not know our webhook (or reports errors)."""
        try:
            await self.ready()
            info = await self.bot.get_webhook_info()
        except (TelegramError, TelegramSetupError) as exc:
            logger.warning("Telegram webhook not checked: %s", self.describe(exc))
            return
        if not info.url:
            logger.warning(
                "Telegram has no webhook for this bot: run `sla-bot telegram set-webhook https://<public host>%s`",
                WEBHOOK_PATH,
            )
        elif info.last_error_message:
            logger.warning("Telegram reports webhook errors: %s", info.last_error_message[:200])

    # -- polling --------------------------------------------------------------------------

    async def start_polling(self, inbox: Inbox) -> None:
        """Start the background getUpdates loop feeding `inbox` (a no-op if it runs already)."""
        if self._poll_task is not None and not self._poll_task.done():
            return
        self._poll_task = asyncio.create_task(self._poll(inbox), name="telegram-polling")

    async def stop_polling(self) -> None:
        """Stop the loop and confirm what the inbox has stored, so Telegram does not send it again."""
        task, self._poll_task = self._poll_task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._offset is not None and self._ready:
            try:
                await self.bot.get_updates(
                    offset=self._offset, limit=1, timeout=0,
                    read_timeout=2, connect_timeout=2, write_timeout=2, pool_timeout=2,
                )
            except TelegramError as exc:
                logger.info("Telegram offset not confirmed at stop: %s", self.describe(exc))

    async def _prepare_polling(self) -> None:
        await self.ready()
        info = await self.bot.get_webhook_info()
        if info.url:
            logger.warning(
                "Telegram had a webhook registered for this bot; removing it to poll "
                "(set TELEGRAM_WEBHOOK_SECRET and run `sla-bot telegram set-webhook` to go back)"
            )
            await self.bot.delete_webhook(drop_pending_updates=False)
        await self.register_commands()
        logger.info("Telegram polling started (@%s)", self.bot.username)

    async def _poll(self, inbox: Inbox) -> None:
        backoff = 1.0
        prepared = False
        while True:
            try:
                if not prepared:
                    await self._prepare_polling()
                    prepared = True
                updates = await self.bot.get_updates(
                    offset=self._offset, timeout=self.poll_timeout, allowed_updates=list(ALLOWED_UPDATES)
                )
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(_retry_after(exc) or backoff)
                continue
            except (TelegramError, TelegramSetupError) as exc:
                if isinstance(exc, Conflict):
                    message = "another process polls this bot, or a webhook is set"
                    logger.warning("Telegram getUpdates conflict (%s): %s", message, self.describe(exc))
                elif isinstance(exc, (NetworkError, TelegramSetupError, InvalidToken)):
                    logger.warning("Telegram polling: %s; retrying in %.0f s", self.describe(exc), backoff)
                else:
                    logger.warning("Telegram polling: %s", self.describe(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX_SECONDS)
                continue
            except Exception:  # a bug here must not end polling for good
                logger.exception("Telegram polling failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX_SECONDS)
                continue
            await self._take(updates, inbox)

    async def _take(self, updates: Iterable[Update], inbox: Inbox) -> None:
        """Store each update's event; the offset moves past an update only once it is stored."""
        received_at = dt.datetime.now(dt.timezone.utc)
        for update in updates:
            event = self.inbound(update, received_at)
            if event is not None:
                try:
                    await inbox.accept(event)
                except Exception:  # storage down: ask Telegram for the same updates again later
                    logger.exception("Telegram update %s could not be stored", update.update_id)
                    await asyncio.sleep(1.0)
                    return
            self._offset = update.update_id + 1


# -- helpers -------------------------------------------------------------------------------


def _media_of(message: Any) -> dict[str, Any]:
    """What the complaint form may take from a message: a location (a venue's with its name), or
    the largest size of a photo that fits the photo store (Telegram lists sizes smallest first)."""
    venue = getattr(message, "venue", None)
    location = venue.location if venue is not None else getattr(message, "location", None)
    if location is not None:
        name = " ".join(x for x in (getattr(venue, "title", ""), getattr(venue, "address", "")) if x)
        return {"location": {"latitude": location.latitude, "longitude": location.longitude, "name": name}}
    sizes = [p for p in (getattr(message, "photo", None) or ()) if (p.file_size or 0) <= MAX_PHOTO_BYTES]
    if sizes:
        return {"photo_file_id": sizes[-1].file_id}
    return {}


def command_of(text: str) -> str | None:
    """The command a message starts with ("/status@SlaBot DLT-..." -> "status"), else None."""
    if not text.startswith("/"):
        return None
    head = text.split(maxsplit=1)[0][1:]
    return head.split("@", 1)[0].lower() or None


def command_text(text: str) -> str:
    """What a command says to the conversation: its Thai words, with /status's arguments."""
    command = command_of(text) or ""
    words = COMMANDS.get(command, ("", text))[1]
    parts = text.split(maxsplit=1)
    if command in COMMANDS_WITH_ARGUMENTS and len(parts) == 2:
        return f"{words} {parts[1].strip()}"
    return words


def webhook_url(url: str) -> str:
    """The URL Telegram should POST to: HTTPS, with /webhooks/telegram when only a host is given."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise TelegramSetupError(
            f"the webhook URL must start with https:// and name the gateway's public host, got {url!r} "
            "(Telegram only calls HTTPS URLs, on ports 443, 80, 88 or 8443)"
        )
    path = parts.path if parts.path not in ("", "/") else WEBHOOK_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _chat_id(identity: str) -> int:
    prefix = f"{NAME}:"
    rest = identity[len(prefix) :] if identity.startswith(prefix) else ""
    try:
        return int(rest)
    except ValueError:
        raise Undeliverable(f"not a Telegram identity: {identity.split(':', 1)[0]}") from None


def _button_key(identity: str, token: str) -> str:
    return f"{NAME}:button:{identity}:{token}"


def _button_title(message: Any, data: str) -> str | None:
    """The label of the inline button whose callback_data is `data`, from the message it was under."""
    markup = getattr(message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if button.callback_data == data:
                return str(button.text)[:100]
    return None


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, RetryAfter):
        return None
    with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    return max(0.0, seconds)


async def _apology_due(outbox: Outbox, identity: str) -> bool:
    """Whether to apologise now: once per outage when the outbox keeps track, else once per event.

    The apology's outbox key is the event's, so a retried event never apologises twice either way.
    """
    due = getattr(outbox, "apology_due", None)
    return True if due is None else bool(await due(identity))


def _remember(cache: OrderedDict, key: str, value: Any, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


# -- the gateway's entry points -----------------------------------------------------------


def from_settings(settings: Settings) -> TelegramChannel | None:
    """The channel when TELEGRAM_BOT_TOKEN is set (webhook mode with TELEGRAM_WEBHOOK_SECRET), else None."""
    if not settings.telegram_enabled:
        return None
    quiet_client_loggers()
    return TelegramChannel(
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.telegram_api_base_url,
        state=open_state(settings.redis_url),
    )


def router(channel: TelegramChannel, inbox: Inbox, *, max_body_bytes: int = MAX_BODY_BYTES) -> APIRouter:
    """`POST /webhooks/telegram`: check the secret, store the update's event, answer 200 at once.

    In polling mode there is no secret, and the route refuses every request (403).
    """
    routes = APIRouter()
    secret = channel.webhook_secret.encode()

    @routes.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not secret or not hmac.compare_digest(given, secret):
            logger.warning("Telegram webhook with a missing or wrong secret token refused")
            return JSONResponse({"detail": "wrong or missing secret token"}, status_code=403)
        received_at = dt.datetime.now(dt.timezone.utc)
        body = await read_body(request, max_body_bytes)
        if body is None:
            return JSONResponse({"detail": f"body larger than {max_body_bytes} bytes"}, status_code=413)
        try:
            update = channel.parse_update(json.loads(body))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or not an update (BadUpdate)
            return JSONResponse({"detail": "not a Telegram update"}, status_code=400)
        event = channel.inbound(update, received_at)
        if event is not None:
            try:
                await inbox.accept(event)
            except Exception:  # storage down: Telegram sends the update again; duplicates are dropped then
                logger.exception("Telegram update %s could not be stored", update.update_id)
                return JSONResponse({"detail": "try again later"}, status_code=503)
        return Response(status_code=200)

    return routes


async def setup_webhook(settings: Settings, url: str, *, drop_pending_updates: bool = False) -> str:
    """`sla-bot telegram set-webhook URL`: register the webhook and the commands; a summary line."""
    if not settings.telegram_bot_token:
        raise TelegramSetupError(
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env"
        )
    quiet_client_loggers()
    try:
        channel = TelegramChannel(
            settings.telegram_bot_token, settings.telegram_webhook_secret, settings.telegram_api_base_url
        )
    except ValueError as exc:
        raise TelegramSetupError(str(exc)) from None
    try:
        return await channel.set_webhook(url, drop_pending_updates=drop_pending_updates)
    finally:
        await channel.close()
