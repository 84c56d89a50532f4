"""What channels and the delivery machinery share: events in, messages out, and how sends fail.

A channel adapter (LINE, Telegram) verifies its platform's webhook, turns each platform event
into an `InboundEvent`, and hands it to the `Inbox`, which stores it durably (deduplicated by
the platform's event id) before the webhook is acknowledged. The dispatcher then gives the
events of one identity to the adapter's `handle`, one at a time and in order. Anything sent
later or again (a push after the reply token expired, a retry, a delay notice) goes through the
`Outbox`, which calls the adapter's `deliver` until it succeeds, honouring `RetryLater`, and
never delivers the same key twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.answers.reply import Reply

if TYPE_CHECKING:
    from bot.gateway.conversation import Conversation

EventKind = Literal["message", "button", "follow", "unfollow", "command", "unsupported"]


@dataclass(frozen=True)
class InboundEvent:
    channel: str  # "line" or "telegram"
    event_id: str  # the platform's id (LINE webhookEventId, Telegram update_id): the dedupe key
    identity: str  # "line:<userId>" or "telegram:<chat id>", from the verified webhook only
    kind: EventKind
    received_at: dt.datetime
    text: str = ""  # what was typed, or the payload of the button pressed
    reply_token: str | None = None  # LINE: valid once, for about a minute
    extra: dict[str, Any] = field(default_factory=dict)  # platform details, JSON-serialisable


class RetryLater(Exception):
    """The platform said "not now" (429, 5xx, timeout): try again, after `after` seconds if known."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Undeliverable(Exception):
    """The platform refused for good (blocked by the user, bad request): do not retry."""


class Outbox(Protocol):
    async def enqueue(self, identity: str, replies: list[Reply], key: str) -> bool:
        """Store messages to push to `identity` on its channel; False if `key` was already queued."""
        ...


async def apology_due(outbox: Outbox, identity: str) -> bool:
    """Whether to tell `identity` now that the service is down: True once per outage.

    For `handle` when the conversation answered refused="unavailable": apologise only when this
    says so, then raise `RetryLater` so the message is kept and answered later. The durable
    outbox remembers per identity (in the database) until one of its events is answered or
    given up; an outbox without that memory (a test stand-in) always says True.
    """
    check = getattr(outbox, "apology_due", None)
    return True if check is None else bool(await check(identity))


class Inbox(Protocol):
    async def accept(self, event: InboundEvent) -> bool:
        """Store the event durably; False if this (channel, event_id) was accepted before."""
        ...


class ChannelAdapter(Protocol):
    name: str  # the identity prefix: "line", "telegram"

    async def handle(self, event: InboundEvent, conversation: Conversation, outbox: Outbox) -> None:
        """Process one accepted event: run the conversation, answer (reply API, else the outbox).

        Raising lets the dispatcher retry the event later; it must then be safe to run again
        (replies go out under keys derived from the event id, so nothing is sent twice).
        Raise `RetryLater` when the conversation is unavailable (the message is kept, tried
        again with backoff or after `after` seconds, and the citizen asked once to send it
        again if it never succeeds); `Undeliverable` when the event can never be answered;
        anything else counts as a bug and is given up after a few attempts."""
        ...

    async def deliver(self, identity: str, replies: list[Reply], retry_key: str) -> None:
        """Push messages to `identity` now; raise RetryLater or Undeliverable on failure."""
        ...
