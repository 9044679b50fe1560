"""Reads for screens and API (HackSoft selectors): one place that knows how to query cheaply."""

from __future__ import annotations

from django.db.models import Count, Q

from workbench.models import Document, DocumentEvent, ExceptionEvent, ExceptionItem
from workbench.models.exceptions import Category


def exception_item_list():
    # Most urgent first: the SLA that runs out soonest (overdue items lead).
    return ExceptionItem.objects.select_related("document", "entity", "assignee", "connection", "line").order_by("sla_due_at", "id")


def exception_counts(qs) -> dict:
    """Counts per category (and in total) of a filtered queryset, in one query."""
    agg = qs.order_by().aggregate(total=Count("id"), **{c: Count("id", filter=Q(category=c)) for c in Category.values})
    return {"total": agg.pop("total"), "by_category": [(c, Category(c).label, agg[c]) for c in Category.values]}


def exception_item_get(pk: int) -> ExceptionItem:
    return exception_item_list().get(pk=pk)


def document_trace(document: Document) -> list[dict]:
    """Every event about the document and its items, in time order, with system and correlation id."""
    rows = [
        {"at": e.at, "system": e.system, "action": e.action, "message": e.message, "actor": e.actor,
         "correlation_id": e.correlation_id}
        for e in DocumentEvent.objects.filter(document=document).select_related("actor")
    ]
    rows += [
        {"at": e.at, "system": "workbench", "code": e.item.code, "action": e.action, "message": e.reason, "actor": e.actor,
         "correlation_id": e.correlation_id, "status": f"{e.from_status} → {e.to_status}" if e.from_status != e.to_status else ""}
        for e in ExceptionEvent.objects.filter(item__document=document).select_related("actor", "item")
    ]
    return sorted(rows, key=lambda r: r["at"])


def item_events(item: ExceptionItem):
    return ExceptionEvent.objects.filter(item=item).select_related("actor")

