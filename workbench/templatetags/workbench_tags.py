from datetime import timedelta

from django import template
from django.utils import timezone

from workbench.due_dates import days_to_due
from workbench.money import fmt
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
def label(value: str) -> str:
    return str(value).replace("_", " ")


@register.filter
def snooze(item) -> str:
    """What a snoozed item waits for ("Waiting for period 2026-12 of NW-US to open"); "" if it is not snoozed."""
    return describe(item) if getattr(item, "snoozed", False) else ""
