"""The complaint form's actions (actions/complaints.py) driven turn by turn as Rasa drives them.

`Chat` plays Rasa's part: the user's message (text, or a button's payload as intent and
entities) goes to `validate_complaint_form`, whose events are applied; then the question for the
next requested slot is asked, or, when the form is done, `action_complaint_submit` runs (the rule
in nlu_data/rules/complaints.yml). The Rasa side of the dialogue (which action follows which
message) is checked by the end-to-end stories in nlu_data/tests/test_stories.yml.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Optional

import pytest
import sqlalchemy as sa
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as base_actions
import actions.complaints as complaint_actions
import actions.status as status_actions
from bot.answers.reply import Reply
from bot.assistant import LiveAssistant
from bot.casework.lookup import StatusLookup
from bot.casework.registry import Registry
from bot.complaints import CONTACT_RETENTION_TH, Desk, Officer, PhotoStore, resolve
from bot.complaints.chat import ComplaintChat
from bot.complaints.contact import phone_in_transit
from bot.db import make_engine, migrate
from bot.db.models import ComplaintRow
from bot.settings import PROJECT_ROOT, TIMEZONE

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TIMEZONE)
DOMAIN = yaml.safe_load((PROJECT_ROOT / "nlu_data" / "domain.yml").read_text(encoding="utf-8"))
FORM_SLOTS = DOMAIN["forms"]["complaint_form"]["required_slots"]
ASK = {cls().name(): cls for cls in complaint_actions._Ask.__subclasses__()}
JPEG = b"\xff\xd8\xff\xe0" + b"0" * 100


@pytest.fixture
def assistant():
    live = LiveAssistant(PROJECT_ROOT / "sla_catalog", clock=lambda: NOW)
    base_actions.configure(live)
    return live.current()


@pytest.fixture
def desk(tmp_path, assistant):
    engine = make_engine(f"sqlite:///{tmp_path / 'complaints.db'}")
    migrate(engine)
    desk = Desk(engine, "secret", lambda: assistant.catalog, photos=PhotoStore(tmp_path / "photos"), clock=lambda: NOW)
    chat = ComplaintChat(desk)
    complaint_actions.configure(chat)
    status_actions.configure(StatusLookup(Registry(engine, "secret", lambda: assistant.catalog), lambda: assistant))
    status_actions.configure_complaints(chat)
    yield desk
    status_actions.configure_complaints(None)
    engine.dispose()


def rows(desk: Desk) -> list[ComplaintRow]:
    with desk.engine.connect() as connection:
        return list(connection.execute(sa.select(ComplaintRow)).all())


class Chat:
    """One conversation with the form, Rasa's part played here."""

    def __init__(self, sender: str = "web:abc", **slots: Any) -> None:
        self.sender = sender
        self.slots: dict[str, Any] = {name: None for name in DOMAIN["slots"]} | {"requested_slot": None} | slots
        self.events: list[dict] = []
        self.active = False
        self.latest: dict = {}
        self.controls: list[dict] = []

    def tracker(self) -> Tracker:
        loop = {"name": "complaint_form"} if self.active else {}
        slots, events = dict(self.slots), list(self.events)
        return Tracker(self.sender, slots, self.latest, events, False, None, loop, "action_listen")

    def _apply(self, events: list[dict]) -> None:
        for e in events:
            if e.get("event") == "slot":
                self.slots[e["name"]] = e["value"]
            self.events.append(e)

    def _run(self, action) -> list[Reply]:
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, self.tracker(), DOMAIN))
        self._apply(events)
        self.controls += [m["custom"] for m in dispatcher.messages if m.get("custom")]
        return [Reply.from_rasa(m) for m in dispatcher.messages if not m.get("custom")]

    def say(self, text: str = "", intent: str = "file_complaint", **entities: Any) -> list[Reply]:
        payload = f"/{intent}" if not text else text
        self.latest = {
            "text": payload, "intent": {"name": intent, "confidence": 1.0},
            "entities": [{"entity": k, "value": v} for k, v in entities.items()],
        }
        self.events.append({"event": "user", "text": payload, "parse_data": self.latest})
        if not self.active:
            if intent != "file_complaint":
                return []
            self.active = True
            self._apply([{"event": "active_loop", "name": "complaint_form"}])
        self.controls = []
        before = len(self.events)
        replies = self._run(complaint_actions.ValidateComplaintForm())
        if not any(e.get("name") == "requested_slot" for e in self.events[before:]):
            self.slots["requested_slot"] = None  # Rasa's FormAction picks the next slot itself
        asked = self.slots["requested_slot"]
        if asked is None and self.slots["complaint_confirm"] != "cancel":
            # rasa_sdk left the choice to Rasa (the required slots were the domain's): the first missing one
            asked = next((s for s in FORM_SLOTS if self.slots.get(s) is None and self._required(s)), None)
            self.slots["requested_slot"] = asked
        if asked is None:
            self.active = False
            return replies + self._run(complaint_actions.ActionComplaintSubmit())
        return replies + self._run(ASK[f"action_ask_{asked}"]())

    def _required(self, slot: str) -> bool:
        form = complaint_actions.ValidateComplaintForm()
        required = asyncio.run(form.required_slots(FORM_SLOTS, CollectingDispatcher(), self.tracker(), DOMAIN))
        return slot in required

    def tap(self, choice: str, intent: str = "affirm") -> list[Reply]:
        return self.say("", intent, complaint_choice=choice)


def payloads(reply: Reply) -> list[str]:
    return [b.payload for b in reply.buttons]


def titles(reply: Reply) -> list[str]:
    return [b.title for b in reply.buttons]


def test_an_anonymous_complaint_about_the_service_just_asked_about(desk, assistant):
    chat = Chat(service="passport")
    [ask] = chat.say("อยากร้องเรียนเจ้าหน้าที่")
    assert chat.slots["requested_slot"] == "complaint_description"
    assert assistant.catalog.services["passport"].name in ask.text and titles(ask) == ["ยกเลิก"]
    key = chat.slots["complaint_key"]
    assert key and len(key) == 32
    [ask] = chat.say("รอคิวสามชั่วโมง เจ้าหน้าที่ไม่บอกว่าต้องรออีกนานเท่าไร", intent="file_complaint")
    assert chat.slots["complaint_description"].startswith("รอคิวสามชั่วโมง")
    assert titles(ask) == ["ข้าม", "ยกเลิก"] and chat.controls == [], "the web chat sends no locations"
    [ask] = chat.tap("skip")
    assert chat.slots["requested_slot"] == "complaint_contact" and CONTACT_RETENTION_TH in ask.text
    assert titles(ask) == ["ไม่ระบุตัวตน", "ให้เบอร์โทรติดต่อกลับ", "ยกเลิก"]
    [summary] = chat.tap("anonymous")
    assert "ไม่ระบุตัวตน" in summary.text and "รอคิวสามชั่วโมง" in summary.text
    assert titles(summary) == ["ยืนยัน", "แก้ไขรายละเอียด", "แก้ไขหน่วยงาน", "ยกเลิก"]
    assert rows(desk) == [], "nothing is stored before the citizen confirms"
    [filed] = chat.tap("confirm")
    [row] = rows(desk)
    assert row.tracking_number in filed.text and row.tracking_number.startswith("CMP-2569-")
    assert row.agency_code == "DCA" and row.contact_sealed is None and row.idempotency_key == key
    assert assistant.catalog.agency("DCA").name in filed.text
    assert "2569" in filed.text.split("แจ้งผลภายใน")[1], "the respond-by date is in the Buddhist era"
    assert chat.slots["complaint_key"] is None and not chat.active


def test_a_retried_or_double_tapped_submit_files_one_complaint(desk):
    chat = Chat(service="passport")
    for message in ("ร้องเรียน", "ได้เล่มช้ากว่ากำหนดสองสัปดาห์"):
        chat.say(message)
    chat.tap("skip")
    chat.tap("anonymous")
    tracker = chat.tracker()  # the state Rasa sends with the confirming tap
    chat.tap("confirm")
    again = CollectingDispatcher()
    tracker.slots["requested_slot"] = None
    tracker.slots["complaint_confirm"] = "confirm"
    asyncio.run(complaint_actions.ActionComplaintSubmit().run(again, tracker, DOMAIN))  # the same turn retried
    [row] = rows(desk)
    assert row.tracking_number in again.messages[0]["text"]
    assert chat.tap("confirm") == [], "a second tap after filing reaches no form (Rasa answers 'anything else?')"
    assert len(rows(desk)) == 1


def test_nothing_named_asks_with_agency_buttons_and_unknown_goes_to_central_triage(desk, assistant):
    chat = Chat()
    [ask] = chat.say("มีเรื่องจะร้องเรียน")
    assert chat.slots["requested_slot"] == "complaint_subject"
    assert '/file_complaint{"agency": "DLT"}' in payloads(ask)
    assert titles(ask)[0] == "ไม่ทราบหน่วยงาน" and titles(ask)[-1] == "ยกเลิก"
    assert all(len(t) <= 20 for t in titles(ask))
    [again] = chat.say("สวัสดี", intent="greet")
    assert chat.slots["requested_slot"] == "complaint_subject" and again.text == ask.text
    chat.tap("unknown_agency")
    assert chat.slots["complaint_subject"] == {"service": None, "agency": None}
    chat.say("ถนนในหมู่บ้านเป็นหลุมลึก ไม่มีใครมาซ่อม")
    chat.say("ซอยวัดใหม่")
    chat.tap("anonymous")
    chat.tap("confirm")
    [row] = rows(desk)
    assert row.agency_code == assistant.catalog.central.code and row.place == "ซอยวัดใหม่"


def test_corrections_of_the_details_and_the_agency_before_confirming(desk, assistant):
    chat = Chat()
    chat.say("ร้องเรียนหน่อย")
    [ask] = chat.say("", "file_complaint", agency="DOPA")
    assert assistant.catalog.agency("DOPA").name in ask.text
    chat.say("เจ้าหน้าที่ไม่อยู่ที่โต๊ะ")
    chat.tap("skip")
    [summary] = chat.tap("anonymous")
    assert "เจ้าหน้าที่ไม่อยู่ที่โต๊ะ" in summary.text
    [ask] = chat.tap("edit_description")
    assert chat.slots["requested_slot"] == "complaint_description"
    [summary] = chat.say("เจ้าหน้าที่ไม่อยู่ที่โต๊ะตั้งแต่เก้าโมงถึงบ่ายสอง")
    assert "บ่ายสอง" in summary.text and chat.slots["requested_slot"] == "complaint_confirm"
    [ask] = chat.tap("edit_subject")
    assert chat.slots["requested_slot"] == "complaint_subject"
    [summary] = chat.say("ขนส่ง", intent="file_complaint", agency="DLT")
    assert assistant.catalog.agency("DLT").name in summary.text
    [again] = chat.say("อืม", intent="nlu_fallback")
    assert again.text.startswith("กรุณากดปุ่ม"), "an answer that fits no choice asks again"
    chat.say("ยืนยันค่ะ", intent="affirm")
    [row] = rows(desk)
    assert row.agency_code == "DLT" and "บ่ายสอง" in row.description


def test_a_phone_number_only_after_the_consent_line(desk):
    chat = Chat(sender="web:p1")
    chat.say("ร้องเรียนขนส่ง", agency="DLT")
    chat.say("เจ้าหน้าที่พูดจาไม่สุภาพ")
    chat.tap("skip")
    [ask] = chat.tap("consent")
    assert chat.slots["requested_slot"] == "complaint_phone"
    assert CONTACT_RETENTION_TH in ask.text and "ยินยอม" in ask.text
    [again] = chat.say("12345")
    assert again.text.startswith("เบอร์โทรศัพท์ไม่ถูกต้อง") and chat.slots["complaint_phone"] is None
    [summary] = chat.say("081-234-5678")
    assert "08x-xxx-xx78" in summary.text and "0812345678" not in summary.text
    chat.tap("confirm")
    [row] = rows(desk)
    assert row.contact_sealed and row.consent_at is not None and row.contact_retain_until is not None


def test_a_phone_typed_at_the_contact_question_is_given_with_its_consent_line(desk):
    chat = Chat(sender="web:p2")
    chat.say("ร้องเรียนขนส่ง", agency="DLT")
    chat.say("ป้ายภาษีไม่มาส่ง")
    chat.say("ไม่มี")
    [summary] = chat.say("0812345678")
    assert chat.slots["complaint_contact"] == "phone" and "08x-xxx-xx78" in summary.text


def test_a_phone_the_gateway_sealed_is_opened_by_the_form_and_the_gateway_is_asked_to_seal_it(desk):
    chat = Chat(sender="line:p3")
    chat.say("ร้องเรียนขนส่ง", agency="DLT")
    chat.say("ป้ายภาษีไม่มาส่ง")
    chat.tap("skip")  # no place
    chat.tap("skip")  # no photos (LINE asks for them)
    assert {"expects": "complaint_phone"} in chat.controls, "the contact question asks the gateway to seal a number"
    [summary] = chat.say("", phone_token=phone_in_transit(desk.secret, "0812345678"))
    assert chat.slots["complaint_phone"] == "0812345678" and "08x-xxx-xx78" in summary.text
    chat.tap("confirm")
    [row] = rows(desk)
    assert row.contact_sealed and desk.contacts.open(row.contact_sealed) == "0812345678"


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_cancelling_at_any_step_files_nothing(desk, step):
    chat = Chat()
    answers = [lambda: chat.say("", "file_complaint", agency="DLT"), lambda: chat.say("รอนานมาก"),
               lambda: chat.tap("skip"), lambda: chat.tap("anonymous")]
    chat.say("อยากร้องเรียน")
    for answer in answers[:step]:
        answer()
    replies = chat.say("ยกเลิกค่ะ", intent="deny") if step % 2 else chat.tap("cancel", "deny")
    assert replies[-1].text.startswith("ยกเลิกการยื่นเรื่องร้องเรียนแล้ว")
    assert not chat.active and rows(desk) == []
    assert all(chat.slots[name] is None for name in complaint_actions.DRAFT_SLOTS)


def test_a_misconduct_report_says_where_it_goes_and_that_the_contact_is_withheld(desk, assistant):
    chat = Chat()
    chat.say("ร้องเรียนตำรวจเรียกเงิน", agency="RTP")
    assert chat.slots["complaint_misconduct"] is True
    chat.say("ด่านตรวจหน้าตลาดไม่ออกใบสั่ง ขอห้าร้อย")
    chat.tap("skip")
    [summary] = chat.tap("anonymous")
    assert "ช่องทางรับเรื่องทุจริต" in summary.text and "ไม่เปิดเผยข้อมูลติดต่อ" in summary.text
    [filed] = chat.tap("confirm")
    [row] = rows(desk)
    assert row.misconduct and row.about_agency == "RTP" and row.agency_code != "RTP"
    assert "จะไม่ถูกเปิดเผยต่อหน่วยงานที่ถูกร้องเรียน" in filed.text


def test_line_asks_for_a_location_and_photos_and_takes_what_the_gateway_passes(desk, tmp_path):
    photo = desk.photos.save(JPEG)
    chat = Chat(sender="line:U1", service="passport")
    chat.say("ร้องเรียน")
    [ask] = chat.say("เจ้าหน้าที่ให้รอทั้งวัน")
    assert "Location" in ask.text and chat.controls == [{"expects": "complaint_location"}]
    [ask] = chat.say("", "file_complaint", latitude=13.7563, longitude=100.5018, place_name="สำนักงานหนังสือเดินทาง")
    assert chat.slots["requested_slot"] == "complaint_photos_done" and chat.controls == [{"expects": "complaint_photo"}]
    [ask] = chat.say("", "file_complaint", photo_id=photo.id)
    assert chat.slots["complaint_photos"] == [photo.id] and "ได้รับรูปแล้ว 1 รูป" in ask.text
    assert titles(ask)[0] == "เสร็จแล้ว"
    chat.say("", "file_complaint", photo_id="../../etc/passwd")
    assert chat.slots["complaint_photos"] == [photo.id], "only ids the photo store could have made"
    chat.tap("done")
    [summary] = chat.tap("anonymous")
    assert "สำนักงานหนังสือเดินทาง (13.75630, 100.50180)" in summary.text and "รูปถ่าย: 1 รูป" in summary.text
    [filed] = chat.tap("confirm")
    [row] = rows(desk)
    assert (row.latitude, row.longitude, row.place) == (13.7563, 100.5018, "สำนักงานหนังสือเดินทาง")
    assert "แจ้งในแชตนี้" in filed.text, "a LINE reporter is told updates come to this chat"


def test_the_session_rollover_keeps_a_complaint_being_filed():
    chat = Chat(service="passport")
    chat.slots |= {"complaint_key": "k" * 32, "complaint_description": "รอนาน", "requested_slot": "complaint_place"}
    tracker = Tracker(
        "web:x", chat.slots, {"intent": {"name": "session_start"}}, [], False, None, {"name": "complaint_form"},
        "action_listen",
    )
    events = base_actions.ActionSessionStart().run(CollectingDispatcher(), tracker, DOMAIN)
    names = [(e["event"], e.get("name")) for e in events]
    assert ("active_loop", "complaint_form") in names
    assert {"event": "slot", "timestamp": None, "name": "complaint_key", "value": "k" * 32} in events
    assert ("slot", "requested_slot") in names


def _filed(desk, sender: str = "line:U9") -> str:
    chat = Chat(sender=sender)
    chat.say("ร้องเรียนขนส่ง", agency="DLT")
    chat.say("ป้ายภาษีไม่มาส่ง")
    chat.tap("skip")
    if sender.startswith("line"):
        chat.tap("done")
    chat.tap("anonymous")
    chat.tap("confirm")
    return rows(desk)[-1].tracking_number


def _status(sender: str, number: str) -> Reply:
    tracker = Tracker(sender, {"tracking_number": number}, {}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(status_actions.ActionStatusAnswer().run(dispatcher, tracker, DOMAIN))
    [message] = dispatcher.messages
    return Reply.from_rasa(message)


def test_the_reporter_sees_the_state_and_latest_reply_and_a_stranger_sees_nothing(desk, assistant):
    number = _filed(desk)
    mine = _status("line:U9", number)
    assert number in mine.text and "ส่งถึงหน่วยงานแล้ว" in mine.text and mine.buttons == ()
    assert _status("line:OTHER", number) == assistant.answers.status_denied(number)
    assert _status("line:OTHER", "CMP-2569-999999") == assistant.answers.status_denied("CMP-2569-999999")
    resolve(desk, number, Officer("DLT", "officer:a"), "ส่งป้ายภาษีทางไปรษณีย์แล้ว", now=NOW + dt.timedelta(hours=2))
    done = _status("line:U9", number)
    assert "ส่งป้ายภาษีทางไปรษณีย์แล้ว" in done.text and titles(done) == ["ยังไม่ได้รับการแก้ไข"]
    assert payloads(done) == [f'/deny{{"reopen_number": "{number}"}}']


def test_my_complaints_are_listed_when_the_status_lookup_asks_for_a_number(desk):
    number = _filed(desk, "web:me")
    tracker = Tracker("web:me", {}, {}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(status_actions.ActionAskTrackingNumber().run(dispatcher, tracker, DOMAIN))
    [message] = dispatcher.messages
    reply = Reply.from_rasa(message)
    assert "เรื่องร้องเรียนของคุณ" in reply.text and number in reply.text
    assert f'/check_status{{"tracking_number": "{number}"}}' in payloads(reply)


def _reopen(sender: str, number: str, reason: Optional[str]) -> Reply:
    tracker = Tracker(
        sender, {"reopen_number": number, "reopen_reason": reason}, {}, [], False, None, {}, "action_listen"
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(complaint_actions.ActionReopenComplaint().run(dispatcher, tracker, DOMAIN))
    assert [e["value"] for e in events] == [None, None]
    return Reply.from_rasa(dispatcher.messages[0])


def test_a_resolved_complaint_reopens_once_with_the_reason(desk, assistant):
    number = _filed(desk)
    resolve(desk, number, Officer("DLT", "officer:a"), "แก้ไขแล้ว", now=NOW + dt.timedelta(hours=1))
    assert _reopen("line:OTHER", number, "ยังไม่ได้") == assistant.answers.status_denied(number)
    reopened = _reopen("line:U9", number, "ป้ายยังไม่มา")
    assert reopened.text.startswith(f"🔁 เปิดเรื่องร้องเรียนเลขที่ {number} อีกครั้งแล้ว")
    resolve(desk, number, Officer("DLT", "officer:a"), "แก้ไขแล้วจริง", now=NOW + dt.timedelta(hours=3))
    assert "เปิดอีกครั้งไม่ได้" in _reopen("line:U9", number, "ยังไม่ได้อีก").text
    assert _reopen("line:U9", number, None).text == "ยกเลิกการขอเปิดเรื่องแล้ว"


def test_another_chat_sees_a_complaint_only_by_proving_the_phones_last_digits(desk, assistant):
    from bot.complaints import verifier_token

    chat = Chat(sender="web:filer")
    chat.say("ร้องเรียนขนส่ง", agency="DLT")
    chat.say("ป้ายภาษีไม่มาส่ง")
    chat.tap("skip")
    chat.say("081-234-5678")
    chat.tap("confirm")
    number = rows(desk)[-1].tracking_number
    form = status_actions.ValidateStatusForm()

    def required(sender: str) -> list[str]:
        tracker = Tracker(sender, {"tracking_number": number}, {}, [], False, None, {}, "action_listen")
        domain_slots = ["tracking_number", "verification_token"]
        return asyncio.run(form.required_slots(domain_slots, CollectingDispatcher(), tracker, DOMAIN))

    assert required("web:filer") == ["tracking_number"], "the reporter is not asked for digits"
    assert required("line:phone") == ["tracking_number", "verification_token"]

    def answer(sender: str, token: str) -> Reply:
        tracker = Tracker(
            sender, {"tracking_number": number, "verification_token": token}, {}, [], False, None, {}, "action_listen"
        )
        dispatcher = CollectingDispatcher()
        asyncio.run(status_actions.ActionStatusAnswer().run(dispatcher, tracker, DOMAIN))
        return Reply.from_rasa(dispatcher.messages[0])

    assert answer("line:phone", verifier_token(desk, number, "0000")) == assistant.answers.status_denied(number)
    shown = answer("line:phone", verifier_token(desk, number, "5678"))
    assert number in shown.text and "ส่งถึงหน่วยงานแล้ว" in shown.text
    assert required("line:phone") == ["tracking_number"], "proved once, linked from then on"
    for _ in range(5):
        answer("line:guess", verifier_token(desk, number, "1111"))
    assert answer("line:guess", verifier_token(desk, number, "5678")).text.startswith("⏳")
