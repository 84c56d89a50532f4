"""The SLA clock: step and target deadlines on the Thai calendar, pauses, states and delay notices.

Dates are checked against what `ThaiCalendar` says (the `holidays` package plus the catalog's
special days): in 2026 Songkran (13-15 April) falls on Monday to Wednesday, so it has no
substitution day; in 2025 it began on a Sunday and Wednesday 16 April was the substitution day.
"""

import datetime as dt

import pytest

from bot.calendar import ThaiCalendar
from bot.catalog import load_catalog
from bot.catalog.schema import Channel, Duration, OpeningHours, Service, SpecialDay, Step
from bot.settings import PROJECT_ROOT, TIMEZONE
from bot.sla import Assessment, Pause, StepRecord, assess, delay_notice_due

CATALOG = PROJECT_ROOT / "sla_catalog"
SERVICE_IDS = sorted(path.stem for path in (CATALOG / "services").glob("*.yml"))
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
LUNCH_OFFICE = Channel(
    kind="office",
    name="สำนักงานเขต (พักเที่ยง)",
    hours=[OpeningHours(WEEKDAYS, "08:30", "12:00"), OpeningHours(WEEKDAYS, "13:00", "16:30")],
)
calendar = ThaiCalendar()


def at(y, m, d, hh=10, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=TIMEZONE)


def service(*steps, target) -> Service:
    """A service with steps given as (value, unit) and a (value, unit) time target."""
    return Service(
        id="test_service", name="บริการทดสอบ", short_name="ทดสอบ", name_en="Test service", agency="DLT",
        summary="", aliases=[], legal_basis=[], criteria=[], channels=[],
        steps=[Step(f"ขั้นตอนที่ {i + 1}", "เจ้าหน้าที่", Duration(*step)) for i, step in enumerate(steps)],
        time_target=Duration(*target), documents=[], fees=[], sources=[], verified_on=dt.date(2026, 11, 1),
    )


def filed(svc, when, now, *, office=None, cal=calendar, records=None, pauses=(), completed_at=None) -> Assessment:
    """Assess a request filed at `when` that is (unless told) still in its first step."""
    records = [StepRecord(0, when, None)] if records is None else records
    return assess(svc, office, cal, when, records, pauses, now, completed_at)


ONE_WORKING_DAY = service((1, "working_days"), target=(1, "working_days"))
SEVEN_WORKING_DAYS = service((7, "working_days"), target=(7, "working_days"))
WORK_PERMIT = service((1, "working_days"), (5, "working_days"), (1, "working_days"), target=(7, "working_days"))
ONE_HOUR = service((60, "minutes"), target=(60, "minutes"))
THREE_HOURS = service((3, "hours"), target=(3, "hours"))


# Thai holidays ---------------------------------------------------------------------------------


def test_songkran_2026_is_skipped_and_has_no_substitution_day():
    assert [calendar.holiday(dt.date(2026, 4, d)) for d in (13, 14, 15)] == ["วันสงกรานต์"] * 3
    assert calendar.is_working_day(dt.date(2026, 4, 16))
    a = filed(WORK_PERMIT, at(2026, 4, 10, 10), now=at(2026, 4, 10, 11))  # Friday before Songkran
    # 1 working day: Mon 13 - Wed 15 are Songkran, so Thursday 16 April at closing time.
    assert a.steps[0].started_at == at(2026, 4, 10, 10)
    assert a.steps[0].due_at == at(2026, 4, 16, 16, 30)
    # 7 working days: Thu 16, Fri 17, Mon 20 ... Fri 24 April.
    assert a.due_at == at(2026, 4, 24, 16, 30)
    assert a.expected_completion == at(2026, 4, 24, 16, 30)  # 1 + 5 + 1 working days, back to back
    assert (a.state, a.late_working_days, a.paused) == ("on_time", 0, False)


def test_songkran_2025_substitution_day_is_skipped():
    assert calendar.holiday(dt.date(2025, 4, 16)) == "ชดเชยวันสงกรานต์"
    a = filed(ONE_WORKING_DAY, at(2025, 4, 11, 10), now=at(2025, 4, 11, 11))  # Friday
    # Sat 12, Sun 13 - Tue 15 Songkran, Wed 16 its substitution day.
    assert a.due_at == at(2025, 4, 17, 16, 30)


def test_substitution_day_for_5_december_is_skipped_in_days_and_hours():
    assert "ชดเชย" in calendar.holiday(dt.date(2026, 12, 7))
    two_days = service((2, "working_days"), target=(2, "working_days"))
    a = filed(two_days, at(2026, 12, 4, 10), now=at(2026, 12, 4, 11))  # Friday
    assert a.due_at == at(2026, 12, 9, 16, 30)  # Mon 7 skipped: Tue 8, Wed 9
    b = filed(THREE_HOURS, at(2026, 12, 4, 15, 30), now=at(2026, 12, 4, 16))
    assert b.due_at == at(2026, 12, 8, 10, 30)  # 1 hour on Friday, 2 on Tuesday morning


@pytest.mark.parametrize(
    "filed_at, due",
    [
        # 31 Dec and 1 Jan 2027 (Thursday, Friday), then the weekend.
        (at(2026, 12, 30, 14), at(2027, 1, 4, 16, 30)),
        # 31 Dec 2025, 1 Jan and the special holiday of 2 Jan 2026, then the weekend.
        (at(2025, 12, 30, 10), at(2026, 1, 5, 16, 30)),
    ],
)
def test_new_year_holidays_are_skipped(filed_at, due):
    assert filed(ONE_WORKING_DAY, filed_at, now=filed_at).due_at == due


def test_a_request_filed_on_new_years_eve_starts_after_the_holidays():
    quarter_hour = service((15, "minutes"), target=(15, "minutes"))
    a = filed(quarter_hour, at(2026, 12, 31, 10), now=at(2026, 12, 31, 10))
    assert a.steps[0].started_at == at(2027, 1, 4, 8, 30)
    assert a.due_at == at(2027, 1, 4, 8, 45)
    assert a.state == "on_time"


def test_a_cabinet_special_day_closes_offices():
    closed = ThaiCalendar([SpecialDay(dt.date(2026, 11, 27), "closed", "วันหยุดราชการเป็นกรณีพิเศษ")])
    # Without it, 1 working day from Thursday is Friday.
    assert filed(ONE_WORKING_DAY, at(2026, 11, 26, 10), now=at(2026, 11, 26, 10)).due_at == at(2026, 11, 27, 16, 30)
    assert filed(ONE_WORKING_DAY, at(2026, 11, 26, 10), now=at(2026, 11, 26, 10), cal=closed).due_at == at(
        2026, 11, 30, 16, 30
    )
    two_hours = service((2, "hours"), target=(2, "hours"))
    a = filed(two_hours, at(2026, 11, 26, 16), now=at(2026, 11, 26, 16), cal=closed)
    assert a.due_at == at(2026, 11, 30, 10)  # 30 minutes on Thursday, 90 on Monday


def test_a_cabinet_working_saturday_counts():
    working = ThaiCalendar([SpecialDay(dt.date(2026, 11, 28), "open", "วันทำงานชดเชย")])
    assert filed(ONE_WORKING_DAY, at(2026, 11, 27, 10), now=at(2026, 11, 27, 10), cal=working).due_at == at(
        2026, 11, 28, 16, 30
    )
    two_hours = service((2, "hours"), target=(2, "hours"))
    a = filed(two_hours, at(2026, 11, 27, 16), now=at(2026, 11, 27, 16), cal=working)
    assert a.due_at == at(2026, 11, 28, 10)  # the office keeps its weekday hours that Saturday


# Filing outside office hours ----------------------------------------------------------------------


def test_a_request_filed_after_hours_starts_the_next_working_morning():
    half_hour = service((30, "minutes"), target=(30, "minutes"))
    a = filed(half_hour, at(2026, 11, 25, 19, 48), now=at(2026, 11, 25, 19, 48))  # Wednesday evening
    assert a.steps[0].started_at == at(2026, 11, 26, 8, 30)
    assert a.steps[0].due_at == a.due_at == at(2026, 11, 26, 9)
    # Day-based: it starts at opening time, so Thursday counts, as it would for a filing that
    # Wednesday afternoon.
    assert filed(ONE_WORKING_DAY, at(2026, 11, 25, 19, 48), now=at(2026, 11, 25, 20)).due_at == at(2026, 11, 26, 16, 30)
    assert filed(ONE_WORKING_DAY, at(2026, 11, 25, 15), now=at(2026, 11, 25, 15)).due_at == at(2026, 11, 26, 16, 30)


def test_a_request_filed_on_saturday_starts_on_monday_morning():
    quarter_hour = service((15, "minutes"), target=(15, "minutes"))
    a = filed(quarter_hour, at(2026, 11, 28, 11), now=at(2026, 11, 28, 11))
    assert a.steps[0].started_at == at(2026, 11, 30, 8, 30)
    assert a.due_at == at(2026, 11, 30, 8, 45)
    five_days = service((5, "working_days"), target=(5, "working_days"))
    assert filed(five_days, at(2026, 11, 28, 11), now=at(2026, 11, 28, 11)).due_at == at(2026, 12, 4, 16, 30)


def test_a_request_filed_in_the_lunch_break_starts_after_it():
    a = filed(ONE_HOUR, at(2026, 11, 25, 12, 15), now=at(2026, 11, 25, 12, 15), office=LUNCH_OFFICE)
    assert a.steps[0].started_at == at(2026, 11, 25, 13)
    assert a.due_at == at(2026, 11, 25, 14)


# Hours within opening hours -------------------------------------------------------------------


def test_an_hours_long_step_skips_the_lunch_break():
    a = filed(THREE_HOURS, at(2026, 11, 30, 10, 30), now=at(2026, 11, 30, 10, 30), office=LUNCH_OFFICE)
    assert a.due_at == at(2026, 11, 30, 14, 30)  # 10:30-12:00, then 13:00-14:30
    # Without a lunch break the same step ends at 13:30.
    assert filed(THREE_HOURS, at(2026, 11, 30, 10, 30), now=at(2026, 11, 30, 10, 30)).due_at == at(2026, 11, 30, 13, 30)


def test_an_hours_long_step_started_late_continues_the_next_working_morning():
    a = filed(THREE_HOURS, at(2026, 11, 30, 15, 30), now=at(2026, 11, 30, 15, 30), office=LUNCH_OFFICE)
    assert a.due_at == at(2026, 12, 1, 10, 30)


def test_an_always_open_channel_counts_around_the_clock():
    online = Channel(kind="online", name="ยื่นคำขอออนไลน์", always_open=True)
    a = filed(THREE_HOURS, at(2026, 11, 28, 23), now=at(2026, 11, 28, 23), office=online)  # Saturday night
    assert a.due_at == at(2026, 11, 29, 2)


# Waiting for the citizen ---------------------------------------------------------------------


def test_a_pause_moves_a_working_day_deadline_by_the_paused_working_time():
    five_days = service((5, "working_days"), target=(5, "working_days"))
    # Filed Monday 2 Nov at 09:00 (after opening, so Monday is not counted): due Monday 9 Nov.
    assert filed(five_days, at(2026, 11, 2, 9), now=at(2026, 11, 2, 9)).due_at == at(2026, 11, 9, 16, 30)
    # Waiting for the citizen all of Tuesday and Wednesday: two working days later.
    pause = Pause(at(2026, 11, 3, 8, 30), at(2026, 11, 4, 16, 30))
    a = filed(five_days, at(2026, 11, 2, 9), now=at(2026, 11, 5, 10), pauses=[pause])
    assert a.due_at == a.steps[0].due_at == at(2026, 11, 11, 16, 30)
    assert (a.state, a.paused) == ("on_time", False)
    # A pause over the weekend moves nothing.
    weekend = Pause(at(2026, 11, 7, 9), at(2026, 11, 8, 18))
    b = filed(five_days, at(2026, 11, 2, 9), now=at(2026, 11, 9, 9), pauses=[weekend])
    assert b.due_at == at(2026, 11, 9, 16, 30)


def test_a_running_pause_keeps_moving_the_deadline_and_the_request_is_paused():
    five_days = service((5, "working_days"), target=(5, "working_days"))
    pause = Pause(at(2026, 11, 3, 10), None)
    a = filed(five_days, at(2026, 11, 2, 9), now=at(2026, 11, 5, 10), pauses=[pause])
    # Paused so far: Tue 10:00-16:30, Wed 08:30-16:30, Thu 08:30-10:00 = 16 office hours.
    assert a.due_at == at(2026, 11, 11, 16, 30)
    assert a.paused


def test_a_pause_stops_an_hours_clock():
    pause = Pause(at(2026, 11, 30, 9, 20), at(2026, 11, 30, 9, 50))
    a = filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 11, 30, 10), pauses=[pause])
    assert a.due_at == a.steps[0].due_at == at(2026, 11, 30, 10, 30)
    assert a.state == "on_time"


def test_a_request_waiting_for_the_citizen_cannot_become_late():
    pause = Pause(at(2026, 11, 30, 9, 30), None)
    a = filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 12, 1, 15), pauses=[pause])
    # 30 minutes used before the pause; the other 30 run from now.
    assert a.due_at == at(2026, 12, 1, 15, 30)
    assert (a.state, a.paused) == ("on_time", True)


def test_a_pause_after_the_deadline_does_not_move_it():
    pause = Pause(at(2026, 11, 30, 11), at(2026, 11, 30, 15))
    a = filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 11, 30, 16), pauses=[pause])
    assert a.due_at == at(2026, 11, 30, 10)
    assert (a.state, a.late_working_days) == ("late", 1)


# States ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now, state",
    [
        (at(2026, 11, 30, 9), "on_time"),
        (at(2026, 11, 30, 9, 47), "on_time"),  # 13 of 60 minutes left
        (at(2026, 11, 30, 9, 49), "at_risk"),  # 11 minutes left: under 20%
        (at(2026, 11, 30, 10), "at_risk"),  # due this very minute, not yet late
        (at(2026, 11, 30, 10, 1), "late"),
    ],
)
def test_states_of_an_hour_long_request(now, state):
    assert filed(ONE_HOUR, at(2026, 11, 30, 9), now=now).state == state


@pytest.mark.parametrize(
    "now, state",
    [
        (at(2026, 4, 23, 9), "on_time"),  # 15.5 of 62.5 office hours left
        (at(2026, 4, 23, 14), "at_risk"),  # 10.5 hours left: under 20%
        (at(2026, 4, 24, 16, 30), "at_risk"),
        (at(2026, 4, 24, 16, 31), "late"),
    ],
)
def test_states_of_a_working_day_request(now, state):
    a = filed(SEVEN_WORKING_DAYS, at(2026, 4, 10, 10), now=now)
    assert a.due_at == at(2026, 4, 24, 16, 30)
    assert a.state == state


def test_a_day_based_request_is_at_risk_on_its_last_day():
    # Filed Monday 10:00: Monday does not count, due Tuesday at closing time.
    assert filed(ONE_WORKING_DAY, at(2026, 11, 30, 10), now=at(2026, 11, 30, 15)).state == "on_time"
    assert filed(ONE_WORKING_DAY, at(2026, 11, 30, 10), now=at(2026, 12, 1, 8, 30)).state == "at_risk"


def test_an_overdue_step_puts_the_request_at_risk_and_pushes_the_expected_completion():
    a = filed(WORK_PERMIT, at(2026, 4, 10, 10), now=at(2026, 4, 17, 10))
    assert a.steps[0].due_at == at(2026, 4, 16, 16, 30)
    assert a.steps[0].late_working_days == 1
    assert (a.state, a.late_working_days) == ("at_risk", 0)  # the target itself is not missed yet
    assert a.due_at == at(2026, 4, 24, 16, 30)
    # The late step ends now at the earliest, then 5 working days (Friday not counted), then 1.
    assert a.expected_completion == at(2026, 4, 27, 16, 30)


def test_completed_on_time_and_late():
    on_time = filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 12, 4, 9), completed_at=at(2026, 11, 30, 9, 55))
    assert (on_time.state, on_time.late_working_days) == ("completed_on_time", 0)
    assert on_time.expected_completion == at(2026, 11, 30, 9, 55)
    assert on_time.steps[0].finished_at == at(2026, 11, 30, 9, 55)
    late = filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 12, 4, 9), completed_at=at(2026, 12, 3, 9))
    assert (late.state, late.late_working_days) == ("completed_late", 3)  # Tue 1, Wed 2, Thu 3
    assert late.steps[0].late_working_days == 3


@pytest.mark.parametrize(
    "now, days",
    [
        (at(2026, 4, 10, 17), 1),  # due at 16:30 that Friday: late, by part of a day
        (at(2026, 4, 11, 10), 1),  # Saturday: still no working day since
        (at(2026, 4, 16, 10), 1),  # Songkran does not count: Thursday 16 is the first
        (at(2026, 4, 20, 10), 3),  # Thu 16, Fri 17, Mon 20
    ],
)
def test_late_by_working_days(now, days):
    a = filed(ONE_WORKING_DAY, at(2026, 4, 9, 10), now=now)
    assert a.due_at == at(2026, 4, 10, 16, 30)
    assert (a.state, a.late_working_days) == ("late", days)


# Delay notices (Licensing Facilitation Act B.E. 2558) ----------------------------------------


def test_a_late_request_is_due_a_delay_notice_every_seven_days():
    now = at(2026, 4, 20, 10)
    late = filed(ONE_WORKING_DAY, at(2026, 4, 9, 10), now=now)
    assert late.state == "late"
    assert delay_notice_due(late, None, now)
    assert not delay_notice_due(late, at(2026, 4, 16, 10), now)  # 4 days ago
    assert not delay_notice_due(late, at(2026, 4, 13, 10, 1), now)  # 1 minute short of 7 days
    assert delay_notice_due(late, at(2026, 4, 13, 10), now)  # 7 days ago
    assert delay_notice_due(late, at(2026, 4, 10, 12), now)  # sent before it went late: not a delay notice


def test_no_delay_notice_for_a_request_on_time_or_completed():
    on_time = filed(ONE_WORKING_DAY, at(2026, 4, 9, 10), now=at(2026, 4, 10, 9))
    assert not delay_notice_due(on_time, None, at(2026, 4, 10, 9))
    done_late = filed(ONE_WORKING_DAY, at(2026, 4, 9, 10), now=at(2026, 4, 20, 10), completed_at=at(2026, 4, 17, 10))
    assert done_late.state == "completed_late"
    assert not delay_notice_due(done_late, None, at(2026, 4, 20, 10))


# Steps and the time target --------------------------------------------------------------------


BIRTH_LIKE = service((5, "minutes"), (5, "minutes"), (5, "minutes"), (90, "days"), target=(15, "minutes"))


def test_a_step_longer_than_the_whole_target_counts_only_when_entered():
    # Like birth registration: 15 minutes, or a 90-day inquiry for a late registration.
    usual = filed(BIRTH_LIKE, at(2026, 11, 30, 9), now=at(2026, 11, 30, 9))
    assert usual.due_at == at(2026, 11, 30, 9, 15)
    assert usual.expected_completion == at(2026, 11, 30, 9, 15)  # the inquiry is left out
    records = [
        StepRecord(0, at(2026, 11, 30, 9), at(2026, 11, 30, 9, 5)),
        StepRecord(1, at(2026, 11, 30, 9, 5), at(2026, 11, 30, 9, 10)),
        StepRecord(3, at(2026, 11, 30, 9, 10), None),
    ]
    inquiry = filed(BIRTH_LIKE, at(2026, 11, 30, 9), now=at(2026, 12, 1, 10), records=records)
    # 15 minutes, then 90 days from Tuesday 1 Dec: Sunday 28 Feb 2027, so Monday 1 March.
    assert inquiry.due_at == at(2027, 3, 1, 16, 30)
    assert inquiry.steps[-1].due_at == at(2027, 3, 1, 16, 30)
    assert inquiry.expected_completion == at(2027, 3, 1, 16, 30)
    assert [s.step_index for s in inquiry.steps] == [0, 1, 3]
    assert inquiry.state == "on_time"


def test_steps_shorter_than_the_target_forecast_an_early_completion():
    record_check = service((15, "minutes"), (7, "working_days"), target=(15, "working_days"))
    a = filed(record_check, at(2026, 11, 30, 9), now=at(2026, 11, 30, 9))
    # Monday not counted; 5 (Saturday), 7 (its substitution day) and 10 December are holidays.
    assert a.due_at == at(2026, 12, 23, 16, 30)
    assert a.expected_completion == at(2026, 12, 11, 16, 30)  # 09:15, then 7 working days


def test_a_step_ends_when_the_next_one_is_entered():
    records = [StepRecord(0, at(2026, 11, 30, 9), None), StepRecord(1, at(2026, 11, 30, 9, 7), None)]
    a = filed(BIRTH_LIKE, at(2026, 11, 30, 9), now=at(2026, 11, 30, 9, 8), records=records)
    assert a.steps[0].finished_at == at(2026, 11, 30, 9, 7)
    assert a.steps[0].late_working_days == 1  # 2 minutes over its 5
    assert a.steps[1].due_at == at(2026, 11, 30, 9, 12)
    assert a.expected_completion == at(2026, 11, 30, 9, 17)
    # The forecast runs 2 minutes past the target, but the state does not depend on it: 7 of
    # 15 minutes and 4 of step 1's 5 are left.
    assert a.state == "on_time"
    half_past = at(2026, 11, 30, 9, 11) + dt.timedelta(seconds=30)
    later = filed(BIRTH_LIKE, at(2026, 11, 30, 9), now=half_past, records=records)
    assert later.state == "at_risk"  # step 1 has half a minute of its 5 left


# Inputs --------------------------------------------------------------------------------------


def test_utc_times_in_bangkok_times_out():
    utc = dt.timezone.utc
    a = filed(ONE_HOUR, dt.datetime(2026, 11, 30, 2, tzinfo=utc), now=dt.datetime(2026, 11, 30, 2, 30, tzinfo=utc))
    assert a.due_at == at(2026, 11, 30, 10)
    assert a.due_at.utcoffset() == dt.timedelta(hours=7)


def test_naive_times_and_unknown_steps_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        filed(ONE_HOUR, dt.datetime(2026, 11, 30, 9), now=at(2026, 11, 30, 9))
    with pytest.raises(ValueError, match="step_index 4"):
        filed(ONE_HOUR, at(2026, 11, 30, 9), now=at(2026, 11, 30, 9), records=[StepRecord(4, at(2026, 11, 30, 9))])


# Every real catalog service -------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CATALOG)


@pytest.mark.parametrize("service_id", SERVICE_IDS)
def test_every_catalog_service_runs_through_all_its_steps(catalog, service_id):
    svc = catalog.services[service_id]
    cal = ThaiCalendar(catalog.special_days)
    office = next((c for c in svc.channels if c.kind == "office" and c.hours), None)
    submitted = dt.datetime.now(TIMEZONE)

    first = assess(svc, office, cal, submitted, [StepRecord(0, submitted, None)], [], submitted)
    assert first.state in ("on_time", "at_risk") and not first.paused
    assert first.steps[0].started_at >= submitted
    assert first.due_at > first.steps[0].started_at
    assert first.expected_completion >= first.steps[0].due_at

    # Each step entered when the previous one is left, and left at its own due time.
    records: list[StepRecord] = []
    moment = submitted
    for index in range(len(svc.steps)):
        records.append(StepRecord(index, moment, None))
        current = assess(svc, office, cal, submitted, records, [], moment)
        due = current.steps[-1].due_at
        assert due >= moment
        records[-1] = StepRecord(index, moment, due)
        moment = due

    done = assess(svc, office, cal, submitted, records, [], moment, completed_at=moment)
    assert [s.step_index for s in done.steps] == list(range(len(svc.steps)))
    assert all(s.late_working_days == 0 for s in done.steps)
    assert done.expected_completion == moment
    assert done.state == ("completed_on_time" if moment <= done.due_at else "completed_late")
    assert not delay_notice_due(done, None, moment)
