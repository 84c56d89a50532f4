"""The one notifier: a message to a chat identity, pushed on that identity's own channel.

`notify(identity, reply, key)` queues the message in the durable outbox when the identity's
channel (the part before ":") can push, i.e. has a registered adapter (LINE, Telegram when
configured; never the web chat, which only answers), and the identity has not blocked the bot.
The `key` says which message this is: the same key is never delivered twice, so a caller that
runs again (a retried API call, a scheduler on two replicas) cannot send it twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from typing import Collection, Sequence, Union

from bot.answers.reply import Reply
from bot.delivery.flags import OptOuts
from bot.delivery.outbox import DurableOutbox, channel_of
from bot.delivery.queue import Clock, utc_now

logger = logging.getLogger(__name__)

NO_PUSH = frozenset({"web"})


def identity_tag(identity: str) -> str:
    """A short, stable stand-in for an identity in outbox keys (keys appear in logs, identities do not)."""
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


class Notifier:
    def __init__(self, outbox: DurableOutbox, opt_outs: OptOuts, channels: Collection[str], *, clock: Clock = utc_now):
        """`channels`: the names of the channels that can push (a live view: the registered adapters)."""
        self._outbox = outbox
        self._opt_outs = opt_outs
        self._channels = channels
        self._clock = clock

    def can_push(self, identity: str) -> bool:
        channel = channel_of(identity)
        if not channel or channel in NO_PUSH or channel not in self._channels:
            return False
        return not self._opt_outs.contains(identity)

    def notify_sync(self, identity: str, reply: Union[Reply, Sequence[Reply]], key: str) -> bool:
        """`notify` for synchronous callers (threads)."""
        if not self.can_push(identity):
            return False
        replies = [reply] if isinstance(reply, Reply) else list(reply)
        return self._outbox.enqueue_sync(identity, replies, key)

    async def notify(self, identity: str, reply: Union[Reply, Sequence[Reply]], key: str) -> bool:
        """Queue `reply` for `identity`; False when its channel cannot push, it opted out, or `key` was used."""
        return await asyncio.to_thread(self.notify_sync, identity, reply, key)

    def opt_out_sync(self, identity: str) -> None:
        self._opt_outs.add(identity, self._clock())

    def opt_in_sync(self, identity: str) -> None:
        self._opt_outs.remove(identity)

    async def opt_out(self, identity: str) -> None:
        """Stop pushing to `identity` (LINE unfollow: the user blocked the account)."""
        await asyncio.to_thread(self.opt_out_sync, identity)

    async def opt_in(self, identity: str) -> None:
        """Push to `identity` again (LINE follow: added or unblocked)."""
        await asyncio.to_thread(self.opt_in_sync, identity)

    def opted_out(self, identity: str) -> bool:
        return self._opt_outs.contains(identity)


def stamp(moment: dt.datetime) -> str:
    """A compact UTC timestamp for keys."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
