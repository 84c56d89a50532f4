"""Filing a complaint in chat (complaint_form), and reopening one (reopen_form).

Thin actions over `bot.complaints.chat.ComplaintChat`, which the action server configures once
at start-up (`sla-bot actions` builds the complaint desk on the shared database). Database work
runs in a thread so the action server's event loop is never blocked.

How the form behaves (nlu_data/rules/complaints.yml):

* It starts on `file_complaint`; what it is about comes from what the message names, else the
  service the conversation is about (`_named_subject`), else it asks with agency buttons.
* Every answer to a question is taken by the form itself, whatever intent the NLU gave it, so
  "what happened" is the citizen's whole message; an answer that does not fit is asked again.
* "ยกเลิก" (typed or the button) ends it at any step; `action_complaint_submit` then only says
  so. Otherwise the summary's "ยืนยัน" ends it, and the same action files the complaint with
  the idempotency key fixed when the form started: filing twice gives the same complaint.
* Place and photo questions send the gateway a control message (`expects`) so that a LINE or
  Telegram location or photo sent next reaches the form as a gateway-written payload.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import re
import uuid
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.actions import _entities, _named_subject, assistant
from bot.answers.reply import Reply
from bot.complaints.chat import CHOICE, MEDIA_CHANNELS, ComplaintChat, Draft
from bot.complaints.contact import normalize_phone, phone_from_transit
from bot.complaints.intake import MAX_DESCRIPTION, MAX_PLACE, MAX_REASON
from bot.complaints.photos import MAX_PHOTOS, valid_photo_id
from bot.misconduct import mentions_misconduct

logger = logging.getLogger(__name__)
_chat: Optional[ComplaintChat] = None

FORM = "complaint_form"
REQUESTED = "requested_slot"
KEY, SUBJECT, DESCRIPTION, PLACE = "complaint_key", "complaint_subject", "complaint_description", "complaint_place"
PHOTOS, PHOTOS_DONE = "complaint_photos", "complaint_photos_done"
CONTACT, PHONE, CONFIRM = "complaint_contact", "complaint_phone", "complaint_confirm"
PHONE_TOKEN = "phone_token"  # entity of the payload the gateway writes for a typed phone number
MISCONDUCT = "complaint_misconduct"
# Every slot of a draft, cleared when a new complaint starts and after it is filed or cancelled.
DRAFT_SLOTS = (KEY, SUBJECT, DESCRIPTION, PLACE, PHOTOS, PHOTOS_DONE, CONTACT, PHONE, CONFIRM, MISCONDUCT)
ASKED = (SUBJECT, DESCRIPTION, PLACE, PHOTOS_DONE, CONTACT, PHONE, CONFIRM)
# What the gateway is told to expect while a question is open (bot/gateway/conversation.py).
EXPECTS_LOCATION = "complaint_location"
EXPECTS_PHOTO = "complaint_photo"
EXPECTS_PHONE = "complaint_phone"

_POLITE = re.compile(r"(ครับ|ค่ะ|คะ|นะ|จ้า|จ้ะ|ฮะ|\s|[.!。])+$")
CANCEL_WORDS = frozenset({
    "ยกเลิก", "ยกเลิกการร้องเรียน", "ยกเลิกเรื่องร้องเรียน", "ไม่ร้องเรียนแล้ว", "ไม่เอาแล้ว", "ไม่ร้องแล้ว",
    "หยุด", "cancel",
})
SKIP_WORDS = frozenset({"ข้าม", "ไม่มี", "ไม่ระบุ", "ไม่ทราบ", "ไม่มีรูป", "เสร็จ", "เสร็จแล้ว", "พอแล้ว", "ไม่ต้อง"})
ANONYMOUS_WORDS = frozenset({"ไม่ระบุตัวตน", "ไม่ระบุ", "ไม่ประสงค์ระบุตัวตน", "ไม่ต้องติดต่อกลับ", "ไม่ต้อง", "ไม่ให้"})
CONFIRM_WORDS = frozenset({"ยืนยัน", "ส่ง", "ส่งเลย", "ตกลง", "ใช่", "ok", "โอเค"})
EDIT_WORDS = {"แก้ไขรายละเอียด": "edit_description", "แก้รายละเอียด": "edit_description",
              "แก้ไขหน่วยงาน": "edit_subject", "แก้หน่วยงาน": "edit_subject"}


def configure(chat: ComplaintChat) -> None:
    global _chat
    _chat = chat


def chat() -> ComplaintChat:
    if _chat is None:
        raise RuntimeError("the complaint desk is not configured; start the action server with `sla-bot actions`")
    return _chat


def _send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(**reply.to_rasa())


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def _words(tracker: Tracker) -> str:
    """The message as a short answer: polite particles and trailing punctuation dropped, lower case."""
    text = _text(tracker)
    if text.startswith("/"):
        return ""
    return _POLITE.sub("", text).strip().lower()


def _typed(tracker: Tracker) -> str:
    """The citizen's own words (empty for a button or gateway payload)."""
    text = _text(tracker)
    return "" if text.startswith("/") else text


def _phone(tracker: Tracker) -> Optional[str]:
    """The phone number the citizen gave: sealed by the gateway (`phone_token`), or typed (a
    channel without the gateway in front, e.g. Rasa's REST channel used by operators)."""
    token = _entity(tracker, PHONE_TOKEN)
    if isinstance(token, str):
        return phone_from_transit(chat().desk.secret, token)
    return normalize_phone(_typed(tracker))


def _choice(tracker: Tracker) -> Optional[str]:
    found = _entities(tracker, CHOICE)
    return found[0] if found else None


def _entity(tracker: Tracker, name: str) -> Optional[Any]:
    for e in tracker.latest_message.get("entities", []):
        if e.get("entity") == name:
            return e.get("value")
    return None


def _channel(tracker: Tracker) -> str:
    return tracker.sender_id.split(":", 1)[0]


def _requested(tracker: Tracker) -> Optional[str]:
    return tracker.get_slot(REQUESTED)


def is_cancel(tracker: Tracker) -> bool:
    return _choice(tracker) == "cancel" or _words(tracker) in CANCEL_WORDS


def _location(tracker: Tracker) -> Optional[dict[str, Any]]:
    """A location the gateway passed on (a LINE or Telegram location message)."""
    try:
        latitude, longitude = float(_entity(tracker, "latitude")), float(_entity(tracker, "longitude"))
    except (TypeError, ValueError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    name = _entity(tracker, "place_name")
    place = str(name).strip()[:MAX_PLACE] if name else None
    return {"place": place or None, "latitude": latitude, "longitude": longitude}


def _asked_again(tracker: Tracker, slot: str) -> bool:
    """Whether `slot` was the open question when the citizen wrote their last message (a retry)."""
    open_question = None
    asked_before_message = None
    for event in tracker.events:
        if event.get("event") == "user":
            asked_before_message = open_question
        elif event.get("event") == "slot" and event.get("name") == REQUESTED:
            open_question = event.get("value")
    return asked_before_message == slot


def draft(tracker: Tracker) -> Draft:
    subject = tracker.get_slot(SUBJECT) or {}
    place = tracker.get_slot(PLACE) or {}
    phone = tracker.get_slot(PHONE) if tracker.get_slot(CONTACT) == "phone" else None
    return Draft(
        key=tracker.get_slot(KEY) or "",
        description=tracker.get_slot(DESCRIPTION) or "",
        service_id=subject.get("service") if isinstance(subject, dict) else None,
        agency_code=subject.get("agency") if isinstance(subject, dict) else None,
        place=place.get("place") if isinstance(place, dict) else None,
        latitude=place.get("latitude") if isinstance(place, dict) else None,
        longitude=place.get("longitude") if isinstance(place, dict) else None,
        photo_ids=tuple(tracker.get_slot(PHOTOS) or ()),
        phone=phone,
        misconduct=bool(tracker.get_slot(MISCONDUCT)),
    )


def _cleared() -> list[EventType]:
    return [SlotSet(name, None) for name in DRAFT_SLOTS]


class ValidateComplaintForm(FormValidationAction):
    """Takes each answer the form asked for; the next question follows from what is missing."""

    def name(self) -> str:
        return "validate_complaint_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if _requested(tracker) in ASKED and is_cancel(tracker):
            return [SlotSet(CONFIRM, "cancel"), SlotSet(REQUESTED, None)]
        # rasa_sdk drops the extracted slots that are not required (the photos, the misconduct flag):
        # keep every extraction, then the validated values, then the next question.
        extracted = await self.get_extraction_events(dispatcher, tracker, domain)
        tracker.add_slots(extracted)
        validated = await self.get_validation_events(dispatcher, tracker, domain)
        tracker.add_slots(validated)
        events = list(extracted) + list(validated)
        following = await self.next_requested_slot(dispatcher, tracker, domain)
        if following:
            events.append(following)
        return events

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[str]:
        if tracker.get_slot(CONFIRM) == "cancel":
            return []
        slots = [KEY, SUBJECT, DESCRIPTION, PLACE]
        if _channel(tracker) in MEDIA_CHANNELS:
            slots.append(PHOTOS_DONE)
        slots.append(CONTACT)
        if tracker.get_slot(CONTACT) == "phone":
            slots.append(PHONE)
        slots.append(CONFIRM)
        return slots

    # -- extraction: only the slot being asked reads the message (and the start of the form) ----

    def extract_complaint_key(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) in ASKED:
            return {}
        if _choice(tracker) == "retry" and tracker.get_slot(KEY):
            return {}  # submitting again after a failure: the same draft, the same key
        fresh: dict[str, Any] = {name: None for name in DRAFT_SLOTS}
        fresh[KEY] = uuid.uuid4().hex
        fresh[MISCONDUCT] = mentions_misconduct(_typed(tracker))
        return fresh

    def extract_complaint_subject(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        requested = _requested(tracker)
        if requested not in ASKED:
            if tracker.get_slot(SUBJECT):
                return {}
            service, agency = _named_subject(assistant(), tracker)
            return {SUBJECT: {"service": service, "agency": agency}} if service or agency else {}
        if requested != SUBJECT:
            return {}
        if _choice(tracker) == "unknown_agency":
            return {SUBJECT: {"service": None, "agency": None}}
        catalog = assistant().catalog
        services = [s for s in _entities(tracker, "service") if s in catalog.services]
        agencies = [a for a in _entities(tracker, "agency") if catalog.agency(a) is not None]
        if services or agencies:
            first = {"service": services[0] if services else None, "agency": agencies[0] if agencies else None}
            return {SUBJECT: first}
        return {SUBJECT: None}

    def extract_complaint_description(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != DESCRIPTION:
            return {}
        return {DESCRIPTION: _typed(tracker)[:MAX_DESCRIPTION] or None}

    def extract_complaint_place(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != PLACE:
            return {}
        location = _location(tracker)
        if location is not None:
            return {PLACE: location}
        if _choice(tracker) == "skip" or _words(tracker) in SKIP_WORDS:
            return {PLACE: {"place": None}}
        typed = _typed(tracker)
        return {PLACE: {"place": typed[:MAX_PLACE]} if typed else None}

    def extract_complaint_photos_done(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != PHOTOS_DONE:
            return {}
        photo = _entity(tracker, "photo_id")
        if isinstance(photo, str) and valid_photo_id(photo):
            photos = list(dict.fromkeys([*(tracker.get_slot(PHOTOS) or []), photo]))[:MAX_PHOTOS]
            return {PHOTOS: photos, PHOTOS_DONE: True if len(photos) >= MAX_PHOTOS else None}
        location = _location(tracker)
        if location is not None:  # a location sent late: it is where it happened
            return {PLACE: location, PHOTOS_DONE: None}
        if _choice(tracker) in ("done", "skip") or _words(tracker) in SKIP_WORDS:
            return {PHOTOS_DONE: True}
        return {PHOTOS_DONE: None}

    def extract_complaint_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != CONTACT:
            return {}
        choice = _choice(tracker)
        if choice == "anonymous" or _words(tracker) in ANONYMOUS_WORDS:
            return {CONTACT: "anonymous", PHONE: None}
        if choice == "consent":
            return {CONTACT: "phone"}
        # The question showed the consent line: typing a number there is giving it with consent.
        phone = _phone(tracker)
        if phone is not None:
            return {CONTACT: "phone", PHONE: phone}
        return {CONTACT: None}

    def extract_complaint_phone(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != PHONE:
            return {}
        if _choice(tracker) == "anonymous" or _words(tracker) in ANONYMOUS_WORDS:
            return {CONTACT: "anonymous", PHONE: None}
        return {PHONE: _phone(tracker)}

    def extract_complaint_confirm(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != CONFIRM:
            return {}
        choice = _choice(tracker)
        if choice in ("confirm", "edit_description", "edit_subject"):
            return {CONFIRM: choice}
        words = _words(tracker)
        if words in CONFIRM_WORDS:
            return {CONFIRM: "confirm"}
        return {CONFIRM: EDIT_WORDS.get(words)}

    # -- validation -----------------------------------------------------------------------------

    def validate_complaint_subject(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return {SUBJECT: value if isinstance(value, dict) else None}

    def validate_complaint_description(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        text = value.strip() if isinstance(value, str) else ""
        return {DESCRIPTION: text if len(text) >= 2 else None}

    def validate_complaint_place(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        return {PLACE: value if isinstance(value, dict) else None}

    def validate_complaint_photos_done(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        return {PHOTOS_DONE: True if value is True else None}

    def validate_complaint_contact(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        return {CONTACT: value if value in ("anonymous", "phone") else None}

    def validate_complaint_phone(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        return {PHONE: normalize_phone(value) if isinstance(value, str) else None}

    def validate_complaint_confirm(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        if value == "edit_description":
            return {CONFIRM: None, DESCRIPTION: None}
        if value == "edit_subject":
            return {CONFIRM: None, SUBJECT: None}
        return {CONFIRM: "confirm" if value == "confirm" else None}


class _Ask(Action, abc.ABC):
    """Asks the form's question for `slot` (again, when the last answer did not fit); tells the
    gateway what the answer may be (`expects`: "complaint_phone" has it seal a typed number)."""

    slot = ""
    expects: Optional[str] = None

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    @abc.abstractmethod
    def reply(self, tracker: Tracker, retry: bool) -> Reply: ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        _send(dispatcher, self.reply(tracker, _asked_again(tracker, self.slot)))
        if self.expects:
            dispatcher.utter_message(json_message={"expects": self.expects})
        return []


class ActionAskComplaintSubject(_Ask):
    slot = SUBJECT

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        return chat().ask_subject()


class ActionAskComplaintDescription(_Ask):
    slot = DESCRIPTION

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        d = draft(tracker)
        return chat().ask_description(chat().about(d.service_id, d.agency_code), retry=retry)


class ActionAskComplaintPlace(_Ask):
    slot = PLACE

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        return chat().ask_place(_channel(tracker))

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        await super().run(dispatcher, tracker, domain)
        if _channel(tracker) in MEDIA_CHANNELS:
            dispatcher.utter_message(json_message={"expects": EXPECTS_LOCATION})
        return []


class ActionAskComplaintPhotosDone(_Ask):
    slot = PHOTOS_DONE

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        return chat().ask_photos(len(tracker.get_slot(PHOTOS) or ()))

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        await super().run(dispatcher, tracker, domain)
        dispatcher.utter_message(json_message={"expects": EXPECTS_PHOTO})
        return []


class ActionAskComplaintContact(_Ask):
    slot = CONTACT
    expects = EXPECTS_PHONE  # a number typed here is given with the consent line shown

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        return chat().ask_contact(retry=retry)


class ActionAskComplaintPhone(_Ask):
    slot = PHONE
    expects = EXPECTS_PHONE

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        given = bool(_typed(tracker) or _entity(tracker, PHONE_TOKEN))
        return chat().ask_phone(retry=retry and tracker.get_slot(CONTACT) == "phone" and given)


class ActionAskComplaintConfirm(_Ask):
    slot = CONFIRM

    def reply(self, tracker: Tracker, retry: bool) -> Reply:
        return chat().summary(draft(tracker), retry=retry)


class ActionComplaintSubmit(Action):
    """After the form: file the confirmed complaint (stored before the citizen is told), or say it
    was cancelled. Either way the draft is cleared, so a second tap on "ยืนยัน" files nothing new."""

    def name(self) -> str:
        return "action_complaint_submit"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if tracker.get_slot(CONFIRM) != "confirm" or not tracker.get_slot(KEY):
            _send(dispatcher, chat().cancelled())
            return _cleared()
        try:
            reply = await asyncio.to_thread(chat().submit, tracker.sender_id, draft(tracker))
        except Exception:
            # Keep the draft and its key: "ส่งอีกครั้ง" files it once, however often it is tapped.
            logger.exception("filing a complaint failed")
            _send(dispatcher, chat().failed())
            return []
        _send(dispatcher, reply)
        return _cleared()


# -- reopening a resolved complaint (reopen_form) ------------------------------------------------


class ValidateReopenForm(FormValidationAction):
    def name(self) -> str:
        return "validate_reopen_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if _requested(tracker) == "reopen_reason" and is_cancel(tracker):
            return [SlotSet("reopen_reason", None), SlotSet("reopen_number", None), SlotSet(REQUESTED, None)]
        return await super().run(dispatcher, tracker, domain)

    def extract_reopen_number(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        number = _entity(tracker, "reopen_number")
        return {"reopen_number": str(number)} if number and _requested(tracker) != "reopen_reason" else {}

    def extract_reopen_reason(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict:
        if _requested(tracker) != "reopen_reason":
            return {}
        return {"reopen_reason": _typed(tracker)[:MAX_REASON] or None}

    def validate_reopen_reason(self, value: Any, dispatcher, tracker: Tracker, domain: dict):
        text = value.strip() if isinstance(value, str) else ""
        return {"reopen_reason": text if len(text) >= 2 else None}


class ActionAskReopenReason(Action):
    def name(self) -> str:
        return "action_ask_reopen_reason"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        number = tracker.get_slot("reopen_number") or ""
        _send(dispatcher, chat().ask_reopen_reason(number, retry=_asked_again(tracker, "reopen_reason")))
        return []


class ActionReopenComplaint(Action):
    def name(self) -> str:
        return "action_reopen_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        number, reason = tracker.get_slot("reopen_number"), tracker.get_slot("reopen_reason")
        done = [SlotSet("reopen_number", None), SlotSet("reopen_reason", None)]
        if not number or not reason:
            _send(dispatcher, chat().reopen_cancelled())
            return done
        reply = await asyncio.to_thread(chat().reopen, tracker.sender_id, number, reason)
        if reply is None:
            reply = assistant().answers.status_denied(number)
        _send(dispatcher, reply)
        return done
