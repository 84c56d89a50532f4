"""Thai working days: weekends, holidays government offices observe, and cabinet special days.

The one place that knows which days government offices close; SLA clocks and "open now"
answers both ask it. Holidays come from the `holidays` package in the categories government
offices observe: `public` (including substitution days) and `government` (days such as the
Royal Ploughing Ceremony, when offices close but the package does not call it public). Days
the cabinet declares at short notice come from the catalog's `special_days.yml` and win.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import holidays

from bot.catalog.schema import SpecialDay

OFFICE_HOLIDAY_CATEGORIES = ("public", "government")


class ThaiCalendar:
    def __init__(self, special_days: Iterable[SpecialDay] = ()) -> None:
        self._holidays = holidays.country_holidays("TH", language="th", categories=OFFICE_HOLIDAY_CATEGORIES)
        self._special = {day.date: day for day in special_days}

    def holiday(self, day: dt.date) -> str | None:
        """The Thai name of the holiday offices observe on `day`, or None."""
        special = self._special.get(day)
        if special is not None:
            return special.name if special.kind == "closed" else None
        name = self._holidays.get(day)
        return name.split(";")[0].strip() if name else None

    def is_working_day(self, day: dt.date) -> bool:
        special = self._special.get(day)
        if special is not None:
            return special.kind == "open"
        return day.weekday() < 5 and self.holiday(day) is None

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The date `days` working days after `start` (start itself not counted)."""
        day = start
        remaining = days
        while remaining > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day
