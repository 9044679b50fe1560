"""Business Central's purchase credit memos (v2.0 ``purchaseCreditMemos`` + ``purchaseCreditMemoLines``).

A credit memo is validated on insert like a purchase invoice (vendor, G/L accounts, tax groups,
dimension values; see rules.py) and refused on ``Microsoft.NAV.post`` for what BC refuses: a vendor
blocked "All", a blocked account, a closed period, nothing to post, a vendor credit memo number
already posted for the vendor. ``invoiceId``/``invoiceNumber`` apply it to a *posted* purchase
invoice of the same vendor (BC's "Applies-to Doc. No."): an unknown invoice, a draft one or
another vendor's is refused on insert.

Posting moves Draft -> Open, with the posted number series ``PPCM-``. An Open credit memo lowers the
vendor's ``balance``; once the invoice it is applied to is paid (net of the credit), it is Paid too.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import rules
from .odata import BcError
from .rules import ADDRESS_FIELDS, Ledger, check_date, check_text, dialog, relation, unknown_property

MAX_VENDOR_CREDIT_MEMO_NO = 35
HEADER_WRITABLE = {
    "vendorNumber",
    "vendorId",
    "vendorCreditMemoNumber",
    "creditMemoDate",
    "postingDate",
    "dueDate",
    "currencyCode",
    "purchaser",
    "invoiceId",
    "invoiceNumber",
    "purchaseCreditMemoLines",
}
HEADER_READ_ONLY = {
    "id",
    "number",
    "status",
    "vendorName",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    "lastModifiedDateTime",
}
# purchaseCreditMemo properties (v2.0-resource-properties.csv), for $filter.
FIELDS = (
    "id",
    "number",
    "creditMemoDate",
    "postingDate",
    "dueDate",
    "vendorId",
    "vendorNumber",
    "vendorName",
    "vendorCreditMemoNumber",
    "payToVendorId",
    "payToVendorNumber",
    "payToName",
    *(f for f in ADDRESS_FIELDS if not f.startswith("shipTo")),
    "shortcutDimension1Code",
    "shortcutDimension2Code",
    "currencyId",
    "currencyCode",
    "paymentTermsId",
    "shipmentMethodId",
    "purchaser",
    "pricesIncludeTax",
    "discountAmount",
    "discountAppliedBeforeTax",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    "status",
    "lastModifiedDateTime",
    "invoiceId",
    "invoiceNumber",
    "vendorReturnReasonId",
)
POSTED = ("Open", "Paid")


def _invoice(body: dict, vendor: dict, find: Callable[[str, str], dict | None]) -> dict | None:
    """The posted invoice the credit memo is applied to, by id or number; None when neither is given."""
    inv_id = check_text(body.get("invoiceId"), 36).lower()
    inv_no = check_text(body.get("invoiceNumber"), 20)
    if not inv_id and not inv_no:
        return None
    invoice = find(inv_id, inv_no)
    if invoice is None or invoice["status"] not in POSTED:
        # Only posted invoices can be applied to; a draft is not in the vendor ledger yet.
        raise BcError(
            404,
            "Internal_RecordNotFound",
            f"The Purch. Inv. Header does not exist. Identification fields and values: No.='{inv_no or inv_id}'",
        )
    if inv_id and inv_no and (invoice["id"] != inv_id or invoice["number"] != inv_no):
        raise dialog(f"invoiceId and invoiceNumber name different invoices ({inv_id}, {inv_no}).")
    if invoice["vendorNumber"] != vendor["number"]:
        raise dialog(
            f"Purchase Invoice {invoice['number']} is for vendor {invoice['vendorNumber']}, not {vendor['number']}. "
            "A credit memo can only be applied to an invoice of the same vendor."
        )
    return invoice


def validate_new(
    body: Any,
    ledger: Ledger,
    *,
    today: str,
    duplicate: Callable[[str, str], str | None],
    invoice: Callable[[str, str], dict | None],
) -> dict:
    """Check a deep-insert body; returns the resolved header and lines. Nothing is stored on error."""
    if not isinstance(body, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in body:
        if key in HEADER_READ_ONLY:
            raise BcError(400, "BadRequest_InvalidOperation", f"Control '{key}' is read-only.")
        if key not in HEADER_WRITABLE and not key.startswith("@odata"):
            raise unknown_property(key, "purchaseCreditMemo")
    vendor = rules._vendor(body, ledger)
    vcm = check_text(body.get("vendorCreditMemoNumber"), MAX_VENDOR_CREDIT_MEMO_NO)
    if vcm and duplicate(vendor["number"], vcm):
        # Like invoices: checked on insert, so a resend cannot book a second credit memo.
        raise dialog(f"Purchase Credit Memo {vcm} already exists for this vendor.")
    posting = check_date(body.get("postingDate"), today)
    memo_date = check_date(body.get("creditMemoDate"), posting)
    currency = check_text(body.get("currencyCode"), 10) or ledger.currency
    if currency != ledger.currency and currency not in rules.KNOWN_CURRENCIES:
        raise relation("Currency Code", "Purchase Header", currency, "Currency")
    applied = _invoice(body, vendor, invoice)
    if applied is not None and (applied.get("currencyCode") or ledger.currency) != currency:
        raise dialog(
            f"The currency {currency} differs from {applied.get('currencyCode')} of Purchase Invoice {applied['number']}."
        )
    lines_raw = body.get("purchaseCreditMemoLines") or []
    if not isinstance(lines_raw, list):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    lines = []
    for i, raw in enumerate(lines_raw):
        if isinstance(raw, dict):
            for key in raw:
                if key not in rules.LINE_WRITABLE:
                    raise unknown_property(key, "purchaseCreditMemoLine")
        line = rules._line(raw, i + 1, ledger)
        if line["quantity"] < 0 or line["unitCost"] < 0:
            # A credit memo's lines are positive: the document type is what makes them a credit.
            raise dialog("Quantity and Direct Unit Cost must be positive on a credit memo line.")
        lines.append(line)
    return {
        "vendor": vendor,
        "order": None,
        "invoice": applied,
        "vendorInvoiceNumber": vcm,
        "postingDate": posting,
        "invoiceDate": memo_date,
        "dueDate": check_date(body.get("dueDate"), memo_date),
        "currencyCode": currency,
        "purchaser": check_text(body.get("purchaser"), 20),
        "lines": lines,
    }


def build(data: dict, *, memo_id: str, number: str, **kwargs) -> dict:
    """The stored credit memo, in purchaseCreditMemo's shape (lines under ``_lines``)."""
    inv = rules.build_invoice(data, invoice_id=memo_id, number=number, **kwargs)
    invoice = data.get("invoice")
    doc = {
        k: v
        for k, v in inv.items()
        if k not in ("invoiceDate", "vendorInvoiceNumber", "orderId", "orderNumber") and not k.startswith("shipTo")
    }
    for line in doc["_lines"]:
        line.pop("expectedReceiptDate", None)
        for dim in line["_dims"]:
            dim["parentType"] = "Purchase Credit Memo Line"
    doc.update(
        creditMemoDate=data["invoiceDate"],
        vendorCreditMemoNumber=data["vendorInvoiceNumber"],
        paymentTermsId=rules.ZERO_GUID,
        shipmentMethodId=rules.ZERO_GUID,
        invoiceId=invoice["id"] if invoice else rules.ZERO_GUID,
        invoiceNumber=invoice["number"] if invoice else "",
        vendorReturnReasonId=rules.ZERO_GUID,
    )
    return doc


def check_postable(doc: dict, ledger: Ledger, *, duplicate_posted: Callable[[str, str], bool]) -> None:
    """Raise BC's refusal if ``Microsoft.NAV.post`` must not post this credit memo."""
    if doc["status"] != "Draft":
        raise dialog(f"Purchase Credit Memo {doc['number']} has status {doc['status']} and cannot be posted again.")
    if not doc["vendorCreditMemoNumber"]:
        raise BcError(
            400,
            "Application_FieldValidationException",
            "Vendor Cr. Memo No. must have a value in Purchase Header: Document Type=Credit Memo, "
            f"No.={doc['number']}. It cannot be zero or empty.",
        )
    # The invoice checks (period, vendor, accounts, dimensions, sign) apply as they are.
    rules.check_postable(
        {**doc, "vendorInvoiceNumber": doc["vendorCreditMemoNumber"]}, ledger, duplicate_posted=lambda v, n: False
    )
    if duplicate_posted(doc["vendorNumber"], doc["vendorCreditMemoNumber"]):
        raise dialog(f"Purchase Credit Memo {doc['vendorCreditMemoNumber']} already exists for this vendor.")


def vendor_balances(invoices: list[dict], memos: list[dict]) -> dict[str, Decimal]:
    """Vendor number -> what the company owes it: open (posted, unpaid) invoices minus open credit memos."""
    out: dict[str, Decimal] = {}
    for doc, sign in [*((d, 1) for d in invoices), *((d, -1) for d in memos)]:
        if doc["status"] == "Open":
            amount = Decimal(str(doc["totalAmountIncludingTax"]))
            out[doc["vendorNumber"]] = out.get(doc["vendorNumber"], Decimal(0)) + sign * amount
    return out
