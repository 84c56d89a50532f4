"""Actions run on trackers captured from the real Rasa server (tests/data/trackers/, `make fixtures`).

Each fixture is the tracker Rasa sent to an action in a real conversation (see
tests/data/conversations.yml); the tests assert the exact events and the exact replies.
"""

import asyncio
import datetime as dt
import inspect
import json

import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as actions
import actions.complaints as complaint_actions
import actions.status as status_actions
from bot.answers.reply import Reply
from bot.assistant import LiveAssistant
from bot.casework.lookup import EXPECTS_CODE, StatusLookup
from bot.casework.registry import Registry
from bot.db import make_engine, migrate
from bot.settings import PROJECT_ROOT, TIMEZONE

FIXTURES = PROJECT_ROOT / "tests" / "data" / "trackers"
DOMAIN = yaml.safe_load((PROJECT_ROOT / "nlu_data" / "domain.yml").read_text(encoding="utf-8"))
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TIMEZONE)
ACTIONS = {
    cls().name(): cls
    for cls in vars(actions).values()
    if inspect.isclass(cls) and issubclass(cls, Action) and cls.__module__ == actions.__name__
    and not inspect.isabstract(cls)
}


@pytest.fixture(autouse=True)
def assistant():
    live = LiveAssistant(PROJECT_ROOT / "sla_catalog", clock=lambda: NOW)
    actions.configure(live)
    return live.current()


def run(fixture: str) -> tuple[Tracker, list, list[Reply]]:
    """Run the action the fixture was captured for; its tracker, events and replies."""
    data = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
    t = data["tracker"]
    tracker = Tracker(
        t["sender_id"], t["slots"], t["latest_message"], t["events"], t["paused"],
        t["followup_action"], t["active_loop"], t["latest_action_name"],
    )
    dispatcher = CollectingDispatcher()
    events = ACTIONS[data["action"]]().run(dispatcher, tracker, {})
    replies = [Reply.from_rasa(m) for m in dispatcher.messages]
    return tracker, events, replies


def intent(tracker: Tracker) -> str:
    return tracker.latest_message["intent"]["name"]


def remembered(service, candidates=None) -> list:
    return [SlotSet("service", service), SlotSet("service_candidates", candidates)]


def test_greeting_and_help_menu_come_from_the_catalog(assistant):
    tracker, events, [reply] = run("greeting")
    assert intent(tracker) == "greet" and events == []
    assert reply == assistant.answers.greeting() and "ข้อมูลส่วนตัว" in reply.text
    tracker, events, [reply] = run("help_menu")
    assert intent(tracker) == "help"
    assert [b.title for b in reply.buttons] == [s.short_name for s in assistant.catalog.services.values()]
    assert reply.buttons[0].payload == '/ask_service{"service": "%s"}' % next(iter(assistant.catalog.services))


def test_follow_up_uses_the_remembered_service(assistant):
    tracker, events, [reply] = run("fee_follow_up")
    assert intent(tracker) == "ask_fee" and tracker.get_slot("service") == "passport"
    assert tracker.latest_message["entities"] == []
    assert events == remembered("passport")
    assert reply == assistant.answers.answer("passport", "ask_fee", question="แล้วค่าธรรมเนียมล่ะ", now=NOW)


def test_a_new_service_in_the_message_replaces_the_remembered_one(assistant):
    tracker, events, [reply] = run("switch_service")
    assert tracker.get_slot("service") == "passport" and intent(tracker) == "ask_documents"
    assert events == remembered("driving_licence_renewal")
    assert reply.text.startswith("📄 เอกสารที่ต้องใช้: " + assistant.catalog.services["driving_licence_renewal"].name)


def test_ambiguous_question_asks_with_the_candidates_and_remembers_no_service(assistant):
    tracker, events, [reply] = run("ambiguous_permit")
    candidates = [b.payload for b in reply.buttons]
    assert intent(tracker) == "ask_documents"
    assert '/ask_documents{"service": "food_shop_permit"}' in candidates
    assert '/ask_documents{"service": "foreign_worker_permit"}' in candidates
    assert events == remembered(None, [p.split('"')[3] for p in candidates])


def test_two_services_named_then_a_follow_up_asks_again_between_them(assistant):
    tracker, events, [reply] = run("two_services_then_follow_up")
    assert tracker.get_slot("service") is None, "the ambiguous turn left no service behind"
    assert tracker.get_slot("service_candidates") == ["vehicle_tax_renewal", "driving_licence_renewal"]
    assert intent(tracker) == "ask_fee"
    assert reply == assistant.answers.choose_service("ask_fee", ["vehicle_tax_renewal", "driving_licence_renewal"])
    assert events == remembered(None, ["vehicle_tax_renewal", "driving_licence_renewal"])


def test_the_button_chosen_after_an_ambiguous_question_answers_that_service(assistant):
    tracker, events, [reply] = run("two_services_then_button")
    entities = [(e["entity"], e["value"]) for e in tracker.latest_message["entities"]]
    assert entities == [("service", "vehicle_tax_renewal")]
    assert events == remembered("vehicle_tax_renewal")
    assert reply.text.startswith("💰 ค่าธรรมเนียม: " + assistant.catalog.services["vehicle_tax_renewal"].name)


@pytest.fixture
def registry(tmp_path, assistant):
    engine = make_engine(f"sqlite:///{tmp_path / 'casework.db'}")
    migrate(engine)
    registry = Registry(engine, "secret", lambda: assistant.catalog)
    status_actions.configure(StatusLookup(registry, lambda: assistant))
    yield registry
    engine.dispose()


def run_status(fixture: str, action) -> tuple[Tracker, list, list[dict]]:
    """Run one of the status form's actions on a tracker captured at the form."""
    data = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
    assert data["action"] == "status_form"
    t = data["tracker"]
    tracker = Tracker(
        t["sender_id"], t["slots"], t["latest_message"], t["events"], t["paused"],
        t["followup_action"], t["active_loop"], t["latest_action_name"],
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return tracker, events, dispatcher.messages


def test_a_number_typed_with_thai_digits_is_asked_for_its_verification_code(registry, assistant):
    tracker, events, messages = run_status("status_thai_digits", status_actions.ActionAskVerificationToken())
    assert intent(tracker) == "check_status" and tracker.get_slot("tracking_number") == "DLT-2569-000123"
    assert events == []
    text, control = messages
    assert Reply.from_rasa(text) == assistant.answers.status_ask_code("DLT-2569-000123")
    assert control["custom"] == {"expects": EXPECTS_CODE, "tracking_number": "DLT-2569-000123"}


def test_without_a_number_the_lookup_asks_for_one_and_offers_linked_requests(registry, assistant):
    tracker, _, [message] = run_status("status_without_a_number", status_actions.ActionAskTrackingNumber())
    assert tracker.get_slot("tracking_number") is None
    assert Reply.from_rasa(message) == assistant.answers.status_ask_number([])
    number = registry.create_request("DLT", "vehicle_tax_renewal", "ขนส่ง", "1234", actor="cli").tracking_number
    assert registry.verify(number, registry.verifier_token(number, "1234"), tracker.sender_id) == "ok"
    _, _, [message] = run_status("status_without_a_number", status_actions.ActionAskTrackingNumber())
    assert [b["payload"] for b in message["buttons"]] == [f'/check_status{{"tracking_number": "{number}"}}']


def filing_subject(fixture: str) -> tuple[Tracker, dict]:
    """Start the complaint form on the tracker captured when the complaint was made; the slots it fills."""
    data = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
    t = data["tracker"]
    tracker = Tracker(
        "web:fixture", t["slots"], t["latest_message"], t["events"], t["paused"],
        t["followup_action"], t["active_loop"], t["latest_action_name"],
    )
    events = asyncio.run(complaint_actions.ValidateComplaintForm().run(CollectingDispatcher(), tracker, DOMAIN))
    return tracker, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def test_human_and_complaint_follow_the_remembered_service(assistant):
    tracker, _, [human] = run("human_after_passport")
    assert intent(tracker) == "request_human"
    assert human == assistant.answers.human_contact("passport")
    assert "เรื่องการขอหนังสือเดินทางบุคคลทั่วไป ติดต่อกรมการกงสุล" in human.text
    tracker, slots = filing_subject("complaint_after_passport")
    assert intent(tracker) == "file_complaint"
    assert slots["complaint_subject"] == {"service": "passport", "agency": None}
    assert slots["requested_slot"] == "complaint_description", "the form asks what happened, not who"


def entities(tracker: Tracker) -> list[tuple[str, str]]:
    return [(e["entity"], e["value"]) for e in tracker.latest_message["entities"]]


def test_an_agency_named_in_the_complaint_wins_over_the_remembered_service(assistant):
    tracker, slots = filing_subject("complaint_names_an_agency")
    assert intent(tracker) == "file_complaint" and tracker.get_slot("service") == "id_card"
    assert entities(tracker) == [("agency", "DLT")]
    assert slots["complaint_subject"] == {"service": None, "agency": "DLT"}
    assert slots["complaint_misconduct"] is False


def test_an_agency_that_owns_the_remembered_service_keeps_the_service(assistant):
    tracker, slots = filing_subject("complaint_names_the_services_agency")
    assert tracker.get_slot("service") == "driving_licence_renewal" and entities(tracker) == [("agency", "DLT")]
    assert slots["complaint_subject"] == {"service": "driving_licence_renewal", "agency": "DLT"}


def test_a_service_named_in_the_complaint_wins_over_the_remembered_one(assistant):
    tracker, slots = filing_subject("complaint_names_a_service")
    assert intent(tracker) == "file_complaint" and tracker.get_slot("service") == "passport"
    assert ("service", "vehicle_tax_renewal") in entities(tracker)
    assert slots["complaint_subject"] == {"service": "vehicle_tax_renewal", "agency": None}


def test_a_bribery_complaint_is_flagged_for_the_misconduct_channel(assistant):
    tracker, slots = filing_subject("complaint_bribery")
    assert intent(tracker) == "file_complaint" and entities(tracker) == [("agency", "RTP")]
    assert slots["complaint_subject"] == {"service": None, "agency": "RTP"}
    assert slots["complaint_misconduct"] is True
    rtp, pacc = assistant.catalog.agencies["RTP"], assistant.catalog.agencies["PACC"]
    assert rtp.misconduct_channel == "PACC" and pacc is not None


def test_the_channels_answer_still_names_the_misconduct_channel(assistant):
    reply = assistant.answers.complaint_channels(None, "RTP", misconduct=True)
    rtp, pacc = assistant.catalog.agencies["RTP"], assistant.catalog.agencies["PACC"]
    assert rtp.complaint_channel in reply.text and pacc.complaint_channel in reply.text


def test_an_agency_named_when_asking_for_an_officer_wins_too(assistant):
    tracker, _, [reply] = run("human_names_an_agency")
    assert intent(tracker) == "request_human" and tracker.get_slot("service") == "passport"
    assert entities(tracker) == [("agency", "DOPA")]
    assert reply == assistant.answers.human_contact(None, "DOPA")
    assert "ติดต่อกรมการปกครอง สายด่วน 1548" in reply.text and "กรมการกงสุล" not in reply.text


def tracker_with(text: str, slots: dict, found: list[tuple[str, str]], intent_name: str = "file_complaint") -> Tracker:
    """A tracker whose latest message is `text` with the entities `found` (as the NLU gives them)."""
    latest = {
        "text": text,
        "intent": {"name": intent_name, "confidence": 0.9},
        "entities": [{"entity": e, "value": v, "start": 0, "end": 0} for e, v in found],
    }
    return Tracker("unit", {"service": None, "service_candidates": None, **slots}, latest, [], False, None, {}, None)


@pytest.mark.parametrize(
    "remembered, found, expected",
    [
        (None, [], (None, None)),
        ("id_card", [], ("id_card", None)),
        ("id_card", [("agency", "DLT")], (None, "DLT")),  # named now wins
        ("id_card", [("agency", "BORA")], ("id_card", "BORA")),  # the service's own agency
        ("id_card", [("agency", "DOPA")], ("id_card", "DOPA")),  # its parent (อำเภอ for the ID card)
        ("passport", [("service", "vehicle_tax_renewal")], ("vehicle_tax_renewal", None)),
        ("passport", [("service", "id_card"), ("agency", "LAO")], ("id_card", "LAO")),  # at the district office
        ("passport", [("agency", "XYZ")], ("passport", None)),  # not in the catalog: ignored
    ],
)
def test_what_the_message_names_decides_who_a_complaint_is_about(assistant, remembered, found, expected):
    tracker = tracker_with("ร้องเรียน", {"service": remembered}, found)
    assert actions._named_subject(assistant, tracker) == expected


def test_complaint_action_on_an_agency_and_a_bribe(assistant):
    tracker = tracker_with("จนท.อำเภอเรียกเงินใต้โต๊ะ", {"service": "passport"}, [("agency", "DOPA")])
    dispatcher = CollectingDispatcher()
    assert actions.ActionComplaintChannels().run(dispatcher, tracker, {}) == []
    [reply] = [Reply.from_rasa(m) for m in dispatcher.messages]
    assert reply == assistant.answers.complaint_channels(None, "DOPA", misconduct=True)
    assert "1206" in reply.text and "กรมการกงสุล" not in reply.text


def test_a_service_named_in_passing_gets_its_overview(assistant):
    tracker, events, [reply] = run("service_named_in_passing")
    assert intent(tracker) == "ask_service" and tracker.get_slot("service") == "passport"
    assert events == remembered("driving_licence_renewal")
    assert reply == assistant.answers.answer("driving_licence_renewal", "ask_service", question="ใบขับขี่ อะไรนะ", now=NOW)


def test_unclear_message_without_a_service_gets_the_prompt_not_the_remembered_service(assistant):
    tracker, events, [reply] = run("unclear_nothing")
    assert intent(tracker) == "nlu_fallback" and tracker.get_slot("service") == "passport"
    assert events == []
    assert reply == assistant.answers.not_understood()
    assert [b.payload for b in reply.buttons] == ["/help", "/request_human"]


def test_out_of_scope_that_shares_a_word_with_services_says_so_and_offers_them(assistant):
    tracker, events, [reply] = run("out_of_scope_permit")  # a liquor licence: ใบอนุญาต
    assert intent(tracker) == "out_of_scope" and events == []
    assert reply.text.startswith("ขออภัย เรื่องนี้อยู่นอกขอบเขต") and "บริการที่เกี่ยวข้อง" in reply.text
    offered = [b.payload.split('"')[3] for b in reply.buttons[:-1]]
    assert len(offered) >= 2 and all(sid in assistant.catalog.services for sid in offered)
    assert reply == assistant.answers.out_of_scope(offered)
    assert reply.buttons[-1].payload == "/help"


def test_truly_out_of_scope_says_so_with_the_hotline(assistant):
    tracker, events, [reply] = run("out_of_scope_lottery")
    assert intent(tracker) == "out_of_scope" and events == []
    assert reply == assistant.answers.out_of_scope()
    assert reply.text.startswith("ขออภัย เรื่องนี้อยู่นอกขอบเขต") and "สายด่วนรัฐบาล 1111" in reply.text
    assert "บริการที่เกี่ยวข้อง" not in reply.text and [b.payload for b in reply.buttons] == ["/help"]
