"""The portal's pages and forms under `/portal` (server-rendered, Thai, one small CSS file).

Every page but the login needs a live session (bot.gateway.portal.sessions); every POST form
carries the session's CSRF token, checked before anything else is read. The complaints domain
decides what an officer may see: another agency's complaint is the same 404 as an unknown number.
Actions follow post/redirect/get; their outcome comes back as a fixed code in the query string
(`?done=acknowledged`, `?error=transition`), never as text someone typed.

Logins are throttled per username and per address (bot.gateway.limits, counted before the
password is checked), and every failure gets the same words whatever failed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from bot.answers.render import STATUS_LABELS as REQUEST_STATUS_LABELS
from bot.answers.render import template_environment
from bot.casework.errors import CaseworkError, InvalidTransition, NotFound, UnknownAgency, UnknownStatus
from bot.complaints import (
    STATUS_LABELS,
    STATUSES,
    Desk,
    acknowledge,
    case_for_officer,
    contact_for_officer,
    deliveries,
    history,
    queue,
    reply,
    resend,
    resolve,
    set_status,
    subscriptions,
    transfer,
)
from bot.complaints.model import OFFICER_TRANSITIONS, Officer
from bot.gateway.limits import RateLimiter
from bot.gateway.portal.accounts import Account, Officers
from bot.gateway.portal.sessions import Sessions, check_csrf, csrf_token
from bot.settings import TIMEZONE
from bot.text import format_thai_date, format_time

logger = logging.getLogger(__name__)

PREFIX = "/portal"
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "sla_portal"
LOGIN_COOKIE = "sla_portal_login"
MAX_FORM_BYTES = 32 * 1024
LOGIN_PER_USERNAME = 5  # attempts a minute
LOGIN_PER_ADDRESS = 30

LOGIN_FAILED = "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง"
LOGIN_THROTTLED = "มีการพยายามเข้าสู่ระบบหลายครั้งเกินไป กรุณารอ {seconds} วินาทีแล้วลองใหม่"
FORM_EXPIRED = "แบบฟอร์มหมดอายุหรือไม่ถูกต้อง กรุณาเปิดหน้านี้ใหม่แล้วลองอีกครั้ง"
NOT_FOUND = "ไม่พบเรื่องที่ต้องการ หรือเรื่องนี้ไม่ได้อยู่ในความรับผิดชอบของหน่วยงานของท่าน"
BAD_REQUEST = "คำขอไม่ถูกต้อง กรุณาตรวจสอบข้อมูลแล้วลองใหม่"

DONE = {
    "acknowledged": "ตอบรับเรื่องแล้ว ผู้ร้องเรียนจะได้รับแจ้ง",
    "status": "เปลี่ยนสถานะแล้ว",
    "replied": "ส่งข้อความถึงผู้ร้องเรียนแล้ว",
    "transferred": "โอนเรื่องไปยังหน่วยงานที่เลือกแล้ว",
    "resolved": "บันทึกผลการดำเนินการแล้ว ผู้ร้องเรียนจะได้รับแจ้ง",
    "resent": "ส่ง webhook ซ้ำแล้ว ระบบจะส่งอีกครั้งโดยเร็ว",
    "logged_out": "ออกจากระบบแล้ว",
}
ERRORS = {
    "transition": "ทำรายการนี้ไม่ได้กับสถานะปัจจุบันของเรื่อง",
    "agency": "ไม่พบหน่วยงานที่เลือก",
    "same_agency": "เรื่องนี้อยู่ที่หน่วยงานที่เลือกอยู่แล้ว",
    "reason": "กรุณาระบุเหตุผลในการโอนเรื่อง (ไม่เกิน 500 ตัวอักษร)",
    "outcome": "กรุณาระบุผลการดำเนินการ (ไม่เกิน 2,000 ตัวอักษร)",
    "text": "กรุณาพิมพ์ข้อความ (ไม่เกิน 2,000 ตัวอักษร)",
    "status": "กรุณาเลือกสถานะที่ถูกต้อง",
    "not_resent": "ส่งซ้ำไม่ได้: รายการนี้ไม่ได้อยู่ในสถานะส่งไม่สำเร็จ หรือยกเลิกการสมัครรับแล้ว",
    "input": "ข้อมูลไม่ถูกต้อง กรุณาตรวจสอบแล้วลองใหม่",
    "expired": "หมดเวลาการใช้งาน กรุณาเข้าสู่ระบบอีกครั้ง",
}
ROUTE_KINDS = {"filed": "รับเรื่องเมื่อยื่น", "transfer": "โอนเรื่อง", "escalation": "ส่งต่อเพราะเกินกำหนด"}
MESSAGE_KINDS = {
    "reply": "ข้อความถึงผู้ร้องเรียน", "resolution": "ผลการดำเนินการ", "reopen": "ผู้ร้องเรียนขอเปิดเรื่องอีกครั้ง",
    "close": "ปิดเรื่อง",
}
AUDIT_ACTIONS = {
    "file": "ยื่นเรื่องร้องเรียน", "status": "เปลี่ยนสถานะ", "reply": "ตอบผู้ร้องเรียน", "transfer": "โอนเรื่อง",
    "view_contact": "เปิดดูเบอร์ติดต่อผู้ร้องเรียน", "overdue": "เกินกำหนด", "escalate": "ส่งต่อเพราะเกินกำหนด",
    "reopen": "ผู้ร้องเรียนขอเปิดเรื่องอีกครั้ง", "purge_contact": "ลบเบอร์ติดต่อเมื่อครบระยะเวลาเก็บ",
}
AUDIT_FIELDS = {
    "status": "สถานะ", "agency_code": "หน่วยงาน", "acknowledge_due_at": "กำหนดตอบรับ",
    "resolve_due_at": "กำหนดแล้วเสร็จ", "acknowledged_at": "ตอบรับเมื่อ", "resolved_at": "แล้วเสร็จเมื่อ",
    "closed_at": "ปิดเรื่องเมื่อ", "reopen_count": "จำนวนครั้งที่เปิดใหม่", "escalation_count": "จำนวนครั้งที่ส่งต่อ",
}
CONTACT_STATES = {
    "anonymous": "ผู้ร้องเรียนไม่ประสงค์ออกนาม",
    "withheld": "ไม่เปิดเผยต่อหน่วยงานของท่าน (เรื่องร้องเรียนเกี่ยวกับการทุจริตหรือประพฤติมิชอบของหน่วยงานนี้)",
}
SLA_STATES = {
    "on_time": "ตามกำหนด", "at_risk": "ใกล้ครบกำหนด", "late": "ล่าช้า", "completed_on_time": "เสร็จตามกำหนด",
    "completed_late": "เสร็จล่าช้า",
}
DELIVERY_STATES = {"pending": "รอส่ง", "sent": "ส่งแล้ว", "failed": "ส่งไม่สำเร็จ", "cancelled": "ยกเลิก"}


# -- the portal's objects, built on first use from the app's desk --------------------------------


class Portal:
    """Accounts and sessions on the desk's database, and the clock every portal page reads.

    Tests replace `clock` (and may pass a cheap argon2 `hasher`)."""

    def __init__(self, desk: Desk, *, clock: Optional[Callable[[], dt.datetime]] = None, hasher: Any = None) -> None:
        self.desk = desk
        self.clock: Callable[[], dt.datetime] = clock or (lambda: desk.now())
        self.officers = Officers(desk.engine, clock=self.now, hasher=hasher)
        self.sessions = Sessions(desk.engine, self.now)

    def now(self) -> dt.datetime:
        return self.clock().astimezone(TIMEZONE)


def portal_of(app: Any) -> Portal:
    portal = getattr(app.state, "portal", None)
    if portal is None:
        portal = app.state.portal = Portal(app.state.complaints.desk)
    return portal


# -- errors and headers ---------------------------------------------------------------------------


class NeedLogin(Exception):
    """No live session: to the login page (and back here afterwards, for a GET)."""


class PortalError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class PortalRoute(APIRoute):
    """Turns the portal's errors into Thai pages and adds its security headers to every answer."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except NeedLogin:
                response = RedirectResponse(_login_url(request), status_code=303)
            except PortalError as exc:
                response = error_page(exc.status, exc.message)
            except NotFound:
                response = error_page(404, NOT_FOUND)
            except (CaseworkError, RequestValidationError):
                response = error_page(400, BAD_REQUEST)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return guarded


def _login_url(request: Request) -> str:
    if request.method == "GET" and request.url.path != f"{PREFIX}/login":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return f"{PREFIX}/login?next={quote(target, safe='')}"
    return f"{PREFIX}/login?error=expired"


def _safe_next(target: Optional[str]) -> str:
    """Only a path inside the portal (no scheme, host or `//`): never an open redirect."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/queue"


# -- templates -----------------------------------------------------------------------------------


def _when(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "-"
    local = value.astimezone(TIMEZONE)
    return f"{format_thai_date(local.date(), short=True)} {format_time(local.time())}"


def _long_when(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "-"
    local = value.astimezone(TIMEZONE)
    return f"{format_thai_date(local.date(), short=True, weekday=True)} เวลา {format_time(local.time())}"


def _environment() -> jinja2.Environment:
    env = template_environment(jinja2.FileSystemLoader(HERE / "templates"))
    env.filters.update(
        when=_when,
        long_when=_long_when,
        status_th=lambda s: STATUS_LABELS.get(s, s),
        request_status_th=lambda s: REQUEST_STATUS_LABELS.get(s, s),
        sla_th=lambda s: SLA_STATES.get(s, s),
        delivery_th=lambda s: DELIVERY_STATES.get(s, s),
        route_kind_th=lambda s: ROUTE_KINDS.get(s, s),
        message_kind_th=lambda s: MESSAGE_KINDS.get(s, s),
        action_th=lambda s: AUDIT_ACTIONS.get(s, s),
        actor_th=_actor,
        shorten=lambda s, n=120: s if len(s) <= n else s[: n - 1] + "…",
    )
    return env


def _actor(actor: str) -> str:
    if actor.startswith("officer:"):
        return f"เจ้าหน้าที่ {actor.split(':', 1)[1]}"
    return {"citizen": "ผู้ร้องเรียน", "system": "ระบบ", "cli": "ผู้ดูแลระบบ", "demo": "ข้อมูลสาธิต"}.get(actor, actor)


ENV = _environment()


def page(template: str, http_status: int = 200, /, **context: Any) -> HTMLResponse:
    context = {"account": None, "csrf": "", "notice": None, "error": None, "agency_name": "", "nav": "", **context}
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=http_status)


def error_page(status: int, message: str) -> HTMLResponse:
    return page("error.html.j2", status, message=message, title="แจ้งเตือน")


# -- who is asking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A request from a logged-in officer: their account, and their session's CSRF token."""

    account: Account
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def officer(self) -> Officer:
        return self.account.officer


def current(request: Request) -> Visit:
    token = request.cookies.get(SESSION_COOKIE) or ""
    account = portal_of(request.app).sessions.resume(token)
    if account is None:
        raise NeedLogin
    return Visit(account, token)


async def form_fields(request: Request) -> dict[str, str]:
    """An url-encoded form (the first value of each field); other bodies and big ones are refused."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise PortalError(415, BAD_REQUEST)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PortalError(413, BAD_REQUEST)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PortalError(400, BAD_REQUEST) from exc
    return {key: values[0] for key, values in parsed.items()}


@dataclass(frozen=True)
class Posted:
    visit: Visit
    fields: dict[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def posted(visit: Visit = Depends(current), fields: dict[str, str] = Depends(form_fields)) -> Posted:
    """A POST from a logged-in officer whose form carries their session's CSRF token."""
    if not check_csrf(visit.token, fields.get("csrf")):
        raise PortalError(403, FORM_EXPIRED)
    return Posted(visit, fields)


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )


def _agency_name(desk: Desk, code: Optional[str]) -> str:
    if not code:
        return "-"
    agency = desk.catalog().agency(code)
    return f"{agency.name} ({code})" if agency else code


def _base(request: Request, visit: Visit, nav: str, **context: Any) -> dict[str, Any]:
    desk = portal_of(request.app).desk
    done, error = request.query_params.get("done"), request.query_params.get("error")
    return {
        "account": visit.account,
        "csrf": visit.csrf,
        "nav": nav,
        "agency_name": (
            "ทุกหน่วยงาน (ส่วนกลาง)" if visit.account.central else _agency_name(desk, visit.account.agency_code)
        ),
        "notice": DONE.get(done or ""),
        "error": ERRORS.get(error or ""),
        **context,
    }


def _agency_choices(desk: Desk) -> list[tuple[str, str]]:
    return sorted(((a.code, f"{a.name} ({a.code})") for a in desk.catalog().agencies.values()), key=lambda x: x[0])


# -- the routes ----------------------------------------------------------------------------------


def router() -> APIRouter:
    routes = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)

    @routes.get("")
    @routes.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/queue", status_code=303)

    @routes.get("/static/portal.css")
    def stylesheet() -> FileResponse:
        return FileResponse(HERE / "static" / "portal.css", media_type="text/css",
                            headers={"Cache-Control": "public, max-age=3600"})

    # -- login and logout

    @routes.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        response = page(
            "login.html.j2", title="เข้าสู่ระบบ", login_csrf=nonce,
            next=_safe_next(request.query_params.get("next")),
            notice=DONE.get(request.query_params.get("done") or ""),
            error=ERRORS.get(request.query_params.get("error") or ""),
        )
        _set_cookie(response, request, LOGIN_COOKIE, nonce, 3600)
        return response

    @routes.post("/login")
    async def login(request: Request, fields: dict[str, str] = Depends(form_fields)) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or ""
        if not nonce or not hmac.compare_digest(nonce, fields.get("csrf", "")):
            raise PortalError(403, FORM_EXPIRED)
        username = fields.get("username", "").strip().lower()[:100]
        password = fields.get("password", "")
        target = _safe_next(fields.get("next"))
        limiter: RateLimiter = request.app.state.limiter
        address = request.client.host if request.client else "unknown"
        by_name = await limiter.hit("portal-login-user", username, LOGIN_PER_USERNAME)
        by_address = await limiter.hit("portal-login-address", address, LOGIN_PER_ADDRESS)
        if not (by_name.allowed and by_address.allowed):
            wait = max(by_name.retry_after, by_address.retry_after)
            response = page(
                "login.html.j2", 429, title="เข้าสู่ระบบ", login_csrf=nonce, next=target, username=username,
                error=LOGIN_THROTTLED.format(seconds=wait),
            )
            response.headers["Retry-After"] = str(wait)
            return response
        portal = portal_of(request.app)
        account = await run_in_threadpool(portal.officers.authenticate, username, password)
        if account is None:
            logger.info("portal: failed login from %s", "a client")  # never the name or address
            return page(
                "login.html.j2", 401, title="เข้าสู่ระบบ", login_csrf=nonce, next=target, username=username,
                error=LOGIN_FAILED,
            )
        await run_in_threadpool(portal.sessions.end, request.cookies.get(SESSION_COOKIE))  # a session it replaces
        token = await run_in_threadpool(portal.sessions.start, account)
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, request, SESSION_COOKIE, token, int(portal.sessions.absolute.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    @routes.post("/logout")
    def logout(request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        portal_of(request.app).sessions.end(form.visit.token)
        response = RedirectResponse(f"{PREFIX}/login?done=logged_out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- complaints

    @routes.get("/queue")
    def queue_page(request: Request, visit: Visit = Depends(current)) -> HTMLResponse:
        portal = portal_of(request.app)
        desk, now = portal.desk, portal.now()
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            status = None
        agency = (request.query_params.get("agency") or "").upper() or None
        if agency is not None and desk.catalog().agency(agency) is None:
            agency = None
        overdue = request.query_params.get("overdue") == "1" or None
        found = queue(
            desk, visit.officer, status=status, agency_code=agency if visit.account.central else None,
            overdue=overdue, limit=200, now=now,
        )
        names = {code: a.name for code, a in desk.catalog().agencies.items()}
        return page(
            "queue.html.j2", **_base(
                request, visit, "queue", title="เรื่องร้องเรียน", complaints=found, now=now, status=status or "",
                agency=agency or "", overdue=bool(overdue), statuses=[(s, STATUS_LABELS[s]) for s in STATUSES],
                agencies=_agency_choices(desk), names=names,
            )
        )

    def detail(request: Request, visit: Visit, number: str, phone: Optional[str] = None) -> HTMLResponse:
        portal = portal_of(request.app)
        desk, now = portal.desk, portal.now()
        case = case_for_officer(desk, number, visit.officer)
        complaint = case.complaint
        catalog = desk.catalog()
        service = catalog.service(complaint.service_id) if complaint.service_id else None
        step = None
        if service is not None and complaint.step_index is not None and 0 <= complaint.step_index < len(service.steps):
            step = service.steps[complaint.step_index]
        entries = history(desk, complaint.tracking_number, visit.officer)
        map_url = None
        if complaint.latitude is not None and complaint.longitude is not None:
            lat, lon = f"{complaint.latitude:.6f}", f"{complaint.longitude:.6f}"
            map_url = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
        return page(
            "complaint.html.j2", **_base(
                request, visit, "queue", title=f"เรื่องร้องเรียน {complaint.tracking_number}", case=case,
                c=complaint, now=now, service=service, step=step, entries=[_entry(e) for e in entries],
                map_url=map_url, phone=phone, contact_note=CONTACT_STATES.get(case.contact),
                next_statuses=[(s, STATUS_LABELS[s]) for s in STATUSES if s in OFFICER_TRANSITIONS[complaint.status]],
                agencies=[(code, name) for code, name in _agency_choices(desk) if code != complaint.agency_code],
                agency_label=_agency_name(desk, complaint.agency_code),
                about_label=_agency_name(desk, complaint.about_agency) if complaint.about_agency else None,
            )
        )

    @routes.get("/complaints/{number}")
    def complaint_page(number: str, request: Request, visit: Visit = Depends(current)) -> HTMLResponse:
        return detail(request, visit, number)

    @routes.post("/complaints/{number}/contact")
    def reveal_contact(number: str, request: Request, form: Posted = Depends(posted)) -> HTMLResponse:
        desk = portal_of(request.app).desk
        phone = contact_for_officer(desk, number, form.visit.officer, now=portal_of(request.app).now())
        return detail(request, form.visit, number, phone=phone or "")

    @routes.get("/complaints/{number}/photos/{photo_id}")
    def photo(number: str, photo_id: str, request: Request, visit: Visit = Depends(current)) -> FileResponse:
        desk = portal_of(request.app).desk
        case = case_for_officer(desk, number, visit.officer)
        match = next((p for p in case.complaint.photos if p.id == photo_id), None)
        path = desk.photos.path(photo_id) if (match is not None and desk.photos is not None) else None
        if match is None or path is None:
            raise NotFound("no such photo")
        return FileResponse(
            path, media_type=match.media_type,
            headers={"Cache-Control": "private, no-store", "Content-Disposition": "inline"},
        )

    def act(request: Request, form: Posted, number: str, done: str, change: Callable[[Desk, Officer, dt.datetime], Any],
            field_errors: Optional[dict[str, str]] = None) -> RedirectResponse:
        portal = portal_of(request.app)
        officer = form.visit.officer
        try:
            changed = change(portal.desk, officer, portal.now())
        except NotFound:
            raise
        except (InvalidTransition, UnknownStatus) as exc:
            code = "status" if isinstance(exc, UnknownStatus) else "transition"
            return _to_case(number, error=code)
        except UnknownAgency:
            return _to_case(number, error="agency")
        except CaseworkError as exc:
            code = (field_errors or {}).get(exc.field or "", "input")
            return _to_case(number, error=code)
        if not officer.may_see(changed.agency_code):  # transferred away: back to the queue
            return RedirectResponse(f"{PREFIX}/queue?done={done}", status_code=303)
        return _to_case(changed.tracking_number, done=done)

    @routes.post("/complaints/{number}/acknowledge")
    def acknowledge_(number: str, request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        note = form.get("note").strip() or None
        return act(request, form, number, "acknowledged",
                   lambda desk, officer, now: acknowledge(desk, number, officer, note, now=now), {"note": "text"})

    @routes.post("/complaints/{number}/status")
    def status_(number: str, request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        status, note = form.get("status"), form.get("note").strip() or None
        errors = {"note": "outcome" if status == "resolved" else "text"}
        return act(request, form, number, "status",
                   lambda desk, officer, now: set_status(desk, number, officer, status, note, now=now), errors)

    @routes.post("/complaints/{number}/reply")
    def reply_(number: str, request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        text = form.get("text")
        return act(request, form, number, "replied",
                   lambda desk, officer, now: reply(desk, number, officer, text, now=now), {"text": "text"})

    @routes.post("/complaints/{number}/transfer")
    def transfer_(number: str, request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        to_agency, reason = form.get("to_agency"), form.get("reason")
        return act(request, form, number, "transferred",
                   lambda desk, officer, now: transfer(desk, number, officer, to_agency, reason, now=now),
                   {"reason": "reason", "to_agency": "same_agency"})

    @routes.post("/complaints/{number}/resolve")
    def resolve_(number: str, request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        outcome = form.get("outcome")
        return act(request, form, number, "resolved",
                   lambda desk, officer, now: resolve(desk, number, officer, outcome, now=now),
                   {"note": "outcome", "text": "outcome"})

    # -- webhooks

    @routes.get("/webhooks")
    def webhooks_page(request: Request, visit: Visit = Depends(current)) -> HTMLResponse:
        desk = portal_of(request.app).desk
        agency = _scope(request, visit, desk)
        return page(
            "webhooks.html.j2", **_base(
                request, visit, "webhooks", title="Webhook ของหน่วยงาน", agency=agency or "",
                subscriptions=subscriptions(desk, agency), failed=deliveries(desk, agency_code=agency, state="failed"),
                recent=deliveries(desk, agency_code=agency, limit=20), agencies=_agency_choices(desk),
            )
        )

    @routes.post("/webhooks/resend")
    def resend_(request: Request, form: Posted = Depends(posted)) -> RedirectResponse:
        desk = portal_of(request.app).desk
        account = form.visit.account
        agency = None if account.central else account.agency_code
        done = resend(desk, form.get("key")[:200], actor=account.officer.actor, agency_code=agency)
        outcome = "done=resent" if done else "error=not_resent"
        return RedirectResponse(f"{PREFIX}/webhooks?{outcome}", status_code=303)

    # -- the registry's requests

    @routes.get("/requests")
    def requests_page(request: Request, visit: Visit = Depends(current)) -> HTMLResponse:
        desk = portal_of(request.app).desk
        registry = request.app.state.registry
        agency = _scope(request, visit, desk) or visit.account.agency_code
        status = request.query_params.get("status") or None
        if status is not None and status not in REQUEST_STATUS_LABELS:
            status = None
        late = True if request.query_params.get("late") == "1" else None
        found = registry.list_for_agency(agency, status=status, late=late, limit=200)
        catalog = desk.catalog()
        rows = [(item, registry.assess(item), catalog.service(item.service_id)) for item in found]
        return page(
            "requests.html.j2", **_base(
                request, visit, "requests", title="คำขอรับบริการ", rows=rows, agency=agency, status=status or "",
                late=bool(late), statuses=list(REQUEST_STATUS_LABELS.items()), agencies=_agency_choices(desk),
            )
        )

    return routes


def _scope(request: Request, visit: Visit, desk: Desk) -> Optional[str]:
    """The agency a page shows: the officer's own; a central officer's choice (None: all)."""
    if not visit.account.central:
        return visit.account.agency_code
    agency = (request.query_params.get("agency") or "").upper()
    return agency if agency and desk.catalog().agency(agency) is not None else None


def _to_case(number: str, *, done: Optional[str] = None, error: Optional[str] = None) -> RedirectResponse:
    query = f"?done={done}" if done else f"?error={error}" if error else ""
    return RedirectResponse(f"{PREFIX}/complaints/{quote(number.upper(), safe='-')}{query}", status_code=303)


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    actor: str
    action: str
    changes: tuple[tuple[str, str, str], ...]


def _entry(entry: Any) -> Entry:
    """An audit entry as the history lists it: the fields that changed, in Thai."""
    before, after = entry.before or {}, entry.after or {}
    changes = []
    for key, label in AUDIT_FIELDS.items():
        if key not in after:
            continue
        was, now = _audit_value(key, before.get(key)), _audit_value(key, after.get(key))
        if was != now:
            changes.append((label, was, now))
    return Entry(entry.at, entry.actor, entry.action, tuple(changes))


def _audit_value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "status":
        return STATUS_LABELS.get(str(value), str(value))
    if key.endswith("_at") and isinstance(value, str):
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)
