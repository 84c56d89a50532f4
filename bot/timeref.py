"""Read the time a citizen asks about: "ตอนนี้เปิดไหม", "วันเสาร์เปิดไหม", "พรุ่งนี้", "5 ธ.ค.".

Deliberately small: the words citizens use for "now", relative days, weekdays and day-month
dates. Anything else means "no particular time" and the answer lists the weekly hours.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from bot.text import THAI_MONTHS, THAI_MONTHS_SHORT, normalize

_NOW = ("ตอนนี้", "ขณะนี้", "เดี๋ยวนี้", "ยังเปิดอยู่", "เปิดอยู่ไหม", "เปิดอยู่มั้ย", "now", "ตอนนี้เลย")
_RELATIVE = (("มะรืน", 2), ("พรุ่งนี้", 1), ("พรุ่งนี่", 1), ("tomorrow", 1), ("วันนี้", 0), ("today", 0))
_WEEKDAY_WORDS = (
    (("จันทร์", "monday"), 0),
    (("อังคาร", "tuesday"), 1),
    (("พุธ", "wednesday"), 2),
    (("พฤหัส", "thursday"), 3),
    (("ศุกร์", "friday"), 4),
    (("เสาร์", "saturday"), 5),
    (("อาทิตย์", "อาทิตย", "sunday"), 6),
)
_MONTH_WORDS = [(normalize(name, drop_spaces=True).text, i + 1) for i, name in enumerate(THAI_MONTHS)]
_MONTH_WORDS += [(normalize(name, drop_spaces=True).text, i + 1) for i, name in enumerate(THAI_MONTHS_SHORT)]
_MONTH_WORDS.sort(key=lambda item: -len(item[0]))


@dataclass(frozen=True)
class TimeQuery:
    """`kind` "now" asks about this moment; "day" about a whole calendar day."""

    kind: Literal["now", "day"]
    when: dt.datetime


def parse_time_reference(text: str, now: dt.datetime) -> TimeQuery | None:
    hay = normalize(text, drop_spaces=True).text
    if any(word in hay for word in _NOW):
        return TimeQuery("now", now)
    for word, offset in _RELATIVE:
        if word in hay:
            return _day(now, now.date() + dt.timedelta(days=offset))
    date = _explicit_date(hay, now.date())
    if date:
        return _day(now, date)
    for words, weekday in _WEEKDAY_WORDS:
        if any(w in hay for w in words):
            ahead = (weekday - now.weekday()) % 7
            return _day(now, now.date() + dt.timedelta(days=ahead))
    return None


def _day(now: dt.datetime, date: dt.date) -> TimeQuery:
    if date == now.date():
        return TimeQuery("day", now)
    return TimeQuery("day", dt.datetime.combine(date, dt.time(0, 0), tzinfo=now.tzinfo))


def _explicit_date(hay: str, today: dt.date) -> dt.date | None:
    """'5ธ.ค.' / '5ธันวาคม' (spaces and dots already removed) -> the next such date."""
    for month_word, month in _MONTH_WORDS:
        at = hay.find(month_word)
        if at <= 0:
            continue
        m = re.search(r"([0-3]?\d)$", hay[:at])
        if not m:
            continue
        day = int(m.group(1))
        for year in (today.year, today.year + 1):
            try:
                candidate = dt.date(year, month, day)
            except ValueError:
                return None
            if candidate >= today:
                return candidate
    return None
