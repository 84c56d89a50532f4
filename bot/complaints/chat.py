"""Complaints in chat: the filing form's questions, its summary, filing, status and reopening.

The action server's complaint actions (actions/complaints.py) only read the tracker and call
this; the wording is in bot/answers/templates/th/complaint_*.j2. Filing goes through
`bot.complaints.file_complaint` with the idempotency key the form fixed when it started, so a
retried or double-tapped submit returns the complaint already filed.

Buttons carry gateway-checked payloads (`bot.gateway.conversation` passes a payload only when it
was offered): the form's choices as a `complaint_choice` entity on `affirm` (a stale tap after
the form ended is then only "anything else?") and cancelling on `deny`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from bot.answers.render import template_environment
from bot.answers.reply import BUTTON_TITLE_MAX, Button, Reply, intent_payload
from bot.casework.errors import InvalidTransition, NotFound
from bot.catalog.loader import Catalog
from bot.catalog.schema import Agency
from bot.complaints.contact import CONTACT_RETENTION_TH, mask_phone
from bot.complaints.desk import Desk
from bot.complaints.intake import (
    MAX_DESCRIPTION,
    file_complaint,
    my_complaints,
    reopen,
    status_for_reporter,
    verify,
)
from bot.complaints.messages import STATUS_LABELS
from bot.complaints.model import ReporterStatus
from bot.complaints.photos import MAX_PHOTO_BYTES, MAX_PHOTOS
from bot.complaints.routing import Subject, route
from bot.misconduct import mentions_misconduct

CHOICE = "complaint_choice"
MEDIA_CHANNELS = ("line", "telegram")


def choice_button(title: str, choice: str, intent: str = "affirm") -> Button:
    return Button(title, intent_payload(intent, **{CHOICE: choice}))


CANCEL = choice_button("ยกเลิก", "cancel", "deny")
SKIP = choice_button("ข้าม", "skip")
DONE = choice_button("เสร็จแล้ว", "done")
ANONYMOUS = choice_button("ไม่ระบุตัวตน", "anonymous")
GIVE_PHONE = choice_button("ให้เบอร์โทรติดต่อกลับ", "consent")
CONFIRM = choice_button("ยืนยัน", "confirm")
EDIT_DESCRIPTION = choice_button("แก้ไขรายละเอียด", "edit_description")
EDIT_SUBJECT = choice_button("แก้ไขหน่วยงาน", "edit_subject")
UNKNOWN_AGENCY = choice_button("ไม่ทราบหน่วยงาน", "unknown_agency")
RETRY = Button("ส่งอีกครั้ง", intent_payload("file_complaint", **{CHOICE: "retry"}))
NOT_FIXED_TITLE = "ยังไม่ได้รับการแก้ไข"


def reopen_button(number: str) -> Button:
    return Button(NOT_FIXED_TITLE, intent_payload("deny", reopen_number=number))


def status_button(number: str) -> Button:
    return Button(number, intent_payload("check_status", tracking_number=number))


@dataclass(frozen=True)
class Draft:
    """What the form collected (slot values), as `file_complaint` takes it."""

    key: str
    description: str
    service_id: Optional[str] = None
    agency_code: Optional[str] = None
    place: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    photo_ids: tuple[str, ...] = field(default_factory=tuple)
    phone: Optional[str] = None
    misconduct: bool = False

    @property
    def flagged(self) -> bool:
        return self.misconduct or mentions_misconduct(self.description)


class ComplaintChat:
    def __init__(self, desk: Desk, catalog: Optional[Callable[[], Catalog]] = None) -> None:
        self.desk = desk
        self._catalog = catalog or desk.catalog
        self._env = template_environment()

    @property
    def catalog(self) -> Catalog:
        return self._catalog()

    def _render(self, template: str, **context) -> str:
        return self._env.get_template(f"{template}.j2").render(**context).strip()

    # -- what the form asks -------------------------------------------------------------------

    def about(self, service_id: Optional[str], agency_code: Optional[str]) -> str:
        """How the summary names what the complaint is about."""
        catalog = self.catalog
        service = catalog.service(service_id) if service_id else None
        agency = catalog.agency(agency_code) if agency_code else None
        if service is not None:
            owner = catalog.agency_of(service)
            named = f" ({agency.name})" if agency is not None and agency.code != owner.code else ""
            return f"{service.name} ({owner.name}){named}"
        if agency is not None:
            return agency.name
        return "ไม่ทราบหน่วยงาน (ส่งศูนย์รับเรื่องกลางเพื่อส่งต่อ)"

    def ask_subject(self) -> Reply:
        catalog = self.catalog
        central = catalog.central.code
        agencies = [a for a in catalog.agencies.values() if a.code != central and not _is_watchdog(catalog, a.code)]
        buttons = [Button(_label(a), intent_payload("file_complaint", agency=a.code)) for a in agencies]
        # "Don't know" first: on Telegram (10 buttons) the rest is paged behind "more".
        return Reply(self._render("complaint_ask_subject"), (UNKNOWN_AGENCY, *buttons, CANCEL))

    def ask_description(self, about: Optional[str] = None, *, retry: bool = False) -> Reply:
        text = self._render("complaint_ask_description", about=about, retry=retry, limit=MAX_DESCRIPTION)
        return Reply(text, (CANCEL,))

    def ask_place(self, channel: str) -> Reply:
        return Reply(self._render("complaint_ask_place", media=channel in MEDIA_CHANNELS), (SKIP, CANCEL))

    def ask_photos(self, count: int = 0, *, rejected: bool = False) -> Reply:
        text = self._render(
            "complaint_ask_photos", count=count, rejected=rejected, limit=MAX_PHOTOS,
            max_mb=MAX_PHOTO_BYTES // (1024 * 1024),
        )
        return Reply(text, (DONE if count else SKIP, CANCEL))

    def consent_line(self) -> str:
        return self._render("complaint_consent", retention=CONTACT_RETENTION_TH)

    def ask_contact(self, *, retry: bool = False) -> Reply:
        text = self._render("complaint_ask_contact", consent=self.consent_line(), retry=retry)
        return Reply(text, (ANONYMOUS, GIVE_PHONE, CANCEL))

    def ask_phone(self, *, retry: bool = False) -> Reply:
        return Reply(self._render("complaint_ask_phone", consent=self.consent_line(), retry=retry), (ANONYMOUS, CANCEL))

    def summary(self, draft: Draft, *, retry: bool = False) -> Reply:
        place = draft.place
        if draft.latitude is not None and draft.longitude is not None:
            where = f"{draft.latitude:.5f}, {draft.longitude:.5f}"
            place = f"{place} ({where})" if place else f"ตำแหน่งที่ส่งมา ({where})"
        watchdog = self._watchdog(draft) if draft.flagged else None
        text = self._render(
            "complaint_summary", retry=retry, about=self.about(draft.service_id, draft.agency_code),
            description=draft.description, place=place, photos=len(draft.photo_ids),
            phone=mask_phone(draft.phone) if draft.phone else None, misconduct=draft.flagged, watchdog=watchdog,
        )
        return Reply(text, (CONFIRM, EDIT_DESCRIPTION, EDIT_SUBJECT, CANCEL))

    def cancelled(self) -> Reply:
        return Reply(self._render("complaint_cancelled"))

    # -- filing ---------------------------------------------------------------------------------

    def submit(self, identity: str, draft: Draft) -> Reply:
        """File the complaint (once per draft key) and say where it went and by when it is answered."""
        complaint = file_complaint(
            self.desk, reporter=identity, idempotency_key=draft.key, description=draft.description,
            service_id=draft.service_id, agency_code=draft.agency_code, misconduct=draft.flagged or None,
            place=draft.place, latitude=draft.latitude, longitude=draft.longitude, photo_ids=draft.photo_ids,
            phone=draft.phone, consent=draft.phone is not None,
        )
        agency = self.catalog.agency(complaint.agency_code)
        text = self._render(
            "complaint_filed", number=complaint.tracking_number,
            agency=agency.name if agency is not None else complaint.agency_code,
            acknowledge_by=complaint.acknowledge_due_at, resolve_by=complaint.resolve_due_at,
            misconduct=complaint.misconduct, push=self.desk.can_push(identity),
        )
        return Reply(text, (status_button(complaint.tracking_number),))

    def failed(self) -> Reply:
        return Reply(self._render("complaint_failed", hotline=self.catalog.central.hotline), (RETRY, CANCEL))

    # -- the reporter's side after filing -------------------------------------------------------

    def visible(self, identity: str, number: str) -> bool:
        """Whether this chat may see the complaint without proving the phone's digits."""
        return status_for_reporter(self.desk, number, identity) is not None

    def status(self, identity: str, number: str, token: Optional[str] = None) -> Optional[Reply]:
        """The complaint's state and latest reply for its reporter, or for a chat proving the last 4
        digits of the phone given with it (`token`, the gateway's keyed token of them: counted and
        locked like the registry's). None for anyone else: the caller answers exactly as for an
        unknown number."""
        found = status_for_reporter(self.desk, number, identity)
        if found is None and token:
            verdict = verify(self.desk, number, token, identity)
            if verdict == "locked":
                return self._locked()
            if verdict == "ok":
                found = status_for_reporter(self.desk, number, identity)
        if found is None:
            return None
        return self._status_reply(found)

    def _locked(self) -> Reply:
        hotline = self.catalog.central
        return Reply(self._env.get_template("status_locked.j2").render(hotline=hotline).strip())

    def _status_reply(self, found: ReporterStatus) -> Reply:
        text = self._render("complaint_status", s=found, label=STATUS_LABELS.get(found.status, found.status))
        buttons = (reopen_button(found.tracking_number),) if found.can_reopen else ()
        return Reply(text, buttons)

    def mine(self, identity: str) -> list[ReporterStatus]:
        return my_complaints(self.desk, identity)

    def mine_reply(self, identity: str) -> Reply:
        items = self.mine(identity)
        text = self._render("complaint_mine", items=items, labels=STATUS_LABELS)
        return Reply(text, tuple(status_button(s.tracking_number) for s in items))

    def ask_reopen_reason(self, number: str, *, retry: bool = False) -> Reply:
        return Reply(self._render("complaint_ask_reopen", number=number, retry=retry), (CANCEL,))

    def can_reopen(self, identity: str, number: str) -> bool:
        found = status_for_reporter(self.desk, number, identity)
        return found is not None and found.can_reopen

    def reopen(self, identity: str, number: str, reason: str) -> Optional[Reply]:
        """Reopen a resolved complaint once; None when it is not this identity's (say "unknown")."""
        hotline = self.catalog.central.hotline
        try:
            found = reopen(self.desk, number, identity, reason)
        except NotFound:
            return None
        except InvalidTransition:
            return Reply(self._render("complaint_reopened", s=None, already=True, number=number, hotline=hotline))
        return Reply(self._render("complaint_reopened", s=found, already=False, number=number, hotline=hotline))

    def reopen_cancelled(self) -> Reply:
        return Reply(self._render("complaint_reopened", s=None, already=False, number="", hotline=""))

    # -- helpers --------------------------------------------------------------------------------

    def _watchdog(self, draft: Draft) -> Optional[str]:
        catalog = self.catalog
        decision = route(catalog, Subject(draft.service_id, draft.agency_code, None), True)
        agency = catalog.agency(decision.agency_code)
        return agency.name if agency is not None else None


def _is_watchdog(catalog: Catalog, code: str) -> bool:
    """An agency that receives other agencies' misconduct reports (ป.ป.ท.): not a button of its own."""
    return any(a.misconduct_channel == code for a in catalog.agencies.values()) and not any(
        s.agency == code for s in catalog.services.values()
    )


def _label(agency: Agency, limit: int = BUTTON_TITLE_MAX) -> str:
    """A button title for an agency: its name without the parenthesis, else its longest alias
    that fits (LINE cuts labels at 20 characters), else the name cut short."""
    name = agency.name.split(" (", 1)[0].strip()
    if len(name) <= limit:
        return name
    fitting = sorted((a for a in agency.aliases if len(a) <= limit), key=len, reverse=True)
    return fitting[0] if fitting else name[: limit - 1] + "…"

