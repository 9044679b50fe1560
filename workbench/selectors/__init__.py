"""Reads for screens and API (HackSoft selectors): one place that knows how to query cheaply."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, F, Min, Q, Sum, Value, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from workbench.models import (
    Budget,
    Document,
    DocumentEvent,
    DocumentLine,
    Employee,
    ExceptionEvent,
    ExceptionItem,
    OutboundWrite,
    Supplier,
)
from workbench.models.exceptions import ACTIVE_STATUSES, Category
from workbench.money import quantize
from workbench.rules.p2p_context import BudgetPositions
from workbench.selectors.calendars import close_risk_rank
from workbench.selectors.due_soon import due_soon_rank


def exception_item_list():
    # Most urgent first: items whose document must post into a period that closes within the
    # close-risk window, then items on an invoice due within the admin's business days (a late
    # payment or a lost discount), then the SLA that runs out soonest (overdue items lead).
    return (
        ExceptionItem.objects.select_related("document", "entity", "assignee", "connection", "line")
        .annotate(close_risk=close_risk_rank(), due_soon=due_soon_rank())
        .order_by("close_risk", "due_soon", "sla_due_at", "id")
    )


def exception_counts(qs) -> dict:
    """Counts per category (and in total) of a filtered queryset, in one query."""
    agg = qs.order_by().aggregate(total=Count("id"), **{c: Count("id", filter=Q(category=c)) for c in Category.values})
    return {"total": agg.pop("total"), "by_category": [(c, Category(c).label, agg[c]) for c in Category.values]}


# Root-cause view. Money is never compared across currencies (there is no rate to do it with): "amount"
# orders the groups by what they hold in one currency (the one most items are in, unless a person picks
# another), groups without it after, by count. Ties fall back to the group id so pages never shuffle.
GROUP_SORTS = {"amount": ("-money", "-n", "group_id"), "count": ("-n", "group_id"), "oldest": ("oldest", "group_id")}


def exception_group_page(qs, *, sort: str = "amount", page=1, per_page: int = 50, currency: str = "") -> dict:
    """One page of the root causes behind a filtered item queryset, plus the items that have none.

    Three queries whatever the page size: one GROUP BY group_id (with the number of groups as a
    window count, so no separate COUNT), one per-(group, currency) split for the page's groups and the
    ungrouped items, and one for each group's oldest matching item (title, entity, example link).
    A page past the end costs one COUNT more and lands on the last page. Sorting by money costs one
    more: the currencies present (most items first), one of which the order is in.
    """
    base = qs.order_by()
    try:
        number = max(1, min(int(str(page)), 10**6))
    except ValueError:
        number = 1
    now = timezone.now()
    sort = sort if sort in GROUP_SORTS else "amount"
    currencies = []
    if sort == "amount":
        currencies = [
            c
            for c, _ in base.filter(group__isnull=False)
            .values_list("currency")
            .annotate(n=Count("id"))
            .order_by("-n", "currency")
        ]
        currency = currency if currency in currencies else (currencies[0] if currencies else "")
    grouped = (
        base.filter(group__isnull=False)
        .values("group_id")
        .annotate(
            n=Count("id"),
            oldest=Min("opened_at"),
            money=Coalesce(Sum("amount_at_risk", filter=Q(currency=currency)), Value(Decimal(0))),
            overdue=Count("id", filter=Q(status__in=ACTIVE_STATUSES, sla_due_at__lt=now)),
            groups=Window(Count("*")),
        )
        .order_by(*GROUP_SORTS[sort])
    )
    rows = list(grouped[(number - 1) * per_page : number * per_page])
    if rows:
        count = rows[0]["groups"]
    else:
        count = base.filter(group__isnull=False).values("group_id").distinct().count() if number > 1 else 0
        last = max(1, -(-count // per_page))
        if number > last:
            number = last
            rows = list(grouped[(number - 1) * per_page : number * per_page])

    ids = [r["group_id"] for r in rows]
    totals: dict = {}
    for s in (
        base.filter(Q(group_id__in=ids) | Q(group__isnull=True))
        .values("group_id", "currency")
        .annotate(n=Count("id"), total=Sum("amount_at_risk"))
        .order_by("group_id", "currency")
    ):
        totals.setdefault(s["group_id"], []).append((s["currency"], s["total"], s["n"]))
    examples: dict = {}
    if rows:
        oldest = Q()
        for r in rows:
            oldest |= Q(group_id=r["group_id"], opened_at=r["oldest"])
        for item in base.filter(oldest).select_related("group", "entity", "document").order_by("opened_at", "id"):
            examples.setdefault(item.group_id, item)
    for r in rows:
        r["example"] = examples.get(r["group_id"])  # None only if it changed between the two reads
        r["group"] = r["example"].group if r["example"] else None
        r["totals"] = [(cur, total) for cur, total, _ in totals.get(r["group_id"], [])]
    loose = totals.get(None, [])
    return {
        "rows": rows,
        "count": count,
        "number": number,
        "currencies": currencies,
        "currency": currency,
        "ungrouped": {"n": sum(n for _, _, n in loose), "totals": [(cur, total) for cur, total, _ in loose]},
    }


def exception_item_get(pk: int) -> ExceptionItem:
    return exception_item_list().get(pk=pk)


def document_trace(document: Document) -> list[dict]:
    """Every event about the document and its items, in time order, with system and correlation id."""
    rows = [
        {
            "at": e.at,
            "system": e.system,
            "action": e.action,
            "message": e.message,
            "actor": e.actor,
            "correlation_id": e.correlation_id,
        }
        for e in DocumentEvent.objects.filter(document=document).select_related("actor")
    ]
    rows += [
        {
            "at": e.at,
            "system": "workbench",
            "code": e.item.code,
            "action": e.action,
            "message": e.reason,
            "actor": e.actor,
            "correlation_id": e.correlation_id,
            "status": f"{e.from_status} → {e.to_status}" if e.from_status != e.to_status else "",
        }
        for e in ExceptionEvent.objects.filter(item__document=document).select_related("actor", "item")
    ]
    return sorted(rows, key=lambda r: r["at"])


def item_events(item: ExceptionItem):
    return ExceptionEvent.objects.filter(item=item).select_related("actor")


# --- procure-to-pay -----------------------------------------------------------------------------------


def accruals(*, entity_code: str = "", entity_ids: set[int] | None = None) -> dict:
    """Finance's accrual picture: goods received but not invoiced (accrue them), and invoices for goods
    not (fully) received (hold them). Amounts at the PO's price, per PO line."""
    po_lines = (
        DocumentLine.objects.filter(document__kind=Document.Kind.PURCHASE_ORDER)
        .select_related("document", "document__entity")
        .order_by("document__entity_code", "document__number", "line_no")
    )
    if entity_code:
        po_lines = po_lines.filter(document__entity_code=entity_code)
    if entity_ids is not None:  # the reader's entity scope (None: all)
        po_lines = po_lines.filter(document__entity_id__in=entity_ids)
    received = []
    for ln in po_lines.filter(received_quantity__gt=F("invoiced_quantity")):
        qty = ln.received_quantity - ln.invoiced_quantity
        received.append(
            {
                "line": ln,
                "po": ln.document,
                "quantity": qty,
                "amount": quantize(qty * (ln.unit_price or Decimal(0)), ln.currency),
            }
        )
    invoiced = []
    inv_lines = (
        DocumentLine.objects.filter(
            document__kind=Document.Kind.SUPPLIER_INVOICE,
            document__exceptions__code__in=["NOT_RECEIVED", "QUANTITY_VARIANCE"],
            document__exceptions__status__in=["open", "in_progress", "waiting"],
            document__exceptions__line_id=F("pk"),
        )
        .select_related("document", "po_line")
        .distinct()
        .order_by("document__entity_code", "document__number")
    )
    if entity_code:
        inv_lines = inv_lines.filter(document__entity_code=entity_code)
    if entity_ids is not None:
        inv_lines = inv_lines.filter(document__entity_id__in=entity_ids)
    for ln in inv_lines:
        rec = ln.po_line.received_quantity - ln.po_line.invoiced_quantity if ln.po_line else Decimal(0)
        missing = (ln.quantity or Decimal(0)) - max(rec, Decimal(0))
        if missing <= 0:  # received meanwhile (its item not re-checked yet): nothing to hold
            continue
        invoiced.append(
            {
                "line": ln,
                "invoice": ln.document,
                "received": max(rec, Decimal(0)),
                "missing": missing,
                "amount": quantize(missing * (ln.unit_price or Decimal(0)), ln.currency),
            }
        )

    def totals(rows):
        out: dict[str, Decimal] = {}
        for r in rows:
            cur = r["line"].currency
            out[cur] = out.get(cur, Decimal(0)) + r["amount"]
        return sorted(out.items())

    return {
        "received_not_invoiced": received,
        "invoiced_not_received": invoiced,
        "rni_totals": totals(received),
        "inr_totals": totals(invoiced),
    }


def budget_positions(
    *, entity_code: str = "", period: str = "", only_used: bool = True, entity_ids: set[int] | None = None
) -> list[dict]:
    """Budget, commitments, actuals and available per entity, cost center, account and period."""
    budgets = Budget.objects.select_related("entity").order_by("entity__code", "period", "cost_center", "gl_account")
    if entity_code:
        budgets = budgets.filter(entity__code=entity_code)
    if entity_ids is not None:
        budgets = budgets.filter(entity_id__in=entity_ids)
    if period:
        budgets = budgets.filter(period=period)
    budgets = list(budgets[:5000])
    positions = BudgetPositions()
    positions.load({(b.entity_id, b.cost_center, b.gl_account, b.period) for b in budgets})
    rows = []
    for b in budgets:
        pos = positions.positions.get((b.entity_id, b.cost_center, b.gl_account, b.period))
        if pos is None or (only_used and not pos.committed and not pos.actual):
            continue
        used = (pos.committed + pos.actual) / pos.budget * 100 if pos.budget else 0
        rows.append({"budget": b, "pos": pos, "used_pct": min(int(used), 999)})
    return rows


def supplier_changed_by(doc: Document) -> set[str]:
    """Employee codes of whoever last changed this document's supplier in the ERP (segregation of duties)."""
    email = (
        Supplier.objects.filter(entity_id=doc.entity_id, code=doc.party_code)
        .values_list("changed_by_email", flat=True)
        .first()
    )
    if not email:
        return set()
    return set(Employee.objects.filter(email__iexact=email).values_list("code", flat=True))


def writes_by_document_number(numbers: list[str]):
    """Our ERP postings by the document number they gave the ERP (to recognise them in the ERP's lists)."""
    return OutboundWrite.objects.filter(
        action__in=["post_expense_report", "post_supplier_invoice"], payload__document_number__in=numbers
    )
