"""The status lookup through the real gateway, Rasa and action server, on the stack's database:
an agency files a request over its API; a citizen looks it up in the web chat."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import httpx
import pytest

from bot.casework.api_keys import ApiKeys
from bot.catalog import load_catalog
from bot.db import make_engine
from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
DIGITS = "4826"


@pytest.fixture(scope="module")
def filed(stack: Stack) -> str:
    """A request the DLT filed through the agency API; its tracking number."""
    engine = make_engine(stack.settings.database)
    key = ApiKeys(engine, catalog=lambda: CATALOG).create("DLT", "integration test").key
    engine.dispose()
    response = httpx.post(
        f"{stack.settings.gateway_url}/api/agency/v1/requests",
        json={"service_id": "vehicle_tax_renewal", "office": "สำนักงานขนส่งจังหวัดนนทบุรี", "phone_last4": DIGITS},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    number = response.json()["tracking_number"]
    step = httpx.post(
        f"{stack.settings.gateway_url}/api/agency/v1/requests/{number}/status",
        json={"status": "waiting_for_citizen", "note": "กรุณานำหนังสือรับรองการตรวจสภาพรถมายื่นเพิ่ม"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert step.status_code == 200, step.text
    return number


def say(client: httpx.Client, text: str) -> str:
    response = client.post("/api/chat", json={"message": text})
    assert response.status_code == 200, response.text
    return "\n".join(m["text"] for m in response.json()["messages"])


def test_the_applicant_sees_the_status_after_the_code_and_then_without_it(gateway_url, filed):
    with httpx.Client(base_url=gateway_url, timeout=60) as citizen:
        assert say(citizen, f"ขอเช็คสถานะคำขอ {filed.lower().replace('-', ' ')} หน่อยครับ").startswith("🔐")
        status = say(citizen, "๔๘๒๖")
        assert status.startswith(f"🔎 สถานะคำขอเลขที่ {filed}\nบริการ: การชำระภาษีรถประจำปี")
        assert "สถานะ: รอเอกสารหรือการดำเนินการจากผู้ยื่นคำขอ" in status
        assert "📌 คำขอนี้รอการดำเนินการจากท่าน: กรุณานำหนังสือรับรองการตรวจสภาพรถมายื่นเพิ่ม" in status
        assert "สอบถามเพิ่มเติม: กรมการขนส่งทางบก สายด่วน 1584" in status
        # Linked now: no code asked again, and "my requests" lists it.
        assert say(citizen, f"แล้ว {filed} ล่ะ").startswith(f"🔎 สถานะคำขอเลขที่ {filed}")
        mine = citizen.post("/api/chat", json={"message": "คำขอของฉัน"}).json()["messages"]
        assert [b["title"] for b in mine[0]["buttons"]] == [filed]


def test_a_stranger_gets_the_same_words_for_a_wrong_code_and_an_unknown_number_then_a_lock(gateway_url, filed):
    unknown = filed[:-6] + "999999"
    with httpx.Client(base_url=gateway_url, timeout=60) as stranger:
        say(stranger, f"สถานะ {filed}")
        wrong = say(stranger, "1111")
        say(stranger, f"สถานะ {unknown}")
        nothing = say(stranger, DIGITS)
        assert wrong == nothing.replace(unknown, filed)
        assert wrong.startswith("❌ ไม่สามารถแสดงสถานะของเลขที่")
        for guess in ("2222", "3333"):
            say(stranger, f"สถานะ {filed}")
            say(stranger, guess)
        say(stranger, f"สถานะ {filed}")
        assert say(stranger, "5555").startswith("⏳ ยืนยันตัวตนไม่สำเร็จหลายครั้ง")


def test_the_digits_are_never_stored_by_rasa_or_the_registry(stack: Stack, filed):
    data = Path(stack.settings.data_dir)
    for path in data.glob("*.db*"):
        assert "๔๘๒๖".encode() not in path.read_bytes(), path.name
    with sqlite3.connect(data / "rasa-tracker.db") as db:
        events = [json.loads(row[0]) for row in db.execute("select data from events")]
    said = [e.get("text") or "" for e in events if e.get("event") == "user"]
    # As a number of its own: random ids and tokens in the gateway's payloads (photos, sealed
    # phone numbers, verification tokens) may hold the four digits by chance.
    typed = re.compile(rf"(?<![0-9A-Za-z])({DIGITS}|๔๘๒๖)(?![0-9A-Za-z])")
    assert said and not [text for text in said if typed.search(text)]
    assert any(text.startswith('/check_status{"verification_token": ') for text in said)
