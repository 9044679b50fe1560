"""Values as sources send them, made safe to store: dates, timestamps and text.

One place for the small conversions every upsert needs, so that a date like 2026-10-32 or a NUL
byte in a name is handled the same way everywhere (stored as nothing, or cleaned), never a crash.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def as_datetime(value) -> datetime | None:
    """An aware UTC datetime from an ISO timestamp or date (naive values are taken as UTC)."""
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = parse_datetime(str(value))
        except ValueError:  # well-formed but impossible, e.g. 2026-02-30T10:00
            parsed = None
        if parsed is None:
            day = as_date(value)
            parsed = datetime(day.year, day.month, day.day) if day else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def as_date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value)[:10]) if value else None
    except ValueError:  # well-formed but impossible, e.g. 2026-10-32
        return None


def truncated(value, n: int) -> str:
    """`value` as text cut to the column's width ("" for None)."""
    return "" if value is None else str(value)[:n]


def printable(value, n: int | None = None) -> str:
    """Printable text only (a NUL byte would fail on PostgreSQL), trimmed, optionally cut to `n`."""
    text = "".join(ch for ch in ("" if value is None else str(value)) if ch.isprintable()).strip()
    return text if n is None else text[:n]
