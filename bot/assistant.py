"""The domain layer's front: catalog, calendar, service matcher and answers, built once.

The action server builds one `Assistant` at start-up; the gateway and later the casework
use the same object, so every channel answers from the same catalog.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bot.answers.render import AnswerRenderer
from bot.calendar import ThaiCalendar
from bot.catalog.loader import Catalog, load_catalog
from bot.catalog.matching import ServiceMatcher
from bot.catalog.validation import CatalogError
from bot.settings import TIMEZONE

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
        calendar = ThaiCalendar()
        return cls(
            catalog=catalog,
            calendar=calendar,
            matcher=ServiceMatcher.from_catalog(catalog),
            answers=AnswerRenderer(catalog, calendar),
            clock=clock,
        )

    def choose_service(
        self, mentioned: Sequence[str], remembered: str | None, text: str
    ) -> ServiceChoice:
        """Decide which service a question is about.

        `mentioned` are the services the NLU found in this message, `remembered` the one the
        conversation was about. One mention wins; several mean "which one?". Without a
        mention, a weak word in the text (ใบอนุญาต, ทะเบียน) that points elsewhere than the
        remembered service asks too; otherwise the remembered service carries the follow-up.
        """
        known = [sid for sid in dict.fromkeys(mentioned) if sid in self.catalog.services]
        if len(known) == 1:
            return ServiceChoice(known[0])
        if len(known) > 1:
            return ServiceChoice(None, tuple(known))
        candidates = self.matcher.resolve(text).candidates
        if remembered in self.catalog.services and (not candidates or remembered in candidates):
            return ServiceChoice(remembered)
        if len(candidates) == 1:
            return ServiceChoice(candidates[0])
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
        files = sorted(self._directory.glob("*.yml")) + sorted(self._directory.glob("services/*.yml"))
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)

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
