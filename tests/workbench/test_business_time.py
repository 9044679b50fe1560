"""Business time in an entity's own calendar: named cases across weekends, public holidays and
clock changes, and properties that hold for any instant (hypothesis)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench import business_time as bt

BERLIN = bt.Calendar(time_zone="Europe/Berlin", country="DE")
NEW_YORK = bt.Calendar(time_zone="America/New_York", country="US")
PLAIN = bt.Calendar()


def at(cal: bt.Calendar, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(cal.time_zone))


def test_hours_run_over_a_weekend_and_christmas_in_berlin():
    # Wed 23 Dec 15:00: 2 h that day, Thu 8 h, Fri 25 and Sat/Sun off, then Mon-Thu, New Year off.
    due = bt.add_business_hours(BERLIN, at(BERLIN, 2026, 12, 23, 15), 48)
    assert due == at(BERLIN, 2027, 1, 4, 15).astimezone(UTC)
    assert due.tzinfo == UTC


def test_hours_skip_thanksgiving_in_new_york():
    due = bt.add_business_hours(NEW_YORK, at(NEW_YORK, 2026, 11, 25, 16), 48)
    assert due == at(NEW_YORK, 2026, 12, 4, 16).astimezone(UTC)
    assert due.hour == 21  # 16:00 EST is 21:00 UTC


def test_the_same_instant_counts_differently_in_two_zones():
    start = datetime(2026, 12, 4, 20, tzinfo=UTC)  # Friday: 21:00 in Berlin (after hours), 15:00 in New York
    assert bt.add_business_hours(BERLIN, start, 1) == at(BERLIN, 2026, 12, 7, 10).astimezone(UTC)
    assert bt.add_business_hours(NEW_YORK, start, 1) == at(NEW_YORK, 2026, 12, 4, 16).astimezone(UTC)


def test_an_instant_before_hours_starts_counting_at_opening():
    assert bt.add_business_hours(PLAIN, datetime(2026, 11, 10, 6, tzinfo=UTC), 2) == datetime(
        2026, 11, 10, 11, tzinfo=UTC
    )


def test_hours_across_the_spring_clock_change_stay_local():
    # Berlin moves to summer time on Sunday 29 March 2026: Monday's 09:00 is 07:00 UTC, Friday's 08:00.
    due = bt.add_business_hours(BERLIN, at(BERLIN, 2026, 3, 27, 16), 2)
    assert due == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_admin_added_days_win_over_weekdays_and_holidays():
    cal = bt.Calendar(
        country="DE",
        extra_holidays={date(2026, 12, 24): "Christmas Eve"},
        extra_working_days={date(2026, 12, 26): "Year-end push"},
    )
    assert not bt.is_business_day(cal, date(2026, 12, 24))
    assert bt.is_business_day(cal, date(2026, 12, 26))  # a Saturday and a public holiday, made a working day
    assert not bt.is_business_day(cal, date(2026, 12, 25))
    assert cal.holiday_name(date(2026, 12, 25)) == "Christmas Day"


def test_business_days_between_and_offsets_from_period_end():
    assert bt.business_days_between(BERLIN, date(2026, 12, 24), date(2026, 12, 28)) == 1
    assert bt.business_days_between(BERLIN, date(2026, 12, 28), date(2026, 12, 24)) == -1
    # November 2026 ends on a Monday; December on a Thursday before New Year's Day.
    assert bt.add_business_days(PLAIN, date(2026, 11, 30), 1) == date(2026, 12, 1)
    assert bt.add_business_days(PLAIN, date(2026, 11, 30), -2) == date(2026, 11, 26)
    assert bt.add_business_days(BERLIN, date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert bt.add_business_days(PLAIN, date(2026, 10, 31), 0) == date(2026, 10, 30)  # a Saturday: from Friday


def test_business_hours_between_two_instants():
    a, b = at(BERLIN, 2026, 12, 23, 15), at(BERLIN, 2026, 12, 28, 10)
    assert bt.business_hours_between(BERLIN, a, b) == timedelta(hours=11)
    assert bt.business_hours_between(BERLIN, b, a) == -timedelta(hours=11)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_zone": "Mars/Olympus"},
        {"time_zone": "../../etc/passwd"},
        {"time_zone": "Europe/Berlin\x00"},
        {"time_zone": "x" * 10_000},
        {"weekdays": frozenset()},
        {"weekdays": frozenset({7})},
        {"start": time(17), "end": time(9)},
        {"country": "XX"},
        {"country": "DE", "subdivision": "ZZ"},
    ],
)
def test_a_calendar_that_cannot_work_is_refused_with_words(kwargs):
    with pytest.raises(bt.CalendarError):
        bt.Calendar(**kwargs)


def test_requests_that_cannot_be_answered_are_refused():
    with pytest.raises(bt.CalendarError):
        bt.add_business_hours(PLAIN, datetime(2026, 1, 1), 1)  # naive
    with pytest.raises(bt.CalendarError):
        bt.add_business_hours(PLAIN, datetime(2026, 1, 1, tzinfo=UTC), -1)
    with pytest.raises(bt.CalendarError):
        bt.add_business_hours(PLAIN, datetime(2026, 1, 1, tzinfo=UTC), 10**12)
    every_day_off = bt.Calendar(
        weekdays=frozenset({0}), extra_holidays={date(2026, 1, 5) + timedelta(weeks=w): "x" for w in range(400)}
    )
    with pytest.raises(bt.CalendarError):
        bt.add_business_days(every_day_off, date(2026, 1, 1), 3)


CALENDARS = st.sampled_from(
    [BERLIN, NEW_YORK, PLAIN, bt.Calendar(time_zone="Asia/Tokyo", weekdays=frozenset({6, 0, 1, 2, 3}))]
)
INSTANTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
HOURS = st.integers(min_value=0, max_value=400).map(lambda q: q / 4)


@given(CALENDARS, INSTANTS, HOURS)
def test_adding_hours_then_measuring_gives_the_hours_back(cal, start, hours):
    due = bt.add_business_hours(cal, start, hours)
    assert due >= start and due.tzinfo == UTC
    assert bt.business_hours_between(cal, start, due) == timedelta(hours=hours)


@given(CALENDARS, INSTANTS, HOURS, HOURS)
def test_adding_hours_is_monotonic_and_additive(cal, start, h1, h2):
    first = bt.add_business_hours(cal, start, h1)
    assert bt.add_business_hours(cal, start, h1 + h2) >= first
    if h2:
        assert bt.add_business_hours(cal, first, h2) == bt.add_business_hours(cal, start, h1 + h2)


@given(CALENDARS, INSTANTS, st.integers(min_value=1, max_value=80).map(lambda q: q / 4))
def test_a_deadline_falls_inside_working_hours_of_a_working_day(cal, start, hours):
    due = bt.add_business_hours(cal, start, hours)
    local = due.astimezone(cal.zone)
    assert bt.is_business_day(cal, local.date())
    assert cal.start < local.time() <= cal.end


@given(CALENDARS, st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)), st.integers(-40, 40))
def test_business_day_offsets_and_counts_agree(cal, day, n):
    target = bt.add_business_days(cal, day, n)
    assert bt.is_business_day(cal, target)
    assert bt.business_days_between(cal, bt.last_business_day(cal, day), target) == n
