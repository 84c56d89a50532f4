"""The local web chat: the page at `/` and `POST /api/chat`.

The gateway, not the browser, decides who is speaking: the first request gets a session
cookie holding a random ID signed with `WEB_SESSION_SECRET` (HttpOnly, SameSite=Strict), and
the chat identity is `web:<that ID>`. A missing, forged or tampered cookie simply starts a
new session; a `sender` in the request body is ignored.

`POST /api/chat` is answered by `ChatTurns`, an ASGI middleware in front of FastAPI's router,
which reads its one field itself: FastAPI's routing, dependency solving and validation cost
more per turn than all the rest of the gateway's own work (issue 7 measured it), and a turn's
latency is what citizens feel.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.gateway.channels.webhooks import read_body
from bot.gateway.conversation import Conversation

STATIC = Path(__file__).resolve().parent.parent / "static"
COOKIE = "sla_chat"
COOKIE_MAX_AGE = 7 * 24 * 3600
TOO_FAST = "ขออภัย มีการส่งข้อความจากเครือข่ายนี้ถี่เกินไป กรุณารอสักครู่แล้วลองใหม่"
INVALID = "ข้อความไม่ถูกต้อง กรุณาพิมพ์คำถามเป็นข้อความแล้วส่งใหม่"
CHAT_PATH = "/api/chat"
MAX_BODY_BYTES = 64 * 1024
MAX_BODY_MESSAGE_CHARS = 4000  # longer is not a chat message; the pipeline refuses > 1,000 politely


def chat_message(body: bytes) -> tuple[int, str]:
    """(0, the message) from a `{"message": "..."}` body, or (the 4xx status, why) for anything else.

    Other fields (such as the `sender` older pages sent) are ignored, never trusted.
    """
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return 400, INVALID
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str) or not 1 <= len(message) <= MAX_BODY_MESSAGE_CHARS:
        return 422, INVALID
    return 0, message


class WebSessions:
    """Issues and verifies signed web-chat session IDs."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("WEB_SESSION_SECRET is empty; `make run` generates one into .env")
        self._key = hashlib.sha256(secret.encode()).digest()

    def _sign(self, session_id: str) -> str:
        # Keyed BLAKE2b is a MAC, and Python's own: OpenSSL's HMAC looked the digest up on
        # every call, about 90 µs per turn with the caches cold between turns (issue 7).
        mac = hashlib.blake2b(session_id.encode(), key=self._key, digest_size=16).digest()
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


class ChatTurns:
    """ASGI middleware answering `/api/chat` (one web-chat turn) ahead of FastAPI's router.

    Unexpected errors still reach the application's error middleware (a 500, logged). The
    conversation and the limiter are those the gateway's lifespan put on `app.state`.
    """

    def __init__(self, app: ASGIApp, sessions: WebSessions, address_limit: int) -> None:
        self.app = app
        self.sessions = sessions
        self.address_limit = address_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method != "POST":
            response: Response = JSONResponse({"detail": "Method Not Allowed"}, 405, {"Allow": "POST"})
        else:
            response = await self.turn(request, await read_body(request, MAX_BODY_BYTES))
        await response(scope, receive, send)

    async def turn(self, request: Request, body: bytes | None) -> Response:
        status, message = chat_message(body) if body is not None else (413, INVALID)
        if status:
            return JSONResponse({"detail": message}, status_code=status)
        session_id, cookie = session_of(self.sessions, request)
        state = request.app.state
        address = request.client.host if request.client else "unknown"
        verdict = await state.limiter.hit("address", address, self.address_limit)
        if not verdict.allowed:
            return keep_session(request, _refusal(429, TOO_FAST, verdict.retry_after), cookie)
        conversation: Conversation = state.conversation
        turn = await conversation.handle(f"web:{session_id}", message)
        if turn.refused:
            refusal = _refusal(REFUSAL_STATUS[turn.refused], turn.replies[0].text, turn.retry_after)
            return keep_session(request, refusal, cookie)
        answer = JSONResponse({"messages": [reply.to_json() for reply in turn.replies]})
        return keep_session(request, answer, cookie)


def session_of(sessions: WebSessions, request: Request) -> tuple[str, str | None]:
    """The session ID the request's cookie carries, or a new one and the cookie to set."""
    session_id = sessions.verify(request.cookies.get(COOKIE))
    if session_id is not None:
        return session_id, None
    cookie = sessions.issue()
    return cookie.split(".")[0], cookie


def keep_session(request: Request, response: Response, cookie: str | None) -> Response:
    """`response`, setting the session cookie when the session is new."""
    if cookie:
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def router(sessions: WebSessions) -> APIRouter:
    """The page; its turns are `ChatTurns`'."""
    routes = APIRouter()

    @routes.get("/", include_in_schema=False)
    async def web_chat(request: Request) -> Response:
        _, cookie = session_of(sessions, request)
        return keep_session(request, FileResponse(STATIC / "index.html"), cookie)

    return routes


REFUSAL_STATUS = {"rate_limited": 429, "too_long": 422, "empty": 422, "unavailable": 503}


def _refusal(status: int, detail: str, retry_after: int = 0) -> JSONResponse:
    """An error the web chat shows as the bot's answer (`detail`)."""
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
