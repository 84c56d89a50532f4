"""Answers for every service and aspect come from the catalog and are chat-ready Thai."""

import datetime as dt

import pytest

from bot.answers.render import ASPECTS, describe_days, describe_weekly_hours
from bot.assistant import Assistant
from bot.catalog import load_catalog
from bot.settings import PROJECT_ROOT, TIMEZONE
from bot.text import format_baht

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TIMEZONE)  # a Wednesday morning
ASSISTANT = Assistant.from_catalog(CATALOG, clock=lambda: NOW)


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
@pytest.mark.parametrize("intent", sorted(ASPECTS))
def test_every_aspect_of_every_service_renders_with_its_source(service_id, intent):
    service = CATALOG.services[service_id]
    reply = ASSISTANT.answers.answer(service_id, intent, question="", now=NOW)
    text = reply.text
    assert service.name in text
    assert "ที่มา:" in text and "ตรวจสอบข้อมูลล่าสุดเมื่อ" in text, "every answer names its source"
    assert "{{" not in text and "None" not in text and "\n\n\n" not in text
    assert len(text) < 4500, "fits a LINE text message (5,000 characters)"
    if intent == "ask_service":
        assert len(reply.buttons) == len(ASPECTS) - 1
        assert all(service_id in b.payload for b in reply.buttons)


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
@pytest.mark.parametrize("intent", sorted(ASPECTS))
def test_an_item_and_its_details_stay_in_one_paragraph(service_id, intent):
    """Rasa's REST channel sends each blank-line paragraph as a message of its own (the web chat
    shows each as a bubble): a detail line (indented) must never begin one, or it reads as part
    of the next item."""
    text = ASSISTANT.answers.answer(service_id, intent, question="", now=NOW).text
    paragraphs = text.strip().split("\n\n")
    assert [p for p in paragraphs if p[:1].isspace()] == []


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
@pytest.mark.parametrize("question,header", [("วันเสาร์เปิดไหม", "วันเสาร์ที่"), ("ตอนนี้เปิดอยู่ไหม", "ขณะนี้")])
def test_a_days_opening_hours_are_one_paragraph(service_id, question, header):
    text = ASSISTANT.answers.answer(service_id, "ask_hours", question=question, now=NOW).text
    rows = [line for line in text.splitlines() if line.startswith(("✅", "❌"))]
    [day] = [p for p in text.split("\n\n") if p.startswith(header)]
    assert rows and all(row in day.splitlines() for row in rows)


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
def test_content_comes_from_the_catalog(service_id):
    service = CATALOG.services[service_id]
    render = lambda intent: ASSISTANT.answers.answer(service_id, intent, now=NOW).text  # noqa: E731
    documents = render("ask_documents")
    assert all(doc.name in documents for doc in service.documents)
    fees = render("ask_fee")
    for fee in service.fees:
        assert fee.item in fees
        if fee.amount_baht is not None:
            assert format_baht(fee.amount_baht) in fees
    steps = render("ask_steps")
    assert all(f"{i}. {step.title}" in steps for i, step in enumerate(service.steps, 1))
    assert all(step.unit in steps for step in service.steps)
    assert all(criterion.text in render("ask_eligibility") for criterion in service.criteria)
    channels = render("ask_location")
    assert all(channel.name in channels for channel in service.channels)
    assert all(channel.url in channels for channel in service.channels if channel.url)


def test_a_changed_fee_is_answered_without_a_restart_and_a_broken_edit_is_ignored(tmp_path):
    import shutil

    import yaml

    from bot.assistant import LiveAssistant

    shutil.copytree(PROJECT_ROOT / "sla_catalog", tmp_path / "c")
    live = LiveAssistant(tmp_path / "c")
    path = tmp_path / "c" / "services" / "passport.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["fees"][0]["amount_baht"] = 1234
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "1,234 บาท" in live.current().answers.answer("passport", "ask_fee", now=NOW).text
    path.write_text("id: passport\nfees: [", encoding="utf-8")
    assert "1,234 บาท" in live.current().answers.answer("passport", "ask_fee", now=NOW).text


def test_open_now_and_saturday_questions_use_hours_and_holidays():
    service_id = "id_card"
    evening = dt.datetime(2026, 11, 25, 19, 30, tzinfo=TIMEZONE)
    text = ASSISTANT.answers.answer(service_id, "ask_hours", question="ตอนนี้เปิดอยู่ไหม", now=evening).text
    assert "ขณะนี้ (วันพุธที่ 25 พ.ย. 2569 เวลา 19:30 น.)" in text
    assert "ปิดอยู่" in text and "เปิดอีกครั้งวันพฤหัสบดีที่ 26 พ.ย. 2569 เวลา" in text
    holiday = ASSISTANT.answers.answer(service_id, "ask_hours", question="7 ธ.ค. เปิดไหม", now=evening).text
    assert "ตรงกับชดเชย" in holiday and "ปิดทำการ" in holiday
    saturday = ASSISTANT.answers.answer(service_id, "ask_hours", question="วันเสาร์เปิดไหม", now=evening).text
    assert "วันเสาร์ที่ 28 พฤศจิกายน 2569" in saturday


def test_weekly_hours_read_naturally():
    assert describe_days(["mon", "tue", "wed", "thu", "fri"]) == "จันทร์–ศุกร์"
    assert describe_days(["sat", "sun"]) == "เสาร์, อาทิตย์"
    online = next(c for s in CATALOG.services.values() for c in s.channels if c.always_open)
    assert describe_weekly_hours(online) == "ตลอด 24 ชั่วโมง"


def test_choosing_a_service():
    choose = ASSISTANT.choose_service
    assert choose(["passport"], "id_card", "").service_id == "passport"
    assert choose([], "id_card", "แล้วค่าธรรมเนียมล่ะ").service_id == "id_card"
    both = choose(["passport", "id_card"], None, "")
    assert both.service_id is None and both.candidates == ("passport", "id_card")
    ambiguous = choose([], None, "อยากทำใบอนุญาต")
    assert ambiguous.service_id is None and len(ambiguous.candidates) >= 2
    reply = ASSISTANT.answers.choose_service("ask_fee", list(ambiguous.candidates))
    assert [b.payload for b in reply.buttons][0].startswith("/ask_fee{")
    # a weak word that fits the service the conversation is about keeps it (a child's passport)
    assert choose([], "passport", "เด็กอายุ 5 ขวบทำได้ไหม ต้องใช้อะไร").service_id == "passport"
    # one pointing elsewhere asks, and the service the conversation is about stays on offer
    permit = choose([], "passport", "อยากทำใบอนุญาต")
    assert permit.service_id is None and permit.candidates[0] == "passport" and len(permit.candidates) >= 2
    assert choose([], None, "แล้วราคาเท่าไร", pending=permit.candidates).candidates == permit.candidates
    nothing = choose([], None, "เท่าไหร่")
    assert nothing.service_id is None and nothing.candidates == ()
    assert len(ASSISTANT.answers.choose_service("ask_fee", []).buttons) == len(CATALOG.services)


def test_complaint_and_human_replies_name_the_right_agency():
    complaint = ASSISTANT.answers.complaint_channels("passport").text
    assert "กรมการกงสุล" in complaint and "1111" in complaint
    human = ASSISTANT.answers.human_contact("vehicle_tax_renewal").text
    assert "1584" in human and "1111" in human
