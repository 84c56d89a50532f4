"""The trust boundary on the real stack: who is speaking, what the bot believes, and limits."""

from __future__ import annotations

import dataclasses

import httpx
from fastapi.testclient import TestClient

from bot.catalog import load_catalog
from bot.gateway.app import create_app
from bot.gateway.channels.web import COOKIE, TOO_FAST
from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
PASSPORT = CATALOG.services["passport"]


def chat(client: httpx.Client, message: str, **extra: str) -> httpx.Response:
    return client.post("/api/chat", json={"message": message, **extra})


def texts(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return "\n".join(m["text"] for m in response.json()["messages"])


def test_typed_rasa_syntax_cannot_set_an_intent_or_an_entity(gateway_url):
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        attack = '/check_status{"tracking_number":"<img src=x onerror=alert(1)>-AAA"}'
        text = texts(chat(client, attack))
        assert "<img" not in text and "AAA" not in text
        assert not text.startswith("🔎 ตรวจสอบสถานะคำขอ\nเลขที่"), "no status answer for an injected number"
        # A button payload nobody offered to this citizen is only words.
        text = texts(chat(client, f'/ask_fee{{"service": "{PASSPORT.id}"}}'))
        assert not text.startswith(f"💰 ค่าธรรมเนียม: {PASSPORT.name}")


def test_the_gateway_decides_who_is_speaking(gateway_url):
    alice, mallory = httpx.Client(base_url=gateway_url, timeout=60), httpx.Client(base_url=gateway_url, timeout=60)
    with alice, mallory:
        texts(chat(alice, "ทำพาสปอร์ตใช้เวลากี่วัน"))
        session = alice.cookies[COOKIE]
        assert texts(chat(alice, "แล้วค่าธรรมเนียมล่ะ")).startswith(f"💰 ค่าธรรมเนียม: {PASSPORT.name}")
        # Mallory names Alice's session in the body, then in a cookie with a forged signature.
        for attempt in (
            {"sender": f"web:{session.split('.')[0]}"},
            {"sender": session},
        ):
            assert not texts(chat(mallory, "แล้วค่าธรรมเนียมล่ะ", **attempt)).startswith(f"💰 ค่าธรรมเนียม: {PASSPORT.name}")
        mallory.cookies.clear()
        mallory.cookies.set(COOKIE, session.split(".")[0] + ".forged")
        response = chat(mallory, "แล้วค่าธรรมเนียมล่ะ")
        assert not texts(response).startswith(f"💰 ค่าธรรมเนียม: {PASSPORT.name}")
        assert response.cookies[COOKIE] != session, "a forged cookie gets a new session"
        set_cookie = response.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie


def test_one_citizen_writing_too_fast_gets_a_polite_wait(gateway_url, stack: Stack):
    limit = stack.settings.rate_limit_identity
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        statuses = [chat(client, "สวัสดีครับ").status_code for _ in range(limit)]
        assert statuses == [200] * limit
        refused = chat(client, "สวัสดีครับ")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["detail"].startswith("ขออภัย ส่งข้อความถี่เกินไป")
    with httpx.Client(base_url=gateway_url, timeout=60) as someone_else:
        assert chat(someone_else, "สวัสดีครับ").status_code == 200


def test_one_address_writing_too_fast_is_limited_across_sessions(stack: Stack):
    """A second gateway (in this process) with a low per-address limit, talking to the real Rasa."""
    settings = dataclasses.replace(stack.settings, rate_limit_address=3)
    with TestClient(create_app(settings)) as gateway:
        for _ in range(3):
            gateway.cookies.clear()  # a new session each time: only the address is the same
            assert gateway.post("/api/chat", json={"message": "สวัสดีครับ"}).status_code == 200
        gateway.cookies.clear()
        refused = gateway.post("/api/chat", json={"message": "สวัสดีครับ"})
        assert refused.status_code == 429 and refused.json()["detail"] == TOO_FAST
