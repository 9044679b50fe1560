"""Pure functions from Coupa REST JSON (dash-case keys, nested objects) to the canonical shapes of
``connectors/README.md`` ("Procure-to-pay" -> coupa, supplier_invoice).

``map_record(stream, obj)`` returns ``(record, None)`` or ``(None, RecordError)``: one broken
object must never stop the others. Coupa sends amounts and quantities as decimal strings
(``"43840.00"``, ``"1.0"``); they become ``Decimal`` and anything that is not a number is an error
naming the field. Text is passed through untouched: escaping is the UI's job.

Where things live in Coupa (see also the sandbox docstring):
- the legal entity: the requisition's custom field ``legal-entity``; elsewhere the chart of
  accounts, ``account-type.name`` (header, or the line's ``account``);
- GL account / cost center / project: the line ``account`` segments 1 / 2 / 3;
- our category code: the commodity's custom field ``code``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import RecordError

RAW_LIMIT = 4096


class MappingError(ValueError):
    """An object without the shape or values the canonical record needs."""


# --- small parsers: each names the field it was reading ------------------------------------------


def number(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise MappingError(f"{field} is not a number: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{field} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise MappingError(f"{field} is not a number: {value!r}")
    return amount


def day(value: Any, field: str, *, optional: bool = False) -> str | None:
    """``2026-11-05`` or ``2026-11-05T00:00:00-08:00`` -> ``2026-11-05``."""
    if value in (None, "") and optional:
        return None
    if not isinstance(value, str) or len(value) < 10:
        raise MappingError(f"{field} is not a date: {value!r}")
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise MappingError(f"{field} is not a date: {value!r}") from None


def parse_ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def timestamp(value: Any, field: str) -> str | None:
    """Coupa's local-offset timestamps as UTC ``YYYY-MM-DDTHH:MM:SSZ``; missing -> None."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MappingError(f"{field} is not a timestamp: {value!r}")
    try:
        return parse_ts(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise MappingError(f"{field} is not a timestamp: {value!r}") from None


def text(value: Any) -> str:
    return "" if value is None else str(value)


def obj(parent: dict, key: str, where: str = "", *, optional: bool = False) -> dict:
    value = parent.get(key)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}{key} is missing or not an object: {value!r}"[:200])
    return value


def items(parent: dict, key: str) -> list[dict]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MappingError(f"{key} is not a list of objects")
    return value


def ident(o: dict, where: str = "") -> str:
    value = o.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise MappingError(f"{where}id is missing")
    return str(value)


def code_of(parent: dict, key: str) -> str:
    """``{"currency": {"code": "USD"}}`` -> ``"USD"``; absent -> ""."""
    value = parent.get(key)
    return text(value.get("code")) if isinstance(value, dict) else ""


def entity_of(o: dict) -> str:
    return text((o.get("account-type") or {}).get("name")) if isinstance(o.get("account-type"), dict) else ""


def segments(account: Any) -> tuple[str, str, str]:
    """GL account, cost center, project: segments 1..3 of the Coupa account (our chart's layout)."""
    if not isinstance(account, dict):
        return "", "", ""
    return text(account.get("segment-1")), text(account.get("segment-2")), text(account.get("segment-3"))


def user_name(user: dict) -> str:
    return " ".join(p for p in (text(user.get("firstname")), text(user.get("lastname"))) if p)


# --- one function per stream --------------------------------------------------------------------


def map_supplier(o: dict) -> dict[str, Any]:
    # Country and IBAN are matching evidence only (the supplier crosswalk): an odd shape leaves them blank.
    address = o.get("primary-address")
    return {
        "external_id": ident(o),
        "number": text(o.get("number")),
        "name": text(o.get("name")),
        "status": text(o.get("status")) or "active",
        "tax_id": text(o.get("tax-id")),
        "country": code_of(address, "country") if isinstance(address, dict) else "",
        "iban": text(o.get("remit-to-iban")),
        "updated_at": timestamp(o.get("updated-at"), "updated-at"),
    }


def map_commodity(o: dict) -> dict[str, Any]:
    required = o.get("contract-required")
    return {
        "external_id": ident(o),
        "code": text(o.get("code")),
        "name": text(o.get("name")),
        "gl_account": text(o.get("gl-account")),
        # Custom checkbox fields come back as booleans, or as "true"/"false" from older setups.
        "contract_required": required is True or str(required).lower() in ("true", "yes", "1"),
    }


def map_contract(o: dict) -> dict[str, Any]:
    supplier = obj(o, "supplier", optional=True)
    commodity = obj(o, "commodity", optional=True)
    return {
        "external_id": ident(o),
        "number": text(o.get("number")),
        "supplier_code": text(supplier.get("number")),
        "category": text(commodity.get("code")),
        "start": day(o.get("start-date"), "start-date", optional=True),
        "end": day(o.get("end-date"), "end-date", optional=True),
        "status": text(o.get("status")),
    }


def _req_line(ln: dict, i: int, currency: str) -> dict[str, Any]:
    where = f"requisition-lines[{i}] "
    gl, cc, project = segments(ln.get("account"))
    supplier = obj(ln, "supplier", where, optional=True)
    return {
        "external_id": ident(ln, where),
        "line_no": int(number(ln.get("line-num"), f"{where}line-num")),
        "description": text(ln.get("description")),
        "category": text(obj(ln, "commodity", optional=True).get("code")),
        "quantity": number(ln.get("quantity"), f"{where}quantity"),
        "unit_price": number(ln.get("unit-price"), f"{where}unit-price"),
        "amount": number(ln.get("total"), f"{where}total"),
        "currency": code_of(ln, "currency") or currency,
        "uom": code_of(ln, "uom"),
        "gl_account": gl,
        "cost_center": cc,
        "project": project,
        "supplier_code": text(supplier.get("number")),
        "supplier_name": text(supplier.get("name")),
        "need_by_date": day(ln.get("need-by-date"), f"{where}need-by-date", optional=True),
    }


def map_requisition(o: dict) -> dict[str, Any]:
    rid = ident(o)
    currency = code_of(o, "currency")
    requester = obj(o, "requested-by")
    return {
        "external_id": rid,
        "number": rid,  # Coupa shows the requisition id as its number
        "entity": text(o.get("legal-entity")),
        "requester_code": text(requester.get("employee-number")),
        "requester_name": user_name(requester),
        "requester_email": text(requester.get("email")),
        "title": text(o.get("requisition-description")),
        "currency": currency,
        "total": number(o.get("total"), "total"),
        "status": text(o.get("status")),
        "submitted_at": timestamp(o.get("submitted-at"), "submitted-at"),
        "updated_at": timestamp(o.get("updated-at"), "updated-at"),
        "erp_po_number": text(o.get("erp-po-number")),
        "validation_status": text(o.get("validation-status")),
        "lines": [_req_line(ln, i, currency) for i, ln in enumerate(items(o, "requisition-lines"))],
    }


def map_purchase_order(o: dict) -> dict[str, Any]:
    lines = []
    for i, ln in enumerate(items(o, "order-lines")):
        where = f"order-lines[{i}] "
        gl, cc, _project = segments(ln.get("account"))
        lines.append(
            {
                "external_id": ident(ln, where),
                "line_no": int(number(ln.get("line-num"), f"{where}line-num")),
                "description": text(ln.get("description")),
                "category": text(obj(ln, "commodity", optional=True).get("code")),
                "quantity": number(ln.get("quantity"), f"{where}quantity"),
                "unit_price": number(ln.get("price"), f"{where}price"),
                "amount": number(ln.get("total"), f"{where}total"),
                "uom": code_of(ln, "uom"),
                "gl_account": gl,
                "cost_center": cc,
            }
        )
    return {
        "external_id": ident(o),
        "number": text(o.get("po-number")),
        "requisition_external_id": text(obj(o, "requisition-header", optional=True).get("id")),
        "entity": entity_of(o),
        "supplier_code": text(obj(o, "supplier", optional=True).get("number")),
        "currency": code_of(o, "currency"),
        "total": number(o.get("total"), "total"),
        "status": text(o.get("status")),
        "created_at": timestamp(o.get("created-at"), "created-at"),
        "updated_at": timestamp(o.get("updated-at"), "updated-at"),
        "lines": lines,
    }


def map_receipt(o: dict) -> dict[str, Any]:
    line = obj(o, "order-line")
    account = o.get("account") if isinstance(o.get("account"), dict) else {}
    return {
        "external_id": ident(o),
        "po_number": text(line.get("po-number")),
        "po_line_no": int(number(line.get("line-num"), "order-line.line-num")),
        "quantity": number(o.get("quantity"), "quantity"),
        "received_on": day(o.get("transaction-date"), "transaction-date"),
        "entity": entity_of(account),
        "updated_at": timestamp(o.get("updated-at"), "updated-at"),
    }


def map_invoice(o: dict) -> dict[str, Any]:
    supplier = obj(o, "supplier")
    currency = code_of(o, "currency")
    invoice_date = day(o.get("invoice-date"), "invoice-date")
    lines = []
    for i, ln in enumerate(items(o, "invoice-lines")):
        where = f"invoice-lines[{i}] "
        po_line = ln.get("order-line-num")
        lines.append(
            {
                "external_id": ident(ln, where),
                "line_no": int(number(ln.get("line-num"), f"{where}line-num")),
                "description": text(ln.get("description")),
                "quantity": number(ln.get("quantity"), f"{where}quantity"),
                "uom": code_of(ln, "uom"),
                "unit_price": number(ln.get("price"), f"{where}price"),
                "amount": number(ln.get("total"), f"{where}total"),
                "po_number": text(ln.get("po-number")),
                "po_line_no": None if po_line in (None, "") else int(number(po_line, f"{where}order-line-num")),
                "tax_code": code_of(ln, "tax-code"),
                "tax_percent": None if ln.get("tax-rate") is None else number(ln.get("tax-rate"), f"{where}tax-rate"),
            }
        )
    net = sum((ln["amount"] for ln in lines), Decimal("0"))
    tax = number(o.get("tax-amount") or 0, "tax-amount")
    total = number(o.get("gross-total"), "gross-total")
    # Payment terms travel as sent: the workbench refuses an unreadable one field by field, with a
    # note, instead of losing the whole invoice over a bad due date.
    term = o.get("payment-term") if isinstance(o.get("payment-term"), dict) else {}
    due = o.get("net-due-date")
    try:
        due = day(due, "net-due-date", optional=True)
    except MappingError:
        due = text(due)[:40]
    bill_to = obj(o, "bill-to-address", optional=True)
    remit = obj(o, "remit-to-address", optional=True)
    return {
        "external_id": ident(o),
        "channel": "coupa",
        "number": text(o.get("invoice-number")),
        "document_type": "credit_note" if text(o.get("document-type")).lower() == "credit note" else "invoice",
        "supplier_code": text(supplier.get("number")),
        "supplier_name": text(supplier.get("name")),
        "supplier_tax_id": text(supplier.get("tax-id")),
        "supplier_iban": text((remit.get("bank-account") or {}).get("iban"))
        if isinstance(remit.get("bank-account"), dict)
        else "",
        "entity": entity_of(o),
        "buyer_tax_id": text(bill_to.get("vat-number")),
        "buyer_name": text(bill_to.get("name")),
        "currency": currency,
        "invoice_date": invoice_date,
        "due_date": due,
        "net_days": term.get("days-for-net-payment"),  # older payloads carry no net-due-date
        "payment_terms": text(term.get("code"))[:200],
        "discount_percent": term.get("discount-rate"),
        "discount_days": term.get("days-for-discount-payment"),
        "po_number": next((ln["po_number"] for ln in lines if ln["po_number"]), ""),
        # A credit note's reference to the invoice it corrects (Coupa's original-invoice-number).
        "corrects_number": text(o.get("original-invoice-number")),
        "total": total,
        "net_total": net,
        "tax_total": tax,
        "lines": lines,
    }


MAPPERS = {
    "suppliers": map_supplier,
    "commodities": map_commodity,
    "contracts": map_contract,
    "requisitions": map_requisition,
    "purchase_orders": map_purchase_order,
    "receipts": map_receipt,
    "invoices": map_invoice,
}


def _summary(o: dict) -> dict[str, Any]:
    """What a person handling a quarantined object can still read."""
    party = o.get("supplier") or o.get("requested-by") or {}
    return {
        k: v
        for k, v in {
            "number": o.get("invoice-number") or o.get("po-number") or o.get("number") or o.get("id"),
            "name": o.get("name") or o.get("requisition-description"),
            "party": (party.get("name") or user_name(party)) if isinstance(party, dict) else None,
            "amount": o.get("gross-total") or o.get("total"),
            "currency": code_of(o, "currency") or None,
        }.items()
        if v not in (None, "")
    }


def map_record(stream: str, o: Any) -> tuple[dict[str, Any] | None, RecordError | None]:
    raw = json.dumps(o, default=str, ensure_ascii=False)[:RAW_LIMIT]
    if not isinstance(o, dict):
        return None, RecordError(None, f"{stream}: expected an object, got {type(o).__name__}", raw)
    oid = o.get("id")
    try:
        return MAPPERS[stream](o), None
    except (MappingError, TypeError, ValueError, AttributeError) as exc:
        return None, RecordError(None if oid is None else str(oid), f"{stream} {oid}: {exc}", raw, _summary(o))
