"""Turn the shared demo world into Business Central v2.0 documents, one collection per entity set.

Stored documents hold BC's public properties plus internal keys starting with ``_`` (the owning
company, the blocked flag BC does not expose, invoice lines...), which the server never sends.
Procure-to-pay documents (vendors, purchase orders, receipts, budgets) and the automation API's
users come from ``build_p2p`` on the same world and seed, so they agree with the other sandboxes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import (
    ACCOUNT_TYPES,
    BLOCKED_ACCOUNTS,
    BLOCKED_COST_CENTER,
    GL_ACCOUNTS,
    NO_DIRECT_POSTING,
    TAX_CODES,
    World,
    stable_guid,
)

from .odata import iso_ms

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01"  # BC's "no date"
DEPARTMENT, PROJECT = "DEPARTMENT", "PROJECT"
# Period-end accruals are booked through one general journal per company, balanced against this account.
ACCRUALS_JOURNAL = "ACCRUALS"
ACCRUED_LIABILITIES = ("2120", "Accrued Liabilities")
SYSTEM_VERSION = "27.0.38460.41032"
ADDRESSES = {
    "US": ("1 Microsoft Way", "Redmond", "WA", "98052"),
    "DE": ("Friedrichstraße 68", "Berlin", "", "10117"),
    "FR": ("39 Quai du Président Roosevelt", "Issy-les-Moulineaux", "", "92130"),
}
# Payment Terms: code, displayName, dueDateCalculation, discountDateCalculation, discountPercent.
# Date formulas in BC's notation (D days, M months, CM current month).
PAYMENT_TERMS = [
    ("COD", "Cash on delivery", "0D", "", 0),
    ("14 DAYS", "Net 14 days", "14D", "", 0),
    ("30 DAYS", "Net 30 days", "30D", "", 0),
    ("60 DAYS", "Net 60 days", "60D", "", 0),
    ("CM+10D", "Current month + 10 days", "CM+10D", "", 0),
    ("1M(8D)", "1 month / 2% 8 days", "1M", "8D", 2),
    ("1.5%10N30", "1.5% 10 days, net 30 days", "30D", "10D", Decimal("1.5")),
]
# Vendors' terms: a spread, so that due dates and early-payment discounts show up in the demo.
VENDOR_TERMS = ["30 DAYS", "1.5%10N30", "CM+10D", "14 DAYS", "1M(8D)", "60 DAYS"]


def vendor_terms(number: str) -> str:
    """The payment terms code of a seeded vendor (stable per vendor number)."""
    return VENDOR_TERMS[sum(number.encode()) % len(VENDOR_TERMS)]


# Currencies: code, displayName, symbol, amountDecimalPlaces ("min:max"), amountRoundingPrecision.
# BC's currency table holds foreign currencies only: a company's own is in its general ledger setup.
CURRENCIES = [
    ("USD", "US dollar", "$", "2:2", Decimal("0.01")),
    ("EUR", "Euro", "€", "2:2", Decimal("0.01")),
    ("GBP", "British pound", "£", "2:2", Decimal("0.01")),
    ("CHF", "Swiss franc", "CHF", "2:2", Decimal("0.05")),
    ("SEK", "Swedish krona", "kr", "2:2", Decimal("0.01")),
    ("DKK", "Danish krone", "kr.", "2:2", Decimal("0.01")),
    ("JPY", "Japanese yen", "¥", "0:0", 1),
]


def etag(doc: dict) -> str:
    """A weak ETag in BC's style (base64 of a row-version string); changes with every modification."""
    digest = int(hashlib.sha1(f"{doc['id']}|{doc.get('lastModifiedDateTime', '')}".encode()).hexdigest()[:15], 16)
    return 'W/"' + base64.b64encode(f"'19;{digest};00;'".encode()).decode() + '"'


def stamp(doc: dict, when: str) -> dict:
    doc["lastModifiedDateTime"] = when
    doc["@odata.etag"] = etag(doc)
    return doc


def user_id(seed: int, employee_code: str) -> str:
    """The user security id of an employee's BC user (tenant-wide, the same in every company)."""
    return stable_guid("bc", seed, "user", employee_code)


def order_line(
    *,
    line_id: str,
    order_id: str,
    sequence: int,
    account: dict,
    description: str,
    quantity: Decimal,
    unit_cost: Decimal,
    expected: str,
    cost_center: str = "",
    project: str = "",
    received: Decimal = Decimal(0),
    invoiced: Decimal = Decimal(0),
) -> dict:
    """A purchaseOrderLine. BC has no dimensions on the v2.0 line; like the header, the sandbox shows
    the shortcut dimensions (1 = DEPARTMENT, 2 = PROJECT) on it so a reader needs no extra call."""
    amount = (quantity * unit_cost).quantize(Decimal("0.01"))
    return {
        "id": line_id,
        "documentId": order_id,
        "sequence": sequence,
        "itemId": ZERO_GUID,
        "accountId": account["id"],
        "lineType": "Account",
        "lineObjectNumber": account["number"],
        "description": description,
        "description2": "",
        "unitOfMeasureId": ZERO_GUID,
        "unitOfMeasureCode": "",
        "quantity": quantity,
        "directUnitCost": unit_cost,
        "discountAmount": 0,
        "discountPercent": 0,
        "discountAppliedBeforeTax": False,
        "amountExcludingTax": amount,
        "taxCode": "",
        "taxPercent": 0,
        "totalTaxAmount": 0,
        "amountIncludingTax": amount,
        "invoiceDiscountAllocation": 0,
        "netAmount": amount,
        "netTaxAmount": 0,
        "netAmountIncludingTax": amount,
        "expectedReceiptDate": expected,
        "receivedQuantity": received,
        "invoicedQuantity": invoiced,
        "invoiceQuantity": max(received - invoiced, Decimal(0)),
        "receiveQuantity": max(quantity - received, Decimal(0)),
        "itemVariantId": ZERO_GUID,
        "locationId": ZERO_GUID,
        "shortcutDimension1Code": cost_center,
        "shortcutDimension2Code": project,
    }


def order_totals(order: dict) -> dict:
    """Recompute the header's derived fields from its lines (after a create, a receipt or an invoice)."""
    lines = order["_lines"]
    total = sum((Decimal(str(ln["amountExcludingTax"])) for ln in lines), Decimal(0))
    received = all(Decimal(str(ln["receivedQuantity"])) >= Decimal(str(ln["quantity"])) for ln in lines)
    # The sandbox books no tax on orders (tax is settled on the invoice), so both totals agree.
    return {
        **order,
        "totalAmountExcludingTax": total,
        "totalTaxAmount": 0,
        "totalAmountIncludingTax": total,
        "fullyReceived": bool(lines) and received,
    }


def purchase_order(
    *,
    order_id: str,
    number: str,
    vendor: dict,
    order_date: str,
    currency: str,
    purchaser: str,
    lines: list[dict],
    company_id: str,
) -> dict:
    doc = {
        "id": order_id,
        "number": number,
        "orderDate": order_date,
        "postingDate": order_date,
        "vendorId": vendor["id"],
        "vendorNumber": vendor["number"],
        "vendorName": vendor["displayName"],
        "payToName": vendor["displayName"],
        "payToVendorId": vendor["id"],
        "payToVendorNumber": vendor["number"],
        "shipToName": "",
        "shipToContact": "",
    }
    doc.update(
        {
            f"{who}{part}": ""
            for who in ("buyFrom", "payTo", "shipTo")
            for part in ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode")
        }
    )
    doc.update(
        {
            "shortcutDimension1Code": "",
            "shortcutDimension2Code": "",
            "currencyId": ZERO_GUID,
            "currencyCode": currency,
            "pricesIncludeTax": False,
            "paymentTermsId": ZERO_GUID,
            "shipmentMethodId": ZERO_GUID,
            "purchaser": purchaser,
            "requestedReceiptDate": EMPTY_DATE,
            "discountAmount": 0,
            "discountAppliedBeforeTax": False,
            # The sandbox has no approval workflow or release step: an order is "Open" (released) at once.
            "status": "Open",
            "_company": company_id,
            "_lines": lines,
        }
    )
    return order_totals(doc)


def seed_documents(world: World, seed: int) -> dict[str, dict[str, dict]]:
    """Every collection keyed by id. Same world and seed give the same ids and timestamps."""
    # Seeded rows are dated before "today", one millisecond apart, so each has its own stamp and an
    # incremental read resuming at the newest one gets back exactly that row, not a crowd.
    base = datetime.combine(world.today - timedelta(days=30), time(6, 0), UTC)
    tick = itertools.count()

    def ts() -> str:
        return iso_ms(base + timedelta(milliseconds=next(tick)))

    def gid(*parts: object) -> str:
        return stable_guid("bc", seed, *parts)

    out: dict[str, dict[str, dict]] = {}

    def add(coll: str, doc: dict) -> None:
        out.setdefault(coll, {})[doc["id"]] = doc

    for code, display, currency, country, _share in world.entities:
        cid = gid("company", code)
        created = ts()
        add(
            "companies",
            {
                "id": cid,
                "systemVersion": SYSTEM_VERSION,
                "timestamp": 50000 + len(out.get("companies", {})),
                "name": code,
                "displayName": display,
                "businessProfileId": "",
                "systemCreatedAt": created,
                "systemCreatedBy": ZERO_GUID,
                "systemModifiedAt": created,
                "systemModifiedBy": ZERO_GUID,
                "@odata.etag": etag({"id": cid, "lastModifiedDateTime": created}),
                "_country": country,
                "_currency": currency,
                "_seqDraft": 0,
                "_seqPosted": 0,
            },
        )
        street, city, state, postal = ADDRESSES.get(country, ("", "", "", ""))
        add(
            "companyInformation",
            stamp(
                {
                    "id": gid("companyInformation", code),
                    "displayName": display,
                    "addressLine1": street,
                    "addressLine2": "",
                    "city": city,
                    "state": state,
                    "country": country,
                    "postalCode": postal,
                    "phoneNumber": "",
                    "faxNumber": "",
                    "email": f"finance@{code.lower()}.northwind.example",
                    "website": "",
                    "taxRegistrationNumber": "",
                    "currencyCode": currency,
                    "currentFiscalYearStartDate": date(world.today.year, 1, 1).isoformat(),
                    "industry": "",
                    "_company": cid,
                },
                ts(),
            ),
        )

        dims = {}
        for dim_code, dim_name in ((DEPARTMENT, "Department"), (PROJECT, "Project")):
            dims[dim_code] = gid("dimension", code, dim_code)
            add(
                "dimensions",
                stamp(
                    {
                        "id": dims[dim_code],
                        "code": dim_code,
                        "displayName": dim_name,
                        "consolidationCode": "",
                        "_company": cid,
                    },
                    ts(),
                ),
            )
        for cc_code, cc_name in world.cost_centers:
            add(
                "dimensionValues",
                stamp(
                    {
                        "id": gid("dimensionValue", code, DEPARTMENT, cc_code),
                        "code": cc_code,
                        "dimensionId": dims[DEPARTMENT],
                        "dimensionCode": DEPARTMENT,
                        "displayName": cc_name,
                        "consolidationCode": "",
                        "_company": cid,
                        # Blocked exists in BC but is not an API property: only posting reveals it.
                        "_blocked": cc_code == BLOCKED_COST_CENTER[0],
                    },
                    ts(),
                ),
            )
        for prj_code, prj_name in world.projects.get(code, []):
            add(
                "dimensionValues",
                stamp(
                    {
                        "id": gid("dimensionValue", code, PROJECT, prj_code),
                        "code": prj_code,
                        "dimensionId": dims[PROJECT],
                        "dimensionCode": PROJECT,
                        "displayName": prj_name,
                        "consolidationCode": "",
                        "_company": cid,
                        "_blocked": False,
                    },
                    ts(),
                ),
            )
            add(
                "projects",
                stamp(
                    {
                        "id": gid("project", code, prj_code),
                        "number": prj_code,
                        "displayName": prj_name,
                        "_company": cid,
                    },
                    ts(),
                ),
            )

        for number, name, category in GL_ACCOUNTS:
            add(
                "accounts",
                stamp(
                    {
                        "id": gid("account", code, number),
                        "number": number,
                        "displayName": name,
                        "category": category,
                        "subCategory": "",
                        "blocked": number in BLOCKED_ACCOUNTS,
                        "accountType": ACCOUNT_TYPES.get(number, "Posting"),
                        "directPosting": number not in NO_DIRECT_POSTING,
                        "netChange": 0,
                        "consolidationTranslationMethod": "",
                        "consolidationDebitAccount": "",
                        "consolidationCreditAccount": "",
                        "excludeFromConsolidation": False,
                        "_company": cid,
                    },
                    ts(),
                ),
            )

        for tax_code, tax_name, tax_type in TAX_CODES.get(country, []):
            add(
                "taxGroups",
                stamp(
                    {
                        "id": gid("taxGroup", code, tax_code),
                        "code": tax_code,
                        "displayName": tax_name,
                        "taxType": tax_type,
                        "_company": cid,
                    },
                    ts(),
                ),
            )

        for period in (p for p in world.periods if p.entity == code):
            add(
                "accountingPeriods",
                stamp(
                    {
                        "id": gid("accountingPeriod", code, period.code),
                        "startingDate": period.start.isoformat(),
                        "name": f"{period.start:%B %Y}",
                        "newFiscalYear": period.start.month == 1,
                        "closed": period.closed,
                        "dateLocked": period.closed,
                        "_company": cid,
                    },
                    ts(),
                ),
            )

        for emp in world.employees_of(code):
            add(
                "employees",
                stamp(
                    {
                        "id": gid("employee", code, emp.code),
                        "number": emp.code,
                        "displayName": emp.name,
                        "givenName": emp.first,
                        "middleName": "",
                        "surname": emp.last,
                        "jobTitle": "",
                        "addressLine1": "",
                        "addressLine2": "",
                        "city": "",
                        "state": "",
                        "country": country,
                        "postalCode": "",
                        "phoneNumber": "",
                        "mobilePhone": "",
                        "email": emp.email,
                        "personalEmail": "",
                        "employmentDate": date(world.today.year - 3, 1, 1).isoformat(),
                        "terminationDate": (world.today - timedelta(days=20)).isoformat()
                        if emp.status == "Terminated"
                        else EMPTY_DATE,
                        "status": emp.status,
                        "birthDate": EMPTY_DATE,
                        "statisticsGroupCode": "",
                        "_company": cid,
                    },
                    ts(),
                ),
            )
    _seed_p2p(world, seed, add, ts, gid, out)
    # Seeded after everything else, so the older collections keep the timestamps they always had.
    for code, _display, local_currency, _country, _share in world.entities:
        cid = gid("company", code)
        for term, name, due, discount_date, percent in PAYMENT_TERMS:
            add(
                "paymentTerms",
                stamp(
                    {
                        "id": gid("paymentTerm", code, term),
                        "code": term,
                        "displayName": name,
                        "dueDateCalculation": due,
                        "discountDateCalculation": discount_date,
                        "discountPercent": percent,
                        "calculateDiscountOnCreditMemos": False,
                        "_company": cid,
                    },
                    ts(),
                ),
            )
        for cur, name, symbol, places, precision in CURRENCIES:
            if cur == local_currency:
                continue
            add(
                "currencies",
                stamp(
                    {
                        "id": gid("currency", code, cur),
                        "code": cur,
                        "displayName": name,
                        "symbol": symbol,
                        "amountDecimalPlaces": places,
                        "amountRoundingPrecision": precision,
                        "_company": cid,
                    },
                    ts(),
                ),
            )
    for code, *_ in world.entities:
        _seed_journal(gid("company", code), code, add, ts, gid)
    return out


def _seed_journal(cid: str, entity: str, add, ts, gid) -> None:
    """The accrued-liabilities account and the ACCRUALS journal balanced by it (seeded last: the
    collections before keep their timestamps)."""
    number, name = ACCRUED_LIABILITIES
    account_id = gid("account", entity, number)
    add(
        "accounts",
        stamp(
            {
                "id": account_id,
                "number": number,
                "displayName": name,
                "category": "Liabilities",
                "subCategory": "",
                "blocked": False,
                "accountType": "Posting",
                "directPosting": True,
                "netChange": 0,
                "consolidationTranslationMethod": "",
                "consolidationDebitAccount": "",
                "consolidationCreditAccount": "",
                "excludeFromConsolidation": False,
                "_company": cid,
            },
            ts(),
        ),
    )
    add(
        "journals",
        stamp(
            {
                "id": gid("journal", entity, ACCRUALS_JOURNAL),
                "code": ACCRUALS_JOURNAL,
                "displayName": "Period-end accruals",
                "templateDisplayName": "GENERAL",
                "balancingAccountId": account_id,
                "balancingAccountNumber": number,
                "_company": cid,
            },
            ts(),
        ),
    )


def _seed_p2p(world: World, seed: int, add, ts, gid, out: dict[str, dict[str, dict]]) -> None:
    p2p = build_p2p(world, seed=seed)
    # Users are tenant-wide: the automation API shows the same list in every company.
    for emp in world.employees:
        uid = user_id(seed, emp.code)
        add(
            "users",
            {
                "id": uid,
                "userSecurityId": uid,
                "userName": emp.email.split("@")[0].upper(),
                "displayName": emp.name,
                "state": "Enabled" if emp.status == "Active" else "Disabled",
                "expiryDate": None,
                "contactEmail": emp.email,
                "_company": "",
            },
        )
    companies = {c["name"]: c["id"] for c in out["companies"].values()}
    accounts = {(d["_company"], d["number"]): d for d in out["accounts"].values()}
    vendors: dict[str, dict] = {}
    for sup in p2p.suppliers:
        cid = companies[sup.entity]
        who = user_id(seed, sup.created_by) if sup.created_by else ZERO_GUID
        when = ts()
        slug = re.sub(r"[^a-z0-9]+", "-", sup.name.lower()).strip("-")
        vendors[sup.number] = stamp(
            {
                "id": gid("vendor", sup.entity, sup.number),
                "number": sup.number,
                "displayName": sup.name,
                "addressLine1": "",
                "addressLine2": "",
                "city": "",
                "state": "",
                "country": sup.country,
                "postalCode": "",
                "phoneNumber": "",
                "email": f"ap@{slug}.example",
                "website": "",
                "taxRegistrationNumber": sup.tax_id,
                "currencyId": ZERO_GUID,
                "currencyCode": sup.currency,
                "irs1099Code": "",
                "paymentTermsId": gid("paymentTerm", sup.entity, vendor_terms(sup.number)),
                "paymentMethodId": ZERO_GUID,
                "taxLiable": True,
                "blocked": sup.blocked or " ",
                "balance": 0,
                "systemCreatedAt": when,
                "systemCreatedBy": who,
                "systemModifiedAt": when,
                "systemModifiedBy": who,
                "_company": cid,
            },
            when,
        )
        add("vendors", vendors[sup.number])

    received: dict[tuple[str, int], Decimal] = {}
    for rec in p2p.receipts:
        for rl in rec.lines:
            received[(rec.po_number, rl.po_line_no)] = (
                received.get((rec.po_number, rl.po_line_no), Decimal(0)) + rl.quantity
            )
    orders: dict[str, dict] = {}
    for req in (r for r in p2p.requisitions if r.po_number):
        cid = companies[req.entity]
        oid = gid("purchaseOrder", req.entity, req.po_number)
        lines = [
            order_line(
                line_id=gid("purchaseOrderLine", oid, ln.line_no),
                order_id=oid,
                sequence=ln.line_no * 10000,
                account=accounts[(cid, ln.gl_account)],
                description=ln.description,
                quantity=ln.quantity,
                unit_cost=ln.unit_price,
                expected=ln.need_by.isoformat(),
                cost_center=ln.cost_center,
                received=received.get((req.po_number, ln.line_no), Decimal(0)),
            )
            for ln in req.lines
        ]
        orders[req.po_number] = stamp(
            purchase_order(
                order_id=oid,
                number=req.po_number,
                vendor=vendors[req.lines[0].supplier],
                order_date=req.submitted.isoformat(),
                currency=req.currency,
                purchaser=req.requester,
                lines=lines,
                company_id=cid,
            ),
            ts(),
        )
        add("purchaseOrders", orders[req.po_number])

    for rec in p2p.receipts:
        order = orders[rec.po_number]
        rid = gid("purchaseReceipt", rec.coupa_id)
        by_no = {ln["sequence"] // 10000: ln for ln in order["_lines"]}
        header = {
            "id": rid,
            "number": f"PRCPT-{rec.coupa_id}",
            "invoiceDate": EMPTY_DATE,
            "postingDate": rec.received.isoformat(),
            "dueDate": EMPTY_DATE,
            "vendorNumber": order["vendorNumber"],
            "vendorName": order["vendorName"],
            "payToName": order["vendorName"],
            "payToContact": "",
            "payToVendorNumber": order["vendorNumber"],
            "shipToName": "",
            "shipToContact": "",
        }
        header.update(
            {
                f"{who}{part}": ""
                for who in ("buyFrom", "shipTo", "payTo")
                for part in ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode")
            }
        )
        header.update(
            {
                "currencyCode": order["currencyCode"],
                "orderNumber": rec.po_number,
                "_company": order["_company"],
                "_lines": [
                    {
                        "id": gid("purchaseReceiptLine", rid, rl.po_line_no),
                        "documentId": rid,
                        "sequence": rl.po_line_no * 10000,
                        "lineType": "Account",
                        "lineObjectNumber": by_no[rl.po_line_no]["lineObjectNumber"],
                        "description": by_no[rl.po_line_no]["description"],
                        "description2": "",
                        "unitOfMeasureCode": "",
                        "unitCost": by_no[rl.po_line_no]["directUnitCost"],
                        "quantity": rl.quantity,
                        "discountPercent": 0,
                        "taxPercent": 0,
                        "expectedReceiptDate": by_no[rl.po_line_no]["expectedReceiptDate"],
                    }
                    for rl in rec.lines
                ],
            }
        )
        add("purchaseReceipts", stamp(header, ts()))

    for b in p2p.budgets:
        add(
            "budgetEntries",
            stamp(
                {
                    "id": gid("budgetEntry", b.entity, b.cost_center, b.gl_account, b.period),
                    "costCenterCode": b.cost_center,
                    "accountNumber": b.gl_account,
                    "period": b.period,
                    "amount": b.amount,
                    "_company": companies[b.entity],
                },
                ts(),
            ),
        )
