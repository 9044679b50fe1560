"""Business Central's checks on purchase invoices: what a deep insert validates, what posting refuses.

Table relations (vendor, G/L account, tax group, dimension value) are checked when the document is
created, as BC validates fields on insert; the state of master data (closed periods, blocked
accounts or dimension values, terminated employees) is checked when the document is posted. Wording
follows BC's own messages (see reference/business-central/error-codes.csv).

Vendors are the employees (expense reports) and the ``vendors`` set (suppliers). A vendor blocked
"All" cannot be put on a new document nor posted; "Payment" only stops payments.

Purchase orders take a client ``number`` (manual numbering, unique per company). A purchase invoice
is linked to an order by the sandbox's request property ``purchaseOrderNumber`` (BC's own
``orderNumber`` is read-only); posting it adds the invoiced quantities to the order's lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .odata import BcError
from .seed import DEPARTMENT, EMPTY_DATE, PROJECT, ZERO_GUID

KNOWN_CURRENCIES = {"USD", "EUR", "GBP", "CHF", "CAD", "DKK", "SEK", "NOK", "JPY"}
HEADER_WRITABLE = {
    "vendorNumber",
    "vendorId",
    "vendorInvoiceNumber",
    "invoiceDate",
    "postingDate",
    "dueDate",
    "currencyCode",
    "purchaser",
    "purchaseInvoiceLines",
    "purchaseOrderNumber",
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
    "orderId",
    "orderNumber",
}
LINE_WRITABLE = {
    "lineType",
    "lineObjectNumber",
    "accountId",
    "description",
    "description2",
    "quantity",
    "unitCost",
    "taxCode",
    "sequence",
    "dimensionSetLines",
}
ADDRESS_FIELDS = [
    f"{who}{part}"
    for who in ("buyFrom", "shipTo", "payTo")
    for part in ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode")
]
MAX_DESCRIPTION, MAX_VENDOR_INVOICE_NO = 100, 35
# purchaseInvoice properties (dynamics_purchaseinvoice.01.json-representation.json), for $filter.
INVOICE_FIELDS = (
    "id",
    "number",
    "postingDate",
    "invoiceDate",
    "dueDate",
    "vendorInvoiceNumber",
    "vendorId",
    "vendorNumber",
    "vendorName",
    "payToName",
    "payToContact",
    "payToVendorId",
    "payToVendorNumber",
    "shipToName",
    "shipToContact",
    *ADDRESS_FIELDS,
    "shortcutDimension1Code",
    "shortcutDimension2Code",
    "currencyId",
    "currencyCode",
    "orderId",
    "orderNumber",
    "purchaser",
    "pricesIncludeTax",
    "discountAmount",
    "discountAppliedBeforeTax",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    "status",
    "lastModifiedDateTime",
)
ORDER_WRITABLE = {
    "number",
    "vendorNumber",
    "vendorId",
    "orderDate",
    "postingDate",
    "currencyCode",
    "purchaser",
    "requestedReceiptDate",
    "purchaseOrderLines",
}
ORDER_READ_ONLY = {
    "id",
    "status",
    "vendorName",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    "fullyReceived",
    "lastModifiedDateTime",
}
ORDER_LINE_WRITABLE = {
    "lineType",
    "lineObjectNumber",
    "accountId",
    "description",
    "quantity",
    "directUnitCost",
    "sequence",
    "expectedReceiptDate",
    "shortcutDimension1Code",
    "shortcutDimension2Code",
}
MAX_ORDER_NO = 20  # Purchase Header."No." is Code[20]


@dataclass
class Ledger:
    """One company's master data, looked up by code."""

    company: dict
    accounts: dict[str, dict]
    tax_groups: dict[str, dict]
    dimensions: dict[str, dict]
    dim_values: dict[tuple[str, str], dict]
    # Expense reports are paid to employees (employee number = vendor number); suppliers are vendors.
    vendors: dict[str, dict]
    periods: list[dict]  # sorted by startingDate

    @property
    def currency(self) -> str:
        return self.company["_currency"]


def dialog(message: str) -> BcError:
    return BcError(400, "Application_DialogException", message)


def relation(field: str, table: str, value: Any, related: str) -> BcError:
    return BcError(
        400,
        "Internal_InvalidTableRelation",
        f"The field {field} of table {table} contains a value ({value}) that cannot be found in the "
        f"related table ({related}).",
    )


def unknown_property(name: str, entity: str) -> BcError:
    return BcError(
        400,
        "BadRequest",
        f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity}'. Make sure to only use "
        "property names that are defined by the type.",
    )


def check_text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BcError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.")
    if len(value) > limit:
        raise BcError(
            400,
            "Application_StringExceededLength",
            f"The length of the string is {len(value)}, but it must be less than or equal to {limit} "
            f"characters. Value: {value}",
        )
    return value


def check_date(value: Any, default: str = EMPTY_DATE) -> str:
    if value in (None, ""):
        return default
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise BcError(400, "BadRequest", "Unable to convert value to Date")


def _decimal(value: Any, default: Decimal) -> Decimal:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise BcError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BcError(
            400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'."
        ) from None
    if not number.is_finite():
        raise BcError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'.")
    return number


def _vendor(body: dict, ledger: Ledger) -> dict:
    number, vendor_id = body.get("vendorNumber"), body.get("vendorId")
    if number:
        vendor = ledger.vendors.get(str(number))
        if vendor is None:
            raise relation("Buy-from Vendor No.", "Purchase Header", number, "Vendor")
    elif vendor_id:
        vendor = next((v for v in ledger.vendors.values() if v["id"] == str(vendor_id).lower()), None)
        if vendor is None:
            raise BcError(
                404,
                "Internal_RecordNotFound",
                f"The Vendor does not exist. Identification fields and values: Id='{vendor_id}'",
            )
    else:
        raise dialog("A vendorNumber or a vendorId must be provided.")
    check_vendor_blocked(vendor, "create")
    return vendor


def check_vendor_blocked(vendor: dict, action: str) -> None:
    """BC's Vendor.CheckBlockedVendOnDocs: "All" stops documents; "Payment" only stops payments."""
    if vendor.get("blocked") == "All":
        raise dialog(
            f"You cannot {action} this type of document when Vendor {vendor['number']} is blocked with type All"
        )


def _account(number: Any, account_id: Any, ledger: Ledger, *, blocked_ok: bool = True) -> dict:
    account = None
    if number:
        account = ledger.accounts.get(str(number))
    elif account_id:
        account = next((a for a in ledger.accounts.values() if a["id"] == str(account_id).lower()), None)
    if account is None:
        raise relation("No.", "Purchase Line", number or account_id or "", "G/L Account")
    if not blocked_ok:
        check_account_postable(account)
    return account


def blocked_account(account: dict) -> BcError:
    return BcError(
        400,
        "Application_FieldValidationException",
        f"Blocked must be equal to 'No'  in G/L Account: No.={account['number']}. Current value is 'Yes'.",
    )


def check_account_postable(account: dict) -> None:
    """BC's GLAcc.CheckGLAcc plus the purchase line's TestField("Direct Posting"), in BC's order:
    a blocked account, a heading or total, or a control account only the system posts to."""
    if account.get("blocked"):
        raise blocked_account(account)
    if account.get("accountType", "Posting") != "Posting":
        raise BcError(
            400,
            "Application_FieldValidationException",
            f"Account Type must be equal to 'Posting'  in G/L Account: No.={account['number']}. "
            f"Current value is '{account['accountType']}'.",
        )
    if not account.get("directPosting", True):
        raise BcError(
            400,
            "Application_FieldValidationException",
            f"Direct Posting must be equal to 'Yes'  in G/L Account: No.={account['number']}. Current value is 'No'.",
        )


def _dimension_value(code: str, value: str, ledger: Ledger) -> None:
    dim_value = ledger.dim_values.get((code, value))
    if dim_value is None:
        raise dialog(f"Dimension Value {code} - {value} does not exist.")
    if dim_value.get("_blocked"):
        raise dialog(f"Dimension Value {code} - {value} is blocked.")


def _line(raw: Any, seq: int, ledger: Ledger) -> dict:
    if not isinstance(raw, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in raw:
        if key not in LINE_WRITABLE:
            raise unknown_property(key, "purchaseInvoiceLine")
    line_type = raw.get("lineType") or ("Account" if raw.get("lineObjectNumber") or raw.get("accountId") else "Comment")
    if line_type not in ("Account", "Comment"):
        raise dialog(f"Line type {line_type} is not supported on expense invoices in this company. Use Account.")
    description = check_text(raw.get("description"), MAX_DESCRIPTION)
    account = None
    if line_type == "Account":
        account = _account(raw.get("lineObjectNumber"), raw.get("accountId"), ledger)
    tax_code = check_text(raw.get("taxCode"), 20)
    if tax_code and tax_code not in ledger.tax_groups:
        raise relation("Tax Group Code", "Purchase Line", tax_code, "Tax Group")
    dims: list[tuple[str, str]] = []
    for dim in raw.get("dimensionSetLines") or []:
        if not isinstance(dim, dict):
            raise BcError(400, "BadRequest", "Invalid Request Body")
        code, value = str(dim.get("code") or ""), str(dim.get("valueCode") or "")
        if code not in ledger.dimensions:
            raise BcError(
                404,
                "Internal_RecordNotFound",
                f"The Dimension does not exist. Identification fields and values: Code='{code}'",
            )
        if (code, value) not in ledger.dim_values:
            raise dialog(f"Dimension Value {code} - {value} does not exist.")
        if any(c == code for c, _ in dims):
            raise BcError(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The Dimension Set Entry Buffer already exists. Identification fields and values: "
                f"Dimension Code='{code}'",
            )
        dims.append((code, value))
    return {
        "sequence": raw.get("sequence") if isinstance(raw.get("sequence"), int) else seq * 10000,
        "lineType": line_type,
        "account": account,
        "description": description,
        "description2": check_text(raw.get("description2"), 50),
        "quantity": _decimal(raw.get("quantity"), Decimal(1 if line_type == "Account" else 0)),
        "unitCost": _decimal(raw.get("unitCost"), Decimal(0)),
        "taxCode": tax_code,
        "dims": dims,
    }


def validate_new_invoice(
    body: Any,
    ledger: Ledger,
    *,
    today: str,
    duplicate: Callable[[str, str], dict | None],
    order_named: Callable[[str], dict | None] = lambda number: None,
) -> dict:
    """Check a deep-insert body; returns the resolved header and lines. Nothing is stored on error."""
    if not isinstance(body, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in body:
        if key in HEADER_READ_ONLY:
            raise BcError(400, "BadRequest_InvalidOperation", f"Control '{key}' is read-only.")
        if key not in HEADER_WRITABLE and not key.startswith("@odata"):
            raise unknown_property(key, "purchaseInvoice")
    vendor = _vendor(body, ledger)
    vin = check_text(body.get("vendorInvoiceNumber"), MAX_VENDOR_INVOICE_NO)
    if vin and duplicate(vendor["number"], vin):
        # BC's duplicate External Document No. check, made on insert so a resend cannot double-book.
        raise dialog(f"Purchase Invoice {vin} already exists for this vendor.")
    posting = check_date(body.get("postingDate"), today)
    invoice_date = check_date(body.get("invoiceDate"), posting)
    currency = check_text(body.get("currencyCode"), 10) or ledger.currency
    if currency != ledger.currency and currency not in KNOWN_CURRENCIES:
        raise relation("Currency Code", "Purchase Header", currency, "Currency")
    lines_raw = body.get("purchaseInvoiceLines") or []
    if not isinstance(lines_raw, list):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    order = None
    order_no = check_text(body.get("purchaseOrderNumber"), MAX_ORDER_NO)
    if order_no:
        order = order_named(order_no)
        if order is None:
            raise BcError(
                404,
                "Internal_RecordNotFound",
                "The Purchase Header does not exist. Identification fields "
                f"and values: Document Type='Order',No.='{order_no}'",
            )
        if order["vendorNumber"] != vendor["number"]:
            raise dialog(f"Purchase Order {order_no} is for vendor {order['vendorNumber']}, not {vendor['number']}.")
    return {
        "vendor": vendor,
        "order": order,
        "vendorInvoiceNumber": vin,
        "postingDate": posting,
        "invoiceDate": invoice_date,
        "dueDate": check_date(body.get("dueDate"), invoice_date),
        "currencyCode": currency,
        "purchaser": check_text(body.get("purchaser"), 20),
        "lines": [_line(raw, i + 1, ledger) for i, raw in enumerate(lines_raw)],
    }


# BC's "Amount Rounding Precision" per currency: ISO 4217 minor units (yen none, dinar three).
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def rounding_precision(currency: str) -> Decimal:
    """Line amounts are rounded to the document currency's precision (an empty code: the local one)."""
    return Decimal(1).scaleb(-MINOR_UNITS.get(str(currency or "").upper(), 2))


def build_invoice(
    data: dict,
    *,
    invoice_id: str,
    number: str,
    line_id: Callable[[int], str],
    dimension_ids: dict[str, str],
    value_ids: dict[tuple[str, str], dict],
    company_id: str,
) -> dict:
    """The stored document: BC's purchaseInvoice properties, lines kept inside under ``_lines``."""
    vendor, order = data["vendor"], data.get("order")
    lines = []
    for ln in data["lines"]:
        amount = (ln["quantity"] * ln["unitCost"]).quantize(
            rounding_precision(data["currencyCode"]), rounding=ROUND_HALF_UP
        )
        lid = line_id(ln["sequence"])
        account = ln["account"]
        lines.append(
            {
                "id": lid,
                "documentId": invoice_id,
                "sequence": ln["sequence"],
                "itemId": ZERO_GUID,
                "accountId": account["id"] if account else ZERO_GUID,
                "lineType": ln["lineType"],
                "lineObjectNumber": account["number"] if account else "",
                "description": ln["description"],
                "description2": ln["description2"],
                "unitOfMeasureId": ZERO_GUID,
                "unitOfMeasureCode": "",
                "unitCost": ln["unitCost"],
                "quantity": ln["quantity"],
                "discountAmount": 0,
                "discountPercent": 0,
                "discountAppliedBeforeTax": False,
                "amountExcludingTax": amount,
                "taxCode": ln["taxCode"],
                "taxPercent": 0,
                "totalTaxAmount": 0,
                "amountIncludingTax": amount,
                "invoiceDiscountAllocation": 0,
                "netAmount": amount,
                "netTaxAmount": 0,
                "netAmountIncludingTax": amount,
                "expectedReceiptDate": data["invoiceDate"],
                "itemVariantId": ZERO_GUID,
                "locationId": ZERO_GUID,
                "_dims": [
                    {
                        "id": dimension_ids[code],
                        "code": code,
                        "consolidationCode": "",
                        "parentId": lid,
                        "parentType": "Purchase Invoice Line",
                        "displayName": code.title(),
                        "valueId": value_ids[(code, value)]["id"],
                        "valueCode": value,
                        "valueConsolidationCode": "",
                        "valueDisplayName": value_ids[(code, value)]["displayName"],
                    }
                    for code, value in ln["dims"]
                ],
            }
        )
    # Expense claims are gross amounts (recoverable tax is handled when the claim is audited), so the
    # sandbox books them tax-inclusive: no tax is added on top.
    total = sum((ln["amountIncludingTax"] for ln in lines), Decimal("0"))
    doc = {
        "id": invoice_id,
        "number": number,
        "postingDate": data["postingDate"],
        "invoiceDate": data["invoiceDate"],
        "dueDate": data["dueDate"],
        "vendorInvoiceNumber": data["vendorInvoiceNumber"],
        "vendorId": vendor["id"],
        "vendorNumber": vendor["number"],
        "vendorName": vendor["displayName"],
        "payToName": vendor["displayName"],
        "payToContact": "",
        "payToVendorId": vendor["id"],
        "payToVendorNumber": vendor["number"],
        "shipToName": "",
        "shipToContact": "",
    }
    doc.update({f: "" for f in ADDRESS_FIELDS})
    doc.update(
        {
            "shortcutDimension1Code": "",
            "shortcutDimension2Code": "",
            "currencyId": ZERO_GUID,
            "currencyCode": data["currencyCode"],
            "orderId": order["id"] if order else ZERO_GUID,
            "orderNumber": order["number"] if order else "",
            "purchaser": data["purchaser"],
            "pricesIncludeTax": True,
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            "totalAmountExcludingTax": total,
            "totalTaxAmount": 0,
            "totalAmountIncludingTax": total,
            "status": "Draft",
            "_company": company_id,
            "_lines": lines,
            "_postedAt": None,
        }
    )
    return doc


def _period_of(day: str, periods: list[dict]) -> dict | None:
    """The accounting period containing ``day`` (a period runs until the next one starts)."""
    found = None
    for idx, period in enumerate(periods):
        if period["startingDate"] > day:
            break
        found = idx
    if found is None:
        return None
    if found == len(periods) - 1:
        # The last period has no successor: the periods here are months, so it ends with its month.
        start = date.fromisoformat(periods[found]["startingDate"])
        if day >= date(start.year + start.month // 12, start.month % 12 + 1, 1).isoformat():
            return None
    return periods[found]


def check_postable(doc: dict, ledger: Ledger, *, duplicate_posted: Callable[[str, str], bool]) -> None:
    """Raise BC's refusal if ``Microsoft.NAV.post`` must not post this invoice (checked against today's data)."""
    if doc["status"] != "Draft":
        raise dialog(f"Purchase Invoice {doc['number']} has status {doc['status']} and cannot be posted again.")
    if not doc["vendorInvoiceNumber"]:
        raise BcError(
            400,
            "Application_FieldValidationException",
            f"Vendor Invoice No. must have a value in Purchase Header: Document Type=Invoice, "
            f"No.={doc['number']}. It cannot be zero or empty.",
        )
    lines = [ln for ln in doc["_lines"] if ln["lineType"] == "Account"]
    if not lines:
        raise dialog("There is nothing to post.")
    period = _period_of(doc["postingDate"], ledger.periods) if doc["postingDate"] != EMPTY_DATE else None
    if period is None or period["closed"] or period.get("dateLocked") is True:
        raise dialog("Posting Date is not within your range of allowed posting dates.")
    vendor = ledger.vendors.get(doc["vendorNumber"])
    if vendor is None:
        raise relation("Buy-from Vendor No.", "Purchase Header", doc["vendorNumber"], "Vendor")
    if "blocked" in vendor:  # a supplier (the vendors set)
        check_vendor_blocked(vendor, "post")
    elif vendor.get("status") != "Active":  # an employee
        raise dialog(f"You cannot post because employee {vendor['number']} is {str(vendor.get('status')).lower()}.")
    for ln in lines:
        account = ledger.accounts.get(ln["lineObjectNumber"])
        if account is None:
            raise relation("No.", "Purchase Line", ln["lineObjectNumber"], "G/L Account")
        check_account_postable(account)
        codes = {d["code"]: d["valueCode"] for d in ln["_dims"]}
        if account.get("category") == "Expense" and not codes.get(DEPARTMENT):
            # Expense accounts carry a mandatory DEPARTMENT default dimension ("Code Mandatory").
            raise dialog(
                f"Select a Dimension Value Code for the Dimension Code {DEPARTMENT} for G/L Account "
                f"{account['number']}."
            )
        for code, value in codes.items():
            _dimension_value(code, value, ledger)
    if Decimal(str(doc["totalAmountIncludingTax"])) < 0:
        raise dialog("The total amount for the invoice must be 0 or greater.")
    if duplicate_posted(doc["vendorNumber"], doc["vendorInvoiceNumber"]):
        raise dialog(f"Purchase Invoice {doc['vendorInvoiceNumber']} already exists for this vendor.")


# --- purchase orders ------------------------------------------------------------------------------


def _order_line(raw: Any, seq: int, ledger: Ledger) -> dict:
    if not isinstance(raw, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in raw:
        if key not in ORDER_LINE_WRITABLE:
            raise unknown_property(key, "purchaseOrderLine")
    if (raw.get("lineType") or "Account") != "Account":
        raise dialog(f"Line type {raw['lineType']} is not supported on purchase orders in this company. Use Account.")
    # BC validates the G/L account (blocked included) when the line's No. is set, and shortcut
    # dimension values when they are set; the mandatory DEPARTMENT is only checked on posting.
    account = _account(raw.get("lineObjectNumber"), raw.get("accountId"), ledger, blocked_ok=False)
    dims = {}
    for field, code in (("shortcutDimension1Code", DEPARTMENT), ("shortcutDimension2Code", PROJECT)):
        value = check_text(raw.get(field), 20)
        if value:
            _dimension_value(code, value, ledger)
        dims[field] = value
    quantity = _decimal(raw.get("quantity"), Decimal(1))
    if quantity < 0:
        raise dialog("Quantity must be positive.")
    return {
        "sequence": raw.get("sequence") if isinstance(raw.get("sequence"), int) else seq * 10000,
        "account": account,
        "description": check_text(raw.get("description"), MAX_DESCRIPTION),
        "quantity": quantity,
        "unitCost": _decimal(raw.get("directUnitCost"), Decimal(0)),
        "expected": check_date(raw.get("expectedReceiptDate"), ""),
        **dims,
    }


def validate_new_order(body: Any, ledger: Ledger, *, today: str, exists: Callable[[str], bool]) -> dict:
    """Check a purchaseOrders deep insert; returns the resolved header and lines. Nothing is stored on error."""
    if not isinstance(body, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in body:
        if key in ORDER_READ_ONLY:
            raise BcError(400, "BadRequest_InvalidOperation", f"Control '{key}' is read-only.")
        if key not in ORDER_WRITABLE and not key.startswith("@odata"):
            raise unknown_property(key, "purchaseOrder")
    number = check_text(body.get("number"), MAX_ORDER_NO)
    if number and exists(number):
        # The primary key (Document Type, No.) is taken: BC's duplicate-key answer.
        raise BcError(
            400,
            "Internal_EntityWithSameKeyExists",
            "The Purchase Header already exists. Identification "
            f"fields and values: Document Type='Order',No.='{number}'",
        )
    vendor = _vendor(body, ledger)
    order_date = check_date(body.get("orderDate"), today)
    currency = check_text(body.get("currencyCode"), 10) or ledger.currency
    if currency != ledger.currency and currency not in KNOWN_CURRENCIES:
        raise relation("Currency Code", "Purchase Header", currency, "Currency")
    lines_raw = body.get("purchaseOrderLines") or []
    if not isinstance(lines_raw, list):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    return {
        "number": number,
        "vendor": vendor,
        "orderDate": order_date,
        "currencyCode": currency,
        "postingDate": check_date(body.get("postingDate"), order_date),
        "purchaser": check_text(body.get("purchaser"), 20),
        "lines": [_order_line(raw, i + 1, ledger) for i, raw in enumerate(lines_raw)],
    }


def invoice_order_lines(order: dict, invoice: dict) -> dict:
    """The order after posting ``invoice`` against it: each account line of the invoice is matched to
    the first order line on the same account with quantity left to invoice (else the first on that
    account) and adds to its invoicedQuantity. Lines on other accounts (freight...) match nothing."""
    lines = [dict(ln) for ln in order["_lines"]]
    for inv_line in (ln for ln in invoice["_lines"] if ln["lineType"] == "Account"):
        same = [ln for ln in lines if ln["lineObjectNumber"] == inv_line["lineObjectNumber"]]
        open_ = [ln for ln in same if Decimal(str(ln["invoicedQuantity"])) < Decimal(str(ln["quantity"]))]
        target = (open_ or same or [None])[0]
        if target is None:
            continue
        invoiced = Decimal(str(target["invoicedQuantity"])) + Decimal(str(inv_line["quantity"]))
        received = Decimal(str(target["receivedQuantity"]))
        target.update(invoicedQuantity=invoiced, invoiceQuantity=max(received - invoiced, Decimal(0)))
    return {**order, "_lines": lines}
