"""What the procure-to-pay rules need, loaded once per batch: suppliers, contracts, budgets, POs.

`prepare(documents)` loads, in a handful of queries, everything the batch's requisitions and
invoices refer to (their POs with lines, duplicate candidates, budget positions), so validating a
page of 100 invoices or matching 100,000 lines stays a few queries per page.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from workbench import matching
from workbench.duplicates import DuplicateIndex, InvoiceKey, normalize_invoice_number
from workbench.models import (
    Budget,
    Document,
    DocumentLine,
    MatchTolerance,
    PurchaseCategory,
    Supplier,
    SupplierContract,
)

ZERO = Decimal(0)
FOUR = Decimal("0.0001")
COMMITTED_PO = ("approved",)
POSTED = ("posted", "ready_for_payment", "paid", "posting")


@dataclass
class BudgetPosition:
    budget: Decimal
    committed: Decimal
    actual: Decimal

    @property
    def available(self) -> Decimal:
        return self.budget - self.committed - self.actual


def period_of_day(day: date | None) -> str:
    return f"{(day or timezone.now().date()):%Y-%m}"


def tolerance_for(entity_id: int | None, tolerances: dict) -> matching.Tolerance:
    t = tolerances.get(entity_id) or tolerances.get(None)
    if t is None:
        return matching.Tolerance(price_pct=Decimal(2), qty_abs=ZERO, amount_abs=Decimal(25))
    return matching.Tolerance(price_pct=t.price_pct, qty_abs=t.qty_abs, amount_abs=t.amount_abs)


class BudgetPositions:
    """Budget, commitments and actuals per (entity id, cost center, account, period), loaded on demand.

    The requisition rules, the budgets screen and the budget-check API all read budgets through this.
    """

    def __init__(self):
        self.positions: dict[tuple, BudgetPosition] = {}
        self._asked: set[tuple] = set()  # keys asked for already (with or without a budget)

    def get(self, entity_id, cost_center, account, period, *, exclude_document=None) -> BudgetPosition | None:
        key = (entity_id, cost_center, account, period)
        self.load([key], exclude_document)
        return self.positions.get(key)

    def load(self, keys, exclude_document=None) -> None:
        """`exclude_document`: a document id or ids whose own lines do not count (the ones being checked)."""
        excluded = (
            [exclude_document] if isinstance(exclude_document, int) else [x for x in (exclude_document or []) if x]
        )
        keys = {k for k in keys if k not in self._asked}
        if not keys:
            return
        self._asked |= keys
        entities = {k[0] for k in keys}
        ccs = {k[1] for k in keys}
        accounts = {k[2] for k in keys}
        periods = {k[3] for k in keys}
        for b in Budget.objects.filter(
            entity_id__in=entities, cost_center__in=ccs, gl_account__in=accounts, period__in=periods
        ):
            key = (b.entity_id, b.cost_center, b.gl_account, b.period)
            if key in keys:
                self.positions[key] = BudgetPosition(b.amount, ZERO, ZERO)
        wanted = {k for k in keys if k in self.positions}
        if not wanted:
            return
        first = min(date.fromisoformat(p + "-01") for p in periods)
        last = max(date.fromisoformat(p + "-01") for p in periods)
        last = date(last.year + last.month // 12, last.month % 12 + 1, 1)

        # Commitments: open PO lines (ordered, not yet invoiced) and approved requisitions not yet ordered.
        # Actuals: what matched invoices consumed of PO lines (at the PO's price). Summed by the database in
        # plain SQL: this runs inside the synchronous validation call, where ORM compilation costs show.
        def marks(values) -> str:
            return ", ".join(["%s"] * len(values))

        sql = f"""
            SELECT d.entity_id, l.cost_center, l.gl_account, d.document_date, d.kind, SUM(l.amount),
                   SUM(COALESCE(l.invoiced_quantity, 0) * COALESCE(l.unit_price, 0))
            FROM {DocumentLine._meta.db_table} l JOIN {Document._meta.db_table} d ON d.id = l.document_id
            WHERE d.entity_id IN ({marks(entities)}) AND l.cost_center IN ({marks(ccs)}) AND l.gl_account IN ({marks(accounts)})
              AND d.document_date >= %s AND d.document_date < %s AND d.id NOT IN ({marks(excluded or [0])})
              AND (d.kind = 'purchase_order' OR (d.kind = 'requisition' AND d.business_status = 'approved'
                   AND NOT EXISTS (SELECT 1 FROM {Document._meta.db_table} c WHERE c.parent_id = d.id)))
            GROUP BY d.entity_id, l.cost_center, l.gl_account, d.document_date, d.kind"""
        params = [*entities, *ccs, *accounts, first, last, *(excluded or [0])]
        with connection.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        for entity_id, cc, acct, day, kind, amount, actual in rows:
            if isinstance(day, str):  # SQLite hands dates back as text here
                day = date.fromisoformat(day)
            pos = self.positions.get((entity_id, cc, acct, period_of_day(day)))
            if pos is None:
                continue
            # PostgreSQL sums numerics exactly; SQLite may hand back a float: back to 4 decimals, as stored.
            amount = Decimal(str(amount or 0)).quantize(FOUR)
            actual = Decimal(str(actual or 0)).quantize(FOUR) if kind == Document.Kind.PURCHASE_ORDER else ZERO
            pos.actual += actual
            pos.committed += amount - actual


class P2PContext:
    def __init__(self):
        self.suppliers: dict[tuple[int, str], Supplier] = {
            (s.entity_id, s.code): s
            for s in Supplier.objects.only("id", "entity_id", "code", "name", "blocked", "active", "tax_id")
        }
        self.categories = {c.code: c for c in PurchaseCategory.objects.all()}
        self.contracts: dict[tuple[str, str], list[SupplierContract]] = {}
        for c in SupplierContract.objects.all():
            self.contracts.setdefault((c.supplier_code, c.category), []).append(c)
        self.tolerances = {t.entity_id: t for t in MatchTolerance.objects.all()}
        self.po_lines: dict[tuple[int | None, str], list[DocumentLine]] = {}  # (entity, PO number) -> lines
        self.dupes = DuplicateIndex()
        self.budgets = BudgetPositions()
        self.batch_invoiced: dict[int, Decimal] = {}  # PO line id -> quantity matched by earlier invoices of this batch
        self.match_results: dict[int, list[tuple[DocumentLine, matching.LineResult]]] = {}
        self._variances: dict[int, list] = {}

    def reset_batch(self) -> None:
        """Forget what one batch loaded: the next batch sees the quantities and budgets it committed."""
        self.po_lines = {}
        self.dupes = DuplicateIndex()
        self.budgets = BudgetPositions()
        self.batch_invoiced = {}
        self.match_results = {}
        self._variances = {}

    # --- lookups the rules use -------------------------------------------------------------------
    def supplier(self, entity_id: int, code: str) -> Supplier | None:
        return self.suppliers.get((entity_id, code))

    def has_contract(self, supplier_code: str, category: str, day: date | None) -> bool:
        day = day or timezone.now().date()
        return any(c.covers(day) for c in self.contracts.get((supplier_code, category), []))

    @staticmethod
    def period_of(doc: Document, line: DocumentLine) -> str:
        return period_of_day(doc.document_date)

    def budget_position(
        self, entity_id, cost_center, account, period, *, exclude_document=None
    ) -> BudgetPosition | None:
        return self.budgets.get(entity_id, cost_center, account, period, exclude_document=exclude_document)

    def clone(self) -> P2PContext:
        """A context sharing this one's master data (read-only) with its own batch state: what the
        synchronous requisition check uses per request from a context cached across requests."""
        other = copy.copy(self)
        other.reset_batch()
        return other

    def duplicates_of(self, doc: Document) -> list[tuple[str, InvoiceKey]]:
        if doc.business_status == Document.BusinessStatus.REJECTED:
            return []
        # Only the later arrival is the duplicate: the first one received stays clean.
        return [(kind, other) for kind, other in self.dupes.check(_invoice_key(doc)) if other.key < doc.pk]

    def match(self, doc: Document, lines: list[DocumentLine]):
        """(line, variance) for every variance the three-way match finds on this invoice (cached)."""
        if doc.pk not in self.match_results:
            self.match_results[doc.pk] = self._match(doc, lines)
            self._variances[doc.pk] = [(ln, v) for ln, result in self.match_results[doc.pk] for v in result.variances]
        return self._variances[doc.pk]

    # --- batch loading -------------------------------------------------------------------------------
    def prepare(self, documents: list[Document]) -> None:
        invoices = [d for d in documents if d.kind == Document.Kind.SUPPLIER_INVOICE]
        reqs = [d for d in documents if d.kind == Document.Kind.REQUISITION]
        if invoices:
            self._load_pos({(d.entity_id, d.po_number) for d in invoices if d.po_number})
            self._load_duplicate_candidates(invoices)
        if reqs:
            keys = set()
            for ln in DocumentLine.objects.filter(document__in=reqs).select_related("document"):
                if ln.cost_center and ln.gl_account and ln.document.entity_id:
                    keys.add((ln.document.entity_id, ln.cost_center, ln.gl_account, self.period_of(ln.document, ln)))
            # Each requisition is checked against what others already consume: the batch's own
            # requisitions (approved ones being re-validated) do not count against themselves.
            self.budgets.load(keys, [d.pk for d in reqs])

    def _load_pos(self, keys: set[tuple[int | None, str]]) -> None:
        numbers = {n for _, n in keys if (_, n) not in self.po_lines}
        if not numbers:
            return
        # Two indexed steps (the POs by number, then their lines by document): a join lets the planner
        # scan every line in the ledger.
        pos = {
            pk: (entity_id, number)
            for pk, entity_id, number in Document.objects.filter(
                kind=Document.Kind.PURCHASE_ORDER, po_number__in=numbers
            ).values_list("id", "entity_id", "number")
        }
        for ln in (
            DocumentLine.objects.filter(document_id__in=list(pos))
            .order_by("document_id", "line_no")
            .only(
                "id",
                "document_id",
                "line_no",
                "quantity",
                "unit_price",
                "received_quantity",
                "invoiced_quantity",
                "gl_account",
                "cost_center",
            )
        ):
            self.po_lines.setdefault(pos[ln.document_id], []).append(ln)
        for key in keys:
            self.po_lines.setdefault(key, [])

    def _load_duplicate_candidates(self, invoices: list[Document]) -> None:
        nums = {d.number_key for d in invoices if d.number_key}
        base = Document.objects.filter(kind=Document.Kind.SUPPLIER_INVOICE).exclude(
            business_status=Document.BusinessStatus.REJECTED
        )
        # Two indexed lookups (same number key; same day and amount), unioned here; the index decides exactly.
        seen: set[int] = set()
        for qs in (
            base.filter(number_key__in=nums),
            base.filter(
                document_date__in={d.document_date for d in invoices if d.document_date},
                total__in={d.total for d in invoices},
            ),
        ):
            for pk, party, number, total, currency, day in qs.values_list(
                "id", "party_code", "number", "total", "currency", "document_date"
            ):
                if pk not in seen:
                    seen.add(pk)
                    self.dupes.add(
                        InvoiceKey(
                            key=pk,
                            supplier=party or "",
                            number=number,
                            amount=total,
                            currency=currency,
                            date=str(day or ""),
                        )
                    )
        for d in invoices:
            if d.pk not in seen:
                self.dupes.add(_invoice_key(d))

    def _match(self, doc: Document, lines: list[DocumentLine]):
        if doc.total < 0 or any(ln.amount < 0 or (ln.quantity or 0) < 0 for ln in lines):
            return []  # credit notes and negative invoices are settled against their invoice, not matched
        po = self.po_lines.get((doc.entity_id, doc.po_number), []) if doc.po_number else []
        by_no = {p.line_no: p for p in po}
        inv_lines, pairs = [], []
        for ln in lines:
            target = by_no.get(ln.po_line_no) if ln.po_line_no else None
            if target is None and len(po) == 1:
                target = po[0]
            if target is None and not ln.po_line_no:
                target = by_no.get(ln.line_no)
            ln.po_line = target
            qty = ln.quantity if ln.quantity is not None else Decimal(1)
            price = ln.unit_price if ln.unit_price is not None else ln.amount
            inv_lines.append(
                matching.InvLine(
                    key=ln.pk,
                    po_line=target.pk if target else None,
                    quantity=qty,
                    unit_price=Decimal(price),
                    amount=ln.amount,
                )
            )
            pairs.append(ln)
        po_lines = [
            matching.POLine(key=p.pk, quantity=p.quantity or ZERO, unit_price=Decimal(p.unit_price or 0)) for p in po
        ]
        receipts = [
            matching.Receipt(key=p.pk, po_line=p.pk, quantity=p.received_quantity) for p in po if p.received_quantity
        ]
        already = {p.pk: p.invoiced_quantity + self.batch_invoiced.get(p.pk, ZERO) for p in po}
        results = matching.match_lines(
            inv_lines,
            po_lines,
            receipts,
            already_invoiced=already,
            tolerance=tolerance_for(doc.entity_id, self.tolerances),
        )
        for ln, res in zip(pairs, results, strict=True):
            if ln.po_line is not None and res.status == "matched":
                consumed = sum((a.quantity for a in res.allocations), ZERO)
                self.batch_invoiced[ln.po_line.pk] = self.batch_invoiced.get(ln.po_line.pk, ZERO) + consumed
        numbers = {p.pk: p.line_no for p in po}
        for res in results:  # the engine names PO lines by key (our id); people know them by line number
            for v in res.variances:
                for pk, no in numbers.items():
                    v.message = v.message.replace(f"PO line {pk!r}", f"PO line {no}")
        if not doc.po_number:
            for res in results:
                for v in res.variances:
                    if v.code == "NO_PO_LINE":
                        v.code, v.message = "NO_PURCHASE_ORDER", "the invoice names no purchase order."
        elif not po:
            for res in results:
                for v in res.variances:
                    if v.code == "NO_PO_LINE":
                        v.code, v.message = "NO_PURCHASE_ORDER", f"purchase order {doc.po_number} is not known (yet)."
        else:
            for res in results:
                for v in res.variances:
                    if v.code == "NO_PO_LINE":
                        v.code = "NO_PURCHASE_ORDER"
        return list(zip(pairs, results, strict=True))


def _invoice_key(d: Document) -> InvoiceKey:
    return InvoiceKey(
        key=d.pk,
        supplier=d.party_code or "",
        number=d.number,
        amount=d.total,
        currency=d.currency,
        date=str(d.document_date or ""),
    )


def number_key(number: str) -> str:
    return normalize_invoice_number(number)[:60]
