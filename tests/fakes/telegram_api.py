"""A local fake of the Telegram Bot API, for tests: the real SDK talks to it over HTTP.

It answers like https://api.telegram.org: the same paths (`/bot<token>/<method>`, method names
case-insensitive), parameters from the query string, a form (what python-telegram-bot sends,
nested objects as JSON strings) or a JSON body, the same envelope (`{"ok": true, "result": ...}`
or `{"ok": false, "error_code": ..., "description": ...}`) and the same refusals:

- a wrong token: 401 Unauthorized (a token that is not even shaped like one: 404 Not Found);
  an unknown method: 404 Not Found;
- `sendMessage`: empty text, text over 4,096 characters (UTF-16 code units), a `callback_data`
  outside 1 to 64 bytes (BUTTON_DATA_INVALID): 400; a chat that blocked the bot: 403;
- `answerCallbackQuery` for a query answered before or marked stale: 400 "query is too old";
- `setWebhook` with a URL that is not HTTPS or a secret token with other characters than
  A-Z, a-z, 0-9, _ and -: 400;
- `getUpdates` while a webhook is set: 409 Conflict. Otherwise it serves the queued updates
  from `offset` on (and forgets those below it, as Telegram confirms them), waiting up to
  `timeout` seconds for one to arrive, honouring `limit` and `allowed_updates`;
- `fail_next(n, status=429, retry_after=...)` / `fail_next(n, status=500)`: the next n calls
  (optionally of one method, optionally after letting some through) fail like Telegram's flood
  control or an outage.

Every call is recorded (`calls`: method, HTTP path, headers, decoded parameters, status).
A gateway process (the integration tests' session stack) uses it with the settings
`fake.settings_for()` gives: `dataclasses.replace(settings, **fake.settings_for())`.
Run on its own (`.venv-app/bin/python -m tests.fakes.telegram_api`) it prints the settings to
point a gateway at it; `POST /_fake/say {"chat_id", "text"}` queues a citizen's message for
getUpdates (polling mode) and `GET /_fake/sent` lists what the bot answered.
Start it with `with FakeTelegramAPI() as fake:`; it serves uvicorn on a free port of
127.0.0.1 in a thread, so a gateway in another process can reach it at `fake.base_url`.
The update builders below (`text_update`, `callback_update`, ...) make updates shaped like
Telegram's, for webhook bodies and for the getUpdates queue alike.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

DEFAULT_TOKEN = "123456789:AAFakeTelegramTokenForTests_xyz0123456"
BOT_ID = 123456789
BOT_USERNAME = "sla_test_bot"
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_JSON_FIELDS = {
    "reply_markup", "allowed_updates", "commands", "scope", "entities", "link_preview_options",
    "reply_parameters",
}
_INT_FIELDS = {"offset", "limit", "timeout", "message_id", "max_connections", "cache_time"}
UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "callback_query",
    "inline_query", "my_chat_member", "chat_member",
)


@dataclass
class Call:
    method: str  # as Telegram names it: sendMessage, getUpdates ...
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    status: int = 200


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    method: str | None
    description: str
    after: int = 0  # matching calls to let through first


@dataclass
class _State:
    webhook_url: str = ""
    webhook_secret: str = ""
    allowed_updates: list[str] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)


def _error(status: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


def _ok(result: Any, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result, **extra})


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegramAPI:
    def __init__(self, token: str = DEFAULT_TOKEN, *, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.username = username
        self.calls: list[Call] = []
        self.blocked: set[int] = set()  # chats that blocked the bot
        self.stale_callbacks: set[str] = set()
        self._answered: set[str] = set()
        self._failures: list[_Failure] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1)
        # Files citizens sent (photos): file_id -> bytes; getFile gives each a path under /file/bot<token>/.
        self.files: dict[str, bytes] = {}
        self._file_ids: dict[str, str] = {}  # file path -> file_id
        self._update_ids = itertools.count(100_000)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.app = self._build_app()

    # -- running ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What TELEGRAM_API_BASE_URL should be: the SDK appends /bot<token>/<method>."""
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> "FakeTelegramAPI":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-telegram-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Telegram API did not start")
            time.sleep(0.01)
        _RUNNING[self.base_url] = self
        return self

    def stop(self) -> None:
        _RUNNING.pop(self.base_url, None)
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "FakeTelegramAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def running_at(base_url: str) -> "FakeTelegramAPI | None":
        """The fake serving `base_url` in this process, if any (to share one with a session stack)."""
        return _RUNNING.get(base_url.rstrip("/"))

    def settings_for(self, webhook_secret: str = "integration-webhook-secret") -> dict[str, str]:
        """`Settings` fields that point a gateway's Telegram channel here (webhook mode; "" polls)."""
        return {
            "telegram_bot_token": self.token,
            "telegram_webhook_secret": webhook_secret,
            "telegram_api_base_url": self.base_url,
        }

    def reset(self) -> None:
        """Forget calls, failures, blocks, queued updates and the webhook (between tests)."""
        with self._lock:
            self.calls.clear()
            self.blocked.clear()
            self.stale_callbacks.clear()
            self._answered.clear()
            self._failures.clear()
            self._state = _State()

    # -- what tests tell it ------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        method: str | None = None,
        description: str | None = None,
        after: int = 0,
    ) -> None:
        """Make the next `count` calls (of `method`, if given) fail like Telegram does.

        With `after`, that many matching calls succeed first (to fail the second message of three).
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after or 1}",
                500: "Internal Server Error",
                502: "Bad Gateway",
                403: "Forbidden: bot was blocked by the user",
            }.get(status, "Bad Request")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, method, description) for _ in range(count))
            if self._failures and after:
                self._failures[-count].after = after

    def block(self, chat_id: int) -> None:
        with self._lock:
            self.blocked.add(chat_id)

    def queue_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates (an update_id is given if it has none); its update_id."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            self._state.updates.append(update)
            return update["update_id"]

    def set_webhook_url(self, url: str) -> None:
        """As if a webhook had been registered earlier (for polling's clean-up)."""
        with self._lock:
            self._state.webhook_url = url

    # -- what tests read -------------------------------------------------------------------

    @property
    def webhook(self) -> dict[str, Any]:
        with self._lock:
            return {
                "url": self._state.webhook_url,
                "secret_token": self._state.webhook_secret,
                "allowed_updates": list(self._state.allowed_updates),
            }

    @property
    def commands(self) -> list[dict]:
        with self._lock:
            return list(self._state.commands)

    @property
    def pending_updates(self) -> list[dict]:
        with self._lock:
            return list(self._state.updates)

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [
                c for c in self.calls
                if c.method.lower() == method.lower() and (c.status == 200 or not ok_only)
            ]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The parameters of every successful sendMessage (to `chat_id`, if given), in order."""
        return [c.params for c in self.calls_to("sendMessage") if chat_id is None or c.params.get("chat_id") == chat_id]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll `condition` until it is truthy (its value) or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake Telegram API did not see it within {timeout} s")
            time.sleep(0.02)

    async def await_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        """`wait_for` for async tests: yields to the event loop while waiting."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake Telegram API did not see it within {timeout} s")
            await asyncio.sleep(0.02)

    # -- the API -----------------------------------------------------------------------------

    def _me(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":", 1)[0]) if self.token.split(":", 1)[0].isdigit() else BOT_ID,
            "is_bot": True,
            "first_name": "SLA test bot",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _build_app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def api(token: str, method: str, request: Request) -> JSONResponse:
            params = await _params(request)
            canonical = _METHODS.get(method.lower(), method)
            call = Call(canonical, request.url.path, dict(request.headers), params)
            response = await self._answer(token, canonical, params)
            call.status = response.status_code
            with self._lock:
                self.calls.append(call)
            return response

        # Control endpoints for trying the bot by hand (`python -m tests.fakes.telegram_api`):
        # queue what a citizen says, read what the bot answered. Not part of Telegram's API.
        @app.post("/_fake/say")
        async def say(request: Request) -> JSONResponse:
            body = await request.json()
            update_id = self.queue_update(text_update(next(self._update_ids), int(body["chat_id"]), str(body["text"])))
            return JSONResponse({"update_id": update_id})

        @app.get("/_fake/sent")
        async def sent() -> JSONResponse:
            return JSONResponse([{"chat_id": p.get("chat_id"), "text": p.get("text"),
                                  "buttons": [b.get("text") for row in (p.get("reply_markup") or {}).get(
                                      "inline_keyboard", []) for b in row]} for p in self.sent()])

        @app.get("/file/bot{token}/{file_path:path}")
        async def download(token: str, file_path: str, request: Request) -> Response:
            # The file URL getFile's path makes: the token is part of it, so a wrong one is 404,
            # as is a path getFile never gave out.
            with self._lock:
                data = self.files.get(self._file_ids.get(file_path, "")) if token == self.token else None
                self.calls.append(Call("file", request.url.path, dict(request.headers), {}, 200 if data else 404))
            if data is None:
                return _error(404, "Not Found")
            return Response(data, media_type="application/octet-stream")

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def elsewhere(path: str) -> JSONResponse:
            return _error(404, "Not Found")

        return app

    async def _answer(self, token: str, method: str, params: dict[str, Any]) -> JSONResponse:
        if token != self.token:
            return _error(401, "Unauthorized") if _TOKEN_SHAPE.fullmatch(token) else _error(404, "Not Found")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        with self._lock:
            failure = next((f for f in self._failures if f.method in (None, method)), None)
            if failure is not None and failure.after:
                failure.after -= 1
                failure = None
            elif failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            if failure.status == 429:
                return _error(429, failure.description, retry_after=failure.retry_after)
            return _error(failure.status, failure.description)
        if method == "getUpdates":
            return await self._m_getUpdates(params)
        return handler(params)

    def add_file(self, file_id: str, data: bytes) -> None:
        """A file a citizen sent (a photo), for getFile and the download URL."""
        with self._lock:
            self.files[file_id] = data

    def _m_getFile(self, params: dict[str, Any]) -> JSONResponse:
        file_id = str(params.get("file_id") or "")
        with self._lock:
            data = self.files.get(file_id)
            if data is None:
                return _error(400, "Bad Request: invalid file_id")
            if len(data) > 20 * 1024 * 1024:  # the Bot API serves files up to 20 MB
                return _error(400, "Bad Request: file is too big")
            path = f"photos/file_{abs(hash(file_id)) % 10**6}.jpg"
            self._file_ids[path] = file_id
        unique = f"U{abs(hash(file_id)) % 10**8}"
        return _ok({"file_id": file_id, "file_unique_id": unique, "file_size": len(data), "file_path": path})

    def _m_getMe(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(self._me())

    def _chat(self, params: dict[str, Any]) -> int | JSONResponse:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _m_sendMessage(self, params: dict[str, Any]) -> JSONResponse:
        chat_id = self._chat(params)
        if isinstance(chat_id, JSONResponse):
            return chat_id
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if _utf16_length(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            problem = _keyboard_problem(markup)
            if problem:
                return _error(400, problem)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": self._me(),
            "chat": {"id": chat_id, "type": "private", "first_name": "Citizen"},
            "date": int(time.time()),
            "text": text,
        }
        if markup is not None:
            message["reply_markup"] = markup
        return _ok(message)

    def _m_sendChatAction(self, params: dict[str, Any]) -> JSONResponse:
        chat_id = self._chat(params)
        if isinstance(chat_id, JSONResponse):
            return chat_id
        if params.get("action") not in {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                                         "upload_voice", "upload_document", "choose_sticker", "find_location",
                                         "record_video_note", "upload_video_note"}:
            return _error(400, "Bad Request: wrong parameter action in request")
        return _ok(True)

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> JSONResponse:
        query_id = params.get("callback_query_id")
        if not query_id:
            return _error(400, "Bad Request: query_id is empty")
        with self._lock:
            if query_id in self.stale_callbacks or query_id in self._answered:
                return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            self._answered.add(query_id)
        return _ok(True)

    def _m_setWebhook(self, params: dict[str, Any]) -> JSONResponse:
        url = params.get("url") or ""
        secret = params.get("secret_token") or ""
        if url and not url.startswith("https://"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret and not _SECRET.fullmatch(secret):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self._state.webhook_url = url
            self._state.webhook_secret = secret
            if "allowed_updates" in params:
                self._state.allowed_updates = list(params["allowed_updates"] or [])
            if _true(params.get("drop_pending_updates")):
                self._state.updates.clear()
        return _ok(True, description="Webhook was set" if url else "Webhook was deleted")

    def _m_deleteWebhook(self, params: dict[str, Any]) -> JSONResponse:
        with self._lock:
            had = bool(self._state.webhook_url)
            self._state.webhook_url = self._state.webhook_secret = ""
            if _true(params.get("drop_pending_updates")):
                self._state.updates.clear()
        return _ok(True, description="Webhook was deleted" if had else "Webhook is already deleted")

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> JSONResponse:
        with self._lock:
            info: dict[str, Any] = {
                "url": self._state.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._state.updates),
            }
            if self._state.webhook_url:
                info["max_connections"] = 40
                if self._state.allowed_updates:
                    info["allowed_updates"] = list(self._state.allowed_updates)
        return _ok(info)

    def _m_setMyCommands(self, params: dict[str, Any]) -> JSONResponse:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            return _error(400, "Bad Request: commands must be a JSON array")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.fullmatch(str(command.get("command", ""))):
                return _error(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                return _error(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._state.commands = commands
        return _ok(True)

    def _m_getMyCommands(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(self.commands)

    def _m_deleteMyCommands(self, params: dict[str, Any]) -> JSONResponse:
        with self._lock:
            self._state.commands = []
        return _ok(True)

    def _m_logOut(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(True)

    async def _m_getUpdates(self, params: dict[str, Any]) -> JSONResponse:
        with self._lock:
            # A long poll works on the state it started with: one left waiting by an earlier test
            # must not confirm (forget) updates queued after `reset()`.
            state = self._state
            if state.webhook_url:
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if "allowed_updates" in params and params["allowed_updates"] is not None:
                state.allowed_updates = list(params["allowed_updates"])
        offset = params.get("offset")
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(0, int(params.get("timeout") or 0))
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if isinstance(offset, int):
                    # Telegram forgets updates below the offset: they count as confirmed.
                    state.updates = [u for u in state.updates if u["update_id"] >= offset]
                wanted = set(state.allowed_updates) or {t for t in UPDATE_TYPES if "chat_member" not in t}
                ready = [u for u in state.updates if any(t in u for t in wanted)][:limit]
            if ready or time.monotonic() >= deadline or state is not self._state:
                return _ok(ready)
            await asyncio.sleep(0.02)


_RUNNING: dict[str, FakeTelegramAPI] = {}
_METHODS = {
    name[3:].lower(): name[3:]
    for name in dir(FakeTelegramAPI)
    if name.startswith("_m_")
}


async def _params(request: Request) -> dict[str, Any]:
    """Parameters as Telegram reads them: query string, then a form or a JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "application/json" in content_type:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if isinstance(body, dict):
            params.update(body)
    elif "x-www-form-urlencoded" in content_type:
        params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    for key, value in list(params.items()):
        if key in _JSON_FIELDS and isinstance(value, str):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
        elif (key in _INT_FIELDS or key == "chat_id") and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            params[key] = int(value)
    return params


def _true(value: Any) -> bool:
    return value in (True, "true", "True", "1", 1)


def _keyboard_problem(markup: Any) -> str | None:
    if not isinstance(markup, dict):
        return "Bad Request: can't parse reply keyboard markup JSON object"
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return "Bad Request: can't parse inline keyboard button: InlineKeyboardButton must be an Object"
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                return "Bad Request: text buttons are unallowed in the inline keyboard"
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


# -- updates shaped like Telegram's ---------------------------------------------------------

_dates = itertools.count(int(time.time()))


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "สมชาย", "language_code": "th"}


def _message(chat_id: int, *, chat_type: str = "private", **content: Any) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "สมชาย"
    else:
        chat["title"] = "กลุ่มทดสอบ"
    return {"message_id": next(_dates) % 1_000_000, "from": _user(abs(chat_id)), "chat": chat,
            "date": next(_dates), **content}


def text_update(update_id: int, chat_id: int, text: str, *, chat_type: str = "private") -> dict[str, Any]:
    """A text message; a leading /command gets its bot_command entity, as Telegram sends it."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        length = len(text.split(maxsplit=1)[0].encode("utf-16-le")) // 2
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": update_id, "message": _message(chat_id, chat_type=chat_type, **content)}


def sticker_update(update_id: int, chat_id: int) -> dict[str, Any]:
    sticker = {
        "file_id": "CAACAgIAAxkBAAEBsticker", "file_unique_id": "AgADsticker", "type": "regular",
        "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍",
    }
    return {"update_id": update_id, "message": _message(chat_id, sticker=sticker)}


def photo_update(
    update_id: int, chat_id: int, file_id: str = "AgACAgIAAxkBAAEBphoto", file_size: int | None = None
) -> dict[str, Any]:
    """A photo as Telegram sends it: its sizes, smallest first (here a thumbnail and the photo)."""
    photo = [{"file_id": file_id + "-thumb", "file_unique_id": "AQADthumb", "width": 90, "height": 90}]
    photo.append({"file_id": file_id, "file_unique_id": "AQADphoto", "width": 800, "height": 600})
    if file_size is not None:
        photo[-1]["file_size"] = file_size
    return {"update_id": update_id, "message": _message(chat_id, photo=photo, caption="ดูรูปนี้")}


def location_update(
    update_id: int, chat_id: int, latitude: float = 13.75, longitude: float = 100.5
) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": _message(chat_id, location={"latitude": latitude, "longitude": longitude}),
    }


def blocked_update(update_id: int, chat_id: int, *, blocked: bool = True) -> dict[str, Any]:
    """The citizen blocked the bot (or, with blocked=False, unblocked it): my_chat_member."""
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "SLA test bot", "username": BOT_USERNAME}
    old, new = ("member", "kicked") if blocked else ("kicked", "member")
    date = next(_dates)
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "private", "first_name": "สมชาย"},
            "from": _user(chat_id),
            "date": date,
            "old_chat_member": {"status": old, "user": bot, **({"until_date": 0} if old == "kicked" else {})},
            "new_chat_member": {"status": new, "user": bot, **({"until_date": 0} if new == "kicked" else {})},
        },
    }


def callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    *,
    query_id: str | None = None,
    keyboard: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A press on an inline button under a bot message whose keyboard was `keyboard`."""
    message = _message(chat_id, text="ข้อความของบอท")
    message["from"] = {"id": BOT_ID, "is_bot": True, "first_name": "SLA test bot", "username": BOT_USERNAME}
    if keyboard is not None:
        message["reply_markup"] = keyboard
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or f"cbq-{update_id}",
            "from": _user(chat_id),
            "message": message,
            "chat_instance": "-1234567890",
            "data": data,
        },
    }


def main() -> None:
    """Serve the fake on its own, to try the gateway's Telegram channel without Telegram."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    with FakeTelegramAPI(args.token) as fake:
        print(
            f"Fake Telegram Bot API at {fake.base_url}\n"
            f"  TELEGRAM_API_BASE_URL={fake.base_url} TELEGRAM_BOT_TOKEN={fake.token}\n"
            f"  say:  curl -d '{{\"chat_id\": 1, \"text\": \"สวัสดี\"}}' -H 'content-type: application/json' "
            f"{fake.base_url}/_fake/say\n"
            f"  read: curl {fake.base_url}/_fake/sent\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
