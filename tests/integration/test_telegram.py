"""Telegram end to end: webhook updates through the channel, the real Rasa server and action server,
answers through python-telegram-bot to the local fake Bot API (tests/fakes/telegram_api.py).

Two ways through:

- in-process (always): the Telegram route and adapter in this process, with the real
  `Conversation` talking to the session stack's Rasa server (tests/integration/conftest.py),
  in-memory stand-ins of the Inbox and Outbox, and `dispatch` playing the dispatcher;
- through the gateway process (when the session stack runs with Telegram on, i.e. its settings
  carry TELEGRAM_BOT_TOKEN / TELEGRAM_WEBHOOK_SECRET / TELEGRAM_API_BASE_URL pointing at a fake
  started in this test process): a webhook POSTed to the gateway is answered by a sendMessage
  the fake records. Skipped, saying why, while the stack runs without Telegram.
"""

from __future__ import annotations

import itertools
import json
import random
import time

import aiohttp
import httpx
import pytest
from fastapi import FastAPI

from bot.casework.api_keys import ApiKeys
from bot.catalog import load_catalog
from bot.db import make_engine
from bot.gateway.channels import telegram as tg
from bot.gateway.conversation import MORE_TITLE, Conversation
from bot.gateway.state import MemoryState
from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT
from tests.fakes.telegram_api import FakeTelegramAPI, callback_update, sticker_update, text_update
from tests.unit.test_telegram import MemoryInbox, MemoryOutbox

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
SECRET = "integration-secret_42"
DIGITS = "7315"
_update_ids = itertools.count(random.randrange(10**6, 10**7))


@pytest.fixture(scope="module")
def telegram_fake(stack: Stack):
    """The fake the session stack's gateway uses, if it runs with Telegram; else one of our own."""
    shared = FakeTelegramAPI.running_at(stack.settings.telegram_api_base_url or "-")
    if shared is not None:
        yield shared
        return
    with FakeTelegramAPI() as fake:
        yield fake


class Citizen:
    """One Telegram chat with the bot, run in-process against the real Rasa server."""

    def __init__(self, harness: "Harness") -> None:
        self.harness = harness
        self.chat_id = random.randrange(10**8, 10**9)

    async def send(self, update: dict) -> list[dict]:
        """POST the update as Telegram would, dispatch it, return the sendMessage calls it caused."""
        fake, before = self.harness.fake, len(self.harness.fake.sent(self.chat_id))
        response = await self.harness.http.post(
            tg.WEBHOOK_PATH,
            content=json.dumps(update, ensure_ascii=False),
            headers={tg.SECRET_HEADER: SECRET, "content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        for event in self.harness.inbox.new():
            await self.harness.channel.handle(event, self.harness.conversation, self.harness.outbox)
        return fake.sent(self.chat_id)[before:]

    async def say(self, text: str) -> list[dict]:
        return await self.send(text_update(next(_update_ids), self.chat_id, text))

    async def press(self, message: dict, title: str) -> list[dict]:
        keyboard = message["reply_markup"]
        [data] = [b["callback_data"] for row in keyboard["inline_keyboard"] for b in row if b["text"] == title]
        update = callback_update(next(_update_ids), self.chat_id, data, keyboard=keyboard)
        return await self.send(update)


class Harness:
    def __init__(self, stack: Stack, fake: FakeTelegramAPI) -> None:
        self.stack, self.fake = stack, fake
        self.inbox, self.outbox = MemoryInbox(), MemoryOutbox()

    async def __aenter__(self) -> "Harness":
        s = self.stack.settings
        self.rasa_client = aiohttp.ClientSession()
        self.conversation = Conversation(
            s.rasa_url, self.rasa_client, MemoryState(), actions_url=s.actions_url, token=s.rasa_token,
            rate_limit=1000, verification_secret=s.verification_secret,
        )
        self.channel = tg.TelegramChannel(self.fake.token, SECRET, self.fake.base_url)
        app = FastAPI()
        app.include_router(tg.router(self.channel, self.inbox))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.channel.close()
        await self.rasa_client.close()

    def citizen(self) -> Citizen:
        return Citizen(self)


@pytest.fixture
async def harness(stack: Stack, telegram_fake: FakeTelegramAPI):
    async with Harness(stack, telegram_fake) as running:
        yield running


def titles(message: dict) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_a_question_is_answered_over_telegram(harness):
    citizen = harness.citizen()
    sent = await citizen.say("ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้างครับ")
    text = "\n".join(m["text"] for m in sent)
    service = CATALOG.services["vehicle_tax_renewal"]
    assert service.documents[0].name in text and "ที่มา:" in text
    fee = "\n".join(m["text"] for m in await citizen.say("แล้วค่าธรรมเนียมล่ะ"))
    assert "ค่าธรรมเนียม: " + service.name in fee


async def test_start_greets_with_the_privacy_notice_and_its_buttons_work(harness):
    citizen = harness.citizen()
    [greeting] = await citizen.say("/start")
    assert greeting["text"].startswith("สวัสดี ยินดีให้บริการ") and "ข้อมูลส่วนตัว" in greeting["text"]
    assert titles(greeting) == ["ทำอะไรได้บ้าง", "ต่อภาษีรถ", "หนังสือเดินทาง", "บัตรประชาชน"]
    before = len(harness.fake.calls_to("answerCallbackQuery"))
    answer = await citizen.press(greeting, "หนังสือเดินทาง")
    assert len(harness.fake.calls_to("answerCallbackQuery")) == before + 1  # the spinner stopped
    assert CATALOG.services["passport"].name in "\n".join(m["text"] for m in answer)


async def test_help_lists_every_service_behind_a_more_button(harness):
    citizen = harness.citizen()
    [menu] = await citizen.say("/help")
    assert menu["text"].startswith("ผู้ช่วยนี้ตอบคำถาม")
    shown = titles(menu)
    assert len(shown) == harness.channel.max_buttons and shown[-1] == MORE_TITLE
    [more] = await citizen.press(menu, MORE_TITLE)
    every = set(shown[:-1]) | set(titles(more))
    assert every == {s.short_name for s in CATALOG.services.values()}


async def test_unsupported_content_gets_please_type_with_the_help_menu(harness):
    citizen = harness.citizen()
    [reply] = await citizen.send(sticker_update(next(_update_ids), citizen.chat_id))
    assert reply["text"] == tg.PLEASE_TYPE
    assert set(titles(reply)) & {s.short_name for s in CATALOG.services.values()}


@pytest.fixture(scope="module")
def filed(stack: Stack) -> str:
    """A request the DLT filed through the agency API; its tracking number."""
    engine = make_engine(stack.settings.database)
    key = ApiKeys(engine, catalog=lambda: CATALOG).create("DLT", "telegram integration test").key
    engine.dispose()
    response = httpx.post(
        f"{stack.settings.gateway_url}/api/agency/v1/requests",
        json={"service_id": "vehicle_tax_renewal", "office": "สำนักงานขนส่งจังหวัดนนทบุรี", "phone_last4": DIGITS},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["tracking_number"]


async def test_status_command_and_a_verified_lookup(harness, filed):
    citizen = harness.citizen()
    [ask] = await citizen.say("/status")
    assert ask["text"].startswith("🔎 ตรวจสอบสถานะคำขอ") and "กรุณาพิมพ์เลขที่คำขอ" in ask["text"]
    [code] = await citizen.say(f"/status {filed}")
    assert code["text"].startswith("🔐")
    [status] = await citizen.say(DIGITS)
    assert status["text"].startswith(f"🔎 สถานะคำขอเลขที่ {filed}")


async def test_through_the_gateway_process(stack: Stack, telegram_fake: FakeTelegramAPI):
    settings = stack.settings
    # The session stack (tests/integration/conftest.py) always runs with Telegram on the fake API.
    assert settings.telegram_enabled and FakeTelegramAPI.running_at(settings.telegram_api_base_url) is not None
    chat_id = random.randrange(10**8, 10**9)
    update = text_update(next(_update_ids), chat_id, "ทำพาสปอร์ตต้องใช้เอกสารอะไรบ้าง")
    if settings.telegram_mode == "webhook":
        url = f"{settings.gateway_url}{tg.WEBHOOK_PATH}"
        wrong = httpx.post(url, json=update, headers={tg.SECRET_HEADER: "wrong"})
        assert wrong.status_code == 403
        response = httpx.post(url, json=update, headers={tg.SECRET_HEADER: settings.telegram_webhook_secret})
        assert response.status_code == 200
        assert httpx.post(url, json=update, headers={tg.SECRET_HEADER: settings.telegram_webhook_secret}).status_code \
            == 200  # redelivered: answered once
    else:
        telegram_fake.queue_update(update)
    telegram_fake.wait_for(lambda: telegram_fake.sent(chat_id), timeout=60)
    time.sleep(3)  # the rest of the answer, and the redelivered update's, would have gone out by now
    texts = [m["text"] for m in telegram_fake.sent(chat_id)]
    assert CATALOG.services["passport"].documents[0].name in "\n".join(texts)
    assert len(texts) == len(set(texts))  # answered once
