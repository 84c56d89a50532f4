"""The gateway's FastAPI application: channels, the agency API, `/healthz`.

Connections (the database engine, the HTTP client to Rasa, the shared state, the platforms'
SDK clients) are made once, at start-up; routes reach them through `app.state`. LINE and
Telegram are on when their credentials are set. Their webhooks only store events in the
durable inbox; `Delivery` answers them (one at a time per citizen, in order) and pushes
proactive messages through its outbox.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from bot.assistant import LiveAssistant
from bot.casework.registry import Registry
from bot.complaints import Desk, PhotoStore
from bot.complaints.service import ComplaintService
from bot.db import make_engine
from bot.delivery import Delivery
from bot.delivery.types import InboundEvent
from bot.gateway.api import agency, open311
from bot.gateway.channels import line, telegram, web
from bot.gateway.conversation import Conversation
from bot.gateway.limits import RateLimiter
from bot.gateway.portal import router as portal_router
from bot.gateway.state import open_state
from bot.settings import Settings


class _InboxOfApp:
    """The webhooks' inbox: the one `Delivery` made in the lifespan (routes exist before it)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    async def accept(self, event: InboundEvent) -> bool:
        return await self._app.state.delivery.inbox.accept(event)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    problems = settings.channel_problems()
    if problems:
        raise ValueError("; ".join(problems))
    sessions = web.WebSessions(settings.web_session_secret)
    channels = [c for c in (line.LineChannel.from_settings(settings), telegram.from_settings(settings)) if c]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built once, here: the database engine (migrations ran before the gateway started) and
        # the live catalog the registry validates steps and judges SLAs against.
        live = LiveAssistant(settings.catalog_dir)
        engine = make_engine(settings.database)
        app.state.registry = Registry(engine, settings.verification_secret, lambda: live.current().catalog)
        state = open_state(settings.redis_url)
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=200, keepalive_timeout=30)
        async with aiohttp.ClientSession(connector=connector) as client:
            app.state.limiter = RateLimiter(state)
            app.state.conversation = Conversation(
                settings.rasa_urls,
                client,
                state,
                actions_url=settings.actions_url,
                token=settings.rasa_token,
                rate_limit=settings.rate_limit_identity,
                verification_secret=settings.verification_secret,
            )
            delivery = Delivery(engine, app.state.conversation, app.state.registry, live.current, settings)
            for channel in channels:
                delivery.register(channel)
            await delivery.start()
            app.state.delivery = delivery
            desk = Desk(
                engine, settings.verification_secret, lambda: live.current().catalog,
                photos=PhotoStore(settings.data_dir / "photos"), outbox=delivery.outbox,
                can_push=delivery.notifier.can_push,
            )
            app.state.complaints = ComplaintService(desk)
            for channel in channels:  # photos citizens send for a complaint are kept with the desk's
                channel.photos = desk.photos
            await app.state.complaints.start()
            for channel in channels:
                if isinstance(channel, telegram.TelegramChannel):
                    await channel.start(delivery.inbox)  # polling mode polls; webhook mode checks
            try:
                yield
            finally:
                await app.state.complaints.stop()
                await delivery.stop()
                for channel in channels:
                    await channel.close()
                app.state.conversation.close()
                await state.close()
                engine.dispose()

    app = FastAPI(
        title="SLA bot gateway",
        description="Web chat, the agency API (`/api/agency/v1`, Bearer API key per agency) and health.",
        lifespan=lifespan,
        # No OpenTelemetry here: FastAPI's check for a configured provider costs every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    app.include_router(web.router(sessions))
    app.add_middleware(web.ChatTurns, sessions=sessions, address_limit=settings.rate_limit_address)
    app.include_router(agency.router())
    app.include_router(open311.router())
    app.include_router(portal_router())
    agency.install_error_handlers(app)
    inbox = _InboxOfApp(app)
    for channel in channels:
        module = line if isinstance(channel, line.LineChannel) else telegram
        app.include_router(module.router(channel, inbox))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith(agency.PREFIX):  # agencies' developers get the fields at fault
            errors = [{"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in exc.errors()]
            return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)
        return JSONResponse({"detail": web.INVALID}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # A body that is not JSON at all arrives here as 400; say so in Thai like the rest.
        detail = web.INVALID if exc.status_code == 400 else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """200 when Rasa (with a model) and the action server answer; otherwise 503 naming what is down."""
        conversation: Conversation = request.app.state.conversation
        parts = await conversation.health()
        healthy = all(state == "ok" for state in parts.values())
        body = {"status": "ok" if healthy else "degraded", "parts": parts}
        if channels:  # queue depth and failures, for operators; they do not make the gateway unhealthy
            body["delivery"] = await request.app.state.delivery.health()
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app
