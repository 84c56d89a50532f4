"""Two minimal fronts for Rasa, to compare the gateway with (`make bench-chat` only; app environment).

Measured in the same run as the gateway, at one client:

- the bare hop does the least a web-chat front can do. It reads `{"message": ...}`, keeps the
  conversation's sender in a cookie, posts the message to Rasa's REST channel with the
  gateway's own client (bot/gateway/rasa_http.py) and answers `{"messages": [Rasa's replies]}`
  in one write: uvloop and httptools, as under the gateway, and nothing else (no signed
  session, no limits, no buttons remembered, no ASGI application);
- the byte relay (`--relay`) copies bytes between each client connection and one connection
  of its own to Rasa, reading nothing: what a second process and the extra trips through the
  kernel cost, without any HTTP or JSON work (clients speak Rasa's REST channel through it).

    python scripts/bare_hop.py PORT RASA_URL [--relay]
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from typing import Callable
from urllib.parse import urlsplit

import httptools
import uvloop

from bot.gateway.rasa_http import RasaHTTP

COOKIE = b"hop="


class BareHop(asyncio.Protocol):
    """One client connection: each request (keep-alive, one at a time) becomes one Rasa call."""

    def __init__(self, rasa: RasaHTTP) -> None:
        self.rasa = rasa
        self.parser = httptools.HttpRequestParser(self)
        self.body = bytearray()
        self.sender = ""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, b'{"detail":"bad request"}', b"")

    def on_message_begin(self) -> None:
        self.body.clear()
        self.sender = ""

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"cookie" and value.startswith(COOKIE):
            self.sender = value[len(COOKIE):].decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.extend(body)

    def on_message_complete(self) -> None:
        asyncio.ensure_future(self.turn(bytes(self.body), self.sender))

    async def turn(self, body: bytes, sender: str) -> None:
        set_cookie = b""
        if not sender:
            sender = secrets.token_hex(12)
            set_cookie = b"set-cookie: " + COOKIE + sender.encode("ascii") + b"; HttpOnly; Path=/\r\n"
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            self._write(400, b'{"detail":"bad request"}', set_cookie)
            return
        request = json.dumps({"sender": sender, "message": message}, ensure_ascii=False).encode("utf-8")
        try:
            answer = await self.rasa.post_json("/webhooks/rest/webhook", request, timeout=30.0)
        except Exception as exc:  # noqa: BLE001 (a benchmark tool: say what failed, keep serving)
            self._write(502, json.dumps({"detail": type(exc).__name__}).encode("utf-8"), set_cookie)
            return
        reply = json.dumps({"messages": json.loads(answer)}, ensure_ascii=False).encode("utf-8")
        self._write(200, reply, set_cookie)

    def _write(self, status: int, body: bytes, extra_headers: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"".join((
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, b"OK" if status == 200 else b"Error"),
            extra_headers, b"content-length: %d\r\n\r\n" % len(body), body,
        )))


class ByteRelay(asyncio.Protocol):
    """One client connection, relayed byte for byte to a connection of its own to Rasa."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.early: list[bytes] = []  # what the client sent before the upstream connection was up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = transport  # type: ignore[assignment]
        asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.upstream, _ = await loop.create_connection(lambda: _Back(self), self.host, self.port)
        except OSError:
            assert self.client is not None
            self.client.close()
            return
        assert self.client is not None
        if self.client.is_closing():  # the client left while we connected
            self.upstream.close()
            return
        for data in self.early:
            self.upstream.write(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None:
            self.early.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


class _Back(asyncio.Protocol):
    """Rasa's side of a `ByteRelay`: its bytes go to the client as they come."""

    def __init__(self, relay: ByteRelay) -> None:
        self.relay = relay

    def data_received(self, data: bytes) -> None:
        assert self.relay.client is not None
        self.relay.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.relay.client is not None
        self.relay.client.close()


async def serve(port: int, rasa_url: str, relay: bool) -> None:
    if relay:
        rasa = urlsplit(rasa_url)
        host, rasa_port = rasa.hostname or "127.0.0.1", rasa.port or 80
        protocol: Callable[[], asyncio.Protocol] = lambda: ByteRelay(host, rasa_port)  # noqa: E731
    else:
        client = RasaHTTP(rasa_url)
        protocol = lambda: BareHop(client)  # noqa: E731
    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port)
    print(f"{'byte relay' if relay else 'bare hop'} on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2], relay="--relay" in sys.argv[3:]))
