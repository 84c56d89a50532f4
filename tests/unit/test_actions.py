"""Actions run on tracker fixtures (tests/data/trackers/*.json): exact events and replies."""

import datetime as dt
import json

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as actions
from bot.assistant import LiveAssistant
from bot.settings import PROJECT_ROOT, TIMEZONE

FIXTURES = PROJECT_ROOT / "tests" / "data" / "trackers"
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TIMEZONE)


@pytest.fixture(autouse=True)
def assistant():
    live = LiveAssistant(PROJECT_ROOT / "sla_catalog", clock=lambda: NOW)
    actions.configure(live)
    return live.current()


def run(action, fixture: str):
    data = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
    tracker = Tracker(
        data["sender_id"], data["slots"], data["latest_message"], data["events"], data["paused"],
        data["followup_action"], data["active_loop"], data["latest_action_name"],
    )
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, {})
    return events, dispatcher.messages


def test_follow_up_uses_the_remembered_service(assistant):
    events, [message] = run(actions.ActionAnswerService(), "fee_follow_up")
    assert events == [SlotSet("service", "passport")]
    assert message["text"] == assistant.answers.answer("passport", "ask_fee", now=NOW).text


def test_a_new_service_in_the_message_replaces_the_remembered_one(assistant):
    events, [message] = run(actions.ActionAnswerService(), "switch_service")
    assert events == [SlotSet("service", "driving_licence_renewal")]
    assert message["text"].startswith("📄 เอกสารที่ต้องใช้: ")
    assert assistant.catalog.services["driving_licence_renewal"].name in message["text"]


def test_ambiguous_question_asks_with_buttons_and_sets_nothing():
    events, [message] = run(actions.ActionAnswerService(), "ambiguous_permit")
    assert events == []
    payloads = [b["payload"] for b in message["buttons"]]
    assert len(payloads) >= 2 and all(p.startswith("/ask_documents{") for p in payloads)
    assert '"service": "food_shop_permit"' in " ".join(payloads)


def test_status_reply_names_the_agency_of_the_tracking_number():
    events, [message] = run(actions.ActionStatusHelp(), "status_thai_digits")
    assert events == []
    assert "DLT-2569-000123" in message["text"] and "กรมการขนส่งทางบก" in message["text"]


def test_human_and_complaint_replies_follow_the_remembered_service():
    _, [human] = run(actions.ActionRequestHuman(), "fee_follow_up")
    assert "กรมการกงสุล" in human["text"] and "1111" in human["text"]
    _, [complaint] = run(actions.ActionComplaintChannels(), "fee_follow_up")
    assert "ช่องทางร้องเรียนเรื่อง" in complaint["text"] and "1111" in complaint["text"]


def test_unclear_message_naming_a_service_gets_its_overview(assistant):
    events, [message] = run(actions.ActionFallback(), "unclear_with_service")
    assert events == [SlotSet("service", "elderly_allowance")]
    assert message["text"] == assistant.answers.answer("elderly_allowance", "ask_service", now=NOW).text
    assert message["buttons"]


def test_unclear_message_without_a_service_gets_the_default_prompt_not_the_remembered_service():
    events, [message] = run(actions.ActionFallback(), "unclear_nothing")
    assert events == [] and "ยังไม่เข้าใจคำถาม" in message["text"] and "1111" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/help", "/request_human"]


def test_out_of_scope_that_names_a_kind_of_service_offers_the_candidates():
    events, [message] = run(actions.ActionFallback(), "out_of_scope_permit")
    assert events == [] and "นอกขอบเขต" not in message["text"]
    assert len(message["buttons"]) >= 2 and all(b["payload"].startswith("/ask_service{") for b in message["buttons"])


def test_truly_out_of_scope_says_so_with_the_hotline():
    events, [message] = run(actions.ActionFallback(), "out_of_scope_lottery")
    assert events == [] and "นอกขอบเขต" in message["text"] and "1111" in message["text"]
