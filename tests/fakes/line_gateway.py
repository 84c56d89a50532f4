"""In-memory stand-ins for the delivery machinery, and a LINE-only gateway built from them.

`MemoryInbox` and `MemoryOutbox` implement the `Inbox` / `Outbox` protocols of
`bot.delivery.types` the way the durable ones promise to behave, minus the durability: the
inbox drops an event id it has seen and gives each identity's events to the adapter one at a
time, in order, retrying on an exception (after `RetryLater.after` when given); the outbox
drops a key it has seen and calls `deliver` until it succeeds, honouring `RetryLater`,
giving up on `Undeliverable`.

`LineGateway` is what `bot/gateway/app.py` wires for LINE (route, adapter, conversation
against a Rasa URL) on these stand-ins, so the LINE tests and the benchmark can run through
the real Rasa server and action server before (or without) the gateway's own wiring.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import httpx
import uvicorn
from fastapi import FastAPI

from bot.answers.reply import Reply
from bot.delivery.types import InboundEvent, RetryLater, Undeliverable
from bot.gateway.channels import line
from bot.gateway.conversation import Conversation
from bot.gateway.state import MemoryState
from bot.runtime.stack import free_port
from bot.settings import Settings

logger = logging.getLogger(__name__)


class MemoryInbox:
    def __init__(
        self,
        handle: Callable[[InboundEvent], Awaitable[None]],
        *,
        retry_delay: float = 0.2,
        max_attempts: int = 50,
    ) -> None:
        self._handle = handle
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        self.accepted: list[InboundEvent] = []
        self.handled: list[InboundEvent] = []
        self.given_up: list[InboundEvent] = []
        self._seen: set[tuple[str, str]] = set()
        self._queues: dict[str, asyncio.Queue[InboundEvent]] = {}
        self._workers: list[asyncio.Task] = []

    async def accept(self, event: InboundEvent) -> bool:
        key = (event.channel, event.event_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        self.accepted.append(event)
        queue = self._queues.get(event.identity)
        if queue is None:
            queue = self._queues[event.identity] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._work(queue)))
        queue.put_nowait(event)
        return True

    async def _work(self, queue: asyncio.Queue[InboundEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                for attempt in range(1, self._max_attempts + 1):
                    try:
                        await self._handle(event)
                        self.handled.append(event)
                        break
                    except RetryLater as exc:
                        await asyncio.sleep(exc.after if exc.after is not None else self._retry_delay)
                    except Exception:
                        logger.exception("handling %s failed (attempt %d)", event.event_id, attempt)
                        await asyncio.sleep(self._retry_delay)
                else:
                    self.given_up.append(event)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        for queue in list(self._queues.values()):
            await queue.join()

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)


@dataclass
class Pushed:
    identity: str
    replies: list[Reply]
    key: str
    attempts: int = 0
    outcome: str = "pending"  # "delivered", "undeliverable", "gave up"


class MemoryOutbox:
    def __init__(
        self,
        deliver: Callable[[str, list[Reply], str], Awaitable[None]],
        *,
        retry_delay: float = 0.05,
        max_attempts: int = 8,
    ) -> None:
        self._deliver = deliver
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        self.items: list[Pushed] = []
        self.waits: list[float] = []  # the delays RetryLater asked for
        self._keys: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._locks: dict[str, asyncio.Lock] = {}

    async def enqueue(self, identity: str, replies: list[Reply], key: str) -> bool:
        if key in self._keys:
            return False
        self._keys.add(key)
        item = Pushed(identity, list(replies), key)
        self.items.append(item)
        lock = self._locks.setdefault(identity, asyncio.Lock())
        self._tasks.append(asyncio.create_task(self._send(item, lock)))
        return True

    async def _send(self, item: Pushed, lock: asyncio.Lock) -> None:
        async with lock:
            while item.attempts < self._max_attempts:
                item.attempts += 1
                try:
                    await self._deliver(item.identity, item.replies, item.key)
                    item.outcome = "delivered"
                    return
                except RetryLater as exc:
                    self.waits.append(exc.after if exc.after is not None else -1)
                    await asyncio.sleep(exc.after if exc.after is not None else self._retry_delay)
                except Undeliverable:
                    item.outcome = "undeliverable"
                    return
            item.outcome = "gave up"

    async def drain(self) -> None:
        while any(not t.done() for t in self._tasks):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class LineGateway:
    """The LINE webhook on a FastAPI app, with the adapter, a conversation and the stand-ins."""

    settings: Settings
    channel: line.LineChannel | None = None
    inbox: MemoryInbox | None = None
    outbox: MemoryOutbox | None = None
    unfollowed: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        channel = line.LineChannel.from_settings(self.settings)
        if channel is None:
            raise ValueError("LINE is not configured in these settings")
        self.channel = channel

        async def unfollowed(identity: str) -> None:
            self.unfollowed.append(identity)

        channel.on_unfollow = unfollowed
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=200)) as client:
                conversation = Conversation(
                    self.settings.rasa_url,
                    client,
                    MemoryState(),
                    actions_url=self.settings.actions_url,
                    token=self.settings.rasa_token,
                    rate_limit=self.settings.rate_limit_identity,
                    verification_secret=self.settings.verification_secret,
                )
                self.outbox = MemoryOutbox(channel.deliver)
                outbox = self.outbox
                self.inbox = MemoryInbox(lambda event: channel.handle(event, conversation, outbox))
                try:
                    yield
                finally:
                    await self.inbox.close()
                    await self.outbox.close()
                    await channel.close()

        app = FastAPI(lifespan=lifespan)
        app.include_router(line.router(channel, lambda: self.inbox))
        return app


class ServedApp:
    """A FastAPI app served by uvicorn in a thread on a free port (for tests and benchmarks)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="line-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServedApp":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the LINE test gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def create_app() -> FastAPI:
    """`uvicorn --factory tests.fakes.line_gateway:create_app`: a LINE-only gateway from the environment."""
    return LineGateway(Settings.from_env()).app()
