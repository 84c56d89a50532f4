"""LINE end to end: signed webhooks in, through the real Rasa server and action server, and the
answers as the fake LINE API (tests/fakes/line_api.py) receives them from the real SDK.

This module starts its own stack with LINE enabled (LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN
and LINE_API_BASE_URL pointing at the fake). When that stack's gateway serves `/webhooks/line`
itself, the tests go through it (durable inbox, dispatcher, outbox); while it does not, they go
through `tests/fakes/line_gateway.py`, the same route and adapter on in-memory stand-ins, with
a conversation against the same Rasa server.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator

import httpx
import pytest

from bot.casework.api_keys import ApiKeys
from bot.catalog import load_catalog
from bot.db import make_engine
from bot.gateway.channels import line
from bot.gateway.conversation import TOO_LONG
from bot.runtime.stack import Stack, private_settings
from bot.settings import PROJECT_ROOT
from tests.fakes.line_api import (
    ACCESS_TOKEN,
    CHANNEL_SECRET,
    FakeLineApi,
    follow_event,
    media_event,
    postback_event,
    signed_headers,
    text_event,
    user_id,
    webhook_body,
)
from tests.fakes.line_gateway import LineGateway, ServedApp

MODEL = PROJECT_ROOT / "models" / "sla-bot.tar.gz"
CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
RICH_MENU = PROJECT_ROOT / "bot" / "gateway" / "channels" / "line_rich_menu.json"
DIGITS = "7315"


@pytest.fixture(scope="module")
def line_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(fake LINE API, stack with LINE pointed at it): the session's own when conftest provides
    them (a `line_api` fixture and a `stack` with LINE enabled), else started for this module."""
    try:
        fake = request.getfixturevalue("line_api")
        stack = request.getfixturevalue("stack")
    except pytest.FixtureLookupError:
        fake = stack = None
    if stack is not None and stack.settings.line_api_base_url == fake.url:
        yield fake, stack
        return
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    directory = tmp_path_factory.mktemp("line-stack")
    with FakeLineApi() as fake:
        settings = dataclasses.replace(
            private_settings(directory / "data"),
            line_channel_secret=CHANNEL_SECRET,
            line_channel_access_token=ACCESS_TOKEN,
            line_api_base_url=fake.url,
        )
        with (directory / "stack.log").open("w", encoding="utf-8") as log, Stack(
            settings, model_path=MODEL, output=log
        ) as running:
            yield fake, running


@pytest.fixture(scope="module")
def line_fake(line_env) -> FakeLineApi:
    return line_env[0]


@pytest.fixture(scope="module")
def line_stack(line_env) -> Stack:
    return line_env[1]


@pytest.fixture(scope="module")
def line_url(line_stack: Stack) -> Iterator[str]:
    gateway = line_stack.settings.gateway_url
    if httpx.post(f"{gateway}{line.WEBHOOK_PATH}", content=b"{}").status_code != 404:
        yield gateway  # the gateway's own wiring
        return
    with ServedApp(LineGateway(line_stack.settings).app()) as served:
        yield served.url


class LineUser:
    """One LINE user: sends signed events, reads what the bot sent back through the fake API."""

    def __init__(self, fake: FakeLineApi, url: str) -> None:
        self.fake = fake
        self.url = url
        self.id = user_id()

    def post(self, events: list[dict]) -> httpx.Response:
        body = webhook_body(events)
        return httpx.post(f"{self.url}{line.WEBHOOK_PATH}", content=body, headers=signed_headers(body), timeout=10)

    def send(self, event: dict, settle: float = 0.5) -> list[dict]:
        """Post one event; the messages the bot sent this user in answer."""
        before = len(self.fake.delivered(self.id))
        response = self.post([event])
        assert response.status_code == 200, response.text
        self.fake.wait_for(lambda: len(self.fake.delivered(self.id)) > before, timeout=60)
        time.sleep(settle)  # a long answer may come as several messages
        return self.fake.delivered(self.id)[before:]

    def say(self, text: str) -> list[dict]:
        return self.send(text_event(self.id, text, self.fake.issue_reply_token(self.id)))

    def text(self, text: str) -> str:
        return "\n".join(m["text"] for m in self.say(text))


@pytest.fixture
def citizen(line_fake: FakeLineApi, line_url: str) -> LineUser:
    return LineUser(line_fake, line_url)


def test_a_question_is_answered_through_line_and_its_quick_reply_works(citizen):
    [answer] = citizen.say("ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้างครับ")  # Rasa's paragraphs, joined
    service = CATALOG.services["vehicle_tax_renewal"]
    assert service.documents[0].name in answer["text"] and "ที่มา:" in answer["text"]
    replies = [c for c in citizen.fake.calls_to("/v2/bot/message/reply") if c.status == 200]
    assert any(m == answer for c in replies for m in c.json["messages"])
    [greeting] = citizen.say("สวัสดีครับ")
    items = greeting["quickReply"]["items"]
    assert all(len(i["action"]["label"]) <= 20 for i in items)
    passport = next(i["action"] for i in items if i["action"]["label"] == CATALOG.services["passport"].short_name)
    [overview] = citizen.send(postback_event(citizen.id, passport["data"], citizen.fake.issue_reply_token(citizen.id)))
    assert overview["text"].startswith("📋 " + CATALOG.services["passport"].name)
    assert 1 <= len(overview["quickReply"]["items"]) <= 13


def test_follow_welcomes_with_the_privacy_notice(citizen):
    [welcome] = citizen.send(follow_event(citizen.id, citizen.fake.issue_reply_token(citizen.id)))
    assert welcome["text"].startswith("สวัสดี ยินดีให้บริการ") and "ข้อมูลส่วนตัว" in welcome["text"]
    assert welcome["quickReply"]["items"][0]["action"]["label"] == "ทำอะไรได้บ้าง"


def test_a_sticker_gets_please_type_with_the_help_menus_service_buttons(citizen):
    [message] = citizen.send(media_event(citizen.id, "sticker", citizen.fake.issue_reply_token(citizen.id)))
    assert message["text"] == line.PLEASE_TYPE
    labels = [i["action"]["label"] for i in message["quickReply"]["items"]]
    expected = [s.short_name for s in CATALOG.services.values()]
    if len(expected) > 13:  # LINE's limit: the gateway pages the rest behind "more"
        expected = expected[:12] + ["ดูเพิ่มเติม ›"]
    assert labels == expected


def test_emoji_only_and_five_thousand_characters_get_sensible_answers(citizen):
    [emoji] = citizen.say("👍👍🙏")
    assert emoji["text"] and "ขัดข้อง" not in emoji["text"]
    assert citizen.text("ขอถาม" * 1000) == TOO_LONG.format(limit=1000)


@pytest.fixture(scope="module")
def filed(line_stack: Stack) -> str:
    """A request the DLT filed through the agency API of the LINE stack; its tracking number."""
    engine = make_engine(line_stack.settings.database)
    key = ApiKeys(engine, catalog=lambda: CATALOG).create("DLT", "LINE integration test").key
    engine.dispose()
    response = httpx.post(
        f"{line_stack.settings.gateway_url}/api/agency/v1/requests",
        json={"service_id": "vehicle_tax_renewal", "office": "สำนักงานขนส่งจังหวัดนนทบุรี", "phone_last4": DIGITS},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["tracking_number"]


def test_a_status_lookup_over_line_is_linked_to_that_line_user_only(line_fake, line_url, filed):
    applicant = LineUser(line_fake, line_url)
    assert applicant.text(f"คำขอ {filed} ถึงไหนแล้ว").startswith("🔐")
    status = applicant.text(DIGITS)
    assert status.startswith(f"🔎 สถานะคำขอเลขที่ {filed}\nบริการ: การชำระภาษีรถประจำปี")
    assert applicant.text(f"แล้ว {filed} ล่ะ").startswith(f"🔎 สถานะคำขอเลขที่ {filed}")  # linked: no code
    stranger = LineUser(line_fake, line_url)
    assert stranger.text(f"คำขอ {filed} ถึงไหนแล้ว").startswith("🔐")  # another LINE user is asked


def test_the_rich_menus_messages_reach_the_intents_they_are_meant_for(line_stack):
    import json

    expected = {
        "ทำอะไรได้บ้าง": "help",
        "คำขอถึงไหนแล้ว": "check_status",
        "อยากร้องเรียน": "file_complaint",
        "ติดต่อเจ้าหน้าที่ยังไง": "request_human",
        line.WELCOME_TEXT: "greet",
        line.HELP_TEXT: "help",
    }
    areas = json.loads(RICH_MENU.read_text(encoding="utf-8"))["areas"]
    assert {a["action"]["text"] for a in areas} <= set(expected)
    settings = line_stack.settings
    for text, intent in expected.items():
        parsed = httpx.post(
            f"{settings.rasa_url}/model/parse", params={"token": settings.rasa_token}, json={"text": text}, timeout=30
        ).json()
        assert parsed["intent"]["name"] == intent, (text, parsed["intent"])


def test_a_redelivered_webhook_is_answered_once(citizen):
    event = text_event(citizen.id, "หนังสือเดินทางใช้เวลากี่วัน", citizen.fake.issue_reply_token(citizen.id))
    first = citizen.send(event)
    again = citizen.post([{**event, "deliveryContext": {"isRedelivery": True}}])
    assert again.status_code == 200
    time.sleep(2)
    assert citizen.fake.delivered(citizen.id) == first


def test_bad_signatures_and_bodies_are_refused_by_the_gateway(citizen):
    body = webhook_body([text_event(citizen.id, "สวัสดี", "token")])
    url = f"{citizen.url}{line.WEBHOOK_PATH}"
    assert httpx.post(url, content=body).status_code == 400
    assert httpx.post(url, content=body, headers={"x-line-signature": "AAAA"}).status_code == 400
    assert httpx.post(url, content=b"{oops", headers=signed_headers(b"{oops")).status_code == 400
    huge = b'{"events": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert httpx.post(url, content=huge, headers=signed_headers(huge)).status_code == 413
    empty = webhook_body([])
    assert httpx.post(url, content=empty, headers=signed_headers(empty)).status_code == 200
    assert citizen.fake.delivered(citizen.id) == []
