"""Invoices due soon: the queue lifts items on a supplier invoice due within N business days.

N is the admin's setting in the procurement settings (MatchTolerance.due_soon_days, per entity, else
the default row, else DEFAULT_DAYS). Overdue invoices count as due soon: they are later still.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone

from workbench.due_dates import business_days_ahead, payment_outlook
from workbench.models import Document, MatchTolerance

DEFAULT_DAYS = 5
OPEN_INVOICE = Q(document__kind=Document.Kind.SUPPLIER_INVOICE, document__due_date__isnull=False) & ~Q(
    document__financial_status=Document.FinancialStatus.PAID
)


def due_soon_cutoffs(today: date | None = None) -> tuple[date, dict[int, date]]:
    """The last due date that counts as soon: by default, and per entity with its own setting."""
    today = today or timezone.localdate()
    days = dict(MatchTolerance.objects.values_list("entity_id", "due_soon_days"))
    default = business_days_ahead(today, days.pop(None, DEFAULT_DAYS))
    return default, {entity_id: business_days_ahead(today, n) for entity_id, n in days.items()}


IN_LIST_LIMIT = 5000  # beyond this many invoices due soon, the join is cheaper than the id list


def due_soon_rank(today: date | None = None) -> Case:
    """0 for an item on an unpaid invoice due soon, else 1: ordered first, it lifts those items.

    The invoices due soon are few, so they are looked up first and the rank is a test on the item's
    own column: a CASE over a join to every item's document made the default queue order sort
    100,000 joined rows (bench/queue_page.py: p95 641 ms against 125 ms without it).
    """
    default, per_entity = due_soon_cutoffs(today)
    whens = [
        When(OPEN_INVOICE, document__entity_id=entity_id, document__due_date__lte=cutoff, then=Value(0))
        for entity_id, cutoff in per_entity.items()
    ]
    if per_entity:
        whens.append(When(OPEN_INVOICE & Q(document__entity_id__in=list(per_entity)), then=Value(1)))
    whens.append(When(OPEN_INVOICE, document__due_date__lte=default, then=Value(0)))
    due = Document.objects.filter(
        kind=Document.Kind.SUPPLIER_INVOICE, due_date__isnull=False, due_date__lte=max([default, *per_entity.values()])
    ).exclude(financial_status=Document.FinancialStatus.PAID)
    rows = list(due.values_list("pk", "entity_id", "due_date")[: IN_LIST_LIMIT + 1])
    if len(rows) > IN_LIST_LIMIT:
        return Case(*whens, default=Value(1), output_field=IntegerField())
    ids = [pk for pk, entity_id, day in rows if day <= per_entity.get(entity_id, default)]
    return Case(When(document_id__in=ids, then=Value(0)), default=Value(1), output_field=IntegerField())


def invoice_payment_outlook(doc: Document, today: date | None = None) -> dict | None:
    """For the invoice page: days to due and the early-payment discount to take (or lost); None for
    documents that are not supplier invoices."""
    if doc.kind != Document.Kind.SUPPLIER_INVOICE:
        return None
    return payment_outlook(
        due_date=doc.due_date,
        discount_percent=doc.discount_percent,
        discount_due_date=doc.discount_due_date,
        total=doc.total,
        currency=doc.currency,
        paid=doc.financial_status == Document.FinancialStatus.PAID,
        today=today or timezone.localdate(),
    )
