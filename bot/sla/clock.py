"""The SLA clock: when each step and the whole request are due, and whether they are late.

Pure domain code (no database, no I/O): the registry, the agency API and the status lookup all
judge a request with `assess`, and ask `delay_notice_due` which late requests need a notice.
Times in and out are timezone-aware; everything is computed in Bangkok time (`TIMEZONE`).

Rules
-----
Office time. Minutes and hours count only while the office is open: within the opening blocks
of the `office` channel on that day (`bot.opening.hours_on`, so public holidays, substitution
days and cabinet-declared closed days close it unless the channel opens on holidays). The gap
between two blocks of one day (a lunch break) does not count. With no office, or an office
channel that lists no hours, the hours are Mon-Fri 08:30-16:30. An `always_open` channel is
open around the clock. On a day the cabinet declares a working day (`SpecialDay` kind `open`)
that falls on a weekend, the office keeps its first weekday's hours.

Start. The request's clock starts at its submission, but a request filed while the office is
closed (after hours, in the lunch break, on a weekend or a holiday) starts at the office's next
opening: filed on Friday evening or on Saturday, it starts on Monday (or the first working day
after) at opening time. The first recorded step starts with the request; each later step when
it was entered (never before the request's start).

Minutes and hours. The deadline is the moment the given office time has run from the start:
a 3-hour step started at 15:30 has 1 hour that day and is due at 10:30 the next working morning.

Working days and days. As the Civil and Commercial Code counts periods (s. 193/3, 193/5,
193/8): the day the clock starts is not counted unless it starts at or before the office's
opening on that day (as a request filed after hours does), and the period ends at the office's
closing time (the end of its last block; 16:30 if it has none that day) on its last day.
`working_days` count only days `ThaiCalendar.is_working_day` accepts: no weekends, holidays
offices observe, substitution days or cabinet-declared closed days (cabinet-declared working
days do count). `days` are calendar days, but a period whose last day is not a working day
ends on the next working day. So 1 working day started on Friday at 10:00 is due on Monday at
16:30, and so is a request filed on Friday at 17:00 (it starts on Monday at 08:30, and Monday
counts). A step that starts when the previous one ended at closing time counts from the next
day, so consecutive day-based steps add up exactly. Fractional day counts are rounded up.

Pauses. Time waiting for the citizen does not count against the agency: a deadline moves
later by the office time that fell inside pauses before it (open office time only, so a pause
over a weekend moves nothing). A pause still running counts up to `now`, so while paused the
deadline keeps moving and the request cannot become late; a pause that starts after a deadline
has passed does not move it. Pauses are cut at `completed_at` (or `now`): what happens after
them is not known yet.

Steps and the target. Each step entered (records sorted by `entered_at`) is due by its own
catalog duration from its start (above); it finished when it was left, else when the next
step was entered, else when the request was completed. `due_at`, the whole request's
deadline, is the service's `time_target` counted from the request's start: the promise the
citizen's manual makes, and the one the Licensing Facilitation Act's notices are about. The
two relate as follows:
  * A step whose own duration, from the same start, ends after the whole target cannot fit in
    it: the catalog lists such steps for cases the target's note excludes (birth
    registration's 90-day inquiry for late registrations; the 1-hour training a 30-minute
    driving-licence target excludes). Such a step counts only if the request enters it, and
    then `due_at` is extended by its duration (counted on from the target's deadline).
  * The other steps are expected to fit in the target; when they add up to more or less than
    it, `due_at` still follows the target. `expected_completion` follows the steps: the
    current step's due (or now, if that has passed), then the durations of the catalog steps
    after it (steps outside the target left out), each starting when the previous one ends.
    It can be later than `due_at`; the state does not depend on it. A completed request's
    `expected_completion` is its `completed_at`.

State. Completed requests are `completed_on_time` if `completed_at <= due_at`, else
`completed_late`. An open request is `late` once `now > due_at`. It is `at_risk` when not
late but (a) less than 20% of the target's office time (from its start to `due_at`) remains,
or for a day-based target (any `working_days`/`days` duration) its last day has come, or
(b) the same holds for the current step, or the current step is past its own due. Otherwise
it is `on_time`. A late step alone makes the request at risk, not late.

Late by. `late_working_days` is the number of working days after the due date up to and
including the day of the measurement (now, or the completion or the step's end), and at least
1 once past due: due on Monday at 16:30, it is 1 on Monday evening and on Tuesday, 2 on
Wednesday. `Assessment.late_working_days` measures against `due_at`; each `StepDue` against
its own due (the current step's lateness is `steps[-1].late_working_days`).

Delay notices. Under the Licensing Facilitation Act B.E. 2558 (s. 10), an agency that cannot
finish within the manual's time tells the applicant in writing every 7 days until it finishes:
`delay_notice_due` is true for a `late` request with no notice in the last 7 (calendar) days;
a notice sent before the current `due_at` does not count.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

from bot.calendar import ThaiCalendar
from bot.catalog.schema import WEEKDAYS, Channel, Duration, OpeningHours, Service
from bot.opening import hours_on
from bot.settings import TIMEZONE

State = Literal["on_time", "at_risk", "late", "completed_on_time", "completed_late"]

DEFAULT_OFFICE = Channel(
    kind="office",
    name="เวลาราชการ",
    hours=[OpeningHours(["mon", "tue", "wed", "thu", "fri"], "08:30", "16:30")],
)
DEFAULT_CLOSING = dt.time(16, 30)
AT_RISK_SHARE = 0.2
NOTICE_INTERVAL = dt.timedelta(days=7)
DAY_UNITS = ("working_days", "days")
# An office that does not open for this many days in a row never will: refuse, do not loop.
MAX_CLOSED_DAYS = 400

Span = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class StepRecord:
    """One catalog step the request entered."""

    step_index: int  # index into service.steps
    entered_at: dt.datetime  # aware, Asia/Bangkok or UTC
    left_at: dt.datetime | None = None


@dataclass(frozen=True)
class Pause:
    """Time waiting for the citizen: does not count against the agency. `end` None: still waiting."""

    start: dt.datetime
    end: dt.datetime | None = None


@dataclass(frozen=True)
class StepDue:
    step_index: int
    started_at: dt.datetime  # when the agency's clock for it started (after filing rules)
    due_at: dt.datetime
    finished_at: dt.datetime | None
    late_working_days: int  # 0 if on time


@dataclass(frozen=True)
class Assessment:
    steps: tuple[StepDue, ...]  # the steps entered so far, in order
    due_at: dt.datetime  # the whole time target's deadline (pauses extend it)
    expected_completion: dt.datetime  # current step's due, then the remaining steps' durations
    state: State
    late_working_days: int  # working days past due_at (0 unless late or completed late)
    paused: bool  # waiting for the citizen right now


def assess(
    service: Service,
    office: Channel | None,
    calendar: ThaiCalendar,
    submitted_at: dt.datetime,
    steps: Sequence[StepRecord],
    pauses: Sequence[Pause],
    now: dt.datetime,
    completed_at: dt.datetime | None = None,
) -> Assessment:
    """Judge a request against its service's step durations and time target (rules above)."""
    submitted = _local(submitted_at, "submitted_at")
    now = _local(now, "now")
    completed = _local(completed_at, "completed_at") if completed_at is not None else None
    cutoff = completed if completed is not None else now
    clock = _Clock(office, calendar, _pause_spans(pauses, cutoff))
    paused = completed is None and any(
        _local(p.start, "pause start") <= now and (p.end is None or _local(p.end, "pause end") > now) for p in pauses
    )

    start = clock.next_open(submitted)
    target_end = clock.add(start, service.time_target)
    outside = {i for i, step in enumerate(service.steps) if clock.add(start, step.duration) > target_end}

    records = sorted(steps, key=lambda record: _local(record.entered_at, "entered_at"))
    for record in records:
        if not 0 <= record.step_index < len(service.steps):
            raise ValueError(f"step_index {record.step_index} is not a step of {service.id}")
    step_dues: list[StepDue] = []
    for k, record in enumerate(records):
        raw_start = start if k == 0 else max(_local(record.entered_at, "entered_at"), start)
        if record.left_at is not None:
            finished: dt.datetime | None = _local(record.left_at, "left_at")
        elif k + 1 < len(records):
            finished = _local(records[k + 1].entered_at, "entered_at")
        else:
            finished = completed
        due = clock.due(raw_start, [service.steps[record.step_index].duration])
        late = _late_working_days(calendar, due, finished if finished is not None else now)
        step_dues.append(StepDue(record.step_index, clock.next_open(raw_start), due, finished, late))

    entered_outside: list[Duration] = []
    for index in dict.fromkeys(record.step_index for record in records):
        if index in outside:
            entered_outside.append(service.steps[index].duration)
    target_chain = [service.time_target, *entered_outside]
    due_at = clock.due(start, target_chain)

    if completed is not None:
        expected = completed
    else:
        if step_dues:
            current = step_dues[-1]
            current_end = current.finished_at if current.finished_at is not None else current.due_at
            following = range(current.step_index + 1, len(service.steps))
        else:
            current_end = start
            following = range(len(service.steps))
        remaining = [service.steps[i].duration for i in following if i not in outside]
        expected = clock.due(max(current_end, now), remaining)

    if completed is not None:
        state: State = "completed_on_time" if completed <= due_at else "completed_late"
        late_days = _late_working_days(calendar, due_at, completed)
    elif now > due_at:
        state, late_days = "late", _late_working_days(calendar, due_at, now)
    else:
        late_days = 0
        at_risk = clock.at_risk(start, due_at, now, _day_based(target_chain))
        if step_dues and step_dues[-1].finished_at is None:
            current = step_dues[-1]
            duration = service.steps[current.step_index].duration
            at_risk = at_risk or now > current.due_at or clock.at_risk(
                current.started_at, current.due_at, now, _day_based([duration])
            )
        state = "at_risk" if at_risk else "on_time"

    return Assessment(tuple(step_dues), due_at, expected, state, late_days, paused)


def delay_notice_due(assessment: Assessment, last_notice_at: dt.datetime | None, now: dt.datetime) -> bool:
    """True when a late request needs a delay notice: none sent since it went late, or 7 days ago or more."""
    if assessment.state != "late":
        return False
    if last_notice_at is None:
        return True
    last = _local(last_notice_at, "last_notice_at")
    if last < assessment.due_at:
        return True
    return _local(now, "now") - last >= NOTICE_INTERVAL


class _Clock:
    """An office's opening time on the Thai calendar, with the request's pauses."""

    def __init__(self, office: Channel | None, calendar: ThaiCalendar, pauses: list[Span]) -> None:
        if office is None or not (office.always_open or office.hours):
            office = DEFAULT_OFFICE
        self.office = office
        self.calendar = calendar
        self.pauses = pauses
        self._blocks: dict[dt.date, tuple[Span, ...]] = {}

    # Opening blocks -------------------------------------------------------------------------

    def blocks(self, day: dt.date) -> tuple[Span, ...]:
        """The office's open spans on `day`, sorted and merged."""
        cached = self._blocks.get(day)
        if cached is not None:
            return cached
        if self.office.always_open:
            spans = [(_at(day, dt.time()), _at(day + dt.timedelta(days=1), dt.time()))]
        else:
            hours = hours_on(self.office, day, self.calendar)
            if not hours and day.weekday() >= 5 and self.calendar.is_working_day(day):
                hours = self._weekday_hours()
            spans = sorted(
                (_at(day, _clock(block.open)), _at(day, _clock(block.close)))
                for block in hours
                if _clock(block.open) < _clock(block.close)
            )
        merged: list[Span] = []
        for begin, end in spans:
            if merged and begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((begin, end))
        self._blocks[day] = tuple(merged)
        return self._blocks[day]

    def _weekday_hours(self) -> list[OpeningHours]:
        for weekday in WEEKDAYS[:5]:
            hours = [block for block in self.office.hours if weekday in block.days]
            if hours:
                return hours
        return []

    def open_spans(self, start: dt.datetime, end: dt.datetime | None = None) -> Iterator[Span]:
        """Open spans from `start` (clipped to it), up to `end` if given."""
        day = start.date()
        closed_days = 0
        while end is None or day <= end.date():
            spans = self.blocks(day)
            closed_days = 0 if spans else closed_days + 1
            if closed_days > MAX_CLOSED_DAYS:
                raise ValueError(f"the office {self.office.name!r} does not open within {MAX_CLOSED_DAYS} days")
            for begin, finish in spans:
                begin, finish = max(begin, start), finish if end is None else min(finish, end)
                if begin < finish:
                    yield begin, finish
            day += dt.timedelta(days=1)

    def active_spans(self, start: dt.datetime, end: dt.datetime | None = None) -> Iterator[Span]:
        """Open spans outside pauses: the time that counts against the agency."""
        for begin, finish in self.open_spans(start, end):
            for pause_start, pause_end in self.pauses:
                if pause_end <= begin or pause_start >= finish:
                    continue
                if pause_start > begin:
                    yield begin, pause_start
                begin = max(begin, pause_end)
                if begin >= finish:
                    break
            if begin < finish:
                yield begin, finish

    def paused_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Open office time inside pauses between `start` and `end`."""
        total = dt.timedelta()
        for begin, finish in self.open_spans(start, end):
            for pause_start, pause_end in self.pauses:
                overlap = min(finish, pause_end) - max(begin, pause_start)
                if overlap > dt.timedelta():
                    total += overlap
        return total

    def active_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        if end <= start:
            return dt.timedelta()
        return sum((finish - begin for begin, finish in self.active_spans(start, end)), dt.timedelta())

    def next_open(self, when: dt.datetime) -> dt.datetime:
        """`when` if the office is open then, else its next opening."""
        for begin, _ in self.open_spans(when):
            return begin
        raise AssertionError("unreachable: open_spans without end never runs dry")

    def closing(self, day: dt.date) -> dt.datetime:
        spans = self.blocks(day)
        return spans[-1][1] if spans else _at(day, DEFAULT_CLOSING)

    # Durations --------------------------------------------------------------------------------

    def advance(self, start: dt.datetime, amount: dt.timedelta, *, skip_pauses: bool = True) -> dt.datetime:
        """The moment `amount` of open office time (outside pauses, unless told) has run from `start`."""
        if amount <= dt.timedelta():
            return start
        spans = self.active_spans(start) if skip_pauses else self.open_spans(start)
        for begin, finish in spans:
            if finish - begin >= amount:
                return begin + amount
            amount -= finish - begin
        raise AssertionError("unreachable: spans without end never run dry")

    def add(self, start: dt.datetime, duration: Duration) -> dt.datetime:
        """The deadline of `duration` from `start`, ignoring pauses."""
        if duration.unit in ("minutes", "hours"):
            return self.advance(start, dt.timedelta(**{duration.unit: duration.value}), skip_pauses=False)
        count = math.ceil(duration.value)
        if count <= 0:
            return start
        first_day = start.date()
        spans = self.blocks(first_day)
        first_counts = bool(spans) and start <= spans[0][0]
        if duration.unit == "working_days":
            if first_counts and self.calendar.is_working_day(first_day):
                last_day = self.calendar.add_working_days(first_day, count - 1)
            else:
                last_day = self.calendar.add_working_days(first_day, count)
        else:
            last_day = first_day + dt.timedelta(days=count - 1 if first_counts else count)
            while not self.calendar.is_working_day(last_day):
                last_day += dt.timedelta(days=1)
        return self.closing(last_day)

    def due(self, start: dt.datetime, durations: Sequence[Duration]) -> dt.datetime:
        """The deadline of `durations` one after another from `start`, moved on by paused time."""
        if not durations:
            return start
        end = start
        for duration in durations:
            end = self.add(end, duration)
        paused = self.paused_time(start, end)
        return self.advance(end, paused) if paused else end

    def at_risk(self, start: dt.datetime, due: dt.datetime, now: dt.datetime, day_based: bool) -> bool:
        """Not past due, but under 20% of the office time left, or (day-based) on its last day."""
        if now > due:
            return False
        total = self.active_time(start, due)
        if total and self.active_time(max(start, now), due) < total * AT_RISK_SHARE:
            return True
        return day_based and now.date() == due.date()


def _late_working_days(calendar: ThaiCalendar, due: dt.datetime, when: dt.datetime) -> int:
    """Working days after the due date up to and including `when`'s date; at least 1 once late."""
    if when <= due:
        return 0
    count = 0
    day = due.date() + dt.timedelta(days=1)
    while day <= when.date():
        if calendar.is_working_day(day):
            count += 1
        day += dt.timedelta(days=1)
    return max(1, count)


def _pause_spans(pauses: Sequence[Pause], cutoff: dt.datetime) -> list[Span]:
    """Pauses as sorted, merged spans; a running pause ends at `cutoff`, and none runs past it."""
    spans: list[Span] = []
    for pause in pauses:
        begin = _local(pause.start, "pause start")
        end = _local(pause.end, "pause end") if pause.end is not None else cutoff
        if end < begin:
            raise ValueError(f"a pause ends ({end.isoformat()}) before it starts ({begin.isoformat()})")
        end = min(end, cutoff)
        if begin < end:
            spans.append((begin, end))
    spans.sort()
    merged: list[Span] = []
    for begin, end in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _day_based(durations: Sequence[Duration]) -> bool:
    return any(duration.unit in DAY_UNITS for duration in durations)


def _local(when: dt.datetime, name: str) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {when.isoformat()}")
    return when.astimezone(TIMEZONE)


def _at(day: dt.date, clock: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=TIMEZONE)


def _clock(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))
