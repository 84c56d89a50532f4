"""The citizen's status lookup: what to ask next, and what may be disclosed to this chat.

Shared by the chat (actions/status.py) and, later, other channels. Nothing about a request is
disclosed unless this chat identity is linked to it, or proves itself now with the verifier
token of the last 4 digits of the applicant's phone (which also links it). An unknown number
and a wrong code get the same words; complaints (CMP numbers) are answered honestly as not yet
trackable here.
"""

from __future__ import annotations

from typing import Callable

from bot.answers.reply import Reply
from bot.assistant import Assistant
from bot.casework.registry import Registry
from bot.tracking import COMPLAINT_CODE

# The control message the lookup sends with its question for the verification digits, so the
# gateway turns the citizen's next message into a token (bot/gateway/conversation.py).
EXPECTS_CODE = "verification_code"


class StatusLookup:
    def __init__(self, registry: Registry, assistant: Callable[[], Assistant]) -> None:
        self._registry = registry
        self._assistant = assistant

    def needs_code(self, identity: str, number: str) -> bool:
        """Whether the lookup must ask for the verification digits before answering."""
        return not is_complaint(number) and not self._registry.is_linked(identity, number)

    def ask_number(self, identity: str) -> Reply:
        linked = [(r.tracking_number, r.service_id) for r in self._registry.linked_requests(identity)]
        return self._assistant().answers.status_ask_number(linked)

    def ask_code(self, number: str) -> Reply:
        return self._assistant().answers.status_ask_code(number)

    def denied(self, number: str) -> Reply:
        """What an unknown number, a wrong code and someone else's complaint all get."""
        return self._assistant().answers.status_denied(number)

    def answer(self, identity: str, number: str, token: str | None) -> Reply:
        """The request's status if this identity may see it, else the same refusal for every reason."""
        answers = self._assistant().answers
        if is_complaint(number):
            return answers.status_complaint(number)
        if not self._registry.is_linked(identity, number):
            verdict = self._registry.verify(number, token or "", identity)
            if verdict == "locked":
                return answers.status_locked()
            if verdict != "ok":
                return answers.status_denied(number)
        request = self._registry.get(number)
        if request is None:  # linked, then removed: say no more than for an unknown number
            return answers.status_denied(number)
        return answers.request_status(request, self._registry.assess(request))


def is_complaint(number: str) -> bool:
    return number.upper().startswith(f"{COMPLAINT_CODE}-")
