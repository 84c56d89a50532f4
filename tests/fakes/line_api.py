"""A local fake of the LINE Messaging API, and signed webhooks to send the gateway.

`FakeLineApi` serves the endpoints the bot uses on a free port (uvicorn in a thread), with
LINE's paths, status codes and error bodies:

- `POST /v2/bot/message/reply`: reply tokens (issue them with `issue_reply_token`) are valid
  once and for `reply_token_ttl` seconds; otherwise 400 `{"message": "Invalid reply token"}`;
- `POST /v2/bot/message/push`: honours `X-Line-Retry-Key` (a UUID, else 400): a key accepted
  before answers 409 `{"message": "The retry key is already accepted", "sentMessages": [...]}`
  and is not delivered again; a failed call does not use up its key;
- `POST /v2/bot/chat/loading/start` (202), and the rich menu calls `sla-bot line rich-menu` makes
  (create, upload the image, set the default, list, delete, get);
- both message calls check LINE's limits the way LINE does (1 to 5 messages, 5,000 characters
  of text, 13 quick-reply items, 20-character labels: 400 with `details`), and every call needs
  `Authorization: Bearer <access token>` (401 otherwise).

`fail_next(n, status, retry_after)` makes the next n calls answer 429 (with `Retry-After`) or
5xx with LINE's bodies. Every call is recorded (`calls`), with the time it arrived
(`time.perf_counter()`, comparable within this process); `delivered(user_id)` lists the
messages LINE accepted for a user, from replies and pushes, in order.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.runtime.stack import free_port

ACCESS_TOKEN = "test-line-access-token"
CHANNEL_SECRET = "test-line-channel-secret"
INVALID_REPLY_TOKEN = {"message": "Invalid reply token"}
RATE_LIMITED = {"message": "The API rate limit has been exceeded. Try again later."}
SERVER_ERROR = {"message": "An error occurred in the server. Try again later."}
NOT_FOUND = {"message": "Not found"}
AUTH_FAILED = {"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}
USER_ID = re.compile(r"^U[0-9a-f]{32}$")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def user_id() -> str:
    """A user ID shaped like LINE's."""
    return "U" + secrets.token_hex(16)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int
    at: float  # time.perf_counter() when the call arrived
    body: bytes = field(default=b"", repr=False)


@dataclass
class _Failure:
    status: int
    retry_after: float | None


class FakeLineApi:
    def __init__(
        self,
        *,
        access_token: str = ACCESS_TOKEN,
        reply_token_ttl: float = 60.0,
        delay: float = 0.0,
        port: int | None = None,
        lenient_reply_tokens: bool = False,
    ) -> None:
        self.access_token = access_token
        # For trying the bot by hand: a reply token the fake did not issue is accepted, once.
        self.lenient_reply_tokens = lenient_reply_tokens
        self._lenient_used: set[str] = set()
        self.reply_token_ttl = reply_token_ttl
        self.delay = delay  # seconds every call waits before answering (a slow LINE)
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._failures: list[_Failure] = []
        self._skip = 0
        self._reply_tokens: dict[str, tuple[str, float]] = {}  # token -> (user id, issued at)
        self._accepted_keys: dict[str, dict] = {}  # retry key -> the 200 body it got
        self._delivered: list[tuple[str, str, dict]] = []  # (user id, "reply"/"push", message)
        self.rich_menus: dict[str, dict] = {}
        # What users sent (images ...), served by the blob API: message id -> (bytes, content type).
        self.contents: dict[str, tuple[bytes, str]] = {}
        self.rich_menu_images: dict[str, bytes] = {}
        self.default_rich_menu: str | None = None
        # Called (in the fake's thread) with each call once it is recorded: benchmarks wait on it.
        self.listener: Callable[[Call], None] | None = None
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeLineApi":
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", access_log=False, ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-line-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LINE API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "FakeLineApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._skip = 0
            self._reply_tokens.clear()
            self._accepted_keys.clear()
            self._delivered.clear()

    def add_content(self, message_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Content a user sent with message `message_id`, for `GET /v2/bot/message/{id}/content`."""
        with self._lock:
            self.contents[message_id] = (data, content_type)

    def issue_reply_token(self, user: str) -> str:
        """A reply token as LINE puts in a webhook event for `user`."""
        token = secrets.token_hex(16)
        with self._lock:
            self._reply_tokens[token] = (user, time.monotonic())
        return token

    def fail_next(self, count: int, status: int = 429, retry_after: float | None = None, *, skip: int = 0) -> None:
        """The next `count` calls (any endpoint) answer `status` (429: with Retry-After if given),
        after `skip` calls answered normally."""
        with self._lock:
            self._skip = skip
            self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def delivered(self, user: str | None = None) -> list[dict]:
        """Messages LINE accepted (replies and pushes), in order, for one user or everyone."""
        with self._lock:
            return [m for (u, _, m) in self._delivered if user is None or u == user]

    def delivered_with_route(self, user: str | None = None) -> list[tuple[str, dict]]:
        with self._lock:
            return [(how, m) for (u, how, m) in self._delivered if user is None or u == user]

    def texts(self, user: str | None = None) -> list[str]:
        return [m.get("text", "") for m in self.delivered(user)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; calls: {[(c.path, c.status) for c in self.calls]}")
            time.sleep(0.02)

    # -- the API -------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI()
        fake = self

        async def answer(request: Request, handler: Callable[[Request, bytes, Any], tuple[int, Any, dict]]):
            body = await request.body()
            at = time.perf_counter()
            headers = {k.lower(): v for k, v in request.headers.items()}
            payload: Any = None
            if body and headers.get("content-type", "").startswith("application/json"):
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
            if fake.delay:
                await asyncio.sleep(fake.delay)
            with fake._lock:
                if headers.get("authorization") != f"Bearer {fake.access_token}":
                    status, content, extra = 401, AUTH_FAILED, {}
                elif fake._failures and fake._skip:
                    fake._skip -= 1
                    status, content, extra = handler(request, body, payload)
                elif fake._failures:
                    failure = fake._failures.pop(0)
                    status, content = failure.status, RATE_LIMITED if failure.status == 429 else SERVER_ERROR
                    extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
                else:
                    status, content, extra = handler(request, body, payload)
                call = Call(request.method, request.url.path, headers, payload, status, at, body)
                fake._calls.append(call)
            if fake.listener is not None:
                fake.listener(call)
            response_headers = {"x-line-request-id": str(uuid.uuid4()), **extra}
            return JSONResponse(content, status_code=status, headers=response_headers)

        @app.get("/v2/bot/message/{message_id}/content")
        async def content(request: Request, message_id: str):
            # The blob API (api-data.line.me): the bytes, or LINE's JSON errors (401, 404 once the
            # content is gone or was never there, 429/5xx when failures are queued).
            at = time.perf_counter()
            headers = {k.lower(): v for k, v in request.headers.items()}
            with fake._lock:
                found = fake.contents.get(message_id)
                if headers.get("authorization") != f"Bearer {fake.access_token}":
                    status, error = 401, AUTH_FAILED
                elif fake._failures:
                    failure = fake._failures.pop(0)
                    status = failure.status
                    error = RATE_LIMITED if status == 429 else SERVER_ERROR
                elif found is None:
                    status, error = 404, NOT_FOUND
                else:
                    status, error = 200, None
                fake._calls.append(Call(request.method, request.url.path, headers, None, status, at, b""))
            request_id = {"x-line-request-id": str(uuid.uuid4())}
            if error is not None:
                return JSONResponse(error, status_code=status, headers=request_id)
            data, content_type = found
            return Response(data, media_type=content_type, headers=request_id)

        @app.post("/v2/bot/message/reply")
        async def reply(request: Request):
            return await answer(request, fake._reply)

        @app.post("/v2/bot/message/push")
        async def push(request: Request):
            return await answer(request, fake._push)

        @app.post("/v2/bot/chat/loading/start")
        async def loading(request: Request):
            return await answer(request, fake._loading)

        @app.post("/v2/bot/richmenu")
        async def create_rich_menu(request: Request):
            return await answer(request, fake._create_rich_menu)

        @app.get("/v2/bot/richmenu/list")
        async def list_rich_menus(request: Request):
            return await answer(request, lambda r, b, p: (200, {"richmenus": list(fake.rich_menus.values())}, {}))

        @app.post("/v2/bot/richmenu/{menu_id}/content")
        async def upload_image(request: Request, menu_id: str):
            return await answer(request, lambda r, b, p: fake._upload(menu_id, r, b))

        @app.delete("/v2/bot/richmenu/{menu_id}")
        async def delete_rich_menu(request: Request, menu_id: str):
            return await answer(request, lambda r, b, p: fake._delete_menu(menu_id))

        @app.post("/v2/bot/user/all/richmenu/{menu_id}")
        async def set_default(request: Request, menu_id: str):
            return await answer(request, lambda r, b, p: fake._set_default(menu_id))

        @app.get("/v2/bot/user/all/richmenu")
        async def get_default(request: Request):
            if fake.default_rich_menu is None:
                return await answer(request, lambda r, b, p: (404, {"message": "no default rich menu"}, {}))
            return await answer(request, lambda r, b, p: (200, {"richMenuId": fake.default_rich_menu}, {}))

        return app

    # Handlers run under the lock; each returns (status, JSON body, extra headers).

    def _reply(self, request: Request, body: bytes, payload: Any) -> tuple[int, Any, dict]:
        if not isinstance(payload, dict):
            return _invalid("The request body could not be parsed as JSON")
        problems = _check_messages(payload.get("messages"))
        token = payload.get("replyToken")
        if not isinstance(token, str) or not token:
            problems.append(("May not be empty", "replyToken"))
        if problems:
            return _errors(problems)
        issued = self._reply_tokens.pop(token, None)
        if issued is None and self.lenient_reply_tokens and token not in self._lenient_used:
            self._lenient_used.add(token)
            issued = ("(the webhook's user)", time.monotonic())
        if issued is None or time.monotonic() - issued[1] > self.reply_token_ttl:
            return 400, INVALID_REPLY_TOKEN, {}
        sent = self._deliver(issued[0], "reply", payload["messages"])
        return 200, {"sentMessages": sent}, {}

    def _push(self, request: Request, body: bytes, payload: Any) -> tuple[int, Any, dict]:
        if not isinstance(payload, dict):
            return _invalid("The request body could not be parsed as JSON")
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                return 400, {"message": "The value of the X-Line-Retry-Key header is invalid"}, {}
            if key in self._accepted_keys:
                accepted = self._accepted_keys[key]
                return 409, {"message": "The retry key is already accepted", **accepted}, {
                    "x-line-accepted-request-id": accepted["requestId"]
                }
        problems = _check_messages(payload.get("messages"))
        to = payload.get("to")
        if not isinstance(to, str) or not USER_ID.match(to):
            return 400, {"message": "The property, 'to', in the request body is invalid (line: -, column: -)"}, {}
        if problems:
            return _errors(problems)
        sent = self._deliver(to, "push", payload["messages"])
        if key is not None:
            self._accepted_keys[key] = {"sentMessages": sent, "requestId": str(uuid.uuid4())}
        return 200, {"sentMessages": sent}, {}

    def _deliver(self, user: str, how: str, messages: list[dict]) -> list[dict]:
        sent = []
        for message in messages:
            self._delivered.append((user, how, message))
            sent.append({"id": str(secrets.randbelow(10**18)), "quoteToken": secrets.token_hex(8)})
        return sent

    def _loading(self, request: Request, body: bytes, payload: Any) -> tuple[int, Any, dict]:
        if not isinstance(payload, dict) or not isinstance(payload.get("chatId"), str):
            return _errors([("May not be empty", "chatId")])
        seconds = payload.get("loadingSeconds", 20)
        if not isinstance(seconds, int) or not 5 <= seconds <= 60 or seconds % 5:
            return _errors([("Must be a multiple of 5 between 5 and 60", "loadingSeconds")])
        return 202, {}, {}

    def _create_rich_menu(self, request: Request, body: bytes, payload: Any) -> tuple[int, Any, dict]:
        if not isinstance(payload, dict):
            return _invalid("The request body could not be parsed as JSON")
        problems = []
        size = payload.get("size") or {}
        if not 800 <= size.get("width", 0) <= 2500 or not 250 <= size.get("height", 0) <= 1686:
            problems.append(("Invalid size", "size"))
        if utf16_length(str(payload.get("chatBarText", ""))) > 14:
            problems.append(("Length must be between 0 and 14", "chatBarText"))
        if utf16_length(str(payload.get("name", ""))) > 300:
            problems.append(("Length must be between 0 and 300", "name"))
        areas = payload.get("areas") or []
        if not 1 <= len(areas) <= 20:
            problems.append(("Size must be between 1 and 20", "areas"))
        for i, area in enumerate(areas):
            label = (area.get("action") or {}).get("label", "")
            if utf16_length(label) > 20:
                problems.append(("Length must be between 0 and 20", f"areas[{i}].action.label"))
        if problems:
            return _errors(problems)
        menu_id = "richmenu-" + secrets.token_hex(16)
        self.rich_menus[menu_id] = {"richMenuId": menu_id, **payload}
        return 200, {"richMenuId": menu_id}, {}

    def _upload(self, menu_id: str, request: Request, body: bytes) -> tuple[int, Any, dict]:
        menu = self.rich_menus.get(menu_id)
        if menu is None:
            return 404, {"message": "Not found"}, {}
        content_type = request.headers.get("content-type", "")
        if content_type not in ("image/png", "image/jpeg"):
            return 415, {"message": "Unsupported Media Type"}, {}
        if len(body) > 1024 * 1024:
            return 413, {"message": "Request Entity Too Large"}, {}
        if menu_id in self.rich_menu_images:
            return 400, {"message": "An image has already been uploaded to the richmenu"}, {}
        if content_type == "image/png":
            if body[:8] != b"\x89PNG\r\n\x1a\n" or body[12:16] != b"IHDR":
                return 400, {"message": "Invalid image"}, {}
            width, height = struct.unpack(">II", body[16:24])
            if (width, height) != (menu["size"]["width"], menu["size"]["height"]):
                return 400, {"message": "An image size must match the size of the rich menu"}, {}
        self.rich_menu_images[menu_id] = body
        return 200, {}, {}

    def _delete_menu(self, menu_id: str) -> tuple[int, Any, dict]:
        if self.rich_menus.pop(menu_id, None) is None:
            return 404, {"message": "Not found"}, {}
        self.rich_menu_images.pop(menu_id, None)
        if self.default_rich_menu == menu_id:
            self.default_rich_menu = None
        return 200, {}, {}

    def _set_default(self, menu_id: str) -> tuple[int, Any, dict]:
        if menu_id not in self.rich_menus:
            return 404, {"message": "Not found"}, {}
        if menu_id not in self.rich_menu_images:
            return 400, {"message": "must upload richmenu image before applying it to user"}, {}
        self.default_rich_menu = menu_id
        return 200, {}, {}


def _check_messages(messages: Any) -> list[tuple[str, str]]:
    """LINE's limits on a message list, as (message, property) problems."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return [("Size must be between 1 and 5", "messages")]
    problems = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("type") != "text":
            problems.append(("Only text messages are expected from this bot", f"messages[{i}].type"))
            continue
        text = message.get("text")
        if not isinstance(text, str) or not text:
            problems.append(("May not be empty", f"messages[{i}].text"))
        elif utf16_length(text) > 5000:
            problems.append(("Length must be between 0 and 5000", f"messages[{i}].text"))
        items = (message.get("quickReply") or {}).get("items", [])
        if len(items) > 13:
            problems.append(("Size must be between 0 and 13", f"messages[{i}].quickReply.items"))
        for j, item in enumerate(items):
            action = item.get("action") or {}
            where = f"messages[{i}].quickReply.items[{j}].action"
            label = action.get("label", "")
            if not label or utf16_length(label) > 20:
                problems.append(("Length must be between 1 and 20", f"{where}.label"))
            if action.get("type") == "postback" and not 1 <= utf16_length(action.get("data", "")) <= 300:
                problems.append(("Length must be between 1 and 300", f"{where}.data"))
    return problems


def _errors(problems: list[tuple[str, str]]) -> tuple[int, Any, dict]:
    details = [{"message": message, "property": prop} for message, prop in problems]
    return 400, {"message": f"The request body has {len(details)} error(s)", "details": details}, {}


def _invalid(message: str) -> tuple[int, Any, dict]:
    return 400, {"message": message}, {}


# -- webhooks the LINE platform would send ---------------------------------------------


def sign(body: bytes | str, channel_secret: str = CHANNEL_SECRET) -> str:
    """X-Line-Signature for `body`: base64 of HMAC-SHA256 with the channel secret."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return base64.b64encode(hmac.new(channel_secret.encode("utf-8"), raw, hashlib.sha256).digest()).decode()


def webhook_body(events: list[dict], destination: str = "U" + "0" * 32) -> bytes:
    return json.dumps({"destination": destination, "events": events}, ensure_ascii=False).encode("utf-8")


def signed_headers(body: bytes, channel_secret: str = CHANNEL_SECRET) -> dict[str, str]:
    return {"content-type": "application/json; charset=utf-8", "x-line-signature": sign(body, channel_secret)}


def _event(kind: str, user: str, *, reply_token: str | None, event_id: str | None, redelivery: bool, **fields: Any):
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or ("01" + secrets.token_hex(12).upper()),
        "deliveryContext": {"isRedelivery": redelivery},
        **fields,
    }
    if reply_token is not None:
        event["replyToken"] = reply_token
    return event


def text_event(
    user: str, text: str, reply_token: str | None = None, *, event_id: str | None = None, redelivery: bool = False
) -> dict:
    message = {"id": str(secrets.randbelow(10**18)), "type": "text", "text": text, "quoteToken": secrets.token_hex(8)}
    return _event(
        "message", user, reply_token=reply_token, event_id=event_id, redelivery=redelivery, message=message
    )


def postback_event(user: str, data: str, reply_token: str | None = None, *, event_id: str | None = None) -> dict:
    return _event(
        "postback", user, reply_token=reply_token, event_id=event_id, redelivery=False, postback={"data": data}
    )


def media_event(
    user: str, kind: str, reply_token: str | None = None, *, event_id: str | None = None,
    message_id: str | None = None, **overrides: Any,
) -> dict:
    """A sticker, image, audio, video, file or location message (`overrides` replace its fields)."""
    details: dict[str, Any] = {
        "sticker": {"packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC", "quoteToken": "q"},
        "image": {"contentProvider": {"type": "line"}, "quoteToken": "q"},
        "video": {"duration": 2000, "contentProvider": {"type": "line"}, "quoteToken": "q"},
        "audio": {"duration": 2000, "contentProvider": {"type": "line"}},
        "file": {"fileName": "doc.pdf", "fileSize": 1024},
        "location": {"title": "ที่ว่าการอำเภอ", "address": "กรุงเทพฯ", "latitude": 13.75, "longitude": 100.5},
    }[kind]
    message = {"id": message_id or str(secrets.randbelow(10**18)), "type": kind, **details, **overrides}
    return _event("message", user, reply_token=reply_token, event_id=event_id, redelivery=False, message=message)


def follow_event(user: str, reply_token: str | None = None, *, event_id: str | None = None) -> dict:
    return _event(
        "follow", user, reply_token=reply_token, event_id=event_id, redelivery=False, follow={"isUnblocked": False}
    )


def unfollow_event(user: str, *, event_id: str | None = None) -> dict:
    return _event("unfollow", user, reply_token=None, event_id=event_id, redelivery=False)


def main(argv: list[str] | None = None) -> int:
    """Try the LINE channel by hand: `serve` the fake and print what the bot sends; `send` a signed message."""
    import argparse
    import sys

    import httpx

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.line_api", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake LINE API and print every call the bot makes")
    serve.add_argument("--port", type=int, default=8900)
    send = commands.add_parser("send", help="send the gateway a signed text message from a LINE user")
    send.add_argument("text")
    send.add_argument("--gateway", default="http://127.0.0.1:8000")
    send.add_argument("--user", default="U" + "1" * 32, help="the LINE user ID it comes from")
    send.add_argument("--secret", default=CHANNEL_SECRET, help="LINE_CHANNEL_SECRET of the gateway")
    args = parser.parse_args(argv)
    if args.command == "send":
        body = webhook_body([text_event(args.user, args.text, "manual-" + secrets.token_hex(8))])
        response = httpx.post(f"{args.gateway}/webhooks/line", content=body, headers=signed_headers(body, args.secret))
        print(f"gateway answered {response.status_code} {response.text}")
        return 0 if response.status_code == 200 else 1

    def show(call: Call) -> None:
        shown = f"{len(call.body)} bytes"
        if call.json is not None:
            shown = json.dumps(call.json, ensure_ascii=False, indent=1)
        print(f"{call.method} {call.path} -> {call.status}\n{shown}", flush=True)

    fake = FakeLineApi(port=args.port, lenient_reply_tokens=True)
    fake.listener = show
    with fake:
        print(
            f"Fake LINE API on {fake.url}. Start the bot with\n  LINE_CHANNEL_SECRET={CHANNEL_SECRET} "
            f"LINE_CHANNEL_ACCESS_TOKEN={ACCESS_TOKEN} LINE_API_BASE_URL={fake.url} make run\nCtrl-C stops.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
