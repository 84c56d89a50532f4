"""The status lookup in chat (status_form): thin actions over `bot.casework.lookup.StatusLookup`.

Database work runs in a thread (`asyncio.to_thread`) so the action server's event loop is never
blocked. The lookup is configured once at start-up by `sla-bot actions` (`configure`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.answers.reply import Reply
from bot.casework.lookup import EXPECTS_CODE, StatusLookup, is_complaint

_lookup: StatusLookup | None = None
# The complaint desk's chat side (bot.complaints.chat.ComplaintChat), for CMP numbers.
_complaints = None
_TOKEN = re.compile(r"^[0-9a-f]{64}$")


def configure(lookup: StatusLookup) -> None:
    global _lookup
    _lookup = lookup


def configure_complaints(chat) -> None:
    global _complaints
    _complaints = chat


def lookup() -> StatusLookup:
    if _lookup is None:
        raise RuntimeError("the status lookup is not configured; start the action server with `sla-bot actions`")
    return _lookup


class ValidateStatusForm(FormValidationAction):
    def name(self) -> str:
        return "validate_status_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[str]:
        """No verification for a request or complaint this chat is already linked to (a complaint:
        filed from this chat, or its digits proved here before)."""
        number = tracker.get_slot("tracking_number")
        if number and is_complaint(number):
            if _complaints is None or await asyncio.to_thread(_complaints.visible, tracker.sender_id, number):
                return ["tracking_number"]
            return domain_slots
        if number and not await asyncio.to_thread(lookup().needs_code, tracker.sender_id, number):
            return ["tracking_number"]
        return domain_slots

    def validate_tracking_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        # The extractor already gives the canonical CODE-YYYY-NNNNNN form.
        return {"tracking_number": value if isinstance(value, str) else None}

    def validate_verification_token(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return {"verification_token": value if isinstance(value, str) and _TOKEN.match(value) else None}


class ActionAskTrackingNumber(Action):
    def name(self) -> str:
        return "action_ask_tracking_number"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        reply = await asyncio.to_thread(lookup().ask_number, tracker.sender_id)
        if _complaints is not None:
            reply = _with_complaints(reply, await asyncio.to_thread(_complaints.mine_reply, tracker.sender_id))
        dispatcher.utter_message(**reply.to_rasa())
        return []


def _with_complaints(ask: Reply, mine: Reply) -> Reply:
    """The question for a number, with this chat's complaints listed under it ("ร้องเรียนของฉัน")."""
    if not mine.buttons:
        return ask
    return Reply(f"{ask.text}\n\n{mine.text}", (*ask.buttons, *mine.buttons))


class ActionAskVerificationToken(Action):
    """Ask for the 4 digits, and tell the gateway to turn the answer into a token (never digits)."""

    def name(self) -> str:
        return "action_ask_verification_token"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        number = tracker.get_slot("tracking_number")
        dispatcher.utter_message(**lookup().ask_code(number).to_rasa())
        dispatcher.utter_message(json_message={"expects": EXPECTS_CODE, "tracking_number": number})
        return []


class ActionStatusAnswer(Action):
    def name(self) -> str:
        return "action_status_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        number = tracker.get_slot("tracking_number")
        token = tracker.get_slot("verification_token")
        if number and is_complaint(number) and _complaints is not None:
            # Only its reporter, or a chat that proves the last 4 digits of the phone given with it
            # (now, with the token, or before), sees a complaint; anyone else gets the words an
            # unknown number gets.
            reply = await asyncio.to_thread(_complaints.status, tracker.sender_id, number, token)
            if reply is None:
                reply = lookup().denied(number)
            dispatcher.utter_message(**reply.to_rasa())
        elif number:
            reply = await asyncio.to_thread(lookup().answer, tracker.sender_id, number, token)
            dispatcher.utter_message(**reply.to_rasa())
        # The token is single-use: never keep it in the conversation.
        return [SlotSet("tracking_number", None), SlotSet("verification_token", None)]

