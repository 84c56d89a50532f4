"""The one call every turn makes: POST a JSON body to a Rasa server, on kept-alive connections.

A general HTTP client does much more per call than this call needs (cookies, redirects,
tracing, URL and header handling): aiohttp took about 0.2 ms of CPU for it, which on this
2-core machine was a good part of all the gateway adds to a turn (issue 7). This client
writes one prepared HTTP/1.1 request and parses the answer with httptools (the parser
uvicorn uses), reusing idle connections.

Connections idle longer than `idle_seconds` are closed rather than reused: a server closes
idle connections after its keep-alive timeout (Rasa's: 120 s; Sanic's default: 5 s), and a
request written into a connection the server is closing is lost. Should that still happen, a
request on a reused connection that got no byte of answer is sent once more on a new
connection: the server did not read it.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httptools

IDLE_SECONDS = 2.0
MAX_IDLE_CONNECTIONS = 64


class RasaHTTPError(Exception):
    """The server answered with an error status, or with something that is not HTTP."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.body = bytearray()
        self.received = False  # any byte of the current answer
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RasaHTTPError(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed before the answer was complete"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.extend(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.close()
        self._settle((self.parser.get_status_code(), bytes(self.body)))

    def send(self, request: bytes, timeout: float) -> asyncio.Future[tuple[int, bytes]]:
        """Write `request`; the future gets (status, body), or fails after `timeout` seconds.

        (A timer on the future rather than asyncio.wait_for, which starts a task per call.)"""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.body.clear()
        self.received = False
        self.answer = loop.create_future()
        self.deadline = loop.call_later(timeout, self._fail, asyncio.TimeoutError())
        self.transport.write(request)
        return self.answer

    def close(self) -> None:
        self.closed = True
        self._stop_deadline()
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        self.close()
        self._settle(exc)

    def _stop_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _settle(self, outcome: tuple[int, bytes] | BaseException) -> None:
        self._stop_deadline()
        if self.answer is None or self.answer.done():
            return
        if isinstance(outcome, BaseException):
            self.answer.set_exception(outcome)
        else:
            self.answer.set_result(outcome)


class RasaHTTP:
    """POSTs JSON bodies to one server (`base_url`), reusing idle connections (last used first)."""

    def __init__(
        self, base_url: str, *, idle_seconds: float = IDLE_SECONDS, max_idle: int = MAX_IDLE_CONNECTIONS
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"RasaHTTP speaks plain HTTP to an internal host, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.encode("ascii")
        self._idle: list[_Connection] = []
        self._idle_seconds = idle_seconds
        self._max_idle = max_idle

    async def post_json(self, path: str, body: bytes, *, timeout: float) -> bytes:
        """The answer's body to `POST path` with the JSON `body`; RasaHTTPError for a status
        other than 2xx, OSError when the server cannot be reached, asyncio.TimeoutError when
        connecting or answering takes longer than `timeout` seconds."""
        request = b"".join((
            b"POST ", (self._prefix + path).encode("ascii"), b" HTTP/1.1\r\nHost: ", self._host_header,
            b"\r\nContent-Type: application/json\r\nContent-Length: ", str(len(body)).encode("ascii"),
            b"\r\n\r\n", body,
        ))
        status, answer = await self._exchange(request, timeout)
        if not 200 <= status < 300:
            raise RasaHTTPError(f"HTTP {status}")
        return answer

    async def _exchange(self, request: bytes, timeout: float) -> tuple[int, bytes]:
        connection, reused = self._reusable(), True
        if connection is None:
            connection, reused = await self._connect(timeout), False
        try:
            try:
                result = await connection.send(request, timeout)
            except ConnectionResetError:
                if not reused or connection.received:
                    raise
                # The server closed the idle connection as the request went out: it never read it.
                connection = await self._connect(timeout)
                result = await connection.send(request, timeout)
        except BaseException:  # an error or a timeout (cancelled): the connection's state is unknown
            connection.close()
            raise
        self._release(connection)
        return result

    def _reusable(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self, timeout: float) -> _Connection:
        connect = asyncio.get_running_loop().create_connection(_Connection, self._host, self._port)
        _, connection = await asyncio.wait_for(connect, timeout)
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.closed or len(self._idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        while self._idle:
            self._idle.pop().close()
