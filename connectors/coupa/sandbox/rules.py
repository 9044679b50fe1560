"""What the Coupa sandbox accepts and refuses when something is written: statuses, their transitions,
the attributes each resource lets an API client change, and the checks on new documents.

Every refusal is a Coupa validation error, ``{"errors": {"<resource>": ["..."]}}`` with status 422,
in Coupa's words where the docs give them ("Invoice # can't be blank."). Functions return the
problem as text ("" when there is none), or the problems found so far as a list; the server turns
them into answers, holds the lock and stores the result. References (users, commodities,
suppliers, order lines) are resolved by the server and passed in: the rules never read the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .seed import CENT, account, commodity_ref, currency, parse_ts, supplier_ref

REQ_STATUSES = {"draft", "pending_approval", "approved", "rejected", "ordered", "withdrawn"}
# target status -> statuses it may come from (pending_approval only through submit_for_approval)
REQ_TRANSITIONS = {
    "approved": {"pending_approval"},
    "rejected": {"pending_approval"},
    "ordered": {"approved", "pending_approval"},
    "draft": {"pending_approval", "rejected"},
    "withdrawn": {"draft", "pending_approval", "approved"},
}
REQ_FIELDS = {
    "status",
    "exported",
    "erp-po-number",
    "erp-commitment",
    "validation-status",
    "validation-messages",
    "reject-reason-comment",
    "requisition-description",
    "justification",
}
INVOICE_STATUSES = {"draft", "pending_approval", "approved", "disputed", "voided"}
INVOICE_FIELDS = {"status", "exported", "erp-document-number", "erp-status", "payment-status", "erp-comment"}
SUPPLIER_FIELDS = {"name", "display-name", "tax-id", "status", "remit-to-iban"}  # what a buyer edits in Coupa
RECEIPT_FIELDS = {"exported"}
PAYMENT_STATUSES = {"", "ready_for_payment", "paid"}


def errors(resource: str, *messages: str) -> dict:
    return {"errors": {resource: list(messages)}}


def dec(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidOperation
    d = Decimal(str(value))
    if not d.is_finite():
        raise InvalidOperation
    return d


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- updates (PUT) -----------------------------------------------------------------------------------


def unknown_attributes(body: dict, allowed: set[str]) -> str:
    unknown = sorted(set(body) - allowed)
    return f"Unknown or read-only attribute(s): {', '.join(unknown)}." if unknown else ""


def exported_flag(body: dict) -> str:
    return "exported must be true or false." if "exported" in body and not isinstance(body["exported"], bool) else ""


def requisition_update(doc: dict, body: dict) -> str:
    """Whether ``body`` may be applied to the stored requisition ``doc``."""
    target = body.get("status", doc["status"])
    if target not in REQ_STATUSES:
        return f"Status '{target}' is not valid."
    if target != doc["status"] and doc["status"] not in REQ_TRANSITIONS.get(target, set()):
        return f"A {doc['status']} requisition cannot become {target}."
    po_number = as_text(body.get("erp-po-number", doc["erp-po-number"]))
    if doc["status"] == "ordered" and doc["erp-po-number"] and po_number != doc["erp-po-number"]:
        return f"Requisition {doc['id']} is already ordered on {doc['erp-po-number']}."
    if target == "ordered" and not po_number:
        return "An ordered requisition needs its erp-po-number."
    return exported_flag(body)


def apply_requisition_update(doc: dict, body: dict) -> None:
    """Custom fields and the status take text; ``exported`` stays a boolean."""
    for key, value in body.items():
        doc[key] = value if key == "exported" else (None if value is None else as_text(value))


def receipt_update(doc: dict, body: dict) -> str:
    return ""


def invoice_update(doc: dict, body: dict) -> str:
    status = body.get("status", doc["status"])
    if status not in INVOICE_STATUSES:
        return f"Status '{status}' is not valid."
    if doc["status"] == "voided" and status != "voided":
        return f"Invoice {doc['invoice-number']} is voided."
    if body.get("payment-status", "") not in PAYMENT_STATUSES:
        return f"Payment status '{body['payment-status']}' is not valid."
    if any(not isinstance(body[k], str) for k in ("erp-document-number", "erp-status", "erp-comment") if k in body):
        return "Custom fields take text."
    return ""


def supplier_update(doc: dict, body: dict) -> str:
    if any(not isinstance(v, str) for v in body.values()):
        return "Supplier attributes take text."
    if body.get("status", doc["status"]) not in ("active", "inactive", "draft"):
        return f"Status '{body['status']}' is not valid."
    return ""


# --- new documents (POST) ------------------------------------------------------------------------------

Find = Callable[[str, Any, tuple[str, ...]], dict | None]  # (collection, reference, keys) -> document


def requisition_lines(
    body: dict, user: dict | None, entity: str, currency_code: str, find: Find, problems: list[str]
) -> list[dict]:
    """The new requisition's lines (without ids), appending what is wrong to ``problems``."""
    raw_lines = body.get("requisition-lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        problems.append("Requisition lines can't be blank.")
        raw_lines = []
    lines = []
    for i, ln in enumerate(raw_lines, start=1):
        if not isinstance(ln, dict):
            problems.append(f"Line {i} is not an object.")
            continue
        try:
            qty, price = dec(ln.get("quantity")), dec(ln.get("unit-price"))
            if qty <= 0 or price < 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"Line {i}: quantity and unit-price must be positive numbers.")
            continue
        found_commodity = find("commodities", ln.get("commodity"), ("id", "code", "name"))
        supplier = find("suppliers", ln.get("supplier"), ("id", "number"))
        if found_commodity is None:
            problems.append(f"Line {i}: commodity not found.")
            continue
        if ln.get("supplier") is not None and supplier is None:
            problems.append(f"Line {i}: supplier not found.")
            continue
        acct = ln.get("account") if isinstance(ln.get("account"), dict) else {}
        uom = as_text((ln.get("uom") or {}).get("code")) if isinstance(ln.get("uom"), dict) else ""
        need_by = ln.get("need-by-date") or body.get("need-by-date")
        lines.append(
            {
                "id": None,
                "line-num": i,
                "description": as_text(ln.get("description")),
                "need-by-date": need_by,
                "quantity": str(qty),
                "unit-price": str(price),
                "total": str((qty * price).quantize(CENT)),
                "source-type": "Non-Catalog Request",
                "line-type": "RequisitionQuantityLine",
                "order-line-id": None,
                "account": account(
                    as_text(acct.get("segment-1")) or found_commodity["gl-account"],
                    as_text(acct.get("segment-2")) or (user or {}).get("cost-center", ""),
                    as_text(acct.get("segment-3")),
                    entity,
                ),
                "commodity": commodity_ref(found_commodity),
                "currency": currency(currency_code),
                "supplier": supplier_ref(supplier) if supplier else None,
                "uom": {"id": 1 if uom in ("", "EA") else 2, "code": uom or "EA", "name": uom or "Each"},
            }
        )
    return lines


def submittable(doc: dict) -> str:
    if doc["status"] != "draft":
        return f"Requisition {doc['id']} is {doc['status']}; only a draft can be submitted for approval."
    return ""


def receipt(body: dict, found: tuple[dict, dict] | None) -> tuple[Decimal | None, str]:
    """(quantity, problem) of a new receiving transaction; ``found`` is its (order line, PO)."""
    if found is None:
        return None, "Order line not found (give its id, or po-number and line-num)."
    try:
        qty = dec(body.get("quantity"))
        if qty <= 0:
            raise InvalidOperation
    except InvalidOperation:
        return None, "Quantity must be a positive number."
    return qty, ""


def transaction_date(when: Any) -> str:
    try:
        parse_ts(str(when))
    except ValueError:
        return f"transaction-date is not a date: {when!r}."
    return ""


def invoice(
    body: dict,
    supplier: dict | None,
    today: date,
    number_taken: Callable[[dict, str], bool],
    order_line: Callable[[dict], tuple[dict, dict] | None],
) -> tuple[dict, list[str]]:
    """A new invoice's header values and lines as parsed, and the problems found."""
    problems = []
    number = as_text(body.get("invoice-number")).strip()
    currency_code = as_text((body.get("currency") or {}).get("code")) if isinstance(body.get("currency"), dict) else ""
    try:
        inv_date = date.fromisoformat(as_text(body.get("invoice-date"))[:10])
    except ValueError:
        problems.append("Invoice date is not a date.")
        inv_date = today
    if not number:
        problems.append("Invoice # can't be blank.")
    if supplier is None:
        problems.append("Supplier must be an existing supplier (id or number).")
    if not currency_code:
        problems.append("Currency can't be blank.")
    if supplier and number_taken(supplier, number):
        problems.append(f"Invoice # {number} has already been used for this supplier.")
    raw_lines = body.get("invoice-lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        problems.append("Invoice lines can't be blank.")
        raw_lines = []
    parsed = []
    for i, ln in enumerate(raw_lines, start=1):
        try:
            qty, price = dec(ln.get("quantity")), dec(ln.get("price"))
        except (InvalidOperation, AttributeError):
            problems.append(f"Line {i}: quantity and price must be numbers.")
            continue
        ref = {"id": ln.get("order-line-id"), "po-number": ln.get("po-number"), "line-num": ln.get("order-line-num")}
        found = order_line(ref) if any(v not in (None, "") for v in ref.values()) else None
        if found is None and any(v not in (None, "") for v in ref.values()):
            problems.append(f"Line {i}: order line not found.")
            continue
        tax = ln.get("tax-code")
        parsed.append(
            (
                i,
                as_text(ln.get("description")),
                qty,
                price,
                as_text(tax.get("code")) if isinstance(tax, dict) else "",
                found,
            )
        )
    return {"number": number, "currency": currency_code, "date": inv_date, "lines": parsed}, problems
