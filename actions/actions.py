"""Custom actions. Each one reads the tracker, asks the `Assistant`, and returns events.

The catalog is loaded once, explicitly, by `configure()` (called by `sla-bot actions` at
start-up, or on first use when the server is started some other way); after that the
`LiveAssistant` picks up catalog edits without a restart.
"""

from __future__ import annotations

import abc
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.answers.render import ASPECTS
from bot.answers.reply import Reply
from bot.assistant import Assistant, LiveAssistant
from bot.misconduct import mentions_misconduct
from bot.settings import Settings

logger = logging.getLogger(__name__)
_live: LiveAssistant | None = None
# What a conversation remembers across a session rollover (see ActionSessionStart).
CONVERSATION_SLOTS = ("service", "service_candidates")
# A complaint being filed survives a rollover too: its draft, its open question and the form.
COMPLAINT_FORM = "complaint_form"
COMPLAINT_SLOTS = (
    "complaint_key", "complaint_subject", "complaint_description", "complaint_place", "complaint_photos",
    "complaint_photos_done", "complaint_contact", "complaint_phone", "complaint_confirm", "complaint_misconduct",
    "requested_slot",
)


def configure(live: LiveAssistant) -> None:
    global _live
    _live = live


def assistant() -> Assistant:
    if _live is None:
        logger.info("loading the catalog named by the environment's settings")
        configure(LiveAssistant(Settings.from_env().catalog_dir))
    assert _live is not None
    return _live.current()


def _send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(**reply.to_rasa())


def _entities(tracker: Tracker, name: str) -> list[str]:
    return [str(e["value"]) for e in tracker.latest_message.get("entities", []) if e.get("entity") == name]


def _intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def _remember_choice(service_id: str | None, candidates: tuple[str, ...] = ()) -> list[EventType]:
    """The service the conversation is now about, or the candidates the citizen must choose from.

    The `service` slot is only ever set here (its mapping is custom), so an ambiguous
    question leaves it empty instead of silently keeping one of the services named.
    """
    return [SlotSet("service", service_id), SlotSet("service_candidates", list(candidates) or None)]


def _named_subject(bot: Assistant, tracker: Tracker) -> tuple[str | None, str | None]:
    """(service, agency code) a complaint or a call for an officer is about.

    What this message names wins over the service the conversation remembers: a service named
    now, with the agency named beside it; else an agency named now, which keeps the remembered
    service only when that service is the agency's own (or its parent's or child's: อำเภอ for
    the ID card of สำนักทะเบียน), so "ร้องเรียนเจ้าหน้าที่ขนส่ง" after an ID-card question is about
    the Department of Land Transport; else the remembered service.
    """
    catalog = bot.catalog
    services = [s for s in _entities(tracker, "service") if s in catalog.services]
    agencies = [a for a in _entities(tracker, "agency") if catalog.agency(a) is not None]
    agency = agencies[0] if agencies else None
    if services:
        return services[0], agency
    remembered = tracker.get_slot("service")
    if remembered not in catalog.services:
        remembered = None
    if agency is None:
        return remembered, None
    if remembered is not None:
        owner = catalog.agency_of(catalog.services[remembered])
        named = catalog.agency(agency)
        if agency in (owner.code, owner.parent) or named.parent == owner.code:
            return remembered, agency
    return None, agency


class ActionAnswerService(Action):
    """Answers documents / fees / hours / channels / duration / steps / criteria questions."""

    def name(self) -> str:
        return "action_answer_service"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        bot = assistant()
        intent = _intent(tracker)
        if intent not in ASPECTS:
            intent = "ask_service"
        text = tracker.latest_message.get("text") or ""
        choice = bot.choose_service(
            _entities(tracker, "service"),
            tracker.get_slot("service"),
            text,
            pending=tracker.get_slot("service_candidates") or (),
        )
        if choice.service_id is None:
            _send(dispatcher, bot.answers.choose_service(intent, list(choice.candidates)))
            return _remember_choice(None, choice.candidates)
        _send(dispatcher, bot.answers.answer(choice.service_id, intent, question=text, now=bot.clock()))
        return _remember_choice(choice.service_id)


class ActionSessionStart(Action):
    """A new session: after an idle hour (Rasa's session_config) or a rollover by the gateway.

    Rasa's tracker store loads only the current session, so the gateway starts a new one every
    so many turns (`/session_start`) to keep a long conversation's turns as cheap as its first.
    Such a rollover keeps what the conversation is about (the service slots) and a complaint being
    filed (its form and draft); a session that
    expired after an idle hour starts afresh, as before.
    """

    def name(self) -> str:
        return "action_session_start"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        if _intent(tracker) == "session_start":
            events += [SlotSet(name, tracker.get_slot(name)) for name in CONVERSATION_SLOTS if tracker.get_slot(name)]
            if (tracker.active_loop or {}).get("name") == COMPLAINT_FORM:
                events.append(ActiveLoop(COMPLAINT_FORM))
                events += [SlotSet(name, tracker.get_slot(name)) for name in COMPLAINT_SLOTS if tracker.get_slot(name)]
        events.append(ActionExecuted("action_listen"))
        return events


class _FixedReply(Action, abc.ABC):
    """An action whose reply depends only on the catalog (greeting, help menu, "are you a bot?")."""

    @abc.abstractmethod
    def reply(self, bot: Assistant) -> Reply: ...

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        _send(dispatcher, self.reply(assistant()))
        return []


class ActionGreet(_FixedReply):
    def name(self) -> str:
        return "action_greet"

    def reply(self, bot: Assistant) -> Reply:
        return bot.answers.greeting()


class ActionHelp(_FixedReply):
    def name(self) -> str:
        return "action_help"

    def reply(self, bot: Assistant) -> Reply:
        return bot.answers.help_menu()


class ActionBotChallenge(_FixedReply):
    def name(self) -> str:
        return "action_bot_challenge"

    def reply(self, bot: Assistant) -> Reply:
        return bot.answers.bot_challenge()


class ActionFallback(Action):
    """Out of scope, or not understood: still help if the message points at a service.

    A message that names a service gets the service's overview. One that is out of scope and
    only shares a word with some services (ร้านกาแฟ, ใบอนุญาตขายสุรา) is told so, with those
    services offered as buttons; one that was not understood gets their overview or a choice.
    """

    def name(self) -> str:
        return "action_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        bot = assistant()
        text = tracker.latest_message.get("text") or ""
        named = _entities(tracker, "service")
        if _intent(tracker) == "out_of_scope" and not named:
            _send(dispatcher, bot.answers.out_of_scope(bot.matcher.resolve(text).candidates))
            return []
        choice = bot.choose_service(named, None, text)
        if choice.service_id:
            _send(dispatcher, bot.answers.answer(choice.service_id, "ask_service", now=bot.clock()))
            return _remember_choice(choice.service_id)
        if choice.candidates:
            _send(dispatcher, bot.answers.choose_service("ask_service", list(choice.candidates)))
            return _remember_choice(None, choice.candidates)
        _send(dispatcher, bot.answers.not_understood())
        return []


class ActionRequestHuman(Action):
    """How to reach a human: the contact of the agency of the service or agency the message
    names (else of the conversation's service), and the 1111 hotline."""

    def name(self) -> str:
        return "action_request_human"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        bot = assistant()
        _send(dispatcher, bot.answers.human_contact(*_named_subject(bot, tracker)))
        return []


class ActionComplaintChannels(Action):
    """Where to complain: about the service or agency this message names (else the one the
    conversation was about), its channels, its agency's, ป.ป.ท. for bribery, and 1111."""

    def name(self) -> str:
        return "action_complaint_channels"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        bot = assistant()
        text = tracker.latest_message.get("text") or ""
        service_id, agency = _named_subject(bot, tracker)
        _send(dispatcher, bot.answers.complaint_channels(service_id, agency, misconduct=mentions_misconduct(text)))
        return []
