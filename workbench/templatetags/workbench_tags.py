from datetime import timedelta

from django import template
from django.utils import timezone

from workbench.business_time import WEEKDAY_NAMES
from workbench.due_dates import days_to_due
from workbench.money import fmt
from workbench.selectors.calendars import countdown
from workbench.services.snooze import describe

register = template.Library()


@register.simple_tag
def money(amount, currency):
    return fmt(amount, currency)


def _span(td: timedelta) -> str:
    s = int(abs(td.total_seconds()))
    if s < 3600:
        return f"{max(1, s // 60)}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d {s % 86400 // 3600}h"


@register.filter
def age(item) -> str:
    return _span(item.age)


@register.filter
def due(item) -> str:
    if not item.is_active:
        return "—"
    delta = item.sla_due_at - timezone.now()
    return f"{_span(delta)} overdue" if delta.total_seconds() < 0 else f"in {_span(delta)}"


@register.filter
def to_due(document) -> str:
    """ "due in 3 d" / "overdue 2 d" for an unpaid supplier invoice with a due date, else ""."""
    if document is None or document.kind != "supplier_invoice" or document.financial_status == "paid":
        return ""
    return days_to_due(document.due_date, timezone.localdate())


@register.filter
def close_countdown(item) -> str:
    """ "closes in 2 d 4 h" until the item's period closes for its document, then "period closed"."""
    left = countdown(getattr(item, "close_due_at", None))
    return "" if not left else ("period closed" if left == "passed" else f"closes in {left}")


@register.filter
def label(value: str) -> str:
    return str(value).replace("_", " ")


@register.filter
def snooze(item) -> str:
    """What a snoozed item waits for ("Waiting for period 2026-12 of NW-US to open"); "" if it is not snoozed."""
    return describe(item) if getattr(item, "snoozed", False) else ""


@register.filter
def workdays(calendar) -> str:
    """ "Mon–Fri" for a contiguous working week, else the days listed."""
    days = sorted(calendar.weekdays)
    names = [WEEKDAY_NAMES[d] for d in days]
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names)


@register.filter
def periods_of(row) -> list:
    """The close overview's current and next period, labelled, skipping the missing ones."""
    return [(label, row[key]) for key, label in (("current", "Current"), ("next", "Next")) if row.get(key)]


@register.filter
def signed(n) -> str:
    return f"{n:+d}" if isinstance(n, int) else ""


@register.filter
def offset_of(offsets, key) -> str:
    n = offsets.get(f"{key}_days")
    return f"{n:+d}" if isinstance(n, int) else ""
