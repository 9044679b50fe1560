"""Rules for requisitions and supplier invoices (procure-to-pay).

Requisitions are checked before approval routing starts: supplier eligible (known to the ERP, not
blocked, under contract where the category needs one) and budget available. Supplier invoices are
checked for the supplier, duplicates and the three-way match against PO and receipts. The match
itself is `workbench.matching`; what it needs is loaded once per batch by `P2PContext`.
"""

from __future__ import annotations

from decimal import Decimal

from . import Finding, rule

REQ = ("requisition",)
INV = ("supplier_invoice",)
MATCH_CODES = ("PRICE_VARIANCE", "QUANTITY_VARIANCE", "NOT_RECEIVED", "NO_PURCHASE_ORDER")


def _suppliers_of(doc, lines) -> list[str]:
    if doc.kind == "supplier_invoice":
        return [doc.party_code] if doc.party_code else []
    return sorted({ln.supplier_code for ln in lines if ln.supplier_code})


@rule("UNKNOWN_SUPPLIER", kinds=REQ + INV)
def unknown_supplier(doc, lines, ctx):
    if doc.entity_id is None:
        return
    p2p = ctx.p2p
    if doc.kind == "supplier_invoice" and not doc.party_code:
        who = doc.party_name or "the sender"
        yield Finding(
            "UNKNOWN_SUPPLIER",
            f"{who} (tax id {doc.party_tax_id or 'none'}) is not a vendor of {doc.entity_code} in the ERP.",
            root_cause=doc.party_tax_id or doc.party_name,
        )
        return
    for code in _suppliers_of(doc, lines):
        if p2p.supplier(doc.entity_id, code) is None:
            yield Finding(
                "UNKNOWN_SUPPLIER",
                f"Supplier {code} is not a vendor of {doc.entity_code} in the ERP.",
                root_cause=code,
                detail={"supplier": code},
            )


@rule("BLOCKED_SUPPLIER", kinds=REQ + INV)
def blocked_supplier(doc, lines, ctx):
    if doc.entity_id is None:
        return
    for code in _suppliers_of(doc, lines):
        sup = ctx.p2p.supplier(doc.entity_id, code)
        if sup is None:
            continue
        if sup.blocked == "All" or not sup.active:
            yield Finding(
                "BLOCKED_SUPPLIER",
                f"Supplier {code} ({sup.name}) is blocked in the ERP for all transactions.",
                root_cause=code,
                detail={"supplier": code, "blocked": sup.blocked or "inactive"},
            )
        elif sup.blocked == "Payment":
            what = (
                "decide whether to order from them now"
                if doc.kind == "requisition"
                else "this invoice can be posted but not paid until the ERP unblocks them"
            )
            yield Finding(
                "BLOCKED_SUPPLIER",
                f"Supplier {code} ({sup.name}) is blocked for payments in the ERP: {what}.",
                root_cause=code,
                detail={"supplier": code, "blocked": "Payment"},
            )


@rule("NO_CONTRACT", kinds=REQ)
def no_contract(doc, lines, ctx):
    if doc.entity_id is None:
        return
    day = doc.document_date
    for ln in lines:
        cat = ctx.p2p.categories.get(ln.category)
        if cat is None or not cat.contract_required or not ln.supplier_code:
            continue
        if not ctx.p2p.has_contract(ln.supplier_code, ln.category, day):
            yield Finding(
                "NO_CONTRACT",
                f"Line {ln.line_no}: {cat.name or cat.code} must be bought under a contract, "
                f"and supplier {ln.supplier_code} has no valid one.",
                line=ln,
                root_cause=f"{ln.supplier_code}/{ln.category}",
                detail={"supplier": ln.supplier_code, "category": ln.category},
            )


@rule("BUDGET_EXCEEDED", kinds=REQ)
def budget_exceeded(doc, lines, ctx):
    if doc.entity_id is None:
        return
    needed: dict[tuple[str, str, str], Decimal] = {}
    first_line = {}
    for ln in lines:
        if not ln.cost_center or not ln.gl_account:
            continue
        key = (ln.cost_center, ln.gl_account, ctx.p2p.period_of(doc, ln))
        needed[key] = needed.get(key, Decimal(0)) + ln.amount
        first_line.setdefault(key, ln)
    for key, amount in sorted(needed.items()):
        pos = ctx.p2p.budget_position(doc.entity_id, *key, exclude_document=doc.pk)
        if pos is None:
            yield Finding(
                "BUDGET_EXCEEDED",
                f"No budget for cost center {key[0]}, account {key[1]} in {key[2]} "
                f"({amount:,.2f} {doc.currency} requested).",
                line=first_line[key],
                root_cause=f"{key[0]}/{key[1]}/{key[2]}",
                detail={
                    "cost_center": key[0],
                    "account": key[1],
                    "period": key[2],
                    "available": "0",
                    "requested": str(amount),
                },
            )
        elif amount > pos.available:
            yield Finding(
                "BUDGET_EXCEEDED",
                f"{amount:,.2f} {doc.currency} requested for {key[0]}/{key[1]} in {key[2]}; "
                f"only {pos.available:,.2f} of {pos.budget:,.2f} is left.",
                line=first_line[key],
                root_cause=f"{key[0]}/{key[1]}/{key[2]}",
                detail={
                    "cost_center": key[0],
                    "account": key[1],
                    "period": key[2],
                    "available": str(pos.available),
                    "requested": str(amount),
                },
            )


@rule("DUPLICATE_INVOICE", kinds=INV)
def duplicate_invoice(doc, lines, ctx):
    for kind, other in ctx.p2p.duplicates_of(doc):
        if kind == "DUPLICATE":
            yield Finding(
                "DUPLICATE_INVOICE",
                f"Invoice {doc.number} from {doc.party_code} looks like invoice {other.number} "
                f"already received ({other.amount:,.2f} {other.currency}, {other.date}).",
                root_cause=f"{doc.party_code}:{doc.number_key}",
                detail={"certainty": "same number", "other_document": other.key, "other_number": other.number},
            )
        else:
            yield Finding(
                "DUPLICATE_INVOICE",
                f"Possible duplicate: {other.supplier} sent {other.number} for the same amount "
                f"({other.amount:,.2f} {other.currency}) on the same day.",
                root_cause=f"{doc.currency}{doc.total}:{doc.document_date}",
                detail={"certainty": "possible", "other_document": other.key, "other_number": other.number},
            )


def _match_findings(code):
    def check(doc, lines, ctx):
        for ln, variance in ctx.p2p.match(doc, lines):
            if variance.code == code and not variance.within_tolerance:
                # A price above the PO is usually the supplier's price list; missing goods are the PO's.
                cause = doc.party_code if code == "PRICE_VARIANCE" else (doc.po_number or doc.party_code)
                yield Finding(
                    code,
                    f"Line {ln.line_no}: {variance.message}",
                    line=ln,
                    root_cause=cause,
                    detail={"variance": str(variance.amount), "po_number": doc.po_number},
                )

    return check


for _code in MATCH_CODES:
    rule(_code, kinds=INV)(_match_findings(_code))
