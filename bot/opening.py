"""Is a service channel open at a given moment, and when does it next open?"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from bot.calendar import ThaiCalendar
from bot.catalog.schema import WEEKDAYS, Channel, OpeningHours

Reason = Literal["always", "open", "before_opening", "after_closing", "closed_day", "holiday"]
LOOKAHEAD_DAYS = 21


@dataclass(frozen=True)
class OpenState:
    is_open: bool
    reason: Reason
    closes_at: dt.datetime | None = None
    next_open: dt.datetime | None = None
    holiday: str | None = None


def _clock(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def hours_on(channel: Channel, day: dt.date, calendar: ThaiCalendar) -> list[OpeningHours]:
    """The opening blocks of `channel` on `day`, honouring public holidays."""
    if calendar.holiday(day) and not channel.open_on_public_holidays:
        return []
    weekday = WEEKDAYS[day.weekday()]
    return sorted((b for b in channel.hours if weekday in b.days), key=lambda b: b.open)


def state_at(channel: Channel, when: dt.datetime, calendar: ThaiCalendar) -> OpenState:
    """Whether `channel` is open at `when` (an aware or Bangkok-local datetime)."""
    if channel.always_open:
        return OpenState(True, "always")
    day, now = when.date(), when.time()
    blocks = hours_on(channel, day, calendar)
    for block in blocks:
        if _clock(block.open) <= now < _clock(block.close):
            return OpenState(True, "open", closes_at=_at(when, day, block.close))
    holiday = calendar.holiday(day)
    if holiday and not channel.open_on_public_holidays:
        reason: Reason = "holiday"
    elif not blocks:
        reason = "closed_day"
    elif now < _clock(blocks[0].open):
        reason = "before_opening"
    else:
        reason = "after_closing"
    return OpenState(False, reason, next_open=next_opening(channel, when, calendar), holiday=holiday)


def next_opening(channel: Channel, after: dt.datetime, calendar: ThaiCalendar) -> dt.datetime | None:
    """The next moment after `after` when `channel` opens, within three weeks."""
    for offset in range(LOOKAHEAD_DAYS):
        day = after.date() + dt.timedelta(days=offset)
        for block in hours_on(channel, day, calendar):
            start = _at(after, day, block.open)
            if start > after:
                return start
    return None


def _at(reference: dt.datetime, day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, _clock(clock), tzinfo=reference.tzinfo)
