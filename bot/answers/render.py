"""Render Thai answers from the catalog.

The wording lives in `templates/th/*.j2` (one file per kind of answer, for Thai editors);
this module only computes what the templates show: opening states, weekly hours, fee
summaries and the buttons. Every service answer ends with its source (`_source.j2`).

Escaping follows the output format, decided by the template's name: `*.html.j2` templates
(pages that render markup) are autoescaped; chat templates produce plain text, where every
interpolated value is stripped of control and bidirectional-override characters, so an
echoed value can neither inject markup into a page nor disguise itself in a chat.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import unquote

import jinja2

from bot.answers.reply import Button, Reply, intent_payload
from bot.calendar import ThaiCalendar
from bot.catalog.facts import FactTopic, service_facts
from bot.catalog.loader import Catalog
from bot.catalog.schema import WEEKDAYS, Channel, Document, Duration, Service, Source
from bot.opening import OpenState, hours_on, state_at
from bot.text import THAI_WEEKDAYS, format_baht, format_number, format_thai_date, format_time
from bot.timeref import parse_time_reference

if TYPE_CHECKING:
    from bot.casework.request import ServiceRequest
    from bot.sla.clock import Assessment

TEMPLATES = Path(__file__).parent / "templates" / "th"

# Which answer each NLU intent asks for, and how the buttons name it.
ASPECTS: dict[str, tuple[str, str]] = {
    "ask_service": ("overview", "ข้อมูลบริการ"),
    "ask_documents": ("documents", "เอกสารที่ต้องใช้"),
    "ask_fee": ("fees", "ค่าธรรมเนียม"),
    "ask_hours": ("hours", "วันเวลาทำการ"),
    "ask_location": ("channels", "สถานที่/ช่องทาง"),
    "ask_duration": ("duration", "ระยะเวลา"),
    "ask_steps": ("steps", "ขั้นตอน"),
    "ask_eligibility": ("eligibility", "คุณสมบัติ/เงื่อนไข"),
}
# The key facts (bot/catalog/facts.py) each kind of answer shows, hence the sources it names.
ASPECT_TOPICS: dict[str, tuple[FactTopic, ...]] = {
    "overview": ("duration", "fees"),  # the time target and fees; it names channels, not their hours
    "documents": ("documents",),
    "fees": ("fees",),
    "hours": ("channels",),
    "channels": ("channels",),
    "duration": ("duration",),
    "steps": ("duration",),
    "eligibility": ("eligibility",),
    "complaint": ("complaints",),
}
UNCONFIRMED = " (โปรดตรวจสอบกับหน่วยงาน)"
STATUS_LABELS = {
    "received": "รับคำขอแล้ว",
    "in_progress": "อยู่ระหว่างดำเนินการ",
    "waiting_for_citizen": "รอเอกสารหรือการดำเนินการจากผู้ยื่นคำขอ",
    "approved": "อนุมัติแล้ว",
    "rejected": "ไม่อนุมัติ",
    "completed": "ดำเนินการเสร็จสิ้น",
    "cancelled": "ยกเลิกแล้ว",
}
CHANNEL_LABELS = {
    "office": "สำนักงาน",
    "online": "ออนไลน์",
    "phone": "โทรศัพท์",
    "app": "แอปพลิเคชัน",
    "mobile_unit": "หน่วยบริการเคลื่อนที่",
}
DURATION_UNITS = {"minutes": "นาที", "hours": "ชั่วโมง", "working_days": "วันทำการ", "days": "วัน"}


def service_button(service: Service, intent: str = "ask_service") -> Button:
    return Button(service.short_name, intent_payload(intent, service=service.id))


def describe_duration(duration: Duration) -> str:
    return f"{format_number(duration.value)} {DURATION_UNITS[duration.unit]}"


def describe_days(days: list[str]) -> str:
    """['mon'..'fri'] -> 'จันทร์–ศุกร์'; ['sat', 'sun'] -> 'เสาร์–อาทิตย์'; ['mon','wed'] -> 'จันทร์, พุธ'."""
    indexes = sorted(WEEKDAYS.index(d) for d in set(days))
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{THAI_WEEKDAYS[run[0]]}–{THAI_WEEKDAYS[run[-1]]}")
        else:
            parts.extend(THAI_WEEKDAYS[i] for i in run)
    return ", ".join(parts)


def describe_weekly_hours(channel: Channel) -> str:
    if channel.always_open:
        return "ตลอด 24 ชั่วโมง"
    if not channel.hours:
        return "ตามวันเวลาที่หน่วยงานประกาศ"
    blocks = [f"{describe_days(b.days)} {b.open}–{b.close} น." for b in channel.hours]
    text = "; ".join(blocks)
    if channel.open_on_public_holidays:
        text += " (เปิดวันหยุดนักขัตฤกษ์)"
    return text


def _copies(doc: Document) -> str:
    parts = []
    if doc.originals:
        parts.append(f"ฉบับจริง {doc.originals} ฉบับ")
    if doc.copies:
        parts.append(f"สำเนา {doc.copies} ฉบับ")
    return ", ".join(parts)


def _thai_datetime(value: dt.datetime) -> str:
    return f"{format_thai_date(value.date(), short=True, weekday=True)} เวลา {format_time(value.time())}"


# C0/C1 controls (but newline and tab) and bidirectional overrides/isolates.
_UNSAFE_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain_value(value: Any) -> Any:
    """What a `{{ value }}` shows in plain text: strings lose control and bidi-override characters."""
    return _UNSAFE_IN_TEXT.sub("", value) if isinstance(value, str) else value


def _autoescape(template_name: str | None) -> bool:
    return bool(template_name) and template_name.endswith((".html.j2", ".html"))


def template_environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """The Jinja environment for every citizen-facing text: escaping by output format, Thai filters."""
    env = jinja2.Environment(
        loader=loader or jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        finalize=plain_value,
    )
    env.filters.update(
        baht=format_baht,
        number=format_number,
        duration=describe_duration,
        thai_date=lambda d: format_thai_date(d, short=True),
        thai_date_weekday=lambda d: format_thai_date(d.date(), weekday=True),
        thai_datetime=_thai_datetime,
        clock=lambda d: format_time(d.time()),
        copies=_copies,
        unconfirmed=unconfirmed,
        display_url=display_url,
        strip_prefix=lambda text, prefix: text[len(prefix):] if text.startswith(prefix) else text,
    )
    env.globals["UNCONFIRMED"] = UNCONFIRMED
    return env


_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Provenance:
    """The specific sources of the facts an answer shows, and whether any of them is unverified."""

    sources: tuple[Source, ...]
    unverified: bool


def provenance(service: Service, aspect: str) -> Provenance:
    topics = ASPECT_TOPICS[aspect]
    facts = [f for f in service_facts(service) if f.topic in topics]
    if aspect == "overview":  # it shows the time target, not each step's duration
        facts = [f for f in facts if not f.field.startswith("steps[")]
    by_id = {s.id: s for s in service.sources}
    ids = dict.fromkeys(f.source for f in facts if f.source)
    return Provenance(tuple(by_id[i] for i in ids), any(f.unverified for f in facts))


def display_url(url: str) -> str:
    """A URL as people read it: percent-encoded Thai shown as Thai (an IRI chat apps link as is)."""
    readable = unquote(url)
    return url if any(ch.isspace() or ch in '"<>' for ch in readable) else readable


def unconfirmed(fact: Any) -> str:
    """The short "please confirm" a fact no public source confirmed is said with."""
    return UNCONFIRMED if getattr(fact, "unverified", False) else ""


@dataclass(frozen=True)
class _ChannelRow:
    channel: Channel
    weekly: str
    state: OpenState | None = None
    day_hours: str = ""


HELP_BUTTON = Button("ทำอะไรได้บ้าง", intent_payload("help"))
HUMAN_BUTTON = Button("ขอคุยกับเจ้าหน้าที่", intent_payload("request_human"))
# Services the greeting offers first: the ones citizens ask about most.
GREETING_SERVICES = ("vehicle_tax_renewal", "passport", "id_card")


class AnswerRenderer:
    """Renders every citizen-facing answer about services from one catalog."""

    def __init__(self, catalog: Catalog, calendar: ThaiCalendar) -> None:
        self.catalog = catalog
        self.calendar = calendar
        self._env = template_environment()

    def _render(self, template: str, **context: Any) -> str:
        text = self._env.get_template(f"{template}.j2").render(**context)
        return _BLANK_LINES.sub("\n\n", text).strip()

    def answer(self, service_id: str, intent: str, *, question: str = "", now: dt.datetime) -> Reply:
        """The answer to `intent` (an ask_* intent) about one service."""
        service = self.catalog.services[service_id]
        aspect, _ = ASPECTS[intent]
        context: dict[str, Any] = {
            "service": service,
            "agency": self.catalog.agency_of(service),
            "channel_labels": CHANNEL_LABELS,
            "provenance": provenance(service, aspect),
        }
        buttons: list[Button] = []
        if aspect == "overview":
            context["fee_summary"] = self._fee_summary(service)
            buttons = [
                Button(label, intent_payload(name, service=service.id))
                for name, (a, label) in ASPECTS.items()
                if a != "overview"
            ]
        elif aspect == "hours":
            context.update(self._hours_context(service, question, now))
        return Reply(self._render(aspect, **context), buttons)

    def choose_service(self, intent: str, candidates: list[str]) -> Reply:
        """Ask which service is meant, with a button for each candidate (or every service)."""
        _, label = ASPECTS.get(intent, ASPECTS["ask_service"])
        shown = candidates or list(self.catalog.services)
        buttons = [service_button(self.catalog.services[sid], intent) for sid in shown]
        aspect_label = "" if intent == "ask_service" else f"เรื่อง{label}"
        return Reply(self._render("choose_service", candidates=candidates, aspect_label=aspect_label), buttons)

    def greeting(self) -> Reply:
        """Hello, the privacy notice, and the most asked-for services."""
        services = [self.catalog.services[s] for s in GREETING_SERVICES if s in self.catalog.services]
        return Reply(
            self._render("greeting", hotline=self.catalog.central),
            [HELP_BUTTON, *(service_button(s) for s in services)],
        )

    def help_menu(self) -> Reply:
        """What the assistant can do, with a button for every service in the catalog."""
        return Reply(
            self._render("help", hotline=self.catalog.central),
            [service_button(s) for s in self.catalog.services.values()],
        )

    def bot_challenge(self) -> Reply:
        """An honest "yes, this is a bot", and how to reach a person."""
        return Reply(self._render("bot_challenge", hotline=self.catalog.central), [HUMAN_BUTTON])

    def not_understood(self) -> Reply:
        """The low-confidence fallback: how to ask, and the 1111 hotline."""
        return Reply(self._render("not_understood", hotline=self.catalog.central), [HELP_BUTTON, HUMAN_BUTTON])

    def out_of_scope(self, related: Sequence[str] = ()) -> Reply:
        """A question outside government services: what the bot does instead, and 1111; with a
        button for each `related` service (those a word of the question hints at)."""
        buttons = [service_button(self.catalog.services[sid]) for sid in related if sid in self.catalog.services]
        text = self._render("out_of_scope", hotline=self.catalog.central, related=bool(buttons))
        return Reply(text, [*buttons, HELP_BUTTON])

    def human_contact(self, service_id: str | None, agency_code: str | None = None) -> Reply:
        """How to reach an officer of the service's agency (and of the agency named, when it is
        another), and the 1111 hotline."""
        return self._agency_reply("human", service_id, agency_code)

    def complaint_channels(
        self, service_id: str | None, agency_code: str | None = None, *, misconduct: bool = False
    ) -> Reply:
        """Where to complain: the service's channels and its agency's, the named agency's, for a
        report of bribery or corruption (`misconduct`) also the agency's misconduct channel
        (ป.ป.ท.), and 1111."""
        return self._agency_reply("complaint", service_id, agency_code, misconduct=misconduct)

    def _agency_reply(
        self, template: str, service_id: str | None, agency_code: str | None = None, *, misconduct: bool = False
    ) -> Reply:
        service = self.catalog.service(service_id) if service_id else None
        agency = self.catalog.agency_of(service) if service else None
        named = self.catalog.agency(agency_code) if agency_code else None
        if agency is None:
            agency, named = named, None
        elif named is not None and named.code == agency.code:
            named = None
        shown = [a for a in (agency, named) if a is not None]
        watchdog = None
        if misconduct:
            about = named or agency or self.catalog.central
            code = about.misconduct_channel or self.catalog.central.misconduct_channel
            watchdog = self.catalog.agency(code) if code else None
            if watchdog is not None and watchdog.code in {a.code for a in shown}:
                watchdog = None
        # The agencies' lines name their sources; a service's own lines are covered by its provenance.
        cited = ([] if service else [agency]) + [named, watchdog]
        by_id = {s.id: s for s in self.catalog.agency_sources}
        agency_sources = list(dict.fromkeys(by_id[a.source] for a in cited if a and a.source in by_id))
        return Reply(
            self._render(
                template,
                service=service,
                agency=agency,
                also=named,
                misconduct=watchdog,
                agency_sources=agency_sources,
                hotline=self.catalog.central,
                provenance=provenance(service, "complaint") if service else None,
            )
        )

    # The status lookup (bot/assistant.py decides which of these applies).

    def status_ask_number(self, linked: Sequence[tuple[str, str]] = ()) -> Reply:
        """Ask for a tracking number; offer the requests already linked to this chat."""
        items = [{"number": number, "service_name": self.catalog.services[sid].short_name
                  if sid in self.catalog.services else sid} for number, sid in linked]
        buttons = [Button(item["number"], intent_payload("check_status", tracking_number=item["number"]))
                   for item in items]
        return Reply(self._render("status_ask_number", linked=items), buttons)

    def status_ask_code(self, tracking_number: str) -> Reply:
        return Reply(self._render("status_ask_code", number=tracking_number))

    def status_denied(self, tracking_number: str) -> Reply:
        """The same words for an unknown number and a wrong code, so numbers cannot be probed."""
        return Reply(self._render("status_denied", number=tracking_number, hotline=self.catalog.central))

    def status_locked(self) -> Reply:
        return Reply(self._render("status_locked", hotline=self.catalog.central))

    def status_complaint(self, tracking_number: str) -> Reply:
        return Reply(self._render("status_complaint", number=tracking_number, hotline=self.catalog.central))

    def request_status(self, request: ServiceRequest, assessment: Assessment) -> Reply:
        """A request's state: step, unit, since when, due dates, on time or late, what the citizen must do."""
        service = self.catalog.services[request.service_id]
        step_due = next((s for s in reversed(assessment.steps) if s.step_index == request.step_index), None)
        return Reply(
            self._render(
                "status_request",
                request=request,
                assessment=assessment,
                service=service,
                step=service.steps[request.step_index],
                step_due=step_due,
                status_label=STATUS_LABELS[request.status],
                agency=self.catalog.agencies.get(request.agency_code) or self.catalog.agency_of(service),
            ),
            [Button("ตรวจสอบคำขออื่น", intent_payload("check_status"))],
        )

    # Pushed without being asked (bot.delivery.notices): no buttons, as the chat did not offer them.

    def delay_notice(self, request: ServiceRequest, assessment: Assessment) -> Reply:
        """The 7-day notice of a late request (Licensing Facilitation Act): how late, and whom to ask."""
        service = self.catalog.services[request.service_id]
        return Reply(
            self._render(
                "delay_notice",
                request=request,
                assessment=assessment,
                service=service,
                step=service.steps[request.step_index],
                status_label=STATUS_LABELS[request.status],
                agency=self.catalog.agencies.get(request.agency_code) or self.catalog.agency_of(service),
            )
        )

    def status_changed(self, request: ServiceRequest) -> Reply:
        """A short "your request moved on": the new status, step and officer's note, and the number."""
        service = self.catalog.service(request.service_id)
        step = service.steps[request.step_index] if service and request.step_index < len(service.steps) else None
        return Reply(
            self._render(
                "status_changed",
                request=request,
                service=service,
                step=step,
                status_label=STATUS_LABELS.get(request.status, request.status),
            )
        )

    def _fee_summary(self, service: Service) -> str:
        amounts = [f.amount_baht for f in service.fees if f.amount_baht is not None]
        flag = UNCONFIRMED if any(f.unverified for f in service.fees) else ""
        if amounts and all(a == 0 for a in amounts) and all(f.rule is None for f in service.fees):
            return "ไม่เสียค่าธรรมเนียม" + flag
        if len(service.fees) == 1 and amounts:
            return format_baht(amounts[0]) + flag
        return "ขึ้นอยู่กับประเภทคำขอ (ดูหัวข้อค่าธรรมเนียม)" + flag

    def _hours_context(self, service: Service, question: str, now: dt.datetime) -> dict[str, Any]:
        query = parse_time_reference(question, now) if question else None
        rows = []
        for channel in service.channels:
            if not (channel.hours or channel.always_open):
                continue
            row = _ChannelRow(channel, describe_weekly_hours(channel))
            if query is not None and not channel.always_open:
                state = state_at(channel, query.when, self.calendar)
                blocks = hours_on(channel, query.when.date(), self.calendar)
                day_hours = ", ".join(f"{b.open}–{b.close} น." for b in blocks)
                row = _ChannelRow(channel, row.weekly, state, day_hours)
            rows.append(row)
        return {
            "query": query,
            "query_holiday": self.calendar.holiday(query.when.date()) if query else None,
            "rows": rows,
            "closes_on_holidays": any(
                r.channel.hours and not r.channel.open_on_public_holidays for r in rows
            ),
        }
