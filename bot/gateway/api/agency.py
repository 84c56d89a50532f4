"""The agency API, `/api/agency/v1/...`: agencies keep their citizens' requests current.

Each agency authenticates with its own API key (`Authorization: Bearer <key>`, created with
`sla-bot agency-key create CODE`). An agency sees and changes only its own requests; another
agency's request is 404, exactly like an unknown number. Every change is audited by the
registry with the key's id. Registry calls are synchronous, so the routes are plain `def`
functions, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from bot.casework.api_keys import Principal
from bot.casework.errors import CaseworkError, NotFound
from bot.casework.registry import Registry
from bot.casework.request import ServiceRequest
from bot.sla.clock import Assessment

PREFIX = "/api/agency/v1"
Status = Literal["received", "in_progress", "waiting_for_citizen", "approved", "rejected", "completed", "cancelled"]
_bearer = HTTPBearer(auto_error=False)


class AuthError(Exception):
    """A missing, malformed, unknown or revoked key: 401 for every case alike."""


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_id: str = Field(min_length=1, max_length=64, description="catalog service ID, e.g. vehicle_tax_renewal")
    office: str = Field(min_length=1, max_length=200, description="the office that received the application")
    phone_last4: str = Field(min_length=4, max_length=8, description="last 4 digits of the applicant's phone")
    submitted_at: Optional[dt.datetime] = Field(None, description="filing time (default: now), with a timezone")


class StepChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step_index: int = Field(ge=0, description="index into the catalog service's steps")
    note: Optional[str] = Field(None, max_length=1000, description="a note to the citizen")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status
    note: Optional[str] = Field(None, max_length=1000)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=1000)


def request_json(request: ServiceRequest, assessment: Assessment) -> dict[str, Any]:
    """A request as the agency API shows it: its history and the SLA clock's verdict."""
    return {
        "tracking_number": request.tracking_number,
        "agency_code": request.agency_code,
        "service_id": request.service_id,
        "office": request.office,
        "status": request.status,
        "step_index": request.step_index,
        "note": request.note,
        "submitted_at": request.submitted_at.isoformat(),
        "closed_at": request.closed_at.isoformat() if request.closed_at else None,
        "steps": [
            {"step_index": s.step_index, "entered_at": s.entered_at.isoformat(),
             "left_at": s.left_at.isoformat() if s.left_at else None, "note": s.note}
            for s in request.steps
        ],
        "sla": {
            "state": assessment.state,
            "late_working_days": assessment.late_working_days,
            "due_at": assessment.due_at.isoformat(),
            "expected_completion": assessment.expected_completion.isoformat(),
            "waiting_for_citizen": assessment.paused,
        },
    }


def router() -> APIRouter:
    routes = APIRouter(prefix=PREFIX, tags=["agency"])

    def registry(request: Request) -> Registry:
        return request.app.state.registry

    def principal(
        request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Depends(_bearer)
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError
        found = registry(request).api_keys.authenticate(credentials.credentials)
        if found is None:
            raise AuthError
        return found

    def shown(reg: Registry, item: ServiceRequest) -> dict[str, Any]:
        return request_json(item, reg.assess(item))

    @routes.post("/requests", status_code=201, summary="File a citizen's request; returns its tracking number")
    def create(body: NewRequest, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
        reg = registry(request)
        created = reg.create_request(
            who.agency_code, body.service_id, body.office, body.phone_last4, body.submitted_at, actor=who.key_id
        )
        return shown(reg, created)

    @routes.get("/requests", summary="This agency's requests, newest first; filter by status or lateness")
    def listing(
        request: Request,
        who: Principal = Depends(principal),
        status: Optional[Status] = None,
        late: Optional[bool] = None,
        limit: int = Query(50, ge=1, le=200),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        reg = registry(request)
        found = reg.list_for_agency(who.agency_code, status=status, late=late, limit=limit, offset=offset)
        return {"requests": [shown(reg, item) for item in found], "limit": limit, "offset": offset}

    @routes.get("/requests/{number}", summary="One request, with its SLA verdict")
    def read(number: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
        reg = registry(request)
        found = reg.get(number, agency_code=who.agency_code)
        if found is None:
            raise NotFound(f"no request {number} for {who.agency_code}")
        return shown(reg, found)

    def pushed(request: Request, changed: ServiceRequest) -> ServiceRequest:
        """Tell the citizens linked to the request (LINE, Telegram) about a change."""
        delivery = getattr(request.app.state, "delivery", None)
        if delivery is not None:
            delivery.status_changed_sync(changed)
        return changed

    @routes.post("/requests/{number}/step", summary="Move the request to a catalog step")
    def step(number: str, body: StepChange, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
        reg = registry(request)
        changed = reg.move_to_step(number, who.agency_code, body.step_index, note=body.note, actor=who.key_id)
        return shown(reg, pushed(request, changed))

    @routes.post("/requests/{number}/status", summary="Set the request's status")
    def status_(
        number: str, body: StatusChange, request: Request, who: Principal = Depends(principal)
    ) -> dict[str, Any]:
        reg = registry(request)
        changed = reg.set_status(number, who.agency_code, body.status, note=body.note, actor=who.key_id)
        return shown(reg, pushed(request, changed))

    @routes.post("/requests/{number}/notes", summary="Add a note to the citizen")
    def note(number: str, body: Note, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
        reg = registry(request)
        return shown(reg, pushed(request, reg.add_note(number, who.agency_code, body.note, actor=who.key_id)))

    return routes


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(AuthError)
    async def unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"detail": "missing or invalid API key"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(CaseworkError)
    async def casework_error(request: Request, exc: CaseworkError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return JSONResponse(body, status_code=exc.http_status)
