"""Business time: working days and hours of one legal entity's calendar, in its own time zone.

Pure Python (no ORM). A `Calendar` holds the time zone, working weekdays, working hours, the public
holidays of a country (and subdivision) from the `holidays` library, and the days an admin added
(extra holidays, extra working days: these win over everything else). Instants go in aware and come
out aware in UTC; dates are the calendar's local dates.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays

# No calendar with at least one working weekday goes this long without a working day: a loop that
# does is a calendar whose every day was made a holiday, and gets a clear error instead of spinning.
MAX_SEARCH_DAYS = 3 * 366
MAX_SPAN_DAYS = 100 * 366  # business hours between instants a century apart is a typo
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class CalendarError(ValueError):
    """A calendar or a request that cannot be answered (no working day, bad zone, unknown country)."""


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def valid_time_zone(name: str) -> bool:
    """An IANA zone name zoneinfo knows ("Europe/Berlin"); not a path, not a NUL byte."""
    if not isinstance(name, str) or not name or len(name) > 64 or not name.isprintable() or ".." in name:
        return False
    if name in _zone_names():
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zones() -> list[str]:
    return sorted(_zone_names())


def countries() -> dict[str, list[str]]:
    """ISO 3166 alpha-2 country codes the holidays library knows, each with its subdivisions."""
    return {c: list(s) for c, s in holidays.list_supported_countries().items() if len(c) == 2}


def valid_country(country: str, subdivision: str = "") -> bool:
    subs = countries().get(country)
    return subs is not None and (not subdivision or subdivision in subs)


@functools.lru_cache(maxsize=512)
def _public_holidays(country: str, subdivision: str, year: int) -> Mapping[date, str]:
    """{day: name} (cached: read-only)."""
    if not country or not 1900 <= year <= 2200:
        return {}
    return dict(holidays.country_holidays(country, subdiv=subdivision or None, years=year))


@dataclass(frozen=True, eq=False)
class Calendar:
    time_zone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))  # Monday is 0
    start: time = time(9)
    end: time = time(17)
    country: str = ""
    subdivision: str = ""
    extra_holidays: Mapping[date, str] = field(default_factory=dict)
    extra_working_days: Mapping[date, str] = field(default_factory=dict)

    def __post_init__(self):
        if not valid_time_zone(self.time_zone):
            raise CalendarError(f"{self.time_zone!r} is not an IANA time zone.")
        if not self.weekdays or not set(self.weekdays) <= set(range(7)):
            raise CalendarError("A calendar needs at least one working weekday (0 = Monday … 6 = Sunday).")
        if not self.start < self.end:
            raise CalendarError("Working hours must end after they start, on the same day.")
        if self.country and not valid_country(self.country, self.subdivision):
            raise CalendarError(f"No public holidays are known for {self.country!r} {self.subdivision!r}.")

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)

    def holiday_name(self, day: date) -> str:
        if day in self.extra_holidays:
            return self.extra_holidays[day]
        return _public_holidays(self.country, self.subdivision, day.year).get(day, "") if self.country else ""


def is_business_day(cal: Calendar, day: date) -> bool:
    if day in cal.extra_working_days:
        return True
    if day in cal.extra_holidays or day.weekday() not in cal.weekdays:
        return False
    return not (cal.country and day in _public_holidays(cal.country, cal.subdivision, day.year))


def window(cal: Calendar, day: date) -> tuple[datetime, datetime]:
    """The working hours of `day` as UTC instants (whether or not the day is a working day)."""
    z = cal.zone
    return (
        datetime.combine(day, cal.start, z).astimezone(UTC),
        datetime.combine(day, cal.end, z).astimezone(UTC),
    )


def day_end(cal: Calendar, day: date) -> datetime:
    """When `day`'s working hours end, in UTC: a deadline "on" a day."""
    return window(cal, day)[1]


def local_date(cal: Calendar, instant: datetime) -> date:
    return _aware(instant).astimezone(cal.zone).date()


def day_hours(cal: Calendar) -> float:
    """Working hours in an ordinary day (no clock change)."""
    return (datetime.combine(date(2000, 1, 1), cal.end) - datetime.combine(date(2000, 1, 1), cal.start)).seconds / 3600


def add_business_hours(cal: Calendar, instant: datetime, hours: float) -> datetime:
    """The instant `hours` working hours after `instant` (time outside working hours does not count)."""
    if hours < 0:
        raise CalendarError("Business hours to add must not be negative.")
    if hours > 24 * MAX_SEARCH_DAYS:
        raise CalendarError("Too many business hours to add.")
    cur = _aware(instant).astimezone(UTC)
    remaining = timedelta(hours=hours)
    if not remaining:
        return cur
    day = local_date(cal, cur)
    for _ in range(MAX_SEARCH_DAYS + int(hours)):
        if is_business_day(cal, day):
            start, end = window(cal, day)
            cur = max(cur, start)
            if cur < end:
                if remaining <= end - cur:
                    return cur + remaining
                remaining -= end - cur
                cur = end
        day += timedelta(days=1)
    raise CalendarError("This calendar has no working day in three years.")


def business_hours_between(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """Working time from `a` to `b` (negative when `b` is earlier)."""
    a, b = _aware(a).astimezone(UTC), _aware(b).astimezone(UTC)
    if b < a:
        return -business_hours_between(cal, b, a)
    first, last = local_date(cal, a), local_date(cal, b)
    if (last - first).days > MAX_SPAN_DAYS:
        raise CalendarError("These instants are more than a century apart.")
    total = timedelta()
    day = first
    while day <= last:
        if is_business_day(cal, day):
            start, end = window(cal, day)
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def business_days_between(cal: Calendar, first: date, last: date) -> int:
    """Working days after `first` up to and including `last` (negative when `last` is earlier):
    Friday to the next Monday is 1 in a Monday-to-Friday week."""
    if last < first:
        return -business_days_between(cal, last, first)
    if (last - first).days > MAX_SPAN_DAYS:
        raise CalendarError("These dates are more than a century apart.")
    return sum(1 for n in range(1, (last - first).days + 1) if is_business_day(cal, first + timedelta(days=n)))


def last_business_day(cal: Calendar, day: date) -> date:
    """`day` if it is a working day, else the working day before it."""
    for _ in range(MAX_SEARCH_DAYS):
        if is_business_day(cal, day):
            return day
        day -= timedelta(days=1)
    raise CalendarError("This calendar has no working day in three years.")


def add_business_days(cal: Calendar, day: date, n: int) -> date:
    """The working day `n` working days from `day` (backwards for negative n; 0 gives the last working
    day on or before `day`: a period ending on a Saturday closes from the Friday)."""
    if abs(n) > MAX_SEARCH_DAYS:
        raise CalendarError("Too many business days.")
    day = last_business_day(cal, day)
    step = timedelta(days=1 if n > 0 else -1)
    left = abs(n)
    for _ in range(MAX_SEARCH_DAYS * 2):
        if not left:
            return day
        day += step
        if is_business_day(cal, day):
            left -= 1
    raise CalendarError("This calendar has no working day in three years.")


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError("Business time needs an aware instant (with a time zone).")
    return instant
