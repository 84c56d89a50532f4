"""The gateway's FastAPI application: web chat at `/`, the chat API, and `/healthz`."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from bot.gateway.conversation import Conversation, ConversationUnavailable
from bot.settings import Settings

STATIC = Path(__file__).parent / "static"
RASA_TIMEOUT_SECONDS = 30.0
UNAVAILABLE = "ขออภัย ระบบขัดข้องชั่วคราว กรุณาลองใหม่อีกครั้ง หรือโทร 1111"
INVALID = "ข้อความไม่ถูกต้อง กรุณาพิมพ์คำถามไม่เกิน 1,000 ตัวอักษรแล้วส่งใหม่"


class ChatRequest(BaseModel):
    sender: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    message: str = Field(min_length=1, max_length=1000)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=RASA_TIMEOUT_SECONDS) as client:
            app.state.conversation = Conversation(settings.rasa_url, client, settings.rasa_token)
            yield

    app = FastAPI(title="SLA bot gateway", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": INVALID}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # A body that is not JSON at all arrives here as 400; say so in Thai like the rest.
        detail = INVALID if exc.status_code == 400 else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", include_in_schema=False)
    async def web_chat() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.post("/api/chat")
    async def chat(body: ChatRequest, request: Request) -> JSONResponse:
        if not body.message.strip():
            return JSONResponse({"detail": INVALID}, status_code=422)
        conversation: Conversation = request.app.state.conversation
        try:
            messages = await conversation.send(f"web:{body.sender}", body.message.strip())
        except ConversationUnavailable:
            return JSONResponse({"detail": UNAVAILABLE}, status_code=503)
        return JSONResponse({"messages": [asdict(m) for m in messages]})

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        conversation: Conversation = request.app.state.conversation
        if await conversation.ready():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "waiting for the Rasa server"}, status_code=503)

    return app
