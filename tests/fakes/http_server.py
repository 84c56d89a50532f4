"""Serve an httpx-style handler (`request -> response`, sync or async) over real local HTTP.

Unit tests write fakes of Rasa and the action server as small handlers on httpx's request and
response types; the gateway calls them over a real socket with its real (aiohttp) client.
"""

from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, Union

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[httpx.Request], Union[httpx.Response, Awaitable[httpx.Response]]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Run `handler` on 127.0.0.1 at a free port; yields its base URL."""

    async def bridge(request: web.Request) -> web.Response:
        call = handler(
            httpx.Request(request.method, str(request.url), headers=dict(request.headers), content=await request.read())
        )
        response = await call if inspect.isawaitable(call) else call
        content_type = response.headers.get("content-type", "application/octet-stream")
        return web.Response(status=response.status_code, body=response.content, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", bridge)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
