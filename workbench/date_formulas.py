"""Business Central date formulas (``30D``, ``1M``, ``CM+10D``, ``-1W``), evaluated from a date.

Pure Python. A formula is a chain of terms, each an optional sign, then either a number and a unit
(``D`` day, ``W`` week, ``M`` month, ``Q`` quarter, ``Y`` year) or ``C`` and a unit (the end of the
current week, month, quarter or year; ``CD`` is the day itself). Terms apply left to right, so
``CM+10D`` is the tenth day of the next month. Months are clamped like BC's CALCDATE: 31 January
plus ``1M`` is the last day of February. BC shows formulas in angle brackets (``<30D>``); they are
accepted. Anything else raises ``FormulaError`` with a sentence a person can act on.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

MAX_FORMULA = 40  # PaymentTerm.due_date_calculation's width
MAX_NUMBER = 9999  # BC's own limit on a formula's number
_TERM = re.compile(r"([+-]?)(?:(C)([DWMQY])|(\d+)([DWMQY]))")


class FormulaError(ValueError):
    """The formula cannot be read, or its date falls outside the calendar."""


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _period_end(day: date, unit: str, sign: str) -> date:
    """``C<unit>``: end of the current period; with ``-``, its start (as BC does)."""
    if unit == "D":
        return day
    if unit == "W":  # weeks run Monday to Sunday
        return day - timedelta(days=day.weekday()) if sign == "-" else day + timedelta(days=6 - day.weekday())
    months = {"M": 1, "Q": 3, "Y": 12}[unit]
    first_month = (day.month - 1) // months * months + 1 if unit != "M" else day.month
    start = date(day.year, first_month, 1)
    if sign == "-":
        return start
    return _add_months(start, months) - timedelta(days=1)


def _apply(day: date, sign: str, count: int, unit: str) -> date:
    n = -count if sign == "-" else count
    if unit == "D":
        return day + timedelta(days=n)
    if unit == "W":
        return day + timedelta(weeks=n)
    return _add_months(day, n * {"M": 1, "Q": 3, "Y": 12}[unit])


def parse(formula: str) -> list[tuple[str, str, int, str]]:
    """The terms of ``formula`` as (sign, "C" or "", number, unit); FormulaError when unreadable."""
    text = str(formula if formula is not None else "")
    if len(text) > MAX_FORMULA:
        raise FormulaError(f"the date formula is longer than {MAX_FORMULA} characters")
    cleaned = text.strip().strip("<>").replace(" ", "").upper()
    if not cleaned:
        raise FormulaError("the date formula is empty")
    terms, pos = [], 0
    while pos < len(cleaned):
        m = _TERM.match(cleaned, pos)
        if m is None or (pos and not m.group(1) and not m.group(2)):
            # a second term needs its sign ("CM10D" is not BC's notation; "CM+10D" is)
            raise FormulaError(f"{printable(text)!r} is not a date formula BC would accept (at {cleaned[pos:]!r})")
        sign, current, c_unit, number, unit = m.groups()
        if current:
            terms.append((sign, "C", 0, c_unit))
        else:
            if int(number) > MAX_NUMBER:
                raise FormulaError(f"{number} in the date formula is more than {MAX_NUMBER}")
            terms.append((sign, "", int(number), unit))
        pos = m.end()
    return terms


def evaluate(formula: str, start: date) -> date:
    """The date ``formula`` gives counted from ``start``; FormulaError when it cannot be had."""
    day = start
    try:
        for sign, current, number, unit in parse(formula):
            day = _period_end(day, unit, sign) if current else _apply(day, sign, number, unit)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, FormulaError):
            raise
        raise FormulaError(f"the date formula {printable(formula)!r} leaves the calendar from {start}") from None
    return day


def printable(value) -> str:
    return "".join(ch for ch in str(value) if ch.isprintable())[:MAX_FORMULA]
