"""What an export holds: the rows a screen shows a person, as plain values, in the screen's order.

Each source takes the person (their entity scope and role, exactly as on the screen) and the screen's
query parameters, and returns its columns, a lazy row iterator and a count. Rows come from the
database in batches (`.iterator(chunk_size=...)`: a server-side cursor on PostgreSQL), so memory
stays flat whatever the number of rows. Formatting (CSV, XLSX) is `workbench/exports.py`'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from workbench import roles
from workbench.filters import DocumentFilter, ExceptionItemFilter
from workbench.models import Document, OverrideRequest
from workbench.models.exceptions import Category, Status
from workbench.money import quantize
from workbench.selectors import accruals, budget_positions, exception_item_list
from workbench.values import as_date

CHUNK = 2000


@dataclass
class ExportSource:
    name: str  # file name stem: queue, documents, ...
    title: str  # what the person asked for, in words
    columns: list[str]
    rows: Callable[[], Iterator[list]]
    count: Callable[[], int]


def _money(amount, currency: str):
    if amount is None:
        return None
    try:
        return quantize(Decimal(amount), currency)
    except Exception:  # an unknown or blank currency code: the stored value as it is
        return Decimal(amount)


def _link(name: str) -> Callable[[int], str]:
    # One reverse() per export, not per row: 100,000 reverses cost seconds.
    path = reverse(name, args=[987654321]).replace("987654321", "{}")
    return (settings.PUBLIC_URL.rstrip("/") + path).format


def _request(user):
    return SimpleNamespace(user=user, GET=QueryDict())


# --- the queue -------------------------------------------------------------------------------------

QUEUE_COLUMNS = [
    "Item", "Code", "Category", "Status", "Entity", "Document kind", "Document number", "Document name",
    "Supplier / employee", "Amount at risk", "Currency", "Owner team", "Assignee", "Opened (UTC)",
    "SLA due (UTC)", "Message", "Link",
]  # fmt: skip


def queue_items(user, data: QueryDict):
    """The queue's rows for this person and these (already defaulted) parameters, in the queue's order."""
    scoped = roles.in_scope(exception_item_list(), user)
    return ExceptionItemFilter(data, queryset=scoped, request=_request(user)).qs


QUEUE_FIELDS = (
    "pk", "code", "category", "status", "entity__code", "document__kind", "document__number", "document__name",
    "connection__name", "document__party_name", "detail__summary__party", "amount_at_risk", "currency",
    "owner_team", "assignee__username", "opened_at", "sla_due_at", "message",
)  # fmt: skip


def queue_values(qs):
    """The export's columns, then the queue's annotations: an ORDER BY on an annotation left out of the
    SELECT is compiled inline, and a constant one (no invoice due soon: rank 1) becomes `ORDER BY 1`,
    the first column, silently sorting by id instead of the queue's order."""
    return qs.values_list(*QUEUE_FIELDS, *qs.query.annotations)


def queue_export(user, data: QueryDict) -> ExportSource:
    return queue_source(queue_items(user, data))


def queue_source(qs) -> ExportSource:
    """An export of an already filtered and scoped item queryset (the API filters its own)."""
    link = _link("items:detail")
    kinds, categories, statuses = dict(Document.Kind.choices), dict(Category.choices), dict(Status.choices)
    # Plain column values, not model instances: building five models per row would be most of the time.
    values = queue_values(qs)

    def rows():
        for (
            pk, code, category, status, entity, kind, number, name, connection, party, summary_party,
            amount, currency, team, assignee, opened, due, message,
            *_annotations,
        ) in values.iterator(chunk_size=CHUNK):  # fmt: skip
            yield [
                pk, code, categories.get(category, category), statuses.get(status, status), entity or "",
                kinds.get(kind, kind or ""), number or "", name or connection or "",
                party if kind else (summary_party if isinstance(summary_party, str) else ""),
                _money(amount, currency), currency, team, assignee or "", opened, due, message, link(pk),
            ]  # fmt: skip

    return ExportSource("queue", "Exception queue", QUEUE_COLUMNS, rows, qs.count)


# --- documents -------------------------------------------------------------------------------------

DOCUMENT_COLUMNS = [
    "Document", "Kind", "Number", "Name", "Supplier / employee", "Party code", "Entity", "Total", "Currency",
    "Business status", "Financial status", "Source system", "Source id", "ERP document number",
    "Document date", "Due date", "Link",
]  # fmt: skip


def documents_export(user, data: QueryDict) -> ExportSource:
    scoped = roles.in_scope(Document.objects.all(), user).order_by("-id")
    qs = DocumentFilter(data, queryset=scoped, request=_request(user)).qs
    link = _link("documents:detail")

    def rows():
        for d in qs.iterator(chunk_size=CHUNK):
            yield [
                d.pk, d.get_kind_display(), d.number, d.name, d.party_name, d.party_code, d.entity_code,
                _money(d.total, d.currency), d.currency, d.get_business_status_display(),
                d.get_financial_status_display(), d.source_system, d.source_id, d.erp_document_number,
                d.document_date, d.due_date, link(d.pk),
            ]  # fmt: skip

    return ExportSource("documents", "Documents", DOCUMENT_COLUMNS, rows, qs.count)


# --- overrides (the auditor's report) ---------------------------------------------------------------


def period_bounds(data) -> tuple:
    """From and to dates (inclusive) as typed; defaults to the last 30 days. Aware bounds [lo, hi)."""
    today = timezone.localdate()
    start = as_date(str(data.get("from", ""))[:10]) or today - timedelta(days=30)
    end = as_date(str(data.get("to", ""))[:10]) or today
    lo = timezone.make_aware(datetime.combine(start, time.min))
    hi = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return start, end, lo, hi


def override_list(user, lo, hi):
    return roles.in_scope(
        OverrideRequest.objects.filter(requested_at__gte=lo, requested_at__lt=hi).select_related(
            "item", "reason", "requested_by", "decided_by"
        ),
        user,
        field="item__entity",
    ).order_by("-requested_at", "-id")


OVERRIDE_COLUMNS = [
    "requested_at", "item", "code", "entity", "amount", "currency", "reason_code", "reason",
    "requested_by", "state", "approved_by", "decided_at", "decision", "link",
]  # fmt: skip


def overrides_export(user, data: QueryDict) -> ExportSource:
    start, end, lo, hi = period_bounds(data)
    qs = override_list(user, lo, hi)
    link = _link("items:detail")

    def rows():
        for r in qs.iterator(chunk_size=CHUNK):
            yield [
                r.requested_at, r.item_id, r.code, r.entity_code, _money(r.amount, r.currency), r.currency,
                r.reason.code, r.text, r.requested_by.get_username(), r.state,
                r.decided_by.get_username() if r.decided_by else "", r.decided_at, r.decision_text,
                link(r.item_id),
            ]  # fmt: skip

    title = f"Overrides {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    return ExportSource(f"overrides-{start:%Y%m%d}-{end:%Y%m%d}", title, OVERRIDE_COLUMNS, rows, qs.count)


# --- accruals and budgets (lists the screens already hold in memory) --------------------------------

ACCRUAL_COLUMNS = [
    "Section", "Entity", "Document kind", "Document number", "Line", "Description", "Supplier", "PO",
    "Cost center", "GL account", "Quantity", "Received", "Invoiced", "Missing", "Amount", "Currency", "Link",
]  # fmt: skip


def accruals_export(user, data: QueryDict) -> ExportSource:
    entity = str(data.get("entity", ""))[:20]
    link = _link("documents:detail")
    picture: dict = {}

    def load() -> dict:
        if not picture:
            picture.update(accruals(entity_code=entity, entity_ids=roles.entity_ids(user)))
        return picture

    def rows():
        p = load()
        for r in p["received_not_invoiced"]:
            ln, po = r["line"], r["po"]
            yield [
                "Received, not invoiced", po.entity_code, po.get_kind_display(), po.number, ln.line_no,
                ln.description, po.party_code, po.number, ln.cost_center, ln.gl_account, ln.quantity,
                ln.received_quantity, ln.invoiced_quantity, None, r["amount"], ln.currency, link(po.pk),
            ]  # fmt: skip
        for r in p["invoiced_not_received"]:
            ln, inv = r["line"], r["invoice"]
            yield [
                "Invoiced, not received", inv.entity_code, inv.get_kind_display(), inv.number, ln.line_no,
                ln.description, inv.party_code or inv.party_name, inv.po_number, ln.cost_center, ln.gl_account,
                ln.quantity, r["received"], None, r["missing"], r["amount"], ln.currency, link(inv.pk),
            ]  # fmt: skip

    def count() -> int:
        p = load()
        return len(p["received_not_invoiced"]) + len(p["invoiced_not_received"])

    return ExportSource(f"accruals{'-' + entity if entity else ''}", "Accruals", ACCRUAL_COLUMNS, rows, count)


BUDGET_COLUMNS = [
    "Entity", "Period", "Cost center", "GL account", "Budget", "Committed", "Actual", "Available", "Currency",
    "Used %",
]  # fmt: skip


def budgets_export(user, data: QueryDict) -> ExportSource:
    entity, period = str(data.get("entity", ""))[:20], str(data.get("period", ""))[:7]
    found: list = []

    def load() -> list:
        if not found:
            found.extend(
                budget_positions(
                    entity_code=entity,
                    period=period,
                    only_used=data.get("all") != "1",
                    entity_ids=roles.entity_ids(user),
                )
            )
        return found

    def rows():
        for r in load():
            b, pos = r["budget"], r["pos"]
            yield [
                b.entity.code, b.period, b.cost_center, b.gl_account, _money(pos.budget, b.currency),
                _money(pos.committed, b.currency), _money(pos.actual, b.currency),
                _money(pos.available, b.currency), b.currency, r["used_pct"],
            ]  # fmt: skip

    return ExportSource("budgets", "Budgets", BUDGET_COLUMNS, rows, lambda: len(load()))


SOURCES: dict[str, Callable[[object, QueryDict], ExportSource]] = {
    "queue": queue_export,
    "documents": documents_export,
    "overrides": overrides_export,
    "accruals": accruals_export,
    "budgets": budgets_export,
}


def export_source(kind: str, user, data: QueryDict | str) -> ExportSource:
    """The export `kind` for this person; `data` is the screen's query parameters (or their query string)."""
    if kind not in SOURCES:
        raise ValueError(f"unknown export {kind[:40]!r}")
    return SOURCES[kind](user, data if isinstance(data, QueryDict) else QueryDict(data or ""))
