"""The citizen's status lookup on a real registry: verification, identical refusals, lockout,
linked identities, and the demo set's promised states."""

from __future__ import annotations

import pytest

from bot.assistant import Assistant
from bot.casework.demo import DEMO, demo_loaded, load_demo
from bot.casework.lookup import StatusLookup
from bot.casework.registry import Registry
from bot.catalog import load_catalog
from bot.settings import PROJECT_ROOT
from tests.unit.databases import FakeClock, bangkok, database_url, engine  # noqa: F401

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
SECRET = "lookup-secret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(bangkok(2026, 11, 25, 10, 0))


@pytest.fixture
def registry(engine, clock) -> Registry:  # noqa: F811
    return Registry(engine, SECRET, lambda: CATALOG, clock=clock)


@pytest.fixture
def lookup(registry, clock) -> StatusLookup:
    assistant = Assistant.from_catalog(CATALOG, clock=clock)
    return StatusLookup(registry, lambda: assistant)


def file(registry: Registry, digits: str = "1234") -> str:
    request = registry.create_request("DLT", "vehicle_tax_renewal", "ขนส่งนนทบุรี", digits, actor="cli")
    return request.tracking_number


def test_the_right_code_answers_and_links_the_chat(registry, lookup):
    number = file(registry)
    assert lookup.needs_code("web:alice", number)
    reply = lookup.answer("web:alice", number, registry.verifier_token(number, "๑๒๓๔"))
    assert reply.text.startswith(f"🔎 สถานะคำขอเลขที่ {number}\nบริการ: การชำระภาษีรถประจำปี")
    assert "ขั้นตอนปัจจุบัน: " in reply.text and "คาดว่าจะแล้วเสร็จ: " in reply.text and "2569" in reply.text
    assert not lookup.needs_code("web:alice", number), "a correct verification links the chat"
    assert lookup.answer("web:alice", number, None).text == reply.text
    assert lookup.needs_code("web:mallory", number)
    listed = lookup.ask_number("web:alice")
    assert [b.title for b in listed.buttons] == [number]


def test_an_unknown_number_and_a_wrong_code_get_the_same_words(registry, lookup):
    number = file(registry)
    wrong = lookup.answer("web:a", number, registry.verifier_token(number, "9999"))
    unknown_number = "DLT-2569-999999"
    unknown = lookup.answer("web:b", unknown_number, registry.verifier_token(unknown_number, "1234"))
    assert wrong.text == unknown.text.replace(unknown_number, number)
    assert wrong.text.startswith("❌ ไม่สามารถแสดงสถานะของเลขที่")


def test_five_failures_lock_the_lookup_and_the_bot_says_so(registry, lookup, clock):
    number = file(registry)
    replies = [lookup.answer(f"web:guess{i}", number, registry.verifier_token(number, f"{i:04d}")) for i in range(5)]
    assert replies[-1].text.startswith("⏳ ยืนยันตัวตนไม่สำเร็จหลายครั้ง")
    right = lookup.answer("web:owner", number, registry.verifier_token(number, "1234"))
    assert right.text.startswith("⏳"), "locked for the number, even with the right code"
    clock.advance(hours=1, minutes=1)
    assert lookup.answer("web:owner", number, registry.verifier_token(number, "1234")).text.startswith("🔎")


def test_complaint_numbers_need_no_code_and_say_they_are_not_tracked_here(lookup):
    assert not lookup.needs_code("web:a", "CMP-2569-000001")
    assert lookup.answer("web:a", "CMP-2569-000001", None).text.startswith("🔎 เลขที่ CMP-2569-000001 เป็นเลขที่เรื่องร้องเรียน")


def test_the_demo_set_has_the_states_the_readme_promises(registry):
    loaded = load_demo(registry)
    assert demo_loaded(registry)
    assert {registry.get(n).agency_code for n, _, _ in loaded} >= {"DLT", "DCA", "LAO", "BORA"}
    states = {"on time": {"on_time", "at_risk"}, "late": {"late"}, "completed": {"completed_on_time"},
              "waiting for the citizen": {"on_time", "at_risk"}}
    assert len(loaded) == len(DEMO)
    for number, digits, promised in loaded:
        request = registry.get(number)
        assessment = registry.assess(request)
        assert assessment.state in states[promised], (number, promised, assessment.state)
        assert (request.status == "waiting_for_citizen") == (promised == "waiting for the citizen")
        assert registry.verify(number, registry.verifier_token(number, digits), "web:demo") == "ok"
        assert request.office.startswith("ข้อมูลตัวอย่าง")
