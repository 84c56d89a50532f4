"""The gateway's kept-alive client for Rasa's REST channel, against real local servers that
answer, stall, close and misbehave the ways a server can."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.gateway.rasa_http import RasaHTTP, RasaHTTPError

PATH = "/webhooks/rest/webhook"


class Server:
    """A raw HTTP/1.1 server: `plan(n, request)` decides what the n-th request (counted over all
    connections) gets: bytes to write, "close" (drop the connection unanswered) or "stall"."""

    def __init__(self, plan) -> None:
        self.plan = plan
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Server":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(
                    line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
                ))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                action = self.plan(len(self.requests), request)
                if action == "close":
                    break
                if action == "stall":
                    await asyncio.sleep(3600)
                writer.write(action)
                await writer.drain()
                if b"connection: close" in action.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def echo(_: int, request: bytes) -> bytes:
    return answer(request.split(b"\r\n\r\n", 1)[1])


async def test_posts_json_and_reuses_one_connection():
    async with Server(echo) as server:
        url = server.url
        rasa = RasaHTTP(url)
        for n in range(3):
            body = json.dumps({"sender": "web:a", "message": f"สวัสดี {n}"}, ensure_ascii=False).encode()
            assert await rasa.post_json(PATH, body, timeout=2) == body
        rasa.close()
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith(f"POST {PATH} HTTP/1.1\r\n")
    assert f"Host: {url.removeprefix('http://')}" in head and "Content-Type: application/json" in head


async def test_an_error_status_is_an_error():
    async with Server(lambda n, r: answer(b'{"detail": "no"}', "500 Internal Server Error")) as server:
        with pytest.raises(RasaHTTPError, match="HTTP 500"):
            await RasaHTTP(server.url).post_json(PATH, b"{}", timeout=2)


async def test_chunked_answers_are_read_whole():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1, 2\r\n4\r\n, 3]\r\n0\r\n\r\n"
    async with Server(lambda n, r: chunked) as server:
        assert await RasaHTTP(server.url).post_json(PATH, b"{}", timeout=2) == b"[1, 2, 3]"


async def test_a_reused_connection_the_server_dropped_unanswered_is_retried_once_on_a_new_one():
    # The server closes its idle connection just as the second request goes out.
    async with Server(lambda n, r: "close" if n == 2 else echo(n, r)) as server:
        rasa = RasaHTTP(server.url)
        assert await rasa.post_json(PATH, b'{"n": 1}', timeout=2) == b'{"n": 1}'
        assert await rasa.post_json(PATH, b'{"n": 2}', timeout=2) == b'{"n": 2}'
        rasa.close()
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_new_connection_dropped_unanswered_is_an_error_not_a_retry():
    async with Server(lambda n, r: "close") as server:
        with pytest.raises(ConnectionResetError):
            await RasaHTTP(server.url).post_json(PATH, b"{}", timeout=2)
    assert len(server.requests) == 1


async def test_an_answer_cut_off_midway_is_an_error_not_a_retry():
    async with Server(lambda n, r: echo(n, r) if n == 1 else b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n[1,"
                      ) as server:
        rasa = RasaHTTP(server.url)
        await rasa.post_json(PATH, b"{}", timeout=2)
        with pytest.raises((ConnectionResetError, asyncio.TimeoutError)):
            await rasa.post_json(PATH, b"{}", timeout=0.5)
    assert len(server.requests) == 2


async def test_a_stalled_answer_times_out_and_the_connection_is_not_reused():
    async with Server(lambda n, r: "stall" if n == 1 else echo(n, r)) as server:
        rasa = RasaHTTP(server.url)
        with pytest.raises(asyncio.TimeoutError):
            await rasa.post_json(PATH, b"{}", timeout=0.2)
        assert await rasa.post_json(PATH, b'{"n": 2}', timeout=2) == b'{"n": 2}'
        rasa.close()
    assert server.connections == 2


async def test_connection_close_and_long_idle_connections_are_not_reused():
    async with Server(lambda n, r: answer(b"[]", extra="Connection: close\r\n") if n == 1 else echo(n, r)) as server:
        rasa = RasaHTTP(server.url, idle_seconds=0.1)
        await rasa.post_json(PATH, b"{}", timeout=2)  # the server said it closes: a new connection next
        await rasa.post_json(PATH, b"{}", timeout=2)
        await asyncio.sleep(0.2)  # idle longer than idle_seconds: not trusted any more
        await rasa.post_json(PATH, b"{}", timeout=2)
        rasa.close()
    assert server.connections == 3


async def test_concurrent_requests_each_get_their_own_answer():
    async with Server(echo) as server:
        rasa = RasaHTTP(server.url)
        bodies = [json.dumps({"n": n}).encode() for n in range(20)]
        answers = await asyncio.gather(*(rasa.post_json(PATH, body, timeout=2) for body in bodies))
        assert answers == bodies
        rasa.close()


async def test_an_unreachable_server_is_an_os_error():
    async with Server(echo) as server:
        url = server.url
    with pytest.raises(OSError):
        await RasaHTTP(url).post_json(PATH, b"{}", timeout=2)


def test_only_plain_http_urls():
    with pytest.raises(ValueError):
        RasaHTTP("https://rasa.example:5005")
