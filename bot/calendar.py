"""Thai working days: weekends and Thai public holidays (the `holidays` package, public category).

The one place that knows which days government offices close; SLA clocks and "open now"
answers both ask it.
"""

from __future__ import annotations

import datetime as dt

import holidays


class ThaiCalendar:
    def __init__(self) -> None:
        self._holidays = holidays.country_holidays("TH", language="th", categories=("public",))

    def holiday(self, day: dt.date) -> str | None:
        """The Thai name of the public holiday on `day`, or None."""
        name = self._holidays.get(day)
        return name.split(";")[0].strip() if name else None

    def is_working_day(self, day: dt.date) -> bool:
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
