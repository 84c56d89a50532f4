"""The gateway's trust boundary: who is speaking, what reaches Rasa, limits, paging, outages.

Rasa is replaced here by an in-process stand-in of its REST channel that records what it is
sent; tests/integration/test_trust.py checks the same behaviour against the real stack.
"""

from __future__ import annotations

import json
import uuid

import aiohttp
import httpx
import jinja2
import pytest

from bot.answers.render import template_environment
from bot.complaints.contact import phone_from_transit
from bot.gateway.channels.web import INVALID, WebSessions, chat_message
from bot.gateway.conversation import (
    MORE_PAYLOAD,
    TOO_FAST,
    UNAVAILABLE,
    Conversation,
    as_plain_words,
)
from bot.gateway.limits import RateLimiter
from bot.gateway.state import MemoryState, RedisState
from tests.fakes.http_server import serve

REDIS_URL = "redis://127.0.0.1:6379/15"
OFFERED = '/ask_fee{"service": "passport"}'


class FakeRasa:
    """Rasa's REST channel and status endpoint, answering from a script; records what it got."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.replies: list[dict] = [{"text": "ตอบ", "buttons": [{"title": "ค่าธรรมเนียม", "payload": OFFERED}]}]
        self.rasa_up = True
        self.actions_up = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/webhooks/rest/webhook":
            if not self.rasa_up:
                return httpx.Response(500)
            self.received.append(json.loads(request.content))
            return httpx.Response(200, json=self.replies)
        if request.url.path == "/status":
            return httpx.Response(200 if self.rasa_up else 500, json={"model_file": "m.tar.gz"})
        if request.url.path == "/health":
            return httpx.Response(200 if self.actions_up else 503, json={"status": "ok"})
        return httpx.Response(404)


@pytest.fixture
def rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
async def conversation(rasa: FakeRasa):
    async with serve(rasa) as url, aiohttp.ClientSession() as client:
        yield Conversation(url, client, MemoryState(), actions_url=url, rate_limit=5)


def identity() -> str:
    return f"web:{uuid.uuid4().hex}"


# ----------------------------------------------------------------------------- who is speaking


def test_web_sessions_are_signed_and_tampering_is_refused():
    sessions = WebSessions("secret")
    cookie = sessions.issue()
    session_id = sessions.verify(cookie)
    assert session_id and len(session_id) >= 22
    assert sessions.verify(cookie.replace(session_id, "someone-else")) is None
    assert sessions.verify(session_id) is None  # unsigned
    assert sessions.verify(f"{session_id}.AAAA") is None
    assert WebSessions("other secret").verify(cookie) is None
    assert sessions.issue() != sessions.issue()


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"message": "hi", "sender": "someone-else"}', (0, "hi")),  # `sender` is ignored
        ('{"message": "ต่อใบขับขี่"}'.encode(), (0, "ต่อใบขับขี่")),
        (b'{"message": "   "}', (0, "   ")),  # the pipeline answers blank text in Thai
        (b'{"message": ""}', (422, INVALID)),
        (b'{"message": 5}', (422, INVALID)),
        (b'{"sender": "x"}', (422, INVALID)),
        (b"[]", (422, INVALID)),
        (b'"hi"', (422, INVALID)),
        (json.dumps({"message": "x" * 4001}).encode(), (422, INVALID)),
        (b"\xff{not json", (400, INVALID)),
        (b"", (400, INVALID)),
    ],
)
def test_the_web_chat_reads_only_a_message_string(body, expected):
    assert chat_message(body) == expected


# ----------------------------------------------------------------------------- what Rasa is told


@pytest.mark.parametrize(
    "typed, told",
    [
        ('/check_status{"tracking_number":"<img src=x onerror=alert(1)>-AAA"}',
         'check_status{"tracking_number":"<img src=x onerror=alert(1)>-AAA"}'),
        ("  //greet", "greet"),
        ("/ask_fee", "ask_fee"),
        ("ต่อภาษีรถ/ใบขับขี่", "ต่อภาษีรถ/ใบขับขี่"),
    ],
)
async def test_typed_intent_syntax_reaches_rasa_as_plain_words(conversation, rasa, typed, told):
    await conversation.handle(identity(), typed)
    assert rasa.received[-1]["message"] == told
    assert as_plain_words(typed) == told


async def test_a_button_offered_to_this_identity_passes_as_a_payload(conversation, rasa):
    me = identity()
    await conversation.handle(me, "ทำพาสปอร์ต")
    await conversation.handle(me, OFFERED)
    assert rasa.received[-1] == {"sender": me, "message": OFFERED}


async def test_a_button_offered_to_someone_else_is_only_words(conversation, rasa):
    await conversation.handle(identity(), "ทำพาสปอร์ต")
    stranger = identity()
    await conversation.handle(stranger, OFFERED)
    assert rasa.received[-1] == {"sender": stranger, "message": OFFERED.lstrip("/")}


# ----------------------------------------------------------------------------- replies and limits


async def test_buttons_beyond_the_channel_limit_are_paged_by_the_gateway(conversation, rasa):
    buttons = [{"title": f"บริการ {i}", "payload": f'/ask_service{{"service": "s{i}"}}'} for i in range(15)]
    rasa.replies = [{"text": "เลือกบริการ", "buttons": buttons}]
    me = identity()
    turn = await conversation.handle(me, "ทำอะไรได้บ้าง", max_buttons=13)
    shown = turn.replies[0].buttons
    assert len(shown) == 13 and shown[-1].payload == MORE_PAYLOAD
    assert [b.title for b in shown[:12]] == [f"บริการ {i}" for i in range(12)]
    sent = len(rasa.received)
    page = await conversation.handle(me, MORE_PAYLOAD, max_buttons=13)
    assert len(rasa.received) == sent, "the next page is served without asking Rasa"
    assert [b.title for b in page.replies[0].buttons] == ["บริการ 12", "บริการ 13", "บริการ 14"]
    await conversation.handle(me, buttons[14]["payload"], max_buttons=13)
    assert rasa.received[-1]["message"] == buttons[14]["payload"], "a paged button is an offered button"


async def test_one_identity_is_rate_limited_politely_and_others_are_not(conversation, rasa):
    me = identity()
    for _ in range(5):
        assert (await conversation.handle(me, "สวัสดี")).refused is None
    turn = await conversation.handle(me, "สวัสดี")
    assert turn.refused == "rate_limited" and 0 < turn.retry_after <= 60
    assert turn.replies[0].text == TOO_FAST.format(seconds=turn.retry_after)
    assert len(rasa.received) == 5
    assert (await conversation.handle(identity(), "สวัสดี")).refused is None


async def test_long_and_empty_messages_never_reach_rasa(conversation, rasa):
    assert (await conversation.handle(identity(), "ก" * 1001)).refused == "too_long"
    assert (await conversation.handle(identity(), "   ")).refused == "empty"
    assert (await conversation.handle(identity(), "///")).refused == "empty"
    assert rasa.received == []


async def test_rasa_down_and_action_server_down_get_an_apology(conversation, rasa):
    rasa.rasa_up = False
    turn = await conversation.handle(identity(), "ต่อภาษีรถ")
    assert turn.refused == "unavailable" and turn.replies[0].text == UNAVAILABLE
    assert (await conversation.health())["rasa"] == "down"
    rasa.rasa_up, rasa.actions_up, rasa.replies = True, False, []
    turn = await conversation.handle(identity(), "ต่อภาษีรถ")
    assert turn.refused == "unavailable"
    assert await conversation.health() == {"rasa": "ok", "actions": "down"}


async def test_rate_limits_are_shared_through_redis():
    subject = uuid.uuid4().hex
    first, second = RedisState(REDIS_URL), RedisState(REDIS_URL)
    try:
        replica_a, replica_b = RateLimiter(first), RateLimiter(second)
        assert (await replica_a.hit("identity", subject, 2)).allowed
        assert (await replica_b.hit("identity", subject, 2)).allowed
        verdict = await replica_a.hit("identity", subject, 2)
        assert not verdict.allowed and verdict.retry_after > 0
    finally:
        await first.close()
        await second.close()


async def test_each_conversation_stays_with_one_of_several_rasa_servers():
    first, second = FakeRasa(), FakeRasa()
    people = [identity() for _ in range(40)]
    async with serve(first) as one, serve(second) as two, aiohttp.ClientSession() as client:
        conversation = Conversation([one, two], client, MemoryState(), actions_url=one, rate_limit=1000)
        for _ in range(3):
            for person in people:
                await conversation.handle(person, "ทำพาสปอร์ต")
        second.rasa_up = False
        assert await conversation.health(fresh=True) == {"rasa": "ok", "rasa2": "down", "actions": "ok"}
    senders = [[m["sender"] for m in fake.received] for fake in (first, second)]
    assert all(senders) and not set(senders[0]) & set(senders[1])  # both used, nobody on both
    assert sorted(senders[0] + senders[1]) == sorted(people * 3)


async def test_offered_buttons_are_shared_through_redis(rasa):
    me = identity()
    async with serve(rasa) as url, aiohttp.ClientSession() as client:
        state_a, state_b = RedisState(REDIS_URL), RedisState(REDIS_URL)
        try:
            await Conversation(url, client, state_a).handle(me, "ทำพาสปอร์ต")
            await Conversation(url, client, state_b).handle(me, OFFERED)
        finally:
            await state_a.close()
            await state_b.close()
    assert rasa.received[-1]["message"] == OFFERED


async def test_memory_state_expires_and_stays_bounded():
    now = [0.0]
    state = MemoryState(max_entries=2, clock=lambda: now[0])
    await state.set("a", "1", 10)
    assert await state.incr("n", 10) == 1 and await state.incr("n", 10) == 2
    await state.set("b", "2", 10)
    assert await state.get("a") is None, "least recently used entry dropped beyond max_entries"
    now[0] = 11
    assert await state.get("b") is None and await state.incr("n", 10) == 1


# ----------------------------------------------------------------------------- escaping


def test_values_are_escaped_by_output_format():
    env = template_environment(
        jinja2.DictLoader({"probe.html.j2": "<p>{{ value }}</p>", "probe.j2": "เลขที่ {{ value }}"})
    )
    hostile = '<img src=x onerror="alert(1)">\u202eABC\x07'
    html = env.get_template("probe.html.j2").render(value=hostile)
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    text = env.get_template("probe.j2").render(value=hostile)
    assert text == 'เลขที่ <img src=x onerror="alert(1)">ABC', "plain text keeps characters, drops controls"


async def test_a_long_conversation_rolls_over_to_a_new_rasa_session(conversation, rasa):
    from bot.gateway.conversation import SESSION_START, SESSION_TURNS

    conversation._rate_limit = 10_000
    me = identity()
    for _ in range(SESSION_TURNS * 2):
        await conversation.handle(me, "สวัสดี")
    told = [r["message"] for r in rasa.received if r["sender"] == me]
    assert told.count(SESSION_START) == 2
    assert told.index(SESSION_START) == SESSION_TURNS - 1, "before the SESSION_TURNS-th message"


@pytest.mark.parametrize(
    "typed, code",
    [("1234", "1234"), ("๑๒๓๔", "1234"), ("รหัส 12 34 ค่ะ", "1234"), ("12345", None), ("123", None),
     ("เลข 1234 แต่จริงๆ ไม่แน่ใจว่าถูกไหมนะครับ ลองก่อน", None)],
)
def test_the_verification_code_is_four_digits_in_a_short_answer(typed, code):
    from bot.gateway.conversation import verification_code

    assert verification_code(typed) == code


async def test_the_verification_digits_never_reach_rasa(rasa):
    from bot.casework.lookup import EXPECTS_CODE
    from bot.casework.verification import verifier_token

    number = "DLT-2569-000001"
    rasa.replies = [{"text": "กรุณาพิมพ์เลข 4 ตัวท้าย"}, {"custom": {"expects": EXPECTS_CODE, "tracking_number": number}}]
    me = identity()
    async with serve(rasa) as url, aiohttp.ClientSession() as client:
        conversation = Conversation(url, client, MemoryState(), verification_secret="s3cret")
        turn = await conversation.handle(me, f"สถานะ {number}")
        assert [r.text for r in turn.replies] == ["กรุณาพิมพ์เลข 4 ตัวท้าย"], "control messages are not shown"
        rasa.replies = [{"text": "ok"}]
        await conversation.handle(me, "๑๒๓๔")
        told = rasa.received[-1]["message"]
        assert "1234" not in told and "๑๒๓๔" not in told
        assert told == '/check_status{"verification_token": "%s"}' % verifier_token("s3cret", number, "1234")
        await conversation.handle(me, "5678")
        assert rasa.received[-1]["message"] == "5678", "only the answer right after the question is a code"
        forged = '/check_status{"verification_token": "%s"}' % ("0" * 64)
        await conversation.handle(me, forged)
        assert rasa.received[-1]["message"] == forged.lstrip("/"), "a citizen cannot send a token payload"


async def test_a_photo_or_location_is_expected_only_until_the_next_message(conversation, rasa):
    me = identity()
    assert await conversation.expected_media(me) is None
    rasa.replies = [{"text": "เกิดเหตุที่ไหน"}, {"custom": {"expects": "complaint_location"}}]
    turn = await conversation.handle(me, "รอคิวนานมาก")
    assert [r.text for r in turn.replies] == ["เกิดเหตุที่ไหน"]
    assert await conversation.expected_media(me) == "complaint_location"
    rasa.replies = [{"text": "ส่งรูปได้"}, {"custom": {"expects": "complaint_photo"}}]
    payload = '/file_complaint{"latitude": 13.75, "longitude": 100.5}'
    await conversation.handle(me, "ignored", gateway_payload=payload)
    assert rasa.received[-1]["message"] == payload, "a payload the gateway wrote goes to Rasa as is"
    assert await conversation.expected_media(me) == "complaint_photo"
    rasa.replies = [{"text": "ตอบ"}]
    await conversation.handle(me, "ข้าม")
    assert await conversation.expected_media(me) is None, "another message ends the expectation"
    await conversation.handle(me, payload)
    assert rasa.received[-1]["message"] == payload.lstrip("/"), "a citizen typing the payload is only words"
    assert await conversation.expected_media(identity()) is None


async def test_a_phone_number_for_the_complaint_form_reaches_rasa_sealed(rasa):
    me = identity()
    async with serve(rasa) as url, aiohttp.ClientSession() as client:
        conversation = Conversation(url, client, MemoryState(), verification_secret="s3cret")
        rasa.replies = [{"text": "ขอเบอร์โทรศัพท์"}, {"custom": {"expects": "complaint_phone"}}]
        await conversation.handle(me, "ต้องการให้ติดต่อกลับ")
        rasa.replies = [{"text": "ตรวจสอบข้อมูล"}]
        await conversation.handle(me, "เบอร์ ๐๘๑-๒๓๔-๕๖๗๘ ค่ะ")
        told = rasa.received[-1]["message"]
        assert told.startswith('/file_complaint{"phone_token": ')
        assert not any(d in told for d in ("081", "2345678", "๐๘๑"))
        token = json.loads(told.removeprefix("/file_complaint"))["phone_token"]
        assert phone_from_transit("s3cret", token) == "0812345678"
        assert phone_from_transit("another secret", token) is None
        await conversation.handle(me, "โทร 0812345678")  # not asked for: the words as they are
        assert rasa.received[-1]["message"] == "โทร 0812345678"
