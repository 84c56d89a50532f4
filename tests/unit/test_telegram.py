"""The Telegram channel: python-telegram-bot against the local fake Bot API, the real pipeline.

The webhook route runs in-process (ASGI); the conversation is the real `Conversation` with Rasa
replaced by a scripted stand-in of its REST channel (as in test_gateway.py); the Inbox and the
Outbox are small in-memory stand-ins of the delivery protocols, and `dispatch` plays the
dispatcher. tests/integration/test_telegram.py does the same through the real Rasa server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata

import aiohttp
import httpx
import pytest
from fastapi import FastAPI

from bot.answers.reply import Button, Reply
from bot.complaints.photos import PhotoStore
from bot.delivery.types import InboundEvent, RetryLater, Undeliverable
from bot.gateway.channels import media
from bot.gateway.channels import telegram as tg
from bot.gateway.channels import telegram_messages as tm
from bot.gateway.conversation import MORE_PAYLOAD, MORE_TITLE, TOO_LONG, UNAVAILABLE, Conversation
from bot.gateway.state import MemoryState
from bot.settings import Settings
from tests.fakes.http_server import serve
from tests.fakes.telegram_api import (
    FakeTelegramAPI,
    blocked_update,
    callback_update,
    location_update,
    photo_update,
    sticker_update,
    text_update,
)

# PTB 22 warns inside its own RetryAfter that retry_after becomes a timedelta; the channel reads both.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

SECRET = "test-secret_0123456789"
CHAT = 5550001
FEE = '/ask_fee{"service": "passport"}'
# Longer than callback_data's 64 bytes, as payloads with Thai entity values are.
LONG_PAYLOAD = '/ask_documents{"service": "foreign_worker_permit", "office": "สำนักงานจัดหางานกรุงเทพมหานครพื้นที่ 10"}'
THAI_MARKS = {"\u0e31", *map(chr, range(0x0E34, 0x0E3B)), *map(chr, range(0x0E47, 0x0E4F)), "\u0e33"}


# --------------------------------------------------------------------------- stand-ins


class ScriptedRasa:
    """Rasa's REST channel and status endpoint answering from a script; records what it got."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.replies: list[dict] = [{"text": "ตอบ"}]
        self.up = True
        self.delay = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/webhooks/rest/webhook":
            if not self.up:
                return httpx.Response(500)
            if self.delay:
                await asyncio.sleep(self.delay)
            self.received.append(json.loads(request.content)["message"])
            return httpx.Response(200, json=self.replies)
        if request.url.path == "/status":
            return httpx.Response(200 if self.up else 500, json={"model_file": "m.tar.gz"})
        if request.url.path == "/health":
            return httpx.Response(200)
        return httpx.Response(404)


class MemoryInbox:
    """The Inbox protocol in memory: events in order, deduplicated by (channel, event_id)."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.taken = 0
        self.fail = False
        self.failures = 0

    async def accept(self, event: InboundEvent) -> bool:
        if self.fail:
            self.failures += 1
            raise RuntimeError("database unavailable")
        if any((e.channel, e.event_id) == (event.channel, event.event_id) for e in self.events):
            return False
        self.events.append(event)
        return True

    def new(self) -> list[InboundEvent]:
        fresh = self.events[self.taken :]
        self.taken = len(self.events)
        return fresh


class MemoryOutbox:
    """The Outbox protocol in memory: what was queued, each key once."""

    def __init__(self) -> None:
        self.queued: dict[str, tuple[str, list[Reply]]] = {}

    async def enqueue(self, identity: str, replies: list[Reply], key: str) -> bool:
        if key in self.queued:
            return False
        self.queued[key] = (identity, list(replies))
        return True


class OutageAwareOutbox(MemoryOutbox):
    """An outbox that also remembers who was told about the current outage (as the durable one does)."""

    def __init__(self) -> None:
        super().__init__()
        self.told: set[str] = set()

    async def apology_due(self, identity: str) -> bool:
        if identity in self.told:
            return False
        self.told.add(identity)
        return True


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake():
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
def api(fake: FakeTelegramAPI) -> FakeTelegramAPI:
    fake.reset()
    return fake


@pytest.fixture
def rasa() -> ScriptedRasa:
    return ScriptedRasa()


@pytest.fixture
async def conversation(rasa: ScriptedRasa):
    async with serve(rasa) as url, aiohttp.ClientSession() as client:
        yield Conversation(url, client, MemoryState(), actions_url=url, rate_limit=1000)


@pytest.fixture
async def channel(api: FakeTelegramAPI):
    ch = tg.TelegramChannel(api.token, SECRET, api.base_url, typing_after=5.0, poll_timeout=1)
    yield ch
    await ch.close()


@pytest.fixture
def inbox() -> MemoryInbox:
    return MemoryInbox()


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
async def client(channel: tg.TelegramChannel, inbox: MemoryInbox):
    app = FastAPI()
    app.include_router(tg.router(channel, inbox, max_body_bytes=64 * 1024))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield http


async def post(client: httpx.AsyncClient, update: object, secret: str | None = SECRET, **kwargs) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[tg.SECRET_HEADER] = secret
    content = update if isinstance(update, (bytes, str)) else json.dumps(update, ensure_ascii=False)
    return await client.post(tg.WEBHOOK_PATH, content=content, headers=headers, **kwargs)


async def dispatch(channel, inbox: MemoryInbox, conversation, outbox) -> None:
    """What the dispatcher does: each newly accepted event to the adapter, in order."""
    for event in inbox.new():
        await channel.handle(event, conversation, outbox)


# --------------------------------------------------------------------------- the webhook


async def test_a_webhook_with_the_secret_is_stored_and_acknowledged(client, inbox):
    response = await post(client, text_update(1, CHAT, "ต่อภาษีรถใช้อะไรบ้าง"))
    assert response.status_code == 200
    [event] = inbox.events
    assert (event.channel, event.event_id, event.kind) == ("telegram", "1", "message")
    assert event.identity == f"telegram:{CHAT}"
    assert event.text == "ต่อภาษีรถใช้อะไรบ้าง"
    # Only what answering needs is stored: no names, no raw update.
    assert "สมชาย" not in json.dumps(event.extra, ensure_ascii=False)


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET.upper()])
async def test_a_missing_or_wrong_secret_is_refused_and_nothing_processed(client, inbox, api, secret):
    response = await post(client, text_update(2, CHAT, "สวัสดี"), secret=secret)
    assert response.status_code == 403
    assert inbox.events == []
    assert api.calls == []


async def test_a_wrong_secret_is_refused_before_the_body_is_judged(client, inbox):
    assert (await post(client, b"{not json", secret="wrong")).status_code == 403
    assert (await post(client, b"x" * 100_000, secret=None)).status_code == 403


async def test_polling_mode_has_no_webhook(api, inbox):
    polling = tg.TelegramChannel(api.token, "", api.base_url)
    app = FastAPI()
    app.include_router(tg.router(polling, inbox))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        for secret in ("", "anything", None):
            assert (await post(http, text_update(3, CHAT, "สวัสดี"), secret=secret)).status_code == 403
    assert inbox.events == []
    await polling.close()


async def test_a_redelivered_update_is_stored_once(client, inbox):
    update = text_update(10, CHAT, "ค่าธรรมเนียมพาสปอร์ต")
    assert (await post(client, update)).status_code == 200
    assert (await post(client, update)).status_code == 200
    assert [e.event_id for e in inbox.events] == ["10"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"update"',
        b"{}",
        b'{"update_id": "12"}',
        b'{"update_id": true}',
        b'{"update_id": -5}',
        b'{"update_id": 12, "message": "hello"}',
        b'{"update_id": 12, "message": {"text": "no chat, no date"}}',
        b"[" * 20_000 + b"]" * 20_000,
    ],
)
async def test_malformed_bodies_get_400(client, inbox, body):
    response = await post(client, body)
    assert response.status_code == 400
    assert inbox.events == []


async def test_a_huge_body_gets_413(client, inbox):
    update = text_update(13, CHAT, "ก" * 70_000)
    assert (await post(client, update)).status_code == 413

    async def chunks():  # no Content-Length: the cap holds while streaming
        for _ in range(100):
            yield b" " * 1024

    response = await client.post(
        tg.WEBHOOK_PATH, content=chunks(), headers={tg.SECRET_HEADER: SECRET, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert inbox.events == []


async def test_updates_the_bot_does_not_act_on_are_acknowledged_and_ignored(client, inbox):
    edited = text_update(20, CHAT, "แก้ไข")
    edited["edited_message"] = edited.pop("message")
    inline = {"update_id": 21, "inline_query": {"id": "1", "from": {"id": CHAT, "is_bot": False, "first_name": "a"},
                                                "query": "x", "offset": ""}}
    future_type = {"update_id": 22, "some_future_update": {"x": 1}}
    group = text_update(23, -100123, "สวัสดีทุกคน", chat_type="supergroup")
    service = text_update(24, CHAT, "x")
    del service["message"]["text"]
    service["message"]["pinned_message"] = {"message_id": 1, "date": 0, "chat": {"id": CHAT, "type": "private"}}
    for update in (edited, inline, future_type, group, service):
        assert (await post(client, update)).status_code == 200
    assert inbox.events == []


async def test_storage_down_answers_503_so_telegram_sends_again(client, inbox):
    inbox.fail = True
    assert (await post(client, text_update(30, CHAT, "สวัสดี"))).status_code == 503
    inbox.fail = False
    assert (await post(client, text_update(30, CHAT, "สวัสดี"))).status_code == 200
    assert len(inbox.events) == 1


# --------------------------------------------------------------------------- commands and text


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/start", "สวัสดี"),
        ("/start campaign-42", "สวัสดี"),
        ("/start@sla_test_bot", "สวัสดี"),
        ("/help", "ทำอะไรได้บ้าง"),
        ("/HELP", "ทำอะไรได้บ้าง"),
        ("/status", "ตรวจสอบสถานะคำขอ"),
        ("/status DLT-2569-000001", "ตรวจสอบสถานะคำขอ DLT-2569-000001"),
    ],
)
async def test_commands_become_words_the_nlu_understands(client, inbox, channel, conversation, outbox, rasa, api,
                                                         typed, said):
    rasa.replies = [{"text": "สวัสดี ยินดีให้บริการ\n🔒 ข้อความที่พิมพ์ใช้เพื่อตอบคำถามเท่านั้น"}]
    assert (await post(client, text_update(40, CHAT, typed))).status_code == 200
    assert inbox.events[0].kind == "command"
    await dispatch(channel, inbox, conversation, outbox)
    assert rasa.received == [said]
    assert api.sent_texts(CHAT) == [rasa.replies[0]["text"]]


async def test_an_unknown_command_is_the_citizens_words_without_the_slash(client, inbox, channel, conversation,
                                                                          outbox, rasa):
    await post(client, text_update(41, CHAT, '/ask_fee{"service": "passport"}'))
    assert inbox.events[0].kind == "message"
    await dispatch(channel, inbox, conversation, outbox)
    assert rasa.received == ['ask_fee{"service": "passport"}']  # never an intent the bot did not offer


async def test_commands_are_registered_with_telegram(channel, api):
    await channel.register_commands()
    assert [c["command"] for c in api.commands] == ["start", "help", "status"]
    assert all(c["description"] for c in api.commands)


async def test_a_5000_character_message_and_an_emoji_only_message_get_answers(client, inbox, channel,
                                                                              conversation, outbox, rasa, api):
    await post(client, text_update(42, CHAT, "ก" * 5000))
    await post(client, text_update(43, CHAT, "😀🙏👍"))
    await dispatch(channel, inbox, conversation, outbox)
    texts = api.sent_texts(CHAT)
    assert texts[0].startswith(TOO_LONG.split("{")[0])
    assert rasa.received == ["😀🙏👍"] and texts[1] == "ตอบ"


@pytest.mark.parametrize("make", [sticker_update, photo_update, location_update])
async def test_unsupported_content_gets_please_type_with_the_help_menu(client, inbox, channel, conversation,
                                                                       outbox, rasa, api, make):
    rasa.replies = [{"text": "ผู้ช่วยนี้ตอบคำถาม...", "buttons": [{"title": "ค่าธรรมเนียม", "payload": FEE}]}]
    assert (await post(client, make(44, CHAT))).status_code == 200
    assert inbox.events[0].kind == "unsupported"
    await dispatch(channel, inbox, conversation, outbox)
    [sent] = api.sent(CHAT)
    assert sent["text"] == tg.PLEASE_TYPE
    assert [b["text"] for row in sent["reply_markup"]["inline_keyboard"] for b in row] == ["ค่าธรรมเนียม"]


JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64


async def test_a_location_and_a_photo_the_complaint_form_asks_for_reach_it(
    client, inbox, channel, conversation, outbox, rasa, api, tmp_path, caplog
):
    channel.photos = PhotoStore(tmp_path / "photos")
    rasa.replies = [{"text": "เกิดเหตุที่ไหน"}, {"custom": {"expects": "complaint_location"}}]
    await post(client, text_update(60, CHAT, "เจ้าหน้าที่ให้รอทั้งวัน"))
    await dispatch(channel, inbox, conversation, outbox)
    rasa.replies = [{"text": "มีรูปไหม"}, {"custom": {"expects": "complaint_photo"}}]
    await post(client, location_update(61, CHAT, 13.7563, 100.5018))
    await dispatch(channel, inbox, conversation, outbox)
    assert rasa.received[-1] == '/file_complaint{"latitude": 13.7563, "longitude": 100.5018}'
    api.add_file("AgAC-complaint-photo", JPEG)
    rasa.replies = [{"text": "ได้รับรูปแล้ว 1 รูป"}, {"custom": {"expects": "complaint_photo"}}]
    with caplog.at_level("DEBUG"):
        await post(client, photo_update(62, CHAT, "AgAC-complaint-photo", file_size=len(JPEG)))
        await dispatch(channel, inbox, conversation, outbox)
    photo_id = json.loads(rasa.received[-1].removeprefix("/file_complaint"))["photo_id"]
    assert channel.photos.read(photo_id) == JPEG
    assert [c.params["file_id"] for c in api.calls_to("getFile")] == ["AgAC-complaint-photo"], "the largest size"
    assert api.token not in caplog.text, "the file URL holds the token: never logged"
    assert api.sent_texts(CHAT)[-1] == "ได้รับรูปแล้ว 1 รูป"


async def test_a_photo_that_is_too_large_or_unreadable_is_refused_and_the_question_stays(
    client, inbox, channel, conversation, outbox, rasa, api, tmp_path
):
    channel.photos = PhotoStore(tmp_path / "photos")
    rasa.replies = [{"text": "มีรูปไหม"}, {"custom": {"expects": "complaint_photo"}}]
    await post(client, text_update(70, CHAT, "ข้าม"))
    await dispatch(channel, inbox, conversation, outbox)
    asked = len(rasa.received)
    huge = photo_update(71, CHAT, "huge", file_size=6 * 1024 * 1024)
    huge["message"]["photo"][0]["file_size"] = 6 * 1024 * 1024  # no size of it fits the photo store
    await post(client, huge)
    await post(client, photo_update(72, CHAT, "unknown-file-id"))
    api.add_file("gif", b"GIF89a" + b"0" * 10)
    await post(client, photo_update(73, CHAT, "gif"))
    await dispatch(channel, inbox, conversation, outbox)
    assert len(rasa.received) == asked + 1, "only the oversized photo went on, as 'please type' (/help)"
    assert rasa.received[-1] == "/help"
    assert api.sent_texts(CHAT)[-3:] == [tg.PLEASE_TYPE, media.PHOTO_UNAVAILABLE, media.PHOTO_REJECTED]


async def test_typing_is_shown_when_the_answer_takes_a_moment(client, inbox, api, conversation, outbox, rasa):
    slow = tg.TelegramChannel(api.token, SECRET, api.base_url, typing_after=0.05)
    rasa.delay = 0.3
    await post(client, text_update(45, CHAT, "เปิดกี่โมง"))
    await dispatch(slow, inbox, conversation, outbox)
    [action] = api.calls_to("sendChatAction")
    assert action.params == {"chat_id": CHAT, "action": "typing"}
    assert api.sent_texts(CHAT) == ["ตอบ"]
    await slow.close()


# --------------------------------------------------------------------------- buttons


async def test_buttons_become_an_inline_keyboard_and_a_press_feeds_the_exact_payload(
    client, inbox, channel, conversation, outbox, rasa, api
):
    rasa.replies = [{"text": "เลือกหัวข้อ", "buttons": [
        {"title": "ค่าธรรมเนียม", "payload": FEE},
        {"title": "เอกสารคนต่างด้าว", "payload": LONG_PAYLOAD},
    ]}]
    await post(client, text_update(50, CHAT, "พาสปอร์ต"))
    await dispatch(channel, inbox, conversation, outbox)
    [sent] = api.sent(CHAT)
    keyboard = sent["reply_markup"]
    datas = [b["callback_data"] for row in keyboard["inline_keyboard"] for b in row]
    assert len(datas) == 2 and all(1 <= len(d.encode()) <= 64 for d in datas)
    assert len(LONG_PAYLOAD.encode()) > 64

    rasa.replies = [{"text": "เอกสารที่ต้องใช้ ..."}]
    press = callback_update(51, CHAT, datas[1], query_id="q-51", keyboard=keyboard)
    assert (await post(client, press)).status_code == 200
    assert inbox.events[-1].kind == "button"
    await dispatch(channel, inbox, conversation, outbox)
    [answered] = api.calls_to("answerCallbackQuery")
    assert answered.params["callback_query_id"] == "q-51"  # the spinner stops
    assert rasa.received[-1] == LONG_PAYLOAD  # exactly the payload offered: it reached Rasa as an intent
    assert api.sent_texts(CHAT)[-1] == "เอกสารที่ต้องใช้ ..."


async def test_a_button_beyond_the_limit_is_paged_behind_more(client, inbox, channel, conversation, outbox, rasa,
                                                              api):
    buttons = [{"title": f"บริการ {i}", "payload": f'/ask_service{{"service": "s{i}"}}'} for i in range(14)]
    rasa.replies = [{"text": "ทุกบริการ", "buttons": buttons}]
    await post(client, text_update(52, CHAT, "/help"))
    await dispatch(channel, inbox, conversation, outbox)
    keyboard = api.sent(CHAT)[0]["reply_markup"]
    titles = [b["text"] for row in keyboard["inline_keyboard"] for b in row]
    assert len(titles) == channel.max_buttons and titles[-1] == MORE_TITLE
    more = next(b for row in keyboard["inline_keyboard"] for b in row if b["text"] == MORE_TITLE)
    assert more["callback_data"] == tm.button_token(MORE_PAYLOAD)
    await post(client, callback_update(53, CHAT, more["callback_data"], keyboard=keyboard))
    await dispatch(channel, inbox, conversation, outbox)
    page = api.sent(CHAT)[-1]
    assert page["text"] == tm.BUTTONS_ONLY_TEXT
    assert [b["text"] for row in page["reply_markup"]["inline_keyboard"] for b in row][0] == "บริการ 9"


async def test_an_expired_button_is_read_as_its_label(client, inbox, channel, conversation, outbox, rasa, api):
    keyboard = {"inline_keyboard": [[{"text": "ค่าธรรมเนียม", "callback_data": "b:unknowntoken"}]]}
    await post(client, callback_update(54, CHAT, "b:unknowntoken", keyboard=keyboard))
    await post(client, callback_update(55, CHAT, "something-else"))
    await dispatch(channel, inbox, conversation, outbox)
    assert rasa.received == ["ค่าธรรมเนียม"]
    assert api.sent_texts(CHAT) == ["ตอบ", tg.BUTTON_EXPIRED]
    assert len(api.calls_to("answerCallbackQuery")) == 2


async def test_a_stale_callback_query_still_gets_its_answer(client, inbox, channel, conversation, outbox, rasa, api):
    await channel.deliver(f"telegram:{CHAT}", [Reply("เลือก", (Button("ค่าธรรมเนียม", FEE),))], "seed")
    api.stale_callbacks.add("old-query")
    await post(client, callback_update(56, CHAT, tm.button_token(FEE), query_id="old-query"))
    await dispatch(channel, inbox, conversation, outbox)
    assert api.calls_to("answerCallbackQuery", ok_only=False)[0].status == 400
    assert api.sent_texts(CHAT)[-1] == "ตอบ"


def test_inline_keyboard_layout_and_tokens():
    short = [Button("เอกสาร", "/a"), Button("ค่าธรรมเนียม", "/b"), Button("เวลาทำการ", "/c")]
    keyboard = tm.inline_keyboard(short)
    assert [[b.text for b in row] for row in keyboard.inline_keyboard] == [["เอกสาร", "ค่าธรรมเนียม"], ["เวลาทำการ"]]
    long = [Button("ต่ออายุใบอนุญาตขับรถ", "/d"), Button("ค่า", "/e")]
    assert [len(row) for row in tm.inline_keyboard(long).inline_keyboard] == [1, 1]
    assert tm.inline_keyboard([]) is None
    token = tm.button_token(LONG_PAYLOAD)
    assert token == tm.button_token(LONG_PAYLOAD) != tm.button_token(FEE)
    assert token.isascii() and len(token.encode()) <= tm.CALLBACK_DATA_MAX


# --------------------------------------------------------------------------- long replies, Thai intact


def _assert_clusters_whole(chunks: list[str]) -> None:
    for chunk in chunks:
        assert chunk[0] not in THAI_MARKS, f"chunk starts with a combining mark: {chunk[:10]!r}"
        assert unicodedata.category(chunk[0]) not in ("Mn", "Mc")
        assert chunk[-1] not in "เแโใไ", f"chunk ends with a leading vowel: {chunk[-10:]!r}"


def test_split_text_on_line_breaks_within_the_limit():
    lines = [f"{i}. ต้องใช้สำเนาทะเบียนบ้านที่มีชื่อผู้ยื่นคำขอ และบัตรประจำตัวประชาชนฉบับจริง" for i in range(200)]
    text = "\n".join(lines)
    chunks = tm.split_text(text)
    assert len(chunks) > 1
    assert all(tm.telegram_length(c) <= tm.MESSAGE_LIMIT for c in chunks)
    assert "\n".join(chunks) == text  # cut only at line breaks: nothing lost, nothing cut
    _assert_clusters_whole(chunks)


def test_split_text_cuts_a_long_line_between_thai_clusters():
    syllables = ["กี่", "เดือน", "ที่", "น้ำ", "ไม้", "ปั้น", "เกื้อ", "โต๊ะ", "ใคร่", "แก้ว", "ฉึ่ง", "กำ"]
    line = "".join(syllables[i % len(syllables)] for i in range(3000))  # no spaces, no line breaks
    for limit in (4096, 100, 37, 8):
        chunks = tm.split_text(line, limit)
        assert "".join(chunks) == line
        assert all(tm.telegram_length(c) <= limit for c in chunks)
        _assert_clusters_whole(chunks)


def test_split_text_prefers_spaces_and_counts_emoji_as_telegram_does():
    words = " ".join(["บริการ"] * 1000)
    chunks = tm.split_text(words, 100)
    assert all(not c.startswith(" ") and tm.telegram_length(c) <= 100 for c in chunks)
    assert " ".join(chunks) == words
    emoji = "😀" * 3000  # 2 UTF-16 units each
    chunks = tm.split_text(emoji)
    assert [tm.telegram_length(c) for c in chunks] == [4096, 1904]
    assert tm.can_cut("ก\u0e34", 1) is False and tm.can_cut("เก", 1) is False and tm.can_cut("กข", 1) is True


async def test_a_long_reply_goes_out_as_several_messages_with_the_buttons_on_the_last(
    client, inbox, channel, conversation, outbox, rasa, api
):
    text = "\n".join(f"ขั้นตอนที่ {i}: ยื่นคำขอพร้อมเอกสาร ตรวจสอบคุณสมบัติ ชำระค่าธรรมเนียม 🧾" for i in range(300))
    rasa.replies = [{"text": text, "buttons": [{"title": "ค่าธรรมเนียม", "payload": FEE}]}]
    await post(client, text_update(60, CHAT, "ขั้นตอน"))
    await dispatch(channel, inbox, conversation, outbox)
    sent = api.sent(CHAT)
    assert len(sent) > 1
    assert "\n".join(p["text"] for p in sent) == text
    assert ["reply_markup" in p for p in sent] == [False] * (len(sent) - 1) + [True]


def test_an_answers_paragraphs_are_joined_into_as_few_messages_as_fit():
    fee = Button("ค่าธรรมเนียม", FEE)
    replies = [Reply("📄 เอกสาร"), Reply("1. บัตรประชาชน"), Reply("ที่มา: กรมการกงสุล", (fee,)), Reply("⚠️ หมายเหตุ")]
    assert tm.joined(replies) == [
        Reply("📄 เอกสาร\n\n1. บัตรประชาชน\n\nที่มา: กรมการกงสุล", (fee,)),
        Reply("⚠️ หมายเหตุ"),
    ]
    long = [Reply("ก" * 3000), Reply("ข" * 3000), Reply(""), Reply("", (fee,))]
    assert tm.joined(long) == [Reply("ก" * 3000), Reply("ข" * 3000, (fee,))]
    assert tm.joined([Reply("", (fee,))]) == [Reply("", (fee,))]


async def test_rasas_paragraphs_arrive_as_one_message(client, inbox, channel, conversation, outbox, rasa, api):
    rasa.replies = [{"text": "📄 เอกสารที่ต้องใช้"}, {"text": "1. บัตรประชาชน"}, {"text": "ที่มา: กรมการกงสุล"}]
    await post(client, text_update(61, CHAT, "เอกสารพาสปอร์ต"))
    await dispatch(channel, inbox, conversation, outbox)
    assert api.sent_texts(CHAT) == ["📄 เอกสารที่ต้องใช้\n\n1. บัตรประชาชน\n\nที่มา: กรมการกงสุล"]


# --------------------------------------------------------------------------- pushing and failures


async def test_deliver_429_is_retry_later_with_telegrams_retry_after(channel, api):
    api.fail_next(1, status=429, retry_after=17, method="sendMessage")
    with pytest.raises(RetryLater) as caught:
        await channel.deliver(f"telegram:{CHAT}", [Reply("แจ้งเตือน")], "notice-1")
    assert caught.value.after == 17


@pytest.mark.parametrize("status", [500, 502])
async def test_deliver_5xx_is_retry_later(channel, api, status):
    api.fail_next(1, status=status, method="sendMessage")
    with pytest.raises(RetryLater):
        await channel.deliver(f"telegram:{CHAT}", [Reply("แจ้งเตือน")], f"notice-{status}")


async def test_deliver_to_a_chat_that_blocked_the_bot_is_undeliverable(channel, api):
    api.block(CHAT)
    with pytest.raises(Undeliverable):
        await channel.deliver(f"telegram:{CHAT}", [Reply("แจ้งเตือน")], "notice-blocked")


@pytest.mark.parametrize("identity", ["line:U123", "telegram:", "telegram:abc", "web:x"])
async def test_deliver_to_a_foreign_identity_is_undeliverable(channel, identity):
    with pytest.raises(Undeliverable):
        await channel.deliver(identity, [Reply("x")], "k")


async def test_a_retried_delivery_sends_only_what_did_not_go_out(channel, api):
    # Each with its keyboard, so they cannot be joined into one message.
    replies = [Reply(word, (Button(word, f"/{i}"),)) for i, word in enumerate(["หนึ่ง", "สอง", "สาม"])]
    api.fail_next(1, status=429, retry_after=1, method="sendMessage", after=1)  # the second message meets it
    with pytest.raises(RetryLater):
        await channel.deliver(f"telegram:{CHAT}", replies, "k-3")
    assert api.sent_texts(CHAT) == ["หนึ่ง"]
    await channel.deliver(f"telegram:{CHAT}", replies, "k-3")  # the outbox's retry
    await channel.deliver(f"telegram:{CHAT}", replies, "k-3")  # delivered already: nothing again
    assert api.sent_texts(CHAT) == ["หนึ่ง", "สอง", "สาม"]
    await channel.deliver(f"telegram:{CHAT}", replies[:1], "another-key")  # another key: sent
    assert api.sent_texts(CHAT)[-1] == "หนึ่ง"


async def test_an_answer_telegram_does_not_take_now_goes_to_the_outbox(client, inbox, channel, conversation, outbox,
                                                                       api):
    await channel.ready()
    api.fail_next(1, status=429, retry_after=3, method="sendMessage")
    await post(client, text_update(70, CHAT, "สวัสดี"))
    await dispatch(channel, inbox, conversation, outbox)
    identity, replies = outbox.queued["telegram:70:answer"]
    assert identity == f"telegram:{CHAT}" and [r.text for r in replies] == ["ตอบ"]
    await channel.deliver(identity, replies, "telegram:70:answer")  # what the outbox does next
    assert api.sent_texts(CHAT) == ["ตอบ"]


async def test_rasa_down_apologises_once_and_keeps_the_message(client, inbox, channel, conversation, outbox, rasa,
                                                               api):
    rasa.up = False
    await post(client, text_update(80, CHAT, "ค่าธรรมเนียมพาสปอร์ต"))
    [event] = inbox.new()
    for _ in range(3):  # the dispatcher retries while Rasa is down
        with pytest.raises(RetryLater):
            await channel.handle(event, conversation, outbox)
    assert list(outbox.queued) == ["telegram:80:unavailable"]
    assert outbox.queued["telegram:80:unavailable"][1] == [Reply(UNAVAILABLE)]
    rasa.up = True
    await channel.handle(event, conversation, outbox)
    assert rasa.received == ["ค่าธรรมเนียมพาสปอร์ต"]
    assert api.sent_texts(CHAT) == ["ตอบ"]


async def test_one_apology_per_outage_when_the_outbox_keeps_track(client, inbox, channel, conversation, rasa, api):
    outbox = OutageAwareOutbox()
    rasa.up = False
    await post(client, text_update(81, CHAT, "สวัสดี"))
    await post(client, text_update(82, CHAT, "เปิดกี่โมง"))
    for event in inbox.new():
        with pytest.raises(RetryLater):
            await channel.handle(event, conversation, outbox)
    assert list(outbox.queued) == ["telegram:81:unavailable"]


async def test_blocking_and_unblocking_the_bot_call_the_hooks(client, inbox, channel, conversation, outbox, api):
    seen: list[tuple[str, str]] = []

    async def unfollow(identity: str) -> None:
        seen.append(("unfollow", identity))

    async def follow(identity: str) -> None:
        seen.append(("follow", identity))

    channel.on_unfollow, channel.on_follow = unfollow, follow
    await post(client, blocked_update(85, CHAT))
    await post(client, blocked_update(86, CHAT, blocked=False))
    assert [e.kind for e in inbox.events] == ["unfollow", "follow"]
    await dispatch(channel, inbox, conversation, outbox)
    assert seen == [("unfollow", f"telegram:{CHAT}"), ("follow", f"telegram:{CHAT}")]
    assert api.sent() == []  # nothing said: an unblocking citizen presses Start


async def test_a_refused_token_is_retry_later_and_never_shown(api, caplog):
    wrong = "987654321:WrongTokenWrongTokenWrongToken"
    channel = tg.TelegramChannel(wrong, SECRET, api.base_url)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(RetryLater) as caught:
            await channel.deliver(f"telegram:{CHAT}", [Reply("x")], "k")
    assert api.calls_to("getMe", ok_only=False)[0].status == 401
    assert wrong not in str(caught.value) and wrong not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    await channel.close()


# --------------------------------------------------------------------------- polling


async def test_polling_feeds_the_inbox_and_moves_the_offset(api, inbox):
    polling = tg.TelegramChannel(api.token, "", api.base_url, poll_timeout=1)
    assert polling.mode == "polling"
    api.set_webhook_url("https://old.example.go.th/webhooks/telegram")  # left over: polling removes it
    first = api.queue_update(text_update(900, CHAT, "สวัสดี"))
    api.queue_update(text_update(901, CHAT + 1, "ค่าธรรมเนียม"))
    api.queue_update(sticker_update(902, CHAT))
    await polling.start_polling(inbox)
    await api.await_for(lambda: len(inbox.events) == 3)
    assert [e.event_id for e in inbox.events] == ["900", "901", "902"]
    assert [e.identity for e in inbox.events][:2] == [f"telegram:{CHAT}", f"telegram:{CHAT + 1}"]
    api.queue_update(text_update(903, CHAT, "ขอบคุณ"))
    await api.await_for(lambda: len(inbox.events) == 4)
    await polling.stop_polling()

    assert api.calls_to("deleteWebhook") and api.webhook["url"] == ""
    assert [c["command"] for c in api.commands] == ["start", "help", "status"]
    polls = api.calls_to("getUpdates")
    assert polls[0].params.get("offset") is None and polls[0].params["timeout"] == 1
    assert polls[0].params["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    assert polls[-1].params["offset"] == 904  # confirmed at stop: Telegram forgets them
    assert {p.params.get("offset") for p in polls[1:]} >= {first + 3}
    assert api.pending_updates == []
    assert polling._poll_task is None
    await polling.close()


async def test_polling_survives_telegram_errors_and_storage_errors(api, inbox):
    polling = tg.TelegramChannel(api.token, "", api.base_url, poll_timeout=1)
    await polling.ready()
    api.fail_next(1, status=502, method="getUpdates")
    api.fail_next(1, status=429, retry_after=1, method="getUpdates")
    api.queue_update(text_update(950, CHAT, "สวัสดี"))
    inbox.fail = True
    await polling.start_polling(inbox)
    await api.await_for(lambda: inbox.failures, timeout=15)
    assert inbox.events == []
    assert {502, 429} <= {c.status for c in api.calls_to("getUpdates", ok_only=False)}
    inbox.fail = False
    await api.await_for(lambda: inbox.events, timeout=15)  # not skipped: the offset did not move past it
    assert [e.event_id for e in inbox.events] == ["950"]
    await polling.close()


async def test_the_fakes_hand_controls_feed_polling(api, inbox, conversation, outbox):
    polling = tg.TelegramChannel(api.token, "", api.base_url, poll_timeout=1)
    async with httpx.AsyncClient(base_url=api.base_url) as hand:
        said = await hand.post("/_fake/say", json={"chat_id": CHAT, "text": "สวัสดี"})
        await polling.start_polling(inbox)
        await api.await_for(lambda: inbox.events)
        assert inbox.events[0].event_id == str(said.json()["update_id"])
        await dispatch(polling, inbox, conversation, outbox)
        assert (await hand.get("/_fake/sent")).json() == [{"chat_id": CHAT, "text": "ตอบ", "buttons": []}]
    await polling.close()


# --------------------------------------------------------------------------- set-up and secrets


async def test_set_webhook_registers_url_secret_updates_and_commands(api):
    settings = Settings(
        telegram_bot_token=api.token, telegram_webhook_secret=SECRET, telegram_api_base_url=api.base_url
    )
    summary = await tg.setup_webhook(settings, "https://bot.example.go.th")
    assert api.webhook == {
        "url": "https://bot.example.go.th/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query", "my_chat_member"],
    }
    assert [c["command"] for c in api.commands] == ["start", "help", "status"]
    assert "https://bot.example.go.th/webhooks/telegram" in summary and "@sla_test_bot" in summary


@pytest.mark.parametrize(
    ("overrides", "url", "message"),
    [
        ({"telegram_webhook_secret": ""}, "https://bot.example.go.th", "TELEGRAM_WEBHOOK_SECRET is not set"),
        ({"telegram_bot_token": ""}, "https://bot.example.go.th", "TELEGRAM_BOT_TOKEN is not set"),
        ({"telegram_webhook_secret": "has spaces!"}, "https://bot.example.go.th", "A-Z, a-z, 0-9"),
        ({}, "http://bot.example.go.th", "https://"),
        ({"telegram_bot_token": "1:WrongWrongWrong"}, "https://bot.example.go.th", "Unauthorized"),
    ],
)
async def test_set_webhook_explains_what_is_wrong(api, overrides, url, message):
    values = {"telegram_bot_token": api.token, "telegram_webhook_secret": SECRET, "telegram_api_base_url": api.base_url}
    settings = Settings(**{**values, **overrides})
    with pytest.raises(tg.TelegramSetupError) as caught:
        await tg.setup_webhook(settings, url)
    assert message in str(caught.value)
    assert "WrongWrongWrong" not in str(caught.value)
    assert api.calls_to("setWebhook") == []


def test_the_cli_command(api, monkeypatch, capsys):
    from bot import cli

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", api.token)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
    assert cli.main(["telegram", "set-webhook", "https://bot.example.go.th/hook/telegram"]) == 0
    assert api.webhook["url"] == "https://bot.example.go.th/hook/telegram"
    out, err = capsys.readouterr()
    assert "@sla_test_bot" in out and api.token not in out + err
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "")
    assert cli.main(["telegram", "set-webhook", "https://bot.example.go.th"]) == 1
    assert "TELEGRAM_WEBHOOK_SECRET is not set" in capsys.readouterr().err


def test_the_fake_gives_the_settings_that_point_a_gateway_at_it(api):
    channel = tg.from_settings(Settings(**api.settings_for()))
    assert channel.mode == "webhook" and channel.bot.base_url == f"{api.base_url}/bot{api.token}"
    assert tg.from_settings(Settings(**api.settings_for(webhook_secret=""))).mode == "polling"


def test_from_settings():
    assert tg.from_settings(Settings()) is None
    webhook = tg.from_settings(Settings(telegram_bot_token="1:x", telegram_webhook_secret="s3cret"))
    polling = tg.from_settings(Settings(telegram_bot_token="1:x"))
    assert (webhook.mode, polling.mode) == ("webhook", "polling")
    assert webhook.application.updater is None  # fed by our route or our polling loop
    assert webhook.bot.base_url == "https://api.telegram.org/bot1:x"
    custom = tg.from_settings(Settings(telegram_bot_token="1:x", telegram_api_base_url="http://127.0.0.1:9/"))
    assert custom.bot.base_url == "http://127.0.0.1:9/bot1:x"
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET may hold only"):
        tg.from_settings(Settings(telegram_bot_token="1:x", telegram_webhook_secret="ไม่ได้"))
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


async def test_the_token_never_reaches_a_log_line(api, inbox, outbox, conversation, rasa, caplog):
    """A whole run, webhook and polling, with failures on every side: the token is in no log record."""
    settings = Settings(
        telegram_bot_token=api.token, telegram_webhook_secret=SECRET, telegram_api_base_url=api.base_url
    )
    caplog.set_level(logging.DEBUG)
    channel = tg.from_settings(settings)
    app = FastAPI()
    app.include_router(tg.router(channel, inbox))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        await post(http, text_update(990, CHAT, "/start"))
        await post(http, text_update(991, CHAT, "สวัสดี"), secret="wrong")
        await post(http, b"{bad json")
        api.fail_next(1, status=500, method="sendMessage")
        await dispatch(channel, inbox, conversation, outbox)
        api.fail_next(1, status=429, retry_after=2, method="sendMessage")
        with pytest.raises(RetryLater):
            await channel.deliver(f"telegram:{CHAT}", [Reply("x")], "t1")
        api.block(CHAT)
        with pytest.raises(Undeliverable):
            await channel.deliver(f"telegram:{CHAT}", [Reply("x")], "t2")
        rasa.delay = 0.2
        channel.typing_after = 0.01
        await post(http, text_update(992, CHAT, "สวัสดี"))
        await dispatch(channel, inbox, conversation, outbox)
    await channel.close()

    polling = tg.from_settings(Settings(telegram_bot_token=api.token, telegram_api_base_url=api.base_url))
    polling.poll_timeout = 1
    api.fail_next(1, status=500, method="getUpdates")
    api.queue_update(text_update(993, CHAT, "สวัสดี"))
    await polling.start_polling(inbox)
    await api.await_for(lambda: any(e.event_id == "993" for e in inbox.events), timeout=15)
    await polling.close()
    refused = tg.TelegramChannel("42:RefusedTokenRefusedToken", "", api.base_url, poll_timeout=1)
    await refused.start_polling(inbox)
    await api.await_for(lambda: any(c.status == 401 for c in api.calls_to("getMe", ok_only=False)))
    await refused.close()

    records = caplog.records
    assert any(r.name.startswith("bot.gateway.channels.telegram") for r in records)  # it did log
    for record in records:
        line = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert api.token not in line and "RefusedTokenRefusedToken" not in line, record.name
        assert api.token.split(":")[1] not in line
