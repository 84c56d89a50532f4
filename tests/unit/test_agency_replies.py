"""Complaint and officer replies about an agency named by the citizen, and the words that make a
complaint a report of bribery (to the agency's misconduct channel)."""

import pytest

from bot.assistant import Assistant
from bot.catalog.loader import load_catalog
from bot.misconduct import mentions_misconduct
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
ASSISTANT = Assistant.from_catalog(CATALOG)
ANSWERS = ASSISTANT.answers


@pytest.mark.parametrize("code", sorted(CATALOG.agencies))
def test_every_agency_has_a_complaint_and_an_officer_reply_from_the_catalog(code):
    agency = CATALOG.agencies[code]
    complaint = ANSWERS.complaint_channels(None, code).text
    assert complaint.startswith(f"📣 ช่องทางร้องเรียน{agency.name}")
    assert f"• {agency.name}: {agency.complaint_channel}" in complaint
    assert complaint.count(CATALOG.central.complaint_channel) == 1, "1111 once, also when OPM is the one named"
    if agency.source:
        source = next(s for s in CATALOG.agency_sources if s.id == agency.source)
        assert source.title in complaint, "the channel names where it comes from"
    human = ANSWERS.human_contact(None, code).text
    assert f"ติดต่อ{agency.name}" in human
    assert (f"สายด่วน {agency.hotline}" in human) if agency.hotline else ("ที่สำนักงานในพื้นที่ของท่าน" in human)
    if agency.website:  # Rasa's REST channel sends each blank-line paragraph as a message of its own
        [paragraph] = [p for p in human.split("\n\n") if f"ติดต่อ{agency.name}" in p]
        assert agency.website in paragraph, "the website goes with the agency's contact, not in a bubble of its own"


def test_a_bribe_adds_the_misconduct_channel_once():
    pacc = CATALOG.agencies["PACC"]
    for service_id, code in [(None, "DLT"), ("passport", None), (None, None), ("id_card", "LAO")]:
        text = ANSWERS.complaint_channels(service_id, code, misconduct=True).text
        assert f"แจ้ง{pacc.name}: {pacc.complaint_channel}" in text
        assert text.count(pacc.complaint_channel) == 1
        assert "ป.ป.ท." not in ANSWERS.complaint_channels(service_id, code).text
    # naming ป.ป.ท. itself: its channel is the agency's line, not repeated
    assert ANSWERS.complaint_channels(None, "PACC", misconduct=True).text.count(pacc.complaint_channel) == 1


def test_an_agency_other_than_the_services_is_added_to_the_services_reply():
    text = ANSWERS.complaint_channels("id_card", "LAO").text
    lao, bora = CATALOG.agencies["LAO"], CATALOG.agency_of(CATALOG.services["id_card"])
    assert f"• {bora.name}: {bora.complaint_channel}" in text and f"• {lao.name}: {lao.complaint_channel}" in text
    assert ANSWERS.complaint_channels("id_card", bora.code) == ANSWERS.complaint_channels("id_card")
    human = ANSWERS.human_contact("id_card", "LAO").text
    assert f"ติดต่อ{bora.name}" in human and f"หรือ{lao.name} ที่สำนักงานในพื้นที่ของท่าน" in human


def test_the_catalog_check_renders_every_agencys_replies():
    assert ASSISTANT.render_problems() == []


@pytest.mark.parametrize(
    "text",
    [
        "โดนเรียกเงินใต้โต๊ะ",
        "ตำรวจเรียกเงิน",
        "เจ้าหน้าที่ขอค่าน้ำร้อน น้ำชา",
        "อยากแจ้งเบาะแส เจ้าหน้าที่รับสินบน",
        "ร้องเรียนเรื่องคอรัปชั่น",
        "ขอแจ้งเรื่องทุจริตค่ะ",
        "บอกให้จ่ายค่าเร่งถึงจะเสร็จเร็ว",
        "เจ้าหน้าที่บอกให้จ่ายเพิ่ม 500 ไม่มีใบเสร็จ",
        "เจ้าหน้าที่มาขู่ปรับแล้วขอเงินเคลียร์",
        "เก็บเงินนอกใบเสร็จ",
        "officer asked for a bribe",
    ],
)
def test_reports_of_bribery_and_extortion(text):
    assert mentions_misconduct(text)


@pytest.mark.parametrize(
    "text",
    [
        "เจ้าหน้าที่พูดจาไม่ดี",
        "รอคิวนานมาก",
        "จ่ายค่าจดทะเบียนพาณิชย์แล้วไม่ได้ใบเสร็จ",  # a missing receipt alone
        "โดนเก็บเงินเกิน อยากร้องเรียน",  # overcharging alone
        "ยื่นขอเรียกเงินคืนค่าธรรมเนียมที่จ่ายซ้ำ",  # a refund
        "ยายยังไม่ได้รับเงินเบี้ยยังชีพ",
        "ระบบตัดเงินแล้วแต่ไม่ได้ป้าย",
    ],
)
def test_other_complaints_are_not_misconduct(text):
    assert not mentions_misconduct(text)
