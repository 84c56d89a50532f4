"""Conversations through the real gateway → Rasa server → action server, as a citizen has them."""

from __future__ import annotations

import httpx
import pytest

from bot.catalog import load_catalog
from bot.settings import PROJECT_ROOT
from bot.text import format_baht

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")


class Chat:
    """One citizen in the web chat: the gateway's session cookie (kept by the client) is who they are."""

    def __init__(self, gateway_url: str) -> None:
        self.client = httpx.Client(base_url=gateway_url, timeout=60)

    def say(self, text: str) -> list[dict]:
        response = self.client.post("/api/chat", json={"message": text})
        assert response.status_code == 200, response.text
        return response.json()["messages"]

    def text(self, text: str) -> str:
        return "\n".join(m["text"] for m in self.say(text))


@pytest.fixture
def chat(gateway_url: str) -> Chat:
    return Chat(gateway_url)


def test_health_and_page(gateway_url):
    health = httpx.get(f"{gateway_url}/healthz").json()
    assert (health["status"], health["parts"]) == ("ok", {"rasa": "ok", "actions": "ok"})
    assert set(health["delivery"]["channels"]) == {"line", "telegram"}
    page = httpx.get(f"{gateway_url}/")
    assert page.status_code == 200 and 'lang="th"' in page.text


def test_greeting_has_a_privacy_notice_and_buttons(chat):
    [message] = chat.say("สวัสดีครับ")
    assert message["text"].startswith("สวัสดี ยินดีให้บริการ") and "ข้อมูลส่วนตัว" in message["text"]
    assert [b["title"] for b in message["buttons"]] == ["ทำอะไรได้บ้าง", "ต่อภาษีรถ", "หนังสือเดินทาง", "บัตรประชาชน"]


def test_documents_then_fee_follow_up_keeps_the_service(chat):
    documents = chat.text("ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้างครับ")
    service = CATALOG.services["vehicle_tax_renewal"]
    assert service.documents[0].name in documents and "ที่มา:" in documents
    fee = chat.text("แล้วค่าธรรมเนียมล่ะ")
    assert "ค่าธรรมเนียม: " + service.name in fee


def test_switching_service_and_fee_figures_come_from_the_catalog(chat):
    chat.text("ทำพาสปอร์ตใช้เวลากี่วัน")
    fee = chat.text("แล้วถ้าเป็นใบขับขี่ต้องจ่ายเท่าไหร่คะ")
    licence = CATALOG.services["driving_licence_renewal"]
    assert licence.name in fee
    amounts = [format_baht(f.amount_baht) for f in licence.fees if f.amount_baht]
    assert any(a in fee for a in amounts)


def test_ambiguous_request_offers_candidate_buttons_that_work(chat):
    [message] = chat.say("อยากขอใบอนุญาตค่ะ")
    buttons = {b["title"]: b["payload"] for b in message["buttons"]}
    assert len(buttons) >= 2
    food = CATALOG.services["food_shop_permit"]
    answer = chat.text(buttons[food.short_name])
    assert answer.startswith("📋 " + food.name) and "ที่มา:" in answer


def test_open_now_question_answers_with_the_current_state(chat):
    text = chat.text("สำนักงานขนส่งตอนนี้เปิดอยู่ไหม ต่อภาษีรถ")
    assert "ขณะนี้ (" in text and ("เปิดอยู่" in text or "ปิดอยู่" in text)


def test_a_tracking_number_typed_with_thai_digits_is_understood(chat):
    text = chat.text("เช็คสถานะคำขอ dlt ๒๕๖๙ ๐๐๐๑๒๓ หน่อยครับ")
    assert text.startswith("🔐") and "เลขที่ DLT-2569-000123" in text


def test_out_of_scope_and_human_give_the_1111_hotline(chat):
    assert chat.text("หวยงวดนี้ออกอะไร").startswith("ขออภัย เรื่องนี้อยู่นอกขอบเขต")
    human = chat.text("ขอคุยกับเจ้าหน้าที่หน่อย")
    assert human.startswith("👩‍💼 ติดต่อเจ้าหน้าที่") and "สายด่วนรัฐบาล 1111" in human


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"sender": "x"}, "ข้อความไม่ถูกต้อง"),
        ({"message": ""}, "ข้อความไม่ถูกต้อง"),
        ({"message": 5}, "ข้อความไม่ถูกต้อง"),
        ([], "ข้อความไม่ถูกต้อง"),
        ({"message": "   "}, "กรุณาพิมพ์คำถามเป็นข้อความ"),
        ({"message": "ก" * 1001}, "ข้อความยาวเกินไป"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_thai_reason(gateway_url, body, reason):
    response = httpx.post(f"{gateway_url}/api/chat", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(reason)


def test_non_json_body_is_a_4xx(gateway_url):
    response = httpx.post(
        f"{gateway_url}/api/chat", content=b"\xff{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "ข้อความไม่ถูกต้อง" in response.json()["detail"]


def test_an_oversized_body_is_refused_unread(gateway_url):
    response = httpx.post(f"{gateway_url}/api/chat", json={"message": "ก" * 40_000})
    assert response.status_code == 413
    assert "ข้อความไม่ถูกต้อง" in response.json()["detail"]


def test_unknown_paths_are_404_not_500(gateway_url):
    assert httpx.get(f"{gateway_url}/nope").status_code == 404
    assert httpx.get(f"{gateway_url}/api/chat").status_code == 405


def test_a_long_conversation_keeps_its_service_across_session_rollovers(chat, rasa_url, stack):
    from bot.gateway.conversation import SESSION_TURNS

    chat.text("ทำพาสปอร์ตใช้เวลากี่วัน")
    for _ in range(SESSION_TURNS):
        chat.text("ขอบคุณครับ")
    fee = chat.text("แล้วค่าธรรมเนียมล่ะ")
    assert fee.startswith("💰 ค่าธรรมเนียม: " + CATALOG.services["passport"].name)
