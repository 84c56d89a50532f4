"""The LINE adapter with the real SDK against the fake LINE API (tests/fakes/line_api.py).

The webhook route runs in-process (ASGI) with in-memory stand-ins of the inbox and outbox; the
conversation is a stub here (what it answers is the integration tests' business), except where
the real pipeline's own refusals are the point.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import unicodedata
from typing import Callable, Iterator
from unittest.mock import ANY

import aiohttp
import httpx
import pytest
from fastapi import FastAPI

from bot.answers.reply import Button, Reply
from bot.complaints.photos import PhotoStore
from bot.delivery.types import InboundEvent, RetryLater, Undeliverable
from bot.gateway.channels import line, media
from bot.gateway.channels.line_messages import (
    BUTTONS_ONLY_TEXT,
    cut_label,
    line_length,
    line_sized,
    retry_key,
    safe_cut,
    split_text,
    to_messages,
)
from bot.gateway.conversation import TOO_LONG, UNAVAILABLE, Conversation, Turn
from bot.gateway.state import MemoryState
from bot.settings import Settings
from tests.fakes.line_api import (
    ACCESS_TOKEN,
    CHANNEL_SECRET,
    FakeLineApi,
    follow_event,
    media_event,
    postback_event,
    sign,
    signed_headers,
    text_event,
    unfollow_event,
    user_id,
    webhook_body,
)
from tests.fakes.line_gateway import MemoryInbox, MemoryOutbox

THAI_TITLES = [
    "การขออนุญาตทำงานของคนต่างด้าว",
    "ขอหนังสือรับรองความประพฤติ",
    "ที่นี่มีเจ้าหน้าที่ไหมครับ",
    "แจ้งย้ายที่อยู่ออกจากทะเบียนบ้าน",
    "ค่าธรรมเนียมใบอนุญาตขับขี่",
]
HELP_BUTTONS = tuple(Button(f"บริการ {i}", f'/ask_service{{"service": "s{i}"}}') for i in range(12))


# -- pure functions: lengths and Thai-safe cutting ----------------------------------------


def _splits_cluster(text: str, cut: int) -> bool:
    return 0 < cut < len(text) and (
        unicodedata.category(text[cut]) in ("Mn", "Mc") or text[cut] in "\u0e33\u0e45" or text[cut - 1] == "\u200d"
    )


@pytest.mark.parametrize("title", THAI_TITLES)
def test_labels_fit_twenty_characters_and_never_split_a_thai_cluster(title):
    label = cut_label(title)
    assert line_length(label) <= 20
    assert label.endswith("…") and title.startswith(label[:-1])
    assert not _splits_cluster(title, len(label) - 1)


def test_every_cut_point_of_thai_text_keeps_marks_with_their_letter():
    text = "ที่ว่าการอำเภอเมืองนนทบุรี ผู้สูงอายุ กรุณาติดต่อเจ้าหน้าที่ ๑๑๑๑ 👩‍💼👍🏽 ค่ะ"
    for limit in range(3, line_length(text) + 2):  # "ที่" (3 code points) is the longest cluster
        cut = safe_cut(text, limit)
        assert line_length(text[:cut]) <= limit
        assert not _splits_cluster(text, cut), (limit, text[:cut])


def test_a_label_that_fits_is_kept_whole():
    assert cut_label("ค่าธรรมเนียม") == "ค่าธรรมเนียม"
    assert cut_label("ดูเพิ่มเติม ›") == "ดูเพิ่มเติม ›"


def test_emoji_count_as_line_counts_them():
    assert line_length("👍") == 2
    assert line_length(cut_label("👍" * 15)) <= 20


def test_long_text_is_split_at_line_breaks_within_five_thousand_characters():
    paragraph = "ต้องใช้เอกสารอะไรบ้าง ที่ว่าการอำเภอ ผู้สูงอายุ\n" * 300
    pieces = split_text(paragraph)
    assert len(pieces) > 1 and all(line_length(p) <= 5000 for p in pieces)
    assert all(p.endswith("ผู้สูงอายุ") for p in pieces)
    assert "".join(p.replace("\n", "") for p in pieces) == paragraph.replace("\n", "")


def test_text_without_breaks_is_cut_between_clusters():
    text = "ที่" * 3000
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(p.startswith("ที่") and p.endswith("ที่") for p in pieces)


def test_the_paragraphs_rasa_splits_an_answer_into_are_joined_back_into_one_message():
    paragraphs = [Reply("📄 เอกสาร\n1. สมุดคู่มือ"), Reply("ออกโดย: กรมการขนส่งทางบก"), Reply("ที่มา: ...", HELP_BUTTONS[:2])]
    assert line_sized(paragraphs) == [
        Reply("📄 เอกสาร\n1. สมุดคู่มือ\n\nออกโดย: กรมการขนส่งทางบก\n\nที่มา: ...", HELP_BUTTONS[:2])
    ]
    # Not past 5,000 characters, and never past a reply that offers buttons.
    long = [Reply("ก" * 3000), Reply("ข" * 3000), Reply("ค", HELP_BUTTONS[:1]), Reply("ง")]
    assert [r.text[:1] for r in line_sized(long)] == ["ก", "ข", "ง"]
    assert line_sized(long)[1].text.endswith("\n\nค") and line_sized(long)[1].buttons == HELP_BUTTONS[:1]


def test_buttons_without_text_get_a_prompt_and_empty_replies_go():
    sized = line_sized([Reply(""), Reply("", (Button("a", "/a"),))])
    assert sized == [Reply(BUTTONS_ONLY_TEXT, (Button("a", "/a"),))]


def test_quick_replies_go_under_the_last_message_at_most_thirteen_as_postbacks():
    buttons = tuple(Button(THAI_TITLES[i % 5], f"/ask_fee{{\"service\": \"s{i}\"}}") for i in range(15))
    messages = to_messages([Reply("หนึ่ง", buttons), Reply("สอง")])
    assert messages[0].quick_reply is None
    items = messages[1].quick_reply.items
    assert len(items) == 13
    action = items[0].action.to_dict()
    assert action["type"] == "postback" and action["data"] == buttons[0].payload
    assert action["displayText"] == buttons[0].title and line_length(action["label"]) <= 20


def test_a_payload_too_long_for_postback_data_is_sent_as_the_typed_title():
    item = to_messages([Reply("x", (Button("ค่าธรรมเนียม", "/" + "a" * 400),))])[0].quick_reply.items[0]
    assert item.action.to_dict() == {"type": "message", "label": "ค่าธรรมเนียม", "text": "ค่าธรรมเนียม"}


def test_retry_keys_are_uuids_fixed_by_key_and_batch():
    assert retry_key("line:ev1:answer", 0) == retry_key("line:ev1:answer", 0)
    assert retry_key("line:ev1:answer", 0) != retry_key("line:ev1:answer", 1)
    assert len(retry_key("k", 0)) == 36


# -- the adapter against the fake LINE API ------------------------------------------------


class StubConversation:
    """Answers like the pipeline would; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int | None]] = []
        self.payloads: list[tuple[str, str]] = []  # gateway-written payloads (photos, locations, /help)
        self.media: dict[str, str] = {}  # identity -> what the complaint form's open question takes
        self.delay = 0.0
        self.answer: Callable[[str], Turn] = lambda text: Turn([Reply(f"ตอบ: {text}", HELP_BUTTONS[:3])])

    async def handle(
        self, identity: str, text: str, *, max_buttons: int | None = None, gateway_payload: str | None = None
    ) -> Turn:
        self.asked.append((identity, text, max_buttons))
        if gateway_payload is not None:
            self.payloads.append((identity, gateway_payload))
        await asyncio.sleep(self.delay)
        if text == line.HELP_TEXT:
            return Turn([Reply("เมนูช่วยเหลือ", HELP_BUTTONS)])
        return self.answer(text)

    async def expected_media(self, identity: str) -> str | None:
        return self.media.get(identity)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLineApi]:
    with FakeLineApi() as api:
        yield api


class Rig:
    def __init__(self, fake: FakeLineApi, channel: line.LineChannel, conversation) -> None:
        self.fake = fake
        self.channel = channel
        self.conversation = conversation
        self.unfollowed: list[str] = []
        self.followed: list[str] = []
        self.outbox = MemoryOutbox(channel.deliver, retry_delay=0.01)
        self.inbox = MemoryInbox(lambda e: channel.handle(e, conversation, self.outbox), retry_delay=0.05)

        async def on_unfollow(identity: str) -> None:
            self.unfollowed.append(identity)

        async def on_follow(identity: str) -> None:
            self.followed.append(identity)

        channel.on_unfollow, channel.on_follow = on_unfollow, on_follow
        app = FastAPI()
        app.include_router(line.router(channel, self.inbox, max_body_bytes=64 * 1024))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")

    async def post(self, events: list[dict] | None = None, *, body: bytes | None = None, headers=None):
        body = webhook_body(events or []) if body is None else body
        response = await self.client.post(
            "/webhooks/line", content=body, headers=signed_headers(body) if headers is None else headers
        )
        return response

    async def settle(self) -> None:
        await self.inbox.drain()
        await self.outbox.drain()
        await self.inbox.drain()

    async def close(self) -> None:
        await self.inbox.close()
        await self.outbox.close()
        await self.client.aclose()
        await self.channel.close()


@pytest.fixture
async def rig(fake: FakeLineApi):
    fake.reset()
    fake.reply_token_ttl = 60.0
    channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN, fake.url, loading_after=5.0)
    rig = Rig(fake, channel, StubConversation())
    yield rig
    await rig.close()


def test_the_channel_is_off_without_both_credentials():
    assert line.LineChannel.from_settings(Settings()) is None
    channel = line.LineChannel.from_settings(
        Settings(line_channel_secret="s", line_channel_access_token="t", line_api_base_url="http://127.0.0.1:9/")
    )
    assert channel is not None and channel.max_buttons == 13 and channel.name == "line"


async def test_a_signed_text_message_is_answered_with_the_reply_token(rig):
    user = user_id()
    token = rig.fake.issue_reply_token(user)
    response = await rig.post([text_event(user, "ต่อภาษีรถใช้เอกสารอะไร", token)])
    assert response.status_code == 200 and response.json() == {}
    await rig.settle()
    assert rig.conversation.asked == [(f"line:{user}", "ต่อภาษีรถใช้เอกสารอะไร", 13)]
    [call] = rig.fake.calls_to("/v2/bot/message/reply")
    assert call.status == 200 and call.json["replyToken"] == token
    assert call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    [message] = rig.fake.delivered(user)
    assert message["text"] == "ตอบ: ต่อภาษีรถใช้เอกสารอะไร"
    assert [i["action"]["data"] for i in message["quickReply"]["items"]] == [b.payload for b in HELP_BUTTONS[:3]]
    assert not rig.fake.calls_to("/v2/bot/message/push")


@pytest.mark.parametrize(
    "headers_for",
    [
        lambda body: {},
        lambda body: {"x-line-signature": sign(b"another body")},
        lambda body: {"x-line-signature": "not base64 at all"},
        lambda body: {"x-line-signature": sign(body, "another-channel-secret")},
        lambda body: {"x-line-signature": sign(body)[:-4]},
    ],
    ids=["missing", "other-body", "garbage", "other-secret", "truncated"],
)
async def test_a_missing_or_bad_signature_is_refused_and_nothing_is_processed(rig, headers_for):
    user = user_id()
    body = webhook_body([text_event(user, "สวัสดี", rig.fake.issue_reply_token(user))])
    response = await rig.post(body=body, headers={"content-type": "application/json", **headers_for(body)})
    assert response.status_code == 400
    await rig.settle()
    assert rig.inbox.accepted == [] and rig.conversation.asked == [] and rig.fake.calls == []


async def test_the_consoles_verify_call_gets_200(rig):
    response = await rig.post([])
    assert response.status_code == 200
    assert rig.inbox.accepted == []


async def test_a_redelivered_event_is_answered_once(rig):
    user = user_id()
    event = text_event(user, "ค่าธรรมเนียมเท่าไหร่", rig.fake.issue_reply_token(user))
    first = await rig.post([event])
    again = await rig.post([{**event, "deliveryContext": {"isRedelivery": True}}])
    assert first.status_code == again.status_code == 200
    await rig.settle()
    assert len(rig.inbox.accepted) == 1 and len(rig.conversation.asked) == 1
    assert len(rig.fake.delivered(user)) == 1


async def test_more_than_five_messages_reply_five_and_push_the_rest(rig):
    # Replies with buttons stay messages of their own (see the merging test below).
    rig.conversation.answer = lambda text: Turn(
        [Reply(f"ข้อความที่ {i}", (Button(f"ปุ่ม {i}", f"/b{i}"),)) for i in range(1, 8)]
    )
    user = user_id()
    await rig.post([text_event(user, "ขั้นตอน", rig.fake.issue_reply_token(user))])
    await rig.settle()
    routes = rig.fake.delivered_with_route(user)
    assert [how for how, _ in routes] == ["reply"] * 5 + ["push"] * 2
    assert routes[4][1]["quickReply"]["items"][0]["action"]["data"] == "/b5"
    assert [m["text"] for _, m in routes] == [f"ข้อความที่ {i}" for i in range(1, 8)]
    [push] = rig.fake.calls_to("/v2/bot/message/push")
    assert push.json["to"] == user and "x-line-retry-key" in push.headers


async def test_a_reply_token_line_refuses_as_expired_falls_back_to_a_push(rig):
    rig.fake.reply_token_ttl = 0.0  # LINE says "Invalid reply token"
    user = user_id()
    await rig.post([text_event(user, "เปิดกี่โมง", rig.fake.issue_reply_token(user))])
    await rig.settle()
    [reply] = rig.fake.calls_to("/v2/bot/message/reply")
    assert reply.status == 400
    assert [how for how, _ in rig.fake.delivered_with_route(user)] == ["push"]


async def test_a_reply_token_older_than_fifty_seconds_is_not_tried(fake):
    fake.reset()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=55)
    channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN, fake.url, now=lambda: later)
    rig = Rig(fake, channel, StubConversation())
    try:
        user = user_id()
        await rig.post([text_event(user, "เปิดกี่โมง", fake.issue_reply_token(user))])
        await rig.settle()
        assert fake.calls_to("/v2/bot/message/reply") == []
        assert [how for how, _ in fake.delivered_with_route(user)] == ["push"]
    finally:
        await rig.close()


async def test_a_redelivered_events_token_ages_from_lines_timestamp(rig):
    user = user_id()
    event = text_event(user, "เปิดกี่โมง", rig.fake.issue_reply_token(user), redelivery=True)
    event["timestamp"] -= 120_000  # first sent two minutes ago
    await rig.post([event])
    await rig.settle()
    assert rig.fake.calls_to("/v2/bot/message/reply") == []
    assert [how for how, _ in rig.fake.delivered_with_route(user)] == ["push"]


async def test_a_rate_limited_reply_is_pushed_instead(rig):
    user = user_id()
    token = rig.fake.issue_reply_token(user)
    rig.fake.fail_next(1, 429)
    await rig.post([text_event(user, "เปิดกี่โมง", token)])
    await rig.settle()
    assert [c.status for c in rig.fake.calls] == [429, 200]
    assert [how for how, _ in rig.fake.delivered_with_route(user)] == ["push"]


async def test_a_pushed_answer_reaches_the_chat_before_the_next_reply(rig):
    user = user_id()
    stale = rig.fake.issue_reply_token(user)
    rig.fake.reply_token_ttl = 0.0
    time.sleep(0.01)
    await rig.post([text_event(user, "หนึ่ง", stale)])
    await rig.settle()
    rig.fake.reply_token_ttl = 60.0
    await rig.post([text_event(user, "สอง", rig.fake.issue_reply_token(user))])
    await rig.settle()
    assert rig.fake.delivered_with_route(user) == [
        ("push", {"type": "text", "text": "ตอบ: หนึ่ง", "quickReply": ANY}),
        ("reply", {"type": "text", "text": "ตอบ: สอง", "quickReply": ANY}),
    ]
    assert rig.outbox.items == []  # pushed at once, not queued


async def test_a_push_line_defers_goes_to_the_outbox_under_the_same_retry_key(rig):
    rig.fake.reply_token_ttl = 0.0
    user = user_id()
    rig.fake.fail_next(1, 500, skip=1)  # the reply is refused (stale), then the push fails once
    await rig.post([text_event(user, "หนึ่ง", rig.fake.issue_reply_token(user))])
    await rig.settle()
    [queued] = rig.outbox.items
    assert queued.outcome == "delivered" and queued.attempts == 1
    pushes = rig.fake.calls_to("/v2/bot/message/push")
    assert [c.status for c in pushes] == [500, 200]
    assert pushes[0].headers["x-line-retry-key"] == pushes[1].headers["x-line-retry-key"]
    assert rig.fake.texts(user) == ["ตอบ: หนึ่ง"]


async def test_a_retried_push_with_the_same_key_is_not_delivered_twice(rig):
    user = user_id()
    replies = [Reply(f"แจ้งเตือน {i}", (Button("ตกลง", "/affirm"),)) for i in range(7)]  # two calls: 5 + 2
    await rig.channel.deliver(f"line:{user}", replies, "line:ev-42:answer")
    await rig.channel.deliver(f"line:{user}", replies, "line:ev-42:answer")  # the outbox retried it
    pushes = rig.fake.calls_to("/v2/bot/message/push")
    assert [c.status for c in pushes] == [200, 200, 409, 409]
    assert pushes[0].headers["x-line-retry-key"] == pushes[2].headers["x-line-retry-key"]
    assert pushes[0].headers["x-line-retry-key"] != pushes[1].headers["x-line-retry-key"]
    assert rig.fake.texts(user) == [f"แจ้งเตือน {i}" for i in range(7)]


async def test_a_push_failing_halfway_resumes_without_duplicates(rig):
    user = user_id()
    replies = [Reply(f"ส่วนที่ {i}", (Button("ตกลง", "/affirm"),)) for i in range(7)]  # two calls: 5 + 2
    rig.fake.fail_next(1, 500, skip=1)  # the second call fails
    with pytest.raises(RetryLater):
        await rig.channel.deliver(f"line:{user}", replies, "line:ev-44:answer")
    await rig.channel.deliver(f"line:{user}", replies, "line:ev-44:answer")
    assert [c.status for c in rig.fake.calls_to("/v2/bot/message/push")] == [200, 500, 409, 200]
    assert rig.fake.texts(user) == [f"ส่วนที่ {i}" for i in range(7)]


async def test_429_with_retry_after_raises_retry_later_with_the_delay(rig):
    rig.fake.fail_next(1, 429, retry_after=2)
    with pytest.raises(RetryLater) as raised:
        await rig.channel.deliver(f"line:{user_id()}", [Reply("สวัสดี")], "line:ev-45:answer")
    assert raised.value.after == 2.0
    rig.fake.fail_next(1, 503)
    with pytest.raises(RetryLater) as raised:
        await rig.channel.deliver(f"line:{user_id()}", [Reply("สวัสดี")], "line:ev-46:answer")
    assert raised.value.after is None


async def test_the_outbox_retries_after_429_and_delivers_once(rig):
    user = user_id()
    rig.fake.fail_next(2, 429, retry_after=0.05)
    assert await rig.outbox.enqueue(f"line:{user}", [Reply("คำขอของท่านเสร็จแล้ว")], "line:notice-1")
    assert not await rig.outbox.enqueue(f"line:{user}", [Reply("คำขอของท่านเสร็จแล้ว")], "line:notice-1")
    await rig.outbox.drain()
    assert rig.outbox.waits == [0.05, 0.05]
    assert rig.fake.texts(user) == ["คำขอของท่านเสร็จแล้ว"]


async def test_a_push_line_refuses_for_good_is_undeliverable(rig):
    with pytest.raises(Undeliverable):
        await rig.channel.deliver("line:not-a-user-id", [Reply("x")], "k")
    with pytest.raises(Undeliverable):
        await rig.channel.deliver("telegram:42", [Reply("x")], "k")


@pytest.mark.parametrize("kind", ["sticker", "image", "audio", "video", "file", "location"])
async def test_stickers_and_media_get_please_type_with_the_help_menu(rig, kind):
    user = user_id()
    await rig.post([media_event(user, kind, rig.fake.issue_reply_token(user))])
    await rig.settle()
    [message] = rig.fake.delivered(user)
    assert message["text"] == line.PLEASE_TYPE
    assert [i["action"]["data"] for i in message["quickReply"]["items"]] == [b.payload for b in HELP_BUTTONS]
    assert [text for _, text, _ in rig.conversation.asked] == [line.HELP_TEXT]


JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64


@pytest.fixture
def photos(tmp_path, rig):
    rig.channel.photos = PhotoStore(tmp_path / "photos")
    return rig.channel.photos


async def test_a_photo_the_complaint_form_asks_for_is_fetched_stored_and_passed_on(rig, photos):
    user = user_id()
    rig.conversation.media[f"line:{user}"] = "complaint_photo"
    rig.fake.add_content("7001", JPEG)
    await rig.post([media_event(user, "image", rig.fake.issue_reply_token(user), message_id="7001")])
    await rig.settle()
    [call] = rig.fake.calls_to("/v2/bot/message/7001/content")
    assert call.status == 200 and call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    [(identity, payload)] = rig.conversation.payloads
    photo_id = json.loads(payload.removeprefix("/file_complaint"))["photo_id"]
    assert identity == f"line:{user}" and photos.read(photo_id) == JPEG
    assert rig.fake.texts(user) == ["ตอบ:"], "the form's answer, not 'please type'"


@pytest.mark.parametrize("content", [b"GIF89a" + b"0" * 10, b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024)])
async def test_a_photo_that_is_not_a_jpeg_or_png_or_too_large_is_refused_politely(rig, photos, content):
    user = user_id()
    rig.conversation.media[f"line:{user}"] = "complaint_photo"
    rig.fake.add_content("7002", content)
    await rig.post([media_event(user, "image", rig.fake.issue_reply_token(user), message_id="7002")])
    await rig.settle()
    assert rig.fake.texts(user) == [media.PHOTO_REJECTED] and rig.conversation.payloads == []
    assert not any(photos.root.rglob("*.jpg"))


async def test_a_photo_line_no_longer_has_gets_a_try_again(rig, photos):
    user = user_id()
    rig.conversation.media[f"line:{user}"] = "complaint_photo"
    await rig.post([media_event(user, "image", rig.fake.issue_reply_token(user), message_id="gone")])
    await rig.settle()
    assert [c.status for c in rig.fake.calls_to("/v2/bot/message/gone/content")] == [404]
    assert rig.fake.texts(user) == [media.PHOTO_UNAVAILABLE]


async def test_a_location_the_form_asks_for_is_passed_on_with_its_name(rig, photos):
    user = user_id()
    rig.conversation.media[f"line:{user}"] = "complaint_location"
    await rig.post([media_event(user, "location", rig.fake.issue_reply_token(user))])
    await rig.settle()
    [(_, payload)] = rig.conversation.payloads
    assert json.loads(payload.removeprefix("/file_complaint")) == {
        "latitude": 13.75, "longitude": 100.5, "place_name": "ที่ว่าการอำเภอ กรุงเทพฯ"
    }


async def test_a_photo_nobody_asked_for_is_not_fetched_and_gets_please_type(rig, photos):
    user = user_id()
    rig.fake.add_content("7003", JPEG)
    await rig.post([media_event(user, "image", rig.fake.issue_reply_token(user), message_id="7003")])
    await rig.settle()
    assert rig.fake.calls_to("/v2/bot/message/7003/content") == []
    assert rig.fake.texts(user) == [line.PLEASE_TYPE]
    assert rig.conversation.payloads == [(f"line:{user}", media.HELP_PAYLOAD)]


async def test_a_message_type_newer_than_the_sdk_is_treated_like_a_sticker(rig):
    user = user_id()
    event = text_event(user, "x", rig.fake.issue_reply_token(user))
    event["message"] = {"id": "1", "type": "hologram"}
    await rig.post([event])
    await rig.settle()
    assert rig.fake.texts(user) == [line.PLEASE_TYPE]


async def test_follow_is_welcomed_through_the_conversation_and_unfollow_stops_pushes(rig):
    user = user_id()
    rig.conversation.answer = lambda text: Turn([Reply("สวัสดี ... 🔒 ข้อความที่พิมพ์ใช้เพื่อตอบคำถามเท่านั้น")])
    await rig.post([follow_event(user, rig.fake.issue_reply_token(user))])
    await rig.settle()
    assert rig.conversation.asked == [(f"line:{user}", line.WELCOME_TEXT, 13)]
    assert rig.followed == [f"line:{user}"]
    assert "🔒" in rig.fake.texts(user)[0]
    calls = len(rig.fake.calls)
    await rig.post([unfollow_event(user)])
    await rig.settle()
    assert rig.unfollowed == [f"line:{user}"]
    assert len(rig.fake.calls) == calls and len(rig.conversation.asked) == 1


async def test_a_quick_reply_button_sends_its_payload(rig):
    user = user_id()
    await rig.post([postback_event(user, '/ask_fee{"service": "passport"}', rig.fake.issue_reply_token(user))])
    await rig.settle()
    assert rig.conversation.asked == [(f"line:{user}", '/ask_fee{"service": "passport"}', 13)]


async def test_a_five_thousand_character_message_gets_the_pipelines_explanation(fake):
    fake.reset()
    async with aiohttp.ClientSession() as client:
        # The real pipeline refuses long messages before asking Rasa (here: nothing listening).
        conversation = Conversation("http://127.0.0.1:9", client, MemoryState())
        channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN, fake.url)
        rig = Rig(fake, channel, conversation)
        try:
            user = user_id()
            response = await rig.post([text_event(user, "ก่" * 2500, fake.issue_reply_token(user))])
            assert response.status_code == 200
            await rig.settle()
            assert fake.texts(user) == [TOO_LONG.format(limit=1000)]
        finally:
            await rig.close()


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"events": {}}', b'{"events": [1, 2]}', b"\xff\xfe{}", b'{"destination": "U"}'],
    ids=["broken", "list", "events-object", "events-numbers", "not-utf8", "no-events"],
)
async def test_malformed_signed_bodies_get_400(rig, body):
    response = await rig.post(body=body)
    assert response.status_code == 400
    assert rig.inbox.accepted == []


async def test_a_huge_body_gets_413_before_anything_else(rig):
    body = webhook_body([text_event(user_id(), "ก" * 5000) for _ in range(10)])
    assert len(body) > 64 * 1024
    assert (await rig.post(body=body)).status_code == 413

    async def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    # No Content-Length: the body is counted while it is read.
    chunked = await rig.client.post("/webhooks/line", content=chunks(), headers={"x-line-signature": "x"})
    assert chunked.status_code == 413
    assert rig.inbox.accepted == []


async def test_unknown_events_groups_and_standby_are_acknowledged_and_ignored(rig):
    user = user_id()
    unknown = {**unfollow_event(user), "type": "somethingNew"}
    group = text_event(user, "สวัสดี", "token")
    group["source"] = {"type": "group", "groupId": "C" + "0" * 32, "userId": user}
    standby = {**text_event(user, "สวัสดี", "token"), "mode": "standby"}
    response = await rig.post([unknown, group, standby])
    assert response.status_code == 200
    assert rig.inbox.accepted == []


async def test_the_loading_animation_shows_only_when_the_answer_is_slow(fake):
    fake.reset()
    channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN, fake.url, loading_after=0.05)
    rig = Rig(fake, channel, StubConversation())
    try:
        quick, slow = user_id(), user_id()
        await rig.post([text_event(quick, "เร็ว", fake.issue_reply_token(quick))])
        await rig.settle()
        assert fake.calls_to("/v2/bot/chat/loading/start") == []
        rig.conversation.delay = 0.3
        await rig.post([text_event(slow, "ช้า", fake.issue_reply_token(slow))])
        await rig.settle()
        [loading] = fake.calls_to("/v2/bot/chat/loading/start")
        assert loading.json == {"chatId": slow, "loadingSeconds": 20} and loading.status == 202
        assert [c.path for c in fake.calls][-2:] == ["/v2/bot/chat/loading/start", "/v2/bot/message/reply"]
    finally:
        await rig.close()


async def test_rasa_down_apologises_once_and_answers_when_it_is_back(rig):
    attempts = []

    def answer(text: str) -> Turn:
        attempts.append(text)
        if len(attempts) < 3:
            return Turn([Reply(UNAVAILABLE)], refused="unavailable")
        return Turn([Reply("ตอบแล้วค่ะ")])

    rig.conversation.answer = answer
    user = user_id()
    await rig.post([text_event(user, "เปิดกี่โมง", rig.fake.issue_reply_token(user))])
    await rig.settle()
    assert len(attempts) == 3
    assert rig.fake.delivered_with_route(user) == [
        ("reply", {"type": "text", "text": UNAVAILABLE}),
        ("push", {"type": "text", "text": "ตอบแล้วค่ะ"}),
    ]


async def test_rasa_down_with_a_stale_token_pushes_the_apology_once_and_only_when_due(fake):
    fake.reset()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=55)
    channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN, fake.url, now=lambda: later)
    rig = Rig(fake, channel, StubConversation())
    due = [True, False]

    async def apology_due(identity: str) -> bool:  # the durable outbox: once per outage
        return due.pop(0) if due else False

    rig.outbox.apology_due = apology_due
    attempts = []

    def answer(text: str) -> Turn:
        attempts.append(text)
        return Turn([Reply(UNAVAILABLE)], refused="unavailable") if len(attempts) < 4 else Turn([Reply("ตอบ")])

    rig.conversation.answer = answer
    try:
        user, other = user_id(), user_id()
        await rig.post([text_event(user, "เปิดกี่โมง", fake.issue_reply_token(user))])
        await rig.settle()
        assert fake.delivered_with_route(user) == [
            ("push", {"type": "text", "text": UNAVAILABLE}),
            ("push", {"type": "text", "text": "ตอบ"}),
        ]
        attempts.clear()
        await rig.post([text_event(other, "เปิดกี่โมง", fake.issue_reply_token(other))])
        await rig.settle()
        assert fake.texts(other) == ["ตอบ"]  # not due: no apology
    finally:
        await rig.close()


async def test_events_of_one_user_are_answered_in_order(rig):
    import random

    rig.conversation.answer = lambda text: Turn([Reply(f"ตอบ {text}")])
    original = rig.conversation.handle

    async def jittery(identity, text, *, max_buttons=None):
        await asyncio.sleep(random.uniform(0, 0.02))
        return await original(identity, text, max_buttons=max_buttons)

    rig.conversation.handle = jittery
    user = user_id()
    await asyncio.gather(*(rig.post([text_event(user, str(i), rig.fake.issue_reply_token(user))]) for i in range(10)))
    await rig.settle()
    accepted = [e.text for e in rig.inbox.accepted]
    assert rig.fake.texts(user) == [f"ตอบ {t}" for t in accepted]


async def test_no_secret_or_token_reaches_the_log(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.reset()
    channel = line.LineChannel.from_settings(
        Settings(line_channel_secret=CHANNEL_SECRET, line_channel_access_token=ACCESS_TOKEN, line_api_base_url=fake.url)
    )
    rig = Rig(fake, channel, StubConversation())
    try:
        user = user_id()
        fake.fail_next(1, 500)
        await rig.post([text_event(user, "สวัสดี", fake.issue_reply_token(user))])
        await rig.post(body=b'{"events": []}', headers={"x-line-signature": "forged"})
        await rig.settle()
        with pytest.raises(Undeliverable):
            await channel.deliver("line:Ubad", [Reply("x")], "k")
    finally:
        await rig.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "not sent" in logged and "bad signature" in logged
    assert ACCESS_TOKEN not in logged and CHANNEL_SECRET not in logged


async def test_inbound_event_carries_the_verified_identity_only(rig):
    user, other = user_id(), user_id()
    event = text_event(user, f'{{"sender": "line:{other}"}}', "tok")
    body = webhook_body([event])
    [inbound] = rig.channel.inbound(body.decode(), sign(body), dt.datetime.now(dt.timezone.utc))
    assert isinstance(inbound, InboundEvent)
    assert inbound.identity == f"line:{user}" and inbound.event_id == event["webhookEventId"]
    assert inbound.reply_token == "tok" and inbound.kind == "message" and inbound.channel == "line"


# -- the rich menu command -----------------------------------------------------------------


def test_sla_bot_line_rich_menu_installs_the_committed_menu_and_replaces_it_on_a_rerun(fake, monkeypatch, capsys):
    from bot import cli
    from bot.gateway.channels.line_rich_menu import DEFINITION, IMAGE

    fake.reset()
    fake.rich_menus.clear()
    fake.rich_menu_images.clear()
    monkeypatch.setenv("LINE_CHANNEL_SECRET", CHANNEL_SECRET)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", fake.url)
    assert cli.main(["line", "rich-menu"]) == 0
    first = fake.default_rich_menu
    assert first in fake.rich_menus and fake.rich_menu_images[first] == IMAGE.read_bytes()
    menu = fake.rich_menus[first]
    assert [a["action"]["text"] for a in menu["areas"]] == [
        "ทำอะไรได้บ้าง", "คำขอถึงไหนแล้ว", "อยากร้องเรียน", "ติดต่อเจ้าหน้าที่ยังไง"
    ]
    assert menu["name"] == __import__("json").loads(DEFINITION.read_text())["name"]
    upload = [c for c in fake.calls if c.path.endswith("/content")][0]
    assert upload.headers["content-type"] == "image/png"
    assert cli.main(["line", "rich-menu"]) == 0
    assert fake.default_rich_menu != first and list(fake.rich_menus) == [fake.default_rich_menu]
    assert "Removed the menus it replaces" in capsys.readouterr().out


def test_the_rich_menu_command_refuses_a_wrong_image_and_a_missing_token(fake, monkeypatch, tmp_path, capsys):
    from bot import cli
    from bot.gateway.channels.line_rich_menu import IMAGE

    monkeypatch.setenv("LINE_CHANNEL_SECRET", CHANNEL_SECRET)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", "")
    assert cli.main(["line", "rich-menu"]) == 1
    assert "LINE_CHANNEL_ACCESS_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", fake.url)
    wrong = tmp_path / "wrong.png"
    image = bytearray(IMAGE.read_bytes())
    image[16:24] = (1200).to_bytes(4, "big") + (405).to_bytes(4, "big")
    wrong.write_bytes(bytes(image))
    fake.reset()
    assert cli.main(["line", "rich-menu", "--image", str(wrong)]) == 1
    assert "1200x405" in capsys.readouterr().err and fake.calls == []
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", "revoked-token")
    assert cli.main(["line", "rich-menu"]) == 1
    assert "LINE answered 401" in capsys.readouterr().err


def test_a_reply_token_read_back_without_a_time_zone_counts_as_utc():
    channel = line.LineChannel(CHANNEL_SECRET, ACCESS_TOKEN)
    naive = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def event(received_at: dt.datetime) -> InboundEvent:
        return InboundEvent("line", "e1", "line:U1", "message", received_at, "x", reply_token="t")

    assert channel.reply_token_fresh(event(naive))
    assert not channel.reply_token_fresh(event(naive - dt.timedelta(seconds=51)))
