"""The local web chat: the page at `/` and `POST /api/chat`.

The gateway, not the browser, decides who is speaking: the first request gets a session
cookie holding a random ID signed with `WEB_SESSION_SECRET` (HttpOnly, SameSite=Strict), and
the chat identity is `web:<that ID>`. A missing, forged or tampered cookie simply starts a
new session; a `sender` in the request body is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.gateway.conversation import Conversation
from bot.gateway.limits import RateLimiter

STATIC = Path(__file__).resolve().parent.parent / "static"
COOKIE = "sla_chat"
COOKIE_MAX_AGE = 7 * 24 * 3600
TOO_FAST = "ขออภัย มีการส่งข้อความจากเครือข่ายนี้ถี่เกินไป กรุณารอสักครู่แล้วลองใหม่"


class ChatRequest(BaseModel):
    # Extra fields (such as the `sender` older pages sent) are ignored, never trusted.
    model_config = ConfigDict(extra="ignore")
    message: str = Field(min_length=1, max_length=4000)


class WebSessions:
    """Issues and verifies signed web-chat session IDs."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("WEB_SESSION_SECRET is empty; `make run` generates one into .env")
        self._key = hashlib.sha256(secret.encode()).digest()

    def _sign(self, session_id: str) -> str:
        mac = hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self) -> str:
        session_id = secrets.token_urlsafe(18)
        return f"{session_id}.{self._sign(session_id)}"

    def verify(self, cookie: str | None) -> str | None:
        """The session ID a genuine cookie carries, or None."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, signature = cookie.split(".")
        if session_id and hmac.compare_digest(signature, self._sign(session_id)):
            return session_id
        return None


def router(sessions: WebSessions, address_limit: int) -> APIRouter:
    routes = APIRouter()

    def session_of(request: Request, response: Response) -> str:
        session_id = sessions.verify(request.cookies.get(COOKIE))
        if session_id is None:
            cookie = sessions.issue()
            session_id = cookie.split(".")[0]
            response.set_cookie(
                COOKIE,
                cookie,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
        return session_id

    @routes.get("/", include_in_schema=False)
    async def web_chat(request: Request) -> FileResponse:
        response = FileResponse(STATIC / "index.html")
        session_of(request, response)
        return response

    @routes.post("/api/chat")
    async def chat(body: ChatRequest, request: Request, response: Response) -> dict:
        identity = f"web:{session_of(request, response)}"
        limiter: RateLimiter = request.app.state.limiter
        address = request.client.host if request.client else "unknown"
        verdict = await limiter.hit("address", address, address_limit)
        if not verdict.allowed:
            return _refuse(response, 429, TOO_FAST, verdict.retry_after)
        conversation: Conversation = request.app.state.conversation
        turn = await conversation.handle(identity, body.message)
        if turn.refused:
            return _refuse(response, REFUSAL_STATUS[turn.refused], turn.replies[0].text, turn.retry_after)
        return {"messages": [reply.to_json() for reply in turn.replies]}

    return routes


REFUSAL_STATUS = {"rate_limited": 429, "too_long": 422, "empty": 422, "unavailable": 503}


def _refuse(response: Response, status: int, detail: str, retry_after: int = 0) -> dict:
    """An error the web chat shows as the bot's answer (`detail`), keeping the session cookie."""
    response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return {"detail": detail}
