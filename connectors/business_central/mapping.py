"""Business Central v2.0 JSON -> canonical records (connectors/README.md), and back for postings.

Pure functions: no I/O. A record that does not have the documented shape raises ``MappingError``;
the connector turns that into a ``RecordError`` so one bad row never stops a sync.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

EMPTY_DATE = "0001-01-01"  # BC's "no date"
STATUS = {
    "draft": "draft",
    "in review": "draft",
    "": "draft",
    "open": "open",
    "paid": "paid",
    "canceled": "canceled",
    "corrective": "canceled",
}
EMPLOYEE_STATUS = {"active", "inactive", "terminated"}
# purchaseOrderEntityBufferStatus; "Released" is what some versions call a released order.
ORDER_STATUS = {"draft": "draft", "in review": "in_review", "open": "open", "released": "released"}
# glAccountType: only Posting accounts take entries; the others structure the chart.
ACCOUNT_TYPES = {
    "posting": "Posting",
    "heading": "Heading",
    "total": "Total",
    "begintotal": "Begin-Total",
    "endtotal": "End-Total",
}
VENDOR_BLOCKED = {"": "", "payment": "Payment", "all": "All"}  # BC sends " " for "not blocked"
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DECIMAL_PLACES = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")  # BC's "min:max" (or one number)
MAX_DESCRIPTION = 100  # Purchase Line.Description is Text[100] in BC


class MappingError(ValueError):
    """The vendor record cannot become a canonical record."""


def raw_excerpt(raw: Any, limit: int = 4000) -> str:
    try:
        text = json.dumps(raw, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(raw)
    return text[:limit]


# --- field readers --------------------------------------------------------------------------------


def _obj(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise MappingError(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def text(raw: dict, key: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise MappingError(f"missing {key}")
        return ""
    if not isinstance(value, str):
        raise MappingError(f"{key} must be a string, got {type(value).__name__}")
    return value


def flag(raw: dict, key: str) -> bool:
    value = raw.get(key)
    if not isinstance(value, bool):
        raise MappingError(f"{key} must be true or false, got {value!r}")
    return value


def money(raw: dict, key: str) -> Decimal:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise MappingError(f"{key} must be a number, got {value!r}")
    try:
        amount = Decimal(str(value))  # str() first: never inherit float noise
    except InvalidOperation:
        raise MappingError(f"{key} must be a number, got {value!r}") from None
    if not amount.is_finite():
        raise MappingError(f"{key} must be a finite number, got {value!r}")
    return amount


def day(raw: dict, key: str, *, required: bool = True) -> str | None:
    value = text(raw, key, required=required)
    if value in ("", EMPTY_DATE):
        if required:
            raise MappingError(f"missing {key}")
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise MappingError(f"{key} is not a date: {value!r}") from None


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp as BC writes it ('Z' or an offset; naive means UTC)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def timestamp(raw: dict, key: str = "lastModifiedDateTime") -> str:
    value = text(raw, key)
    try:
        parse_timestamp(value)
    except ValueError:
        raise MappingError(f"{key} is not a timestamp: {value!r}") from None
    return value


# --- canonical records ----------------------------------------------------------------------------


def legal_entity(company: Any, info: Any) -> dict:
    company, info = _obj(company), _obj(info)
    return {
        "external_id": text(company, "id"),
        "code": text(company, "name"),
        "name": text(company, "displayName", required=False) or text(company, "name"),
        "currency": text(info, "currencyCode"),
    }


def cost_center(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "code"),
        "name": text(raw, "displayName", required=False),
    }


def gl_account(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "number"),
        "name": text(raw, "displayName", required=False),
        "category": text(raw, "category", required=False),
        "blocked": flag(raw, "blocked"),
        "account_type": account_type(raw),
        # Absent in a payload only from an older API shape: BC's default for a new account is Yes.
        "direct_posting": flag(raw, "directPosting") if "directPosting" in raw else True,
    }


def account_type(raw: dict) -> str:
    """BC's glAccountType, spelled one way ("Begin_Total" and "Begin Total" are both seen)."""
    value = raw.get("accountType", "Posting")
    if not isinstance(value, str):
        raise MappingError(f"accountType must be a string, got {value!r}")
    key = re.sub(r"[\s_-]+", "", value).lower()
    if key not in ACCOUNT_TYPES:
        raise MappingError(f"unknown accountType {value!r}")
    return ACCOUNT_TYPES[key]


def tax_code(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "code"),
        "name": text(raw, "displayName", required=False),
        "tax_type": text(raw, "taxType", required=False),
    }


def accounting_period(raw: Any, entity: str, next_start: str | None) -> dict:
    """``next_start``: the starting date of the following period; BC has no end date, it is implied."""
    raw = _obj(raw)
    start = day(raw, "startingDate") or ""  # required: day() raises when it is missing
    if next_start:
        end = (date.fromisoformat(next_start) - timedelta(days=1)).isoformat()
    else:  # the last period: periods are months, so it ends with its month
        s = date.fromisoformat(start)
        end = (date(s.year + s.month // 12, s.month % 12 + 1, 1) - timedelta(days=1)).isoformat()
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": start[:7],
        "name": text(raw, "name", required=False) or start[:7],
        "start": start,
        "end": end,
        "closed": flag(raw, "closed"),
    }


def employee(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    status = text(raw, "status").lower()
    if status not in EMPLOYEE_STATUS:
        raise MappingError(f"unknown employee status {raw.get('status')!r}")
    name = text(raw, "displayName", required=False) or " ".join(
        p for p in (text(raw, "givenName", required=False), text(raw, "surname", required=False)) if p
    )
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "number"),
        "name": name,
        "email": text(raw, "email", required=False) or text(raw, "personalEmail", required=False),
        "status": status,
    }


def project(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "number"),
        "name": text(raw, "displayName", required=False),
    }


def payment_term(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    percent = money(raw, "discountPercent")
    if not 0 <= percent <= 100:
        raise MappingError(f"discountPercent must be between 0 and 100, got {raw.get('discountPercent')!r}")
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "code"),
        "name": text(raw, "displayName", required=False),
        "due_date_calculation": text(raw, "dueDateCalculation", required=False),
        "discount_date_calculation": text(raw, "discountDateCalculation", required=False),
        "discount_percent": str(percent),
    }


def currency(raw: Any, entity: str) -> dict:
    """``amountDecimalPlaces`` is BC's display format ``"min:max"`` ("2:2", "0:0" for yen); amounts
    carry up to ``max`` decimals, so that is the currency's number of decimals."""
    raw = _obj(raw)
    places = raw.get("amountDecimalPlaces")
    if isinstance(places, int) and not isinstance(places, bool):
        places = str(places)
    m = DECIMAL_PLACES.match(places) if isinstance(places, str) else None
    if m is None:
        raise MappingError(
            f"amountDecimalPlaces must be decimal places as 'min:max', got {raw.get('amountDecimalPlaces')!r}"
        )
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "code"),
        "name": text(raw, "displayName", required=False),
        "symbol": text(raw, "symbol", required=False),
        "decimals": int(m.group(2) or m.group(1)),
    }


def _optional_money(raw: dict, key: str):
    """An amount BC may leave out (older API versions): None when absent, an error when unreadable."""
    return None if raw.get(key) is None else money(raw, key)


def erp_document(raw: Any, entity: str, company_currency: str) -> dict:
    raw = _obj(raw)
    status_text = raw.get("status")
    if not isinstance(status_text, str) or status_text.strip().lower() not in STATUS:
        raise MappingError(f"unknown purchase invoice status {status_text!r}")
    status = STATUS[status_text.strip().lower()]
    posting_date = day(raw, "postingDate", required=False)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "number": text(raw, "number"),
        "vendor_invoice_number": text(raw, "vendorInvoiceNumber", required=False),
        "status": status,
        "total": money(raw, "totalAmountIncludingTax"),
        # What the lines we sent add up to; the tax is BC's to compute (the nightly proof compares this).
        "total_excluding_tax": _optional_money(raw, "totalAmountExcludingTax"),
        # BC reports the local currency as its code; an empty code also means local currency.
        "currency": text(raw, "currencyCode", required=False) or company_currency,
        "posting_date": posting_date,
        # The same rule as a posting's write result, so a posting found again here (its answer was
        # lost) carries the same fiscal year; none without a posting date.
        "fiscal_year": fiscal_year(posting_date) if posting_date else None,
        # v2.0 has no payment date on invoices: the change to Paid is the last modification.
        "paid_at": timestamp(raw) if status == "paid" else None,
    }


def supplier(
    raw: Any,
    entity: str,
    company_currency: str,
    user_emails: dict[str, str],
    payment_terms: dict[str, str] | None = None,
) -> dict:
    """``user_emails``: user security id (lower case) -> contact email, from the automation API;
    ``payment_terms``: payment term id (lower case) -> its code (a vendor names its terms by id)."""
    raw = _obj(raw)
    blocked = raw.get("blocked")
    if not isinstance(blocked, str) or blocked.strip().lower() not in VENDOR_BLOCKED:
        raise MappingError(f"unknown vendor blocked value {blocked!r}")
    # Whoever changed it last; a vendor nobody touched since creation names its creator.
    who = text(raw, "systemModifiedBy", required=False) or text(raw, "systemCreatedBy", required=False)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "code": text(raw, "number"),
        "name": text(raw, "displayName", required=False),
        "tax_id": text(raw, "taxRegistrationNumber", required=False),
        "currency": text(raw, "currencyCode", required=False) or company_currency,
        "blocked": VENDOR_BLOCKED[blocked.strip().lower()],
        "changed_by_email": user_emails.get(who.lower(), ""),
        "payment_terms_code": (payment_terms or {}).get(str(raw.get("paymentTermsId") or "").lower(), ""),
        "updated_at": timestamp(raw),
    }


def purchase_order(raw: Any, entity: str, company_currency: str) -> dict:
    """A purchaseOrder read with ``$expand=purchaseOrderLines``."""
    raw = _obj(raw)
    status = raw.get("status")
    if not isinstance(status, str) or status.strip().lower() not in ORDER_STATUS:
        raise MappingError(f"unknown purchase order status {status!r}")
    lines_raw = raw.get("purchaseOrderLines")
    if not isinstance(lines_raw, list):
        raise MappingError("purchaseOrderLines missing (read with $expand=purchaseOrderLines)")
    lines = []
    for ln in map(_obj, lines_raw):
        if ln.get("lineType") == "Comment":
            continue  # text only: nothing to receive or invoice
        lines.append(
            {
                "external_id": text(ln, "id"),
                "line_no": ln.get("sequence"),
                "description": text(ln, "description", required=False),
                "account": text(ln, "lineObjectNumber"),
                "quantity": money(ln, "quantity"),
                "unit_cost": money(ln, "directUnitCost"),
                "amount": money(ln, "amountExcludingTax"),
                "cost_center": text(ln, "shortcutDimension1Code", required=False),
                "received_quantity": money(ln, "receivedQuantity"),
                "invoiced_quantity": money(ln, "invoicedQuantity"),
            }
        )
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "number": text(raw, "number"),
        "vendor_number": text(raw, "vendorNumber"),
        "status": ORDER_STATUS[status.strip().lower()],
        "currency": text(raw, "currencyCode", required=False) or company_currency,
        # The commitment is the net amount: tax is settled on the invoice.
        "total": money(raw, "totalAmountExcludingTax"),
        "order_date": day(raw, "orderDate"),
        "fully_received": flag(raw, "fullyReceived"),
        "lines": sorted(lines, key=lambda ln: ln["line_no"] or 0),
    }


def budget(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    period = text(raw, "period")
    if not PERIOD.match(period):
        raise MappingError(f"period must be YYYY-MM, got {period!r}")
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "cost_center": text(raw, "costCenterCode"),
        "gl_account": text(raw, "accountNumber"),
        "period": period,
        "amount": money(raw, "amount"),
    }


# --- canonical -> BC: the deep insert for an expense report -----------------------------------------


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _amount(value: Any, where: str, places: str = "0.01", what: str = "amount") -> float:
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{where}: {what} must be a number")
    try:
        amount = Decimal(str(value)).quantize(Decimal(places))
    except (InvalidOperation, ValueError):
        raise MappingError(f"{where}: {what} must be a number, got {value!r}") from None
    # JSON carries numbers; a two-decimal amount survives float's shortest repr exactly, and the
    # server parses it back as a decimal.
    return float(amount)


def _quantity(value: Any, where: str) -> float:
    return _amount(value, where, "0.00001", "quantity")  # BC keeps quantities to 5 decimals


def _require(payload: dict, *keys: str) -> None:
    for key in keys:
        if not payload.get(key):
            raise MappingError(f"payload is missing {key}")
    if not isinstance(payload["lines"], list):
        raise MappingError("payload lines must be a list")


def _invoice_line(line: Any, idx: int, quantity: float, unit_cost: float) -> dict:
    dims = []
    if line.get("cost_center"):
        dims.append({"code": "DEPARTMENT", "valueCode": str(line["cost_center"])})
    if line.get("project"):
        dims.append({"code": "PROJECT", "valueCode": str(line["project"])})
    body_line: dict[str, Any] = {
        "lineType": "Account",
        "lineObjectNumber": str(line["account"]),
        "description": str(line.get("description") or "")[:MAX_DESCRIPTION],
        "quantity": quantity,
        "unitCost": unit_cost,
    }
    if line.get("tax_code"):
        body_line["taxCode"] = str(line["tax_code"])
    if dims:
        body_line["dimensionSetLines"] = dims
    return body_line


def _account_lines(payload: dict) -> list[dict]:
    for idx, line in enumerate(payload["lines"], start=1):
        if not isinstance(line, dict) or not line.get("account"):
            raise MappingError(f"line {idx}: missing account")
    return payload["lines"]


def purchase_invoice_body(payload: dict) -> dict:
    """``post_expense_report`` payload -> a purchaseInvoice deep insert (lines + dimension set lines)."""
    _require(payload, "vendor_number", "document_number", "posting_date", "lines")
    lines: list[dict] = []
    description = str(payload.get("description") or "").strip()
    if description:
        # The header has no description in v2.0; a comment line carries it onto the document.
        lines.append({"lineType": "Comment", "description": description[:MAX_DESCRIPTION]})
    for idx, line in enumerate(_account_lines(payload), start=1):
        lines.append(_invoice_line(line, idx, 1, _amount(line.get("amount"), f"line {idx}")))
    body: dict[str, Any] = {
        "vendorNumber": str(payload["vendor_number"]),
        "vendorInvoiceNumber": str(payload["document_number"]),
        "postingDate": str(payload["posting_date"]),
        "invoiceDate": str(payload["posting_date"]),
        "purchaseInvoiceLines": lines,
    }
    if payload.get("currency"):
        body["currencyCode"] = str(payload["currency"])
    return body


def fiscal_year(posting_date: str) -> str:
    """The fiscal year of a posting date. The companies' fiscal years start in January
    (``newFiscalYear`` periods), and BC's purchase invoice does not expose the year itself."""
    return posting_date[:4]


def supplier_invoice_body(payload: dict) -> dict:
    """``post_supplier_invoice`` payload -> a purchaseInvoice deep insert, linked to its order by the
    sandbox's ``purchaseOrderNumber`` (BC's ``orderNumber`` is read-only)."""
    _require(payload, "vendor_number", "document_number", "posting_date", "lines")
    lines = [
        _invoice_line(
            line,
            idx,
            _quantity(line.get("quantity"), f"line {idx}"),
            _amount(line.get("unit_cost"), f"line {idx}", what="unit_cost"),
        )
        for idx, line in enumerate(_account_lines(payload), start=1)
    ]
    body: dict[str, Any] = {
        "vendorNumber": str(payload["vendor_number"]),
        "vendorInvoiceNumber": str(payload["document_number"]),
        "postingDate": str(payload["posting_date"]),
        "invoiceDate": str(payload.get("invoice_date") or payload["posting_date"]),
        "purchaseInvoiceLines": lines,
    }
    if payload.get("currency"):
        body["currencyCode"] = str(payload["currency"])
    if payload.get("order_number"):
        body["purchaseOrderNumber"] = str(payload["order_number"])
    return body


def purchase_order_body(payload: dict) -> dict:
    """``create_purchase_order`` payload -> a purchaseOrders deep insert with a manual number. Cost
    center and project go to the lines' shortcut dimensions 1 (DEPARTMENT) and 2 (PROJECT)."""
    _require(payload, "number", "vendor_number", "lines")
    lines = []
    for idx, line in enumerate(_account_lines(payload), start=1):
        body_line: dict[str, Any] = {
            "lineType": "Account",
            "lineObjectNumber": str(line["account"]),
            "description": str(line.get("description") or "")[:MAX_DESCRIPTION],
            "quantity": _quantity(line.get("quantity"), f"line {idx}"),
            "directUnitCost": _amount(line.get("unit_cost"), f"line {idx}", what="unit_cost"),
        }
        if line.get("cost_center"):
            body_line["shortcutDimension1Code"] = str(line["cost_center"])
        if line.get("project"):
            body_line["shortcutDimension2Code"] = str(line["project"])
        lines.append(body_line)
    body: dict[str, Any] = {
        "number": str(payload["number"]),
        "vendorNumber": str(payload["vendor_number"]),
        "purchaseOrderLines": lines,
    }
    if payload.get("order_date"):
        body["orderDate"] = str(payload["order_date"])
    if payload.get("currency"):
        body["currencyCode"] = str(payload["currency"])
    return body


# --- purchase credit memos ------------------------------------------------------------------------


def credit_memo_body(payload: dict) -> dict:
    """``post_credit_note`` payload -> a purchaseCreditMemos deep insert. Amounts are the supplier's
    credit as positive quantities and costs (the document type makes them a credit); ``invoice_id``
    / ``invoice_number`` apply it to the posted invoice it corrects."""
    _require(payload, "vendor_number", "document_number", "posting_date", "lines")
    lines = []
    for idx, line in enumerate(_account_lines(payload), start=1):
        quantity = _quantity(line.get("quantity"), f"line {idx}")
        unit_cost = _amount(line.get("unit_cost"), f"line {idx}", what="unit_cost")
        if quantity < 0 or unit_cost < 0:
            raise MappingError(f"line {idx}: a credit memo line's quantity and unit_cost must be positive")
        lines.append(_invoice_line(line, idx, quantity, unit_cost))
    body: dict[str, Any] = {
        "vendorNumber": str(payload["vendor_number"]),
        "vendorCreditMemoNumber": str(payload["document_number"]),
        "postingDate": str(payload["posting_date"]),
        "creditMemoDate": str(payload.get("credit_memo_date") or payload["posting_date"]),
        "purchaseCreditMemoLines": lines,
    }
    if payload.get("currency"):
        body["currencyCode"] = str(payload["currency"])
    if payload.get("invoice_id"):
        body["invoiceId"] = str(payload["invoice_id"])
    if payload.get("invoice_number"):
        body["invoiceNumber"] = str(payload["invoice_number"])
    return body


def credit_memo(raw: Any, entity: str, company_currency: str) -> dict:
    """A purchaseCreditMemo -> the ``purchase_credit_memos`` record. ``total`` stays positive, as BC
    shows it; posted means open or paid."""
    raw = _obj(raw)
    status_text = raw.get("status")
    if not isinstance(status_text, str) or status_text.strip().lower() not in STATUS:
        raise MappingError(f"unknown purchase credit memo status {status_text!r}")
    invoice_id = text(raw, "invoiceId", required=False)
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "number": text(raw, "number"),
        "vendor_number": text(raw, "vendorNumber", required=False),
        "vendor_credit_memo_number": text(raw, "vendorCreditMemoNumber", required=False),
        "status": STATUS[status_text.strip().lower()],
        "total": money(raw, "totalAmountIncludingTax"),
        "total_excluding_tax": _optional_money(raw, "totalAmountExcludingTax"),
        "currency": text(raw, "currencyCode", required=False) or company_currency,
        "posting_date": day(raw, "postingDate", required=False),
        "invoice_id": "" if invoice_id == "00000000-0000-0000-0000-000000000000" else invoice_id,
        "invoice_number": text(raw, "invoiceNumber", required=False),
    }


# --- accrual journals ------------------------------------------------------------------------------
MAX_JOURNAL_DOCUMENT_NO = 20  # Gen. Journal Line."Document No." is Code[20]


def journal_lines_body(payload: dict) -> list[dict]:
    """``post_accrual_journal`` payload -> journalLines inserts, one per line (dimensions inline). No
    lineNumber: BC numbers them after the journal's last line, whoever wrote that."""
    _require(payload, "journal", "document_number", "posting_date", "lines")
    doc_no = str(payload["document_number"])
    if len(doc_no) > MAX_JOURNAL_DOCUMENT_NO:
        raise MappingError(f"document number {doc_no!r} is longer than {MAX_JOURNAL_DOCUMENT_NO} characters")
    try:
        date.fromisoformat(str(payload["posting_date"]))
    except ValueError:
        raise MappingError(f"posting date {payload['posting_date']!r} is not a date") from None
    lines = []
    for idx, line in enumerate(_account_lines(payload), start=1):
        body: dict[str, Any] = {
            "accountType": "G/L Account",
            "accountNumber": str(line["account"]),
            "postingDate": str(payload["posting_date"]),
            "documentNumber": doc_no,
            "amount": _amount(line.get("amount"), f"line {idx}"),
            "description": str(line.get("description") or "")[:MAX_DESCRIPTION],
        }
        if line.get("cost_center"):
            body["dimensionSetLines"] = [{"code": "DEPARTMENT", "valueCode": str(line["cost_center"])}]
        lines.append(body)
    return lines


def gl_entry(raw: Any, entity: str) -> dict:
    raw = _obj(raw)
    number = raw.get("entryNumber")
    if isinstance(number, bool) or not isinstance(number, int):
        raise MappingError(f"entryNumber must be an integer, got {number!r}")
    return {
        "external_id": text(raw, "id"),
        "entity": entity,
        "entry_number": number,
        "document_number": text(raw, "documentNumber", required=False),
        "posting_date": day(raw, "postingDate"),
        "account": text(raw, "accountNumber"),
        "debit": money(raw, "debitAmount"),
        "credit": money(raw, "creditAmount"),
        "description": text(raw, "description", required=False),
    }
