"""Durable delivery between the platforms and the conversation: inbox, dispatcher, outbox, notices.

    delivery = Delivery(engine, conversation, registry, live.current, settings)
    delivery.register(line_channel); await delivery.start()   # ... await delivery.stop()

See bot.delivery.service for the wiring, bot.delivery.types for what channel adapters implement.
"""

from bot.delivery.inbox import SEND_AGAIN, Dispatcher, DurableInbox
from bot.delivery.notices import DelayNotices, NoticeRun, StatusPush
from bot.delivery.notifier import Notifier
from bot.delivery.outbox import DurableOutbox, OutboxEntry, Sender
from bot.delivery.queue import RetryPolicy
from bot.delivery.service import Delivery, DeliveryPolicy
from bot.delivery.types import (
    ChannelAdapter,
    InboundEvent,
    Inbox,
    Outbox,
    RetryLater,
    Undeliverable,
    apology_due,
)

__all__ = [
    "ChannelAdapter", "DelayNotices", "Delivery", "DeliveryPolicy", "Dispatcher", "DurableInbox", "DurableOutbox",
    "InboundEvent", "Inbox", "NoticeRun", "Notifier", "Outbox", "OutboxEntry", "RetryLater", "RetryPolicy",
    "SEND_AGAIN", "Sender", "StatusPush", "Undeliverable", "apology_due",
]
