"""Open311 GeoReport v2 (JSON) at `/open311/v2/`: complaints as service requests.

    GET  services.json                  one service per catalog service
    GET  services/{service_code}.json   its definition (no extra attributes: `attributes: []`)
    POST requests.json                  file a complaint (an agency's API key)
    GET  requests.json                  public complaints (filters below)
    GET  requests/{id}.json             one public complaint
    GET  media/{photo_id}               a public complaint's photo (its `media_url`)

Services: `service_code` is the catalog service ID, `service_name` its Thai name, `description`
its summary, `keywords` its keywords and aliases (comma-separated), `group` the owning agency's
Thai name; `metadata` is false and `type` "realtime" (a complaint is filed and numbered at once).
`service_request_id` is the complaint's tracking number (CMP-YYYY-NNNNNN). `jurisdiction_id` is
accepted and ignored (one jurisdiction). Only JSON is served (`.xml` is 404).

POST requests.json takes the spec's form-encoded body (`application/x-www-form-urlencoded`), or
the same fields as a JSON object. Decisions:

* `api_key` (form or JSON field, query parameter, or `Authorization: Bearer`) is an agency API
  key (`sla-bot agency-key create CODE`); missing, unknown or revoked keys are 403 "Invalid
  api_key", as in the spec. An agency may file about any service: the complaint is routed by the
  catalog's rules like one filed in chat (usually to the service's owner; a report of bribery or
  abuse of power to the misconduct channel), and `service_notice` says who received it and by
  when it must be acknowledged and resolved.
* The reporter is the agency's system, `open311:<AGENCY>`: filing is idempotent per agency, keyed
  by the client's `Idempotency-Key` header (or `idempotency_key` field) when given, else by a hash
  of the request's fields, so a retried POST returns the same service_request_id. (Two identical
  reports from one agency need distinct Idempotency-Keys to be filed twice.)
* Location is required as the spec says: `lat` and `long`, or `address_string` (kept as the
  complaint's place); `address_id` alone is refused (there is no address register). `description`
  is required here (at most 2,000 characters): a complaint is its text.
* Contact: only `phone` is kept, sealed and erased after the retention period like a phone given
  in chat. Open311 has no consent field, so a phone sent by an agency's system counts as given
  with the citizen's consent collected by that agency under its own PDPA notice. `email`,
  `first_name` and `last_name` are checked for length and discarded (nowhere to keep them, and
  not needed to answer). Without a phone the complaint is anonymous. No contact field is ever
  returned by any GET.
* `media_url` (the client's own photo link) is not fetched (no server-side requests to
  arbitrary URLs); an http(s) URL is appended to the description for officers to open.

GET requests.json is public, as in Open311, so it shows only what bot.complaints.public allows
(complaints filed in chat: service, agency, status and dates only):
never misconduct reports (not listed; their numbers are 404 like unknown ones), never anything
about the reporter, routing reasons or internal notes; `description` and `status_notes` (the
latest officer reply, resolution or closing note sent to the reporter) as written, with phone
numbers, e-mail addresses, ID numbers and LINE IDs redacted. `status` is open (received,
acknowledged, in progress, reopened) or closed (resolved, closed); `agency_responsible` the Thai
name of the agency that has it now; `expected_datetime` the resolve-by deadline of the complaint
SLA; `address` the place; `lat`/`long` when known; `media_url` an absolute URL of the first
photo (under `media/`, unguessable ids, public complaints only), else null. Complaints not about
a catalog service have `service_code` and `service_name` null.

Filters: `service_request_id` (comma-separated, at most 1,000; overrides the others, as the spec
says), `service_code` and `status` (comma-separated), `start_date`/`end_date` (W3C datetimes;
a date without a time zone is Bangkok time) on `requested_datetime`: at most 90 days apart, and
the last 90 days when neither is given. At most 1,000 requests a page, newest first; `page` and
`page_size` (extensions) page further.

Errors are Open311's `[{"code": 400, "description": "..."}]` with that HTTP status: 400 for
malformed input, 403 for a bad key, 404 for unknown services, requests and paths, 405, 413, 415.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import re
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.answers.render import describe_duration
from bot.casework.errors import CaseworkError
from bot.catalog.loader import Catalog
from bot.complaints import file_complaint
from bot.complaints.desk import Desk
from bot.complaints.intake import MAX_DESCRIPTION, MAX_PLACE
from bot.complaints.messages import thai_datetime
from bot.complaints.public import MAX_PAGE, PublicComplaint, public_photo, public_request, public_requests
from bot.settings import TIMEZONE

logger = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_BODY = 64 * 1024
MAX_RANGE = dt.timedelta(days=90)
MAX_IDS = 1000
MAX_NAME = 100
MAX_EMAIL = 254
MAX_MEDIA_URL = 500
MAX_TOKEN = 200
STATUS_VALUES = ("open", "closed")
# The fields the body hash (idempotency without a client token) is made of.
_ALLOWED = {"services.json": "GET", "requests.json": "GET, POST"}
_PATTERNS = ((re.compile(r"(services|requests)/[^/]+\.json"), "GET"), (re.compile(r"media/[^/]+"), "GET"))
_HASHED = ("service_code", "description", "lat", "long", "address_string", "address_id", "email", "first_name",
           "last_name", "phone", "media_url")


class Open311Error(Exception):
    def __init__(self, code: int, description: str, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.headers = headers


def error_response(code: int, description: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code, headers=headers)


def _desk(request: Request) -> Desk:
    return request.app.state.complaints.desk


def _catalog(request: Request) -> Catalog:
    return _desk(request).catalog()


def _iso(moment: Optional[dt.datetime]) -> Optional[str]:
    return moment.astimezone(TIMEZONE).replace(microsecond=0).isoformat() if moment is not None else None


# -- services ------------------------------------------------------------------------------------------


def service_json(catalog: Catalog, service_id: str) -> dict[str, Any]:
    service = catalog.services[service_id]
    agency = catalog.agency(service.agency)
    words = [w.replace(",", " ").strip() for w in (*service.keywords, *service.aliases)]
    return {
        "service_code": service.id,
        "service_name": service.name,
        "description": service.summary,
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(dict.fromkeys(w for w in words if w)),
        "group": agency.name if agency is not None else service.agency,
    }


# -- requests ------------------------------------------------------------------------------------------


def request_json(request: Request, catalog: Catalog, item: PublicComplaint) -> dict[str, Any]:
    complaint = item.complaint
    service = catalog.service(complaint.service_id) if complaint.service_id else None
    agency = catalog.agency(complaint.agency_code)
    media = None
    if complaint.photos and item.details_shown:
        media = str(request.base_url).rstrip("/") + f"{PREFIX}/media/{complaint.photos[0].id}"
    return {
        "service_request_id": complaint.tracking_number,
        "status": "open" if item.open else "closed",
        "status_notes": item.status_notes,
        "service_name": service.name if service is not None else None,
        "service_code": service.id if service is not None else None,
        "description": item.description,
        "agency_responsible": agency.name if agency is not None else complaint.agency_code,
        "service_notice": _notice(catalog, complaint.agency_code),
        "requested_datetime": _iso(complaint.filed_at),
        "updated_datetime": _iso(complaint.updated_at),
        "expected_datetime": _iso(complaint.resolve_due_at),
        "address": complaint.place if item.details_shown else None,
        "address_id": None,
        "zipcode": None,
        "lat": complaint.latitude if item.details_shown else None,
        "long": complaint.longitude if item.details_shown else None,
        "media_url": media,
    }


def _notice(catalog: Catalog, agency_code: str) -> Optional[str]:
    agency = catalog.agency(agency_code)
    if agency is None:
        return None
    targets = agency.complaint_targets
    return (
        f"{agency.name} ตอบรับเรื่องภายใน {describe_duration(targets.acknowledge)} "
        f"และแจ้งผลภายใน {describe_duration(targets.resolve)} นับจากวันที่ได้รับเรื่อง"
    )


def _parse_datetime(value: str, name: str) -> dt.datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime such as 2026-06-15T10:00:00+07:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TIMEZONE)
    return moment


def _csv(value: Optional[str]) -> Optional[list[str]]:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _positive_int(value: Optional[str], name: str, default: int, maximum: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {maximum}") from None
    if not 1 <= number <= maximum:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {maximum}")
    return number


def _listing_filters(params: Any, now: dt.datetime) -> dict[str, Any]:
    page_size = _positive_int(params.get("page_size"), "page_size", MAX_PAGE, MAX_PAGE)
    page = _positive_int(params.get("page"), "page", 1, 1_000_000)
    filters: dict[str, Any] = {"limit": page_size, "offset": (page - 1) * page_size}
    ids = _csv(params.get("service_request_id"))
    if ids is not None:  # the spec: it overrides every other argument
        if not ids:
            raise Open311Error(400, "service_request_id must name at least one request")
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"at most {MAX_IDS} service_request_id values at once")
        filters["numbers"] = ids
        return filters
    codes = _csv(params.get("service_code"))
    if codes is not None:
        if not codes:
            raise Open311Error(400, "service_code must name at least one service")
        filters["service_codes"] = codes
    statuses = _csv(params.get("status"))
    if statuses is not None:
        wrong = [s for s in statuses if s not in STATUS_VALUES]
        if wrong or not statuses:
            raise Open311Error(400, "status must be open, closed or open,closed")
        filters["statuses"] = statuses
    start = _parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = _parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_RANGE
    if end is None:
        end = start + MAX_RANGE
    if end < start:
        raise Open311Error(400, "end_date must not be before start_date")
    if end - start > MAX_RANGE:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    filters["start"], filters["end"] = start, end
    return filters


# -- POST ----------------------------------------------------------------------------------------------


async def _fields(request: Request) -> dict[str, Any]:
    """The POST's fields: a form-encoded body (the spec's) or a JSON object; 4xx for anything else."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise Open311Error(413, f"the request body may be at most {MAX_BODY // 1024} KB")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Open311Error(413, f"the request body may be at most {MAX_BODY // 1024} KB")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or (not kind and body.lstrip().startswith(b"{")):
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Open311Error(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Open311Error(400, "the JSON body must be an object of the request's fields")
        return data
    if kind in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(
                text, keep_blank_values=True, strict_parsing=bool(text), errors="strict", max_num_fields=100
            )
        except (UnicodeDecodeError, ValueError):
            raise Open311Error(400, "the body is not a valid UTF-8 form (application/x-www-form-urlencoded)") from None
        fields: dict[str, Any] = {}
        for name, value in pairs:
            if name in fields and not name.startswith("attribute["):
                raise Open311Error(400, f"{name} is given more than once")
            fields[name] = value
        return fields
    raise Open311Error(415, "send application/x-www-form-urlencoded (or application/json)")


def _text(fields: dict[str, Any], name: str, limit: int) -> Optional[str]:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Open311Error(400, f"{name} must be text")
    text = str(value).strip()
    if len(text) > limit:
        raise Open311Error(400, f"{name} must be at most {limit} characters")
    return text or None


def _number(fields: dict[str, Any], name: str) -> Optional[float]:
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Open311Error(400, f"{name} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not math.isfinite(number):
        raise Open311Error(400, f"{name} must be a number")
    return number


def _api_key(request: Request, fields: dict[str, Any]) -> Optional[str]:
    key = fields.get("api_key") or request.query_params.get("api_key")
    if not key:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else None
    return key if isinstance(key, str) else None


def _idempotency_key(request: Request, fields: dict[str, Any], clean: dict[str, Any]) -> str:
    token = request.headers.get("idempotency-key") or fields.get("idempotency_key")
    if token is not None:
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN:
            raise Open311Error(400, f"Idempotency-Key must be 1 to {MAX_TOKEN} characters")
        return "open311:token:" + hashlib.sha256(token.strip().encode()).hexdigest()
    canonical = json.dumps({k: clean.get(k) for k in _HASHED}, ensure_ascii=False, sort_keys=True)
    return "open311:body:" + hashlib.sha256(canonical.encode()).hexdigest()


def _check_media_url(url: Optional[str]) -> Optional[str]:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url):
        raise Open311Error(400, "media_url must be an absolute http(s) URL")
    return url


def _file(request: Request, agency_code: str, fields: dict[str, Any]) -> dict[str, Any]:
    catalog = _catalog(request)
    code = _text(fields, "service_code", 64)
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    if catalog.service(code) is None:
        raise Open311Error(400, f"service_code {code!r} was not found (see services.json)")
    clean: dict[str, Any] = {
        "service_code": code,
        "description": _text(fields, "description", 4000),
        "lat": _number(fields, "lat"),
        "long": _number(fields, "long"),
        "address_string": _text(fields, "address_string", 4000),
        "address_id": _text(fields, "address_id", 200),
        "email": _text(fields, "email", MAX_EMAIL),
        "first_name": _text(fields, "first_name", MAX_NAME),
        "last_name": _text(fields, "last_name", MAX_NAME),
        "phone": _text(fields, "phone", 40),
        "media_url": _check_media_url(_text(fields, "media_url", MAX_MEDIA_URL)),
    }
    if (clean["lat"] is None) != (clean["long"] is None):
        raise Open311Error(400, "lat and long must be given together")
    if clean["lat"] is None and clean["address_string"] is None:
        if clean["address_id"] is not None:
            raise Open311Error(400, "address_id is not supported: send lat and long, or address_string")
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    if clean["address_string"] is not None and len(clean["address_string"]) > MAX_PLACE:
        raise Open311Error(400, f"address_string must be at most {MAX_PLACE} characters")
    if clean["email"] is not None and "@" not in clean["email"]:
        raise Open311Error(400, "email must be an e-mail address")
    description = clean["description"]
    if description is None:
        raise Open311Error(400, "description is required: what happened")
    if clean["media_url"] is not None:
        description = f"{description}\nรูปภาพ / photo: {clean['media_url']}"
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description (with media_url) must be at most {MAX_DESCRIPTION} characters")
    key = _idempotency_key(request, fields, clean)
    try:
        complaint = file_complaint(
            _desk(request),
            reporter=f"open311:{agency_code}",
            idempotency_key=key,
            description=description,
            service_id=code,
            place=clean["address_string"],
            latitude=clean["lat"],
            longitude=clean["long"],
            phone=clean["phone"],
            consent=clean["phone"] is not None,
        )
    except CaseworkError as exc:
        raise Open311Error(400, exc.message) from None
    agency = catalog.agency(complaint.agency_code)
    name = agency.name if agency is not None else complaint.agency_code
    notice = (
        f"ส่งถึง{name}แล้ว ต้องตอบรับภายใน{thai_datetime(complaint.acknowledge_due_at)} "
        f"และแจ้งผลภายใน{thai_datetime(complaint.resolve_due_at)}"
    )
    return {"service_request_id": complaint.tracking_number, "service_notice": notice, "account_id": None}


# -- the router ----------------------------------------------------------------------------------------


def router() -> APIRouter:
    routes = APIRouter(prefix=PREFIX, tags=["open311"])

    @routes.get("/services.json", summary="Open311 service list: one service per catalog service")
    async def services(request: Request) -> Response:
        catalog = _catalog(request)
        return JSONResponse([service_json(catalog, sid) for sid in sorted(catalog.services)])

    @routes.get("/services/{service_code}.json", summary="Open311 service definition (no extra attributes)")
    async def definition(service_code: str, request: Request) -> Response:
        catalog = _catalog(request)
        if catalog.service(service_code) is None:
            return error_response(404, f"service_code {service_code!r} was not found")
        return JSONResponse({"service_code": service_code, "attributes": []})

    @routes.post("/requests.json", summary="File a complaint (agency api_key)", status_code=201)
    async def create(request: Request) -> Response:
        try:
            fields = await _fields(request)
            key = _api_key(request, fields)
            registry = request.app.state.registry
            who = await run_in_threadpool(registry.api_keys.authenticate, key) if key else None
            if who is None:
                raise Open311Error(403, "Invalid api_key")
            filed = await run_in_threadpool(_file, request, who.agency_code, fields)
        except Open311Error as exc:
            return error_response(exc.code, exc.description, exc.headers)
        return JSONResponse([filed], status_code=201)

    @routes.get("/requests.json", summary="Public complaints as Open311 service requests")
    async def listing(request: Request) -> Response:
        desk = _desk(request)
        try:
            filters = _listing_filters(request.query_params, desk.now())
        except Open311Error as exc:
            return error_response(exc.code, exc.description)
        found = await run_in_threadpool(lambda: public_requests(desk, **filters))
        catalog = desk.catalog()
        return JSONResponse([request_json(request, catalog, item) for item in found])

    @routes.get("/requests/{service_request_id}.json", summary="One public complaint")
    async def one(service_request_id: str, request: Request) -> Response:
        desk = _desk(request)
        found = await run_in_threadpool(public_request, desk, service_request_id)
        if found is None:
            return error_response(404, f"service_request_id {service_request_id!r} was not found")
        return JSONResponse([request_json(request, desk.catalog(), found)])

    @routes.get("/media/{photo_id}", summary="A public complaint's photo")
    async def media(photo_id: str, request: Request) -> Response:
        found = await run_in_threadpool(public_photo, _desk(request), photo_id)
        if found is None:
            return error_response(404, "no such photo")
        photo, path = found
        return FileResponse(
            path, media_type=photo.media_type,
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff",
                     "Content-Security-Policy": "default-src 'none'"},
        )

    @routes.api_route(
        "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
    )
    async def unknown(rest: str, request: Request) -> Response:
        """Open311's error format for every other path, and for a wrong method on a known one."""
        allowed = _ALLOWED.get(rest) or next((m for p, m in _PATTERNS if p.fullmatch(rest)), None)
        if allowed is not None and request.method not in allowed:
            return error_response(405, f"{request.method} is not allowed here", {"Allow": allowed})
        return error_response(404, f"{PREFIX}/{rest} is not an Open311 resource here (JSON only)")

    return routes
