"""Pure functions between SAP Concur FIS v4 JSON and the canonical shapes of ``connectors/README.md``.

Reading: one FIS ``content`` element (a transaction wrapping an expense ``document``) becomes one
canonical ``expense_report``, or a ``RecordError`` that names the field and the value that stopped
it -- one broken document must never stop the others.

Line rule: a canonical line is one *allocation* of an expense entry (``external_id`` =
``allocationId``), because cost center and project live on the allocation. With a single
allocation (the usual case) the line amount is the entry's ``entryApprovedAmount``; with several,
each line takes its journal ``amountGross`` (FIS has already split the money), falling back to the
allocation percentage.

Text (names, descriptions, merchants) is passed through untouched: escaping is the UI's job, and
the workbench must show exactly what the employee typed.

Writing: canonical write payloads become FIS request bodies (acknowledgements,
postingconfirmations, paymentconfirmations).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import MalformedPayload, RecordError
from connectors.http import json_exact

RAW_LIMIT = 4096  # bytes of the offending payload kept with a RecordError
CENT = Decimal("0.01")
SHORT_TEXT = 255  # FIS messageShortText is a short text; the whole text also goes in messageLongText


class MappingError(ValueError):
    """A document that does not have the shape or values the canonical record needs."""


# --- small parsers: each names the field it was reading ------------------------------------------


def money(value: Any, field: str) -> Decimal:
    """A JSON number as an exact Decimal; anything else (``"12,50 EUR"``, NaN, booleans) is an error."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{field} is not a number: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{field} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise MappingError(f"{field} is not a number: {value!r}")
    return amount


def day(value: Any, field: str) -> str:
    """``2026-11-05T00:00:00.000Z`` -> ``2026-11-05`` (Concur sends dates as midnight timestamps)."""
    if not isinstance(value, str) or len(value) < 10:
        raise MappingError(f"{field} is not a date: {value!r}")
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise MappingError(f"{field} is not a date: {value!r}") from None


def timestamp(value: Any, field: str) -> str | None:
    """An ISO 8601 timestamp normalised to UTC ``YYYY-MM-DDTHH:MM:SSZ``; missing -> None."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MappingError(f"{field} is not a timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"{field} is not a timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Concur timestamps are UTC
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def required_text(obj: dict, key: str, where: str) -> str:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MappingError(f"{where}{key} is missing")
    if not isinstance(value, str | int):
        raise MappingError(f"{where}{key} is not an identifier: {value!r}")
    return str(value)


def text(value: Any) -> str:
    """Optional text: None -> ""; anything else unchanged in content (no strip, no escaping)."""
    return "" if value is None else str(value)


def section(obj: dict, key: str, where: str = "") -> dict:
    value = obj.get(key)
    if value is None:
        raise MappingError(f"the document has no '{where}{key}' section")
    if not isinstance(value, dict):
        raise MappingError(f"'{where}{key}' is not an object: {type(value).__name__}")
    return value


def raw_of(item: Any) -> str:
    return json.dumps(item, default=str, ensure_ascii=False)[:RAW_LIMIT]


# --- reading ------------------------------------------------------------------------------------


def document_of(item: dict) -> dict:
    """The expense document of a transaction; FIS can send it as a JSON string (documentFormatAs)."""
    doc = item.get("document")
    if isinstance(doc, str):
        try:
            doc = json_exact(doc, where="document")
        except MalformedPayload:
            raise MappingError(f"document is a string that is not JSON: {doc[:80]!r}") from None
    if not isinstance(doc, dict):
        raise MappingError(f"document is missing or not an object: {type(doc).__name__}")
    return doc


def _lines(entries: Any, currency: str) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        raise MappingError(f"expenseEntry is not a list: {type(entries).__name__}")
    lines: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        where = f"expenseEntry[{i}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{where} is not an object")
        entry_id = required_text(entry, "entryId", f"{where}.")
        where = f"expenseEntry[{i}] (entryId {entry_id})"
        approved = money(entry.get("entryApprovedAmount"), f"{where} entryApprovedAmount")
        entry_date = day(entry.get("entryDate"), f"{where} entryDate")
        original_currency = text(entry.get("entryCurrAlphaCode")) or currency
        original_raw = entry.get("reportEntryTransactionAmount")
        original = approved if original_raw is None else money(original_raw, f"{where} reportEntryTransactionAmount")
        allocations = entry.get("allocation")
        if not isinstance(allocations, list) or not allocations:
            raise MappingError(f"{where} has no allocation (cost center and GL account are on the allocation)")
        single = len(allocations) == 1
        for j, alloc in enumerate(allocations):
            a_where = f"{where} allocation[{j}]"
            if not isinstance(alloc, dict):
                raise MappingError(f"{a_where} is not an object")
            alloc_id = required_text(alloc, "allocationId", f"{a_where}.")
            journals = [jn for jn in alloc.get("journal") or [] if isinstance(jn, dict)]
            taxes = [t for t in alloc.get("tax") or [] if isinstance(t, dict)]
            if single:
                amount, orig = approved, original
            else:
                share = money(alloc.get("allocationPercentage", 0), f"{a_where} allocationPercentage") / 100
                if journals:
                    amount = sum(
                        (money(jn.get("amountGross"), f"{a_where} journal amountGross") for jn in journals), Decimal(0)
                    )
                else:
                    amount = (approved * share).quantize(CENT)
                orig = (original * share).quantize(CENT)
            lines.append(
                {
                    "external_id": alloc_id,
                    "entry_id": entry_id,
                    "date": entry_date,
                    "category": text(entry.get("expenseTypeCode")),
                    "category_name": text(entry.get("expenseTypeName")),
                    "description": text(entry.get("entryDescription")),
                    "merchant": text(entry.get("entryVendorDescription")),
                    "amount": amount,
                    "currency": currency,
                    "original_amount": orig,
                    "original_currency": original_currency,
                    # An empty account or cost center is a business exception for the workbench's
                    # rules to flag, not a schema error.
                    "gl_account": text(journals[0].get("journalAccountCode")) if journals else "",
                    "cost_center": text(alloc.get("allocationCustom1Code")),
                    "project": text(alloc.get("allocationCustom2Code")),
                    "tax_code": text(taxes[0].get("taxCode")) if taxes else "",
                }
            )
    return lines


def expense_report(item: dict) -> dict[str, Any]:
    """One FIS transaction -> canonical ``expense_report``; raises MappingError naming what is wrong."""
    if not isinstance(item, dict):
        raise MappingError(f"transaction is not an object: {type(item).__name__}")
    doc_id = required_text(item, "id", "transaction ")
    doc = document_of(item)
    report = section(doc, "report")
    employee = section(doc, "employee")
    currency = required_text(report, "employeeCurrencyAlphaCode", "report.")
    lines = _lines(doc.get("expenseEntry", []), currency)
    total_raw = report.get("totalApprovedAmount")
    total = (
        sum((ln["amount"] for ln in lines), Decimal(0))
        if total_raw is None
        else money(total_raw, "report.totalApprovedAmount")
    )
    first, last = text(employee.get("employeeFirstName")), text(employee.get("employeeLastName"))
    return {
        "external_id": doc_id,
        "report_id": required_text(report, "reportId", "report."),
        "number": text(report.get("reportNumber")),
        "name": text(report.get("reportName")),
        "entity": required_text(report, "ledgerCode", "report."),
        "employee_code": required_text(employee, "employeeId", "employee."),
        "employee_name": " ".join(p for p in (first, last) if p),
        "currency": currency,
        "total": total,
        "version": text(report.get("versionId")),
        "submitted_at": timestamp(report.get("reportSubmitDate"), "report.reportSubmitDate"),
        # FIS has no approval date: a report reaches payment processing at its final approval.
        "approved_at": timestamp(report.get("reportPaymentProcessingDate"), "report.reportPaymentProcessingDate"),
        # FIS only delivers reports that finished approval.
        "approval_status": "approved",
        "lines": lines,
    }


def map_transaction(item: Any) -> tuple[dict[str, Any] | None, RecordError | None]:
    """(record, None) or (None, RecordError): the caller keeps going either way."""
    try:
        return expense_report(item), None
    except MappingError as exc:
        doc_id = item.get("id") if isinstance(item, dict) else None
        label = f"FIS document {doc_id}" if doc_id else "FIS transaction without an id"
        return None, RecordError(
            external_id=str(doc_id) if doc_id else None,
            message=f"{label}: {exc}",
            raw=raw_of(item),
            summary=salvage(item),
        )


def salvage(item: Any) -> dict[str, Any]:
    """Best effort: what a person needs to find the report in Concur, from a document that failed."""
    try:
        doc = document_of(item)
        report = doc.get("report") or {}
        employee = doc.get("employee") or {}
        out = {
            "number": report.get("reportNumber"),
            "name": report.get("reportName"),
            "party": " ".join(p for p in (employee.get("employeeFirstName"), employee.get("employeeLastName")) if p),
            "currency": report.get("employeeCurrencyAlphaCode"),
            "entity": report.get("ledgerCode"),
        }
        try:
            out["amount"] = str(Decimal(str(report.get("totalApprovedAmount"))))
        except (InvalidOperation, ValueError, TypeError):
            pass
        return {k: str(v) for k, v in out.items() if v}
    except Exception:  # noqa: BLE001 - salvage must never fail the page
        return {}


# --- writing ------------------------------------------------------------------------------------


def _number(value: Any, field: str) -> float | int:
    """A Decimal for a JSON body (requests' encoder has no Decimal; 2-decimal amounts survive float)."""
    amount = money(value, field)
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def posting_confirmation_body(payload: dict[str, Any], system_id: str = "") -> dict[str, Any]:
    status = payload.get("status")
    if status not in ("success", "error"):
        raise ValueError(f"posting_confirmation status must be 'success' or 'error', not {status!r}")
    if not payload.get("doc_id"):
        raise ValueError("posting_confirmation needs a doc_id")
    messages = []
    for m in payload.get("messages") or []:
        full = text(m.get("text"))
        messages.append(
            {
                "concurTransactionLineItemId": text(m.get("line_id")),
                "messageId": text(m.get("id")),
                "messageLanguage": "EN",
                "messageLongText": full if len(full) > SHORT_TEXT else "",
                "messageShortText": full[:SHORT_TEXT],
            }
        )
    return {
        "systemId": system_id,
        "postingConfirmations": [
            {
                "docId": payload["doc_id"],
                "overallPostingStatusCode": status,
                "postingDocs": [
                    {
                        "companyId": text(d.get("company")),
                        "documentNumber": text(d.get("document_number")),
                        "fiscalYear": text(d.get("fiscal_year")),
                        "paymentRelevantLineItems": [],
                        "postingDate": text(d.get("posting_date")),
                    }
                    for d in payload.get("documents") or []
                ],
                "systemMessages": messages,
            }
        ],
    }


def payment_confirmation_body(payload: dict[str, Any], system_id: str = "") -> dict[str, Any]:
    code = payload.get("status_code")
    if code not in ("CP", "PP"):
        raise ValueError(f"payment_confirmation status_code must be 'CP' or 'PP', not {code!r}")
    if not payload.get("doc_id"):
        raise ValueError("payment_confirmation needs a doc_id")
    paid_on = day(payload.get("date"), "payment_confirmation date")
    reference = {"paymentRef": text(payload.get("reference"))}
    # Optional ERP references, sent when the caller has them.
    for key, fis_key in (
        ("company", "companyCode"),
        ("document_number", "financialDocumentId"),
        ("fiscal_year", "fiscalYear"),
        ("payment_method", "paymentMethod"),
    ):
        if payload.get(key) not in (None, ""):
            reference[fis_key] = text(payload[key])
    detail: dict[str, Any] = {
        "clearingDate": f"{paid_on}T00:00:00.000Z",
        "clearingAmount": _number(payload.get("amount"), "payment_confirmation amount"),
        "clearingCurrency": text(payload.get("currency")),
        "clearingReference": reference,
    }
    if payload.get("receiver_id") or payload.get("receiver_name"):
        detail["receiver"] = {
            "receiverId": text(payload.get("receiver_id")),
            "receiverName": text(payload.get("receiver_name")),
            "receiverType": "EMPLOYEE",
        }
    return {
        "systemId": system_id,
        "processingConfirmation": [
            {
                "docId": payload["doc_id"],
                "processingStatusCode": code,
                "clearingDetails": [detail],
            }
        ],
    }
