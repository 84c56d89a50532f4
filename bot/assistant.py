"""The domain layer's front: catalog, calendar, service matcher and answers, built once.

The action server builds one `Assistant` at start-up; the gateway and later the casework
use the same object, so every channel answers from the same catalog.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bot.answers.render import ASPECTS, AnswerRenderer
from bot.answers.reply import BUTTON_TITLE_MAX, Reply
from bot.calendar import ThaiCalendar
from bot.catalog.loader import Catalog, load_catalog
from bot.catalog.matching import ServiceMatcher
from bot.catalog.validation import CatalogError, Problem
from bot.settings import TIMEZONE
from bot.tracking import COMPLAINT_CODE

logger = logging.getLogger(__name__)


def bangkok_now() -> dt.datetime:
    return dt.datetime.now(TIMEZONE)


@dataclass(frozen=True)
class ServiceChoice:
    """The service a question is about, or the candidates to ask the citizen to choose from."""

    service_id: str | None
    candidates: tuple[str, ...] = ()


@dataclass
class Assistant:
    catalog: Catalog
    calendar: ThaiCalendar
    matcher: ServiceMatcher
    answers: AnswerRenderer
    clock: Callable[[], dt.datetime] = field(default=bangkok_now)

    @classmethod
    def from_catalog(cls, catalog: Catalog, clock: Callable[[], dt.datetime] = bangkok_now) -> "Assistant":
        """An assistant for `catalog`; raises `CatalogError` if any reply cannot be rendered from it."""
        calendar = ThaiCalendar(catalog.special_days)
        assistant = cls(
            catalog=catalog,
            calendar=calendar,
            matcher=ServiceMatcher.from_catalog(catalog),
            answers=AnswerRenderer(catalog, calendar),
            clock=clock,
        )
        problems = assistant.render_problems()
        if problems:
            raise CatalogError(problems)
        return assistant

    def _sample_request(self, service_id: str, now: dt.datetime) -> tuple[Any, Any]:
        """A request waiting in the service's last step, and its SLA assessment, to render."""
        from bot.casework.request import ServiceRequest, StatusChange, StepEntry
        from bot.sla.clock import StepRecord, assess

        service = self.catalog.services[service_id]
        last = len(service.steps) - 1
        filed = now - dt.timedelta(days=1)
        request = ServiceRequest(
            tracking_number=f"{service.agency}-2569-000001", agency_code=service.agency, service_id=service_id,
            office="สำนักงานตัวอย่าง", status="waiting_for_citizen", submitted_at=filed, updated_at=now,
            closed_at=None, last_delay_notice_at=None,
            steps=(StepEntry(last, filed, None, "หมายเหตุ"),),
            status_changes=(StatusChange(None, "waiting_for_citizen", filed),),
        )
        assessment = assess(service, None, self.calendar, filed, [StepRecord(last, filed)], [], now)
        return request, assessment

    def render_problems(self) -> list[Problem]:
        """Render every kind of reply for every service and agency; list what fails.

        The catalog's schema cannot see everything the templates need, so a catalog is only
        accepted (by `catalog check` and by the live reload) once every reply renders.
        """
        now = self.clock()
        problems: list[Problem] = []

        def attempt(file: str, what: str, render: Callable[..., Reply], *args: Any, **kwargs: Any) -> None:
            try:
                reply = render(*args, **kwargs)
            except Exception as exc:  # any template failure means the catalog cannot be served
                problems.append(Problem(file, what, f"the answer cannot be rendered: {type(exc).__name__}: {exc}"))
                return
            if not reply.text.strip():
                problems.append(Problem(file, what, "the answer renders empty"))
            for button in reply.buttons:
                if len(button.title) > BUTTON_TITLE_MAX:
                    problems.append(
                        Problem(file, what, f"button {button.title!r} is longer than {BUTTON_TITLE_MAX} characters")
                    )

        answers = self.answers
        for sid in self.catalog.services:
            file = f"services/{sid}.yml"
            for intent in ASPECTS:
                attempt(file, f"answer to {intent}", answers.answer, sid, intent, question="ตอนนี้", now=now)
                attempt(file, f"answer to {intent}", answers.answer, sid, intent, now=now)
            attempt(file, "human contact", answers.human_contact, sid)
            attempt(file, "complaint channels", answers.complaint_channels, sid)
            attempt(file, "complaint channels (misconduct)", answers.complaint_channels, sid, misconduct=True)
            attempt(file, "request status", answers.request_status, *self._sample_request(sid, now))
            attempt(file, "status lookup prompt", answers.status_ask_number, [("XX-2569-000001", sid)])
        attempt("agencies.yml", "status lookup prompt", answers.status_ask_number, [])
        attempt("agencies.yml", "verification prompt", answers.status_ask_code, "DLT-2569-000001")
        attempt("agencies.yml", "status refused", answers.status_denied, "DLT-2569-000001")
        attempt("agencies.yml", "status locked", answers.status_locked)
        attempt("agencies.yml", "complaint number", answers.status_complaint, f"{COMPLAINT_CODE}-2569-000001")
        attempt("agencies.yml", "greeting", answers.greeting)
        attempt("agencies.yml", "help menu", answers.help_menu)
        attempt("agencies.yml", "bot challenge", answers.bot_challenge)
        attempt("agencies.yml", "not understood", answers.not_understood)
        attempt("agencies.yml", "out of scope", answers.out_of_scope)
        attempt("agencies.yml", "human contact", answers.human_contact, None)
        attempt("agencies.yml", "complaint channels", answers.complaint_channels, None)
        for code in self.catalog.agencies:
            attempt("agencies.yml", f"{code} human contact", answers.human_contact, None, code)
            attempt("agencies.yml", f"{code} complaint channels", answers.complaint_channels, None, code)
            attempt("agencies.yml", f"{code} complaint channels (misconduct)", answers.complaint_channels, None, code,
                    misconduct=True)
        attempt("agencies.yml", "choice of service", answers.choose_service, "ask_fee", [])
        return problems

    def choose_service(
        self,
        mentioned: Sequence[str],
        remembered: str | None,
        text: str,
        pending: Sequence[str] = (),
    ) -> ServiceChoice:
        """Decide which service a question is about.

        `mentioned` are the services the NLU found in this message, `remembered` the one the
        conversation was about, `pending` the candidates the bot last asked the citizen to
        choose from. One mention wins; several mean "which one?". Without a mention, a weak
        word in the text (ใบอนุญาต, ทะเบียน, เด็ก) that points elsewhere than the remembered
        service asks too, offering the remembered service first (a child's passport is
        still the passport); otherwise the remembered service carries the follow-up. While a
        choice is pending nothing is remembered, so the follow-up asks again among them.
        """
        known = [sid for sid in dict.fromkeys(mentioned) if sid in self.catalog.services]
        if len(known) == 1:
            return ServiceChoice(known[0])
        if len(known) > 1:
            return ServiceChoice(None, tuple(known))
        candidates = self.matcher.resolve(text).candidates
        if remembered in self.catalog.services:
            if not candidates or remembered in candidates:
                return ServiceChoice(remembered)
            return ServiceChoice(None, (remembered, *candidates))
        if len(candidates) == 1:
            return ServiceChoice(candidates[0])
        if not candidates:
            candidates = tuple(sid for sid in pending if sid in self.catalog.services)
        return ServiceChoice(None, candidates)


class LiveAssistant:
    """Keeps an `Assistant` in step with the catalog files, so an edited fee is answered at once.

    Each `current()` compares the files' sizes and modification times (a few stat calls) and
    reloads on change. An edit that does not validate is logged and the last good catalog
    stays in use, so a typo in one file never takes the bot down.
    """

    def __init__(self, directory: Path, clock: Callable[[], dt.datetime] = bangkok_now) -> None:
        self._directory = Path(directory)
        self._clock = clock
        self._stamp = self._read_stamp()
        self._assistant = Assistant.from_catalog(load_catalog(self._directory), clock)

    def _read_stamp(self) -> tuple:
        """(path, mtime, size) of every catalog file: one directory scan and one stat per file
        (it runs on every custom action)."""
        stamp = []
        for directory in (self._directory, self._directory / "services"):
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.name.endswith(".yml") and entry.is_file():
                            status = entry.stat()
                            stamp.append((entry.path, status.st_mtime_ns, status.st_size))
            except FileNotFoundError:  # no services/ yet: loading reports what is missing
                continue
        return tuple(sorted(stamp))

    def current(self) -> Assistant:
        stamp = self._read_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._assistant = Assistant.from_catalog(load_catalog(self._directory), self._clock)
                logger.info("catalog changed; reloaded %d services", len(self._assistant.catalog.services))
            except CatalogError as exc:
                logger.error("catalog edit rejected, still answering from the previous version:\n%s", exc)
        return self._assistant
