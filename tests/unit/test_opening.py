import datetime as dt

from bot.calendar import ThaiCalendar
from bot.catalog.schema import Channel, OpeningHours
from bot.opening import state_at
from bot.settings import TIMEZONE
from bot.timeref import parse_time_reference

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
OFFICE = Channel(kind="office", name="สำนักงาน", hours=[OpeningHours(WEEKDAYS, "08:30", "16:30")])
MALL = Channel(
    kind="office",
    name="จุดบริการในห้าง",
    hours=[OpeningHours(["sat", "sun"], "10:00", "18:00")],
    open_on_public_holidays=True,
)
ONLINE = Channel(kind="online", name="ออนไลน์", url="https://example.go.th", always_open=True)
calendar = ThaiCalendar()


def at(y, m, d, hh=10, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=TIMEZONE)


def test_open_during_office_hours_on_a_working_day():
    state = state_at(OFFICE, at(2026, 11, 25, 10), calendar)  # Wednesday
    assert state.is_open and state.closes_at == at(2026, 11, 25, 16, 30)


def test_after_closing_points_to_next_morning():
    state = state_at(OFFICE, at(2026, 11, 25, 19, 48), calendar)
    assert not state.is_open and state.reason == "after_closing"
    assert state.next_open == at(2026, 11, 26, 8, 30)


def test_public_holiday_closes_the_office_and_is_named():
    state = state_at(OFFICE, at(2026, 12, 7, 10), calendar)  # Monday, substitute for 5 Dec
    assert not state.is_open and state.reason == "holiday"
    assert "ชดเชย" in state.holiday
    assert state.next_open == at(2026, 12, 8, 8, 30)


def test_friday_evening_before_a_long_weekend_reopens_after_the_holiday():
    # 10 Dec 2026 (Thu) is Constitution Day; 31 Dec and 1 Jan close too.
    state = state_at(OFFICE, at(2026, 12, 30, 17), calendar)
    assert state.next_open == at(2027, 1, 4, 8, 30)


def test_weekend_only_counter_and_online_channel():
    assert state_at(MALL, at(2026, 11, 28, 11), calendar).is_open  # Saturday
    assert not state_at(MALL, at(2026, 11, 25, 11), calendar).is_open
    assert state_at(ONLINE, at(2026, 12, 7, 3), calendar).is_open


def test_working_days_skip_weekends_and_holidays():
    # Fri 4 Dec + 2 working days: Sat, Sun, Mon 7 Dec (substitute holiday) skipped.
    assert calendar.add_working_days(dt.date(2026, 12, 4), 2) == dt.date(2026, 12, 9)


def test_time_references_in_thai():
    now = at(2026, 11, 25, 19, 48)
    assert parse_time_reference("ตอนนี้เปิดอยู่ไหม", now).kind == "now"
    assert parse_time_reference("วันเสาร์เปิดไหมคะ", now).when.date() == dt.date(2026, 11, 28)
    assert parse_time_reference("พรุ่งนี้เปิดกี่โมง", now).when.date() == dt.date(2026, 11, 26)
    assert parse_time_reference("วันที่ 5 ธ.ค. เปิดไหม", now).when.date() == dt.date(2026, 12, 5)
    assert parse_time_reference("๗ ธันวาคม เปิดมั้ย", now).when.date() == dt.date(2026, 12, 7)
    assert parse_time_reference("เปิดกี่โมง", now) is None


def test_offices_close_on_government_holidays_the_package_files_outside_public():
    ploughing = dt.date(2026, 5, 13)  # Royal Ploughing Ceremony: category "government", a Wednesday
    assert calendar.holiday(ploughing) == "วันพืชมงคล"
    assert not calendar.is_working_day(ploughing)
    state = state_at(OFFICE, at(2026, 5, 13, 10), calendar)
    assert not state.is_open and state.reason == "holiday" and state.next_open == at(2026, 5, 14, 8, 30)


def test_cabinet_special_days_close_or_open_offices():
    from bot.catalog.schema import SpecialDay

    special = ThaiCalendar(
        [
            SpecialDay(dt.date(2026, 12, 4), "closed", "วันหยุดราชการเป็นกรณีพิเศษ"),  # a Friday
            SpecialDay(dt.date(2026, 5, 13), "open", "เปิดทำการตามมติคณะรัฐมนตรี"),
        ]
    )
    assert special.holiday(dt.date(2026, 12, 4)) == "วันหยุดราชการเป็นกรณีพิเศษ"
    assert not special.is_working_day(dt.date(2026, 12, 4))
    # Friday 4th closed, the weekend, Monday 7th the substitution day for 5 December.
    assert special.add_working_days(dt.date(2026, 12, 3), 1) == dt.date(2026, 12, 8)
    assert special.is_working_day(dt.date(2026, 5, 13)) and special.holiday(dt.date(2026, 5, 13)) is None
    assert state_at(OFFICE, at(2026, 12, 4, 10), special).reason == "holiday"
