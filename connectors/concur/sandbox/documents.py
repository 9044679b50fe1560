"""Turn world reports into what Concur serves: FIS v4 expense documents and Expense v4 reports.

Field names follow SAP's published FIS examples (``FI-API-ReportID-*.json``: ``employee``,
``report``, ``expenseEntry[].allocation[].journal[]`` and ``tax[]``). Only the fields the workbench
uses, plus a few that make the document look like the real thing, are filled: the hundreds of
``*Custom*`` / ``*OrgUnit*`` nulls of a real document are left out to keep big seeds small.

Mapping of the world onto FIS:
- ``allocationCustom1Code`` is the cost center, ``allocationCustom2Code`` the project;
- ``entryApprovedAmount`` / ``journal.amountGross`` are in the report currency,
  ``reportEntryTransactionAmount`` in the transaction currency ``entryCurrAlphaCode``;
- ``reportPaymentProcessingDate`` is the approval timestamp (FIS has no separate approval date:
  a report reaches payment processing when its last approval is given).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandboxkit.world import (
    CITIES,
    ENTITIES,
    EXPENSE_TYPES,
    MERCHANTS,
    TAX_CODES,
    Employee,
    Line,
    Report,
    stable_guid,
    stable_id,
)

CENT = Decimal("0.01")
EMPLOYEE_PAYABLES = "2310"  # the clearing (credit) account of an employee-paid expense
COMPANY_ID = "NORTHWIND"
COMPANY_UUID = "6f1c2a8e-0b7d-4c55-9a51-2f6d0e4b7a10"

# Tax rate (percent, gross-included) of each world tax code, including the invalid ones: Concur
# computes tax from its own configuration, the ERP is the one that does not know the code.
TAX_RATES = {
    "VAT19": Decimal(19),
    "VAT7": Decimal(7),
    "VAT0": Decimal(0),
    "VAT16": Decimal(16),
    "TVA20": Decimal(20),
    "TVA10": Decimal(10),
    "TVA55": Decimal("5.5"),
    "TVA196": Decimal("19.6"),
    "EXEMPT": Decimal(0),
    "TAXABLE": Decimal(0),
    "TAX8": Decimal(8),
}
COUNTRY_OF = {code: country for code, _, _, country, _ in ENTITIES}


def user_id(seed: int, employee_code: str) -> str:
    """The Concur user UUID of an employee (Expense v4 URLs are per user)."""
    return stable_guid("concur-user", seed, employee_code)


def timestamp(day: date, key: int, hour_offset: int = 0) -> str:
    """A deterministic UTC timestamp on ``day`` in Concur's format (``...T14:07:00.000Z``)."""
    return f"{day.isoformat()}T{8 + key % 8 + hour_offset:02d}:{key * 7 % 60:02d}:00.000Z"


def _tax(line: Line, country: str) -> tuple[list[dict], Decimal]:
    rate = TAX_RATES.get(line.tax_code, Decimal(0))
    amount_tax = (line.amount * rate / (100 + rate)).quantize(CENT)
    guid = stable_id("tax", line.allocation_id)
    element = {
        "taxGuid": guid,
        "taxCode": line.tax_code,
        "taxAuthorityLabel": f"{country} {'VAT' if country != 'US' else 'Sales Tax'}",
        "amountTax": amount_tax,
        # Only VAT is reclaimable; US sales tax on expenses is a cost.
        "amountReclaim": amount_tax if country != "US" else Decimal("0.00"),
        "taxReclaimCode": line.tax_code,
        "taxSource": "SYST",
        "locationCountryCode": country,
    }
    return [element], amount_tax


def _entry(report: Report, line: Line, index: int) -> dict[str, Any]:
    country = COUNTRY_OF[report.entity]
    taxes, amount_tax = _tax(line, country)
    rate = (
        Decimal(1) if not line.original_amount else (line.amount / line.original_amount).quantize(Decimal("0.00000001"))
    )
    net = line.amount - amount_tax
    entry: dict[str, Any] = {
        "entryId": line.entry_id,
        "legacyEntryId": report.report_key * 100 + index,
        "entryDate": f"{line.date.isoformat()}T00:00:00.000Z",
        "expenseTypeCode": line.expense_type,
        "expenseTypeName": line.expense_type_name,
        "entryDescription": line.description,
        "entryVendorDescription": line.merchant,
        "entryLocationName": line.city,
        "entryLocationCityName": line.city,
        "entryCountryCode": country,
        "reportEntryTransactionAmount": line.original_amount,
        "entryCurrAlphaCode": line.original_currency,
        "entryExchangeRate": rate,
        "entryExchangeRateDirection": "M",
        "entryApprovedAmount": line.amount,
        "entryIsPersonal": "N",
        "entryIsBillable": "N",
        "entryReceiptType": "R",
        "expensePayIndicator": "N",
        "clearingAccountCode": EMPLOYEE_PAYABLES,
        "allocation": [
            {
                "allocationId": line.allocation_id,
                "allocationPercentage": 100,
                "allocationCustom1Code": line.cost_center or None,  # Concur sends null for an empty field
                "allocationCustom2Code": line.project or None,
                "journal": [
                    {
                        "journalAccountCode": line.gl_account,
                        "journalPayer": "COMP",
                        "journalPayee": "EMPL",
                        "amountGross": line.amount,
                        "amountNetOfTax": net,
                        "amountNetOfReclaim": line.amount - (amount_tax if country != "US" else 0),
                        "taxGuid": [t["taxGuid"] for t in taxes],
                    }
                ],
                "tax": taxes,
            }
        ],
    }
    return entry


def fis_document(report: Report) -> dict[str, Any]:
    """The FIS ``document`` object of one report; malformed world reports come out broken on purpose."""
    emp = report.employee
    key = report.report_key
    doc: dict[str, Any] = {
        "employee": {
            "employeeId": emp.code,
            "employeeFirstName": emp.first,
            "employeeLastName": emp.last,
            "employeeMI": None,
            "loginId": emp.email,
            "emailAddress": emp.email,
            "employeeCustom1Code": emp.cost_center,
        },
        "report": {
            "reportKey": key,
            "reportId": report.report_id,
            "reportNumber": report.number,
            "reportName": report.name,
            "ledgerCode": report.entity,
            "employeeCurrencyAlphaCode": report.currency,
            "homeCountryCode": COUNTRY_OF[report.entity],
            "totalApprovedAmount": report.total,
            "versionId": "1",
            "revisionNumber": "1",
            "isTest": "N",
            "payrollPayIndicator": "N",
            "cashAdvanceReturnsAmount": Decimal("0.00"),
            "reportCreationDate": timestamp(report.submitted, key, -1),
            "reportSubmitDate": timestamp(report.submitted, key),
            "reportUserDefinedDate": f"{report.submitted.isoformat()}T00:00:00.000Z",
            "reportPaymentProcessingDate": timestamp(report.approved, key, 1),
        },
        "expenseEntry": [_entry(report, ln, i) for i, ln in enumerate(report.lines)],
        "cashAdvanceApplication": [],
    }
    if report.malformed == "amount_not_a_number" and doc["expenseEntry"]:
        doc["expenseEntry"][0]["entryApprovedAmount"] = "12,50 EUR"
    elif report.malformed == "missing_report_section":
        del doc["report"]
    return doc


def transaction(report: Report) -> dict[str, Any]:
    """One ``content`` element of GET transactions, without its (state-dependent) ``docStatus``."""
    return {
        "id": report.doc_id,
        "docType": "expense",
        "companyId": COMPANY_ID,
        "entityId": stable_id("entity", report.entity, length=12).lower(),
        "companyUuid": COMPANY_UUID,
        "erpSystemId": None,
        "document": fis_document(report),
        "links": [],
    }


def summary(report: Report, seed: int) -> dict[str, Any]:
    """What Expense v4 knows of the report whatever FIS delivers (a malformed FIS document is
    still a normal report in Concur), kept next to the document for the report read and console."""
    return {
        "reportId": report.report_id,
        "reportNumber": report.number,
        "name": report.name,
        "userId": user_id(seed, report.employee.code),
        "employee": report.employee.name,
        "employeeId": report.employee.code,
        "entity": report.entity,
        "currency": report.currency,
        "total": report.total,
        "submitDate": timestamp(report.submitted, report.report_key),
        "approvedDate": timestamp(report.approved, report.report_key, 1),
        "descriptions": [ln.description for ln in report.lines[:3]],
    }


def expense_v4_report(summary: dict[str, Any], state: dict[str, Any], base_url: str) -> dict[str, Any]:
    """GET /expensereports/v4/.../reports/{id}: ReportForm fields plus what FIS confirmations set.

    ``postingStatus``, ``erpDocumentNumber``, ``erpPostingDocuments`` and ``postingMessages`` are
    sandbox additions: they mirror what Concur shows on a report after an ERP has sent FIS posting
    confirmations (Concur displays them in the report's audit trail / posting status).
    ``paymentStatus`` / ``paymentConfirmedAmount`` are ReportForm fields set by payment confirmations.
    """
    currency = summary["currency"]
    status = state.get("status", "READY")
    posting_status = {"POSTED": "Posted", "FAILED": "Posting Failed"}.get(status, "Not Posted")
    paid = Decimal(str(state.get("paymentConfirmedAmount") or 0))
    pay_code = state.get("paymentStatusCode", "")
    payment_status, payment_id = {
        "CP": ("Paid", "P_PAID"),
        "PP": ("Partially Paid", "P_PPAY"),
        "RE": ("Payment Rejected", "P_REJC"),
        "OB": ("Obsolete", "P_OBSL"),
    }.get(pay_code, ("Processing Payment", "P_PROC") if status == "POSTED" else ("Not Paid", "P_NOTP"))
    user = summary["userId"]
    return {
        "reportId": summary["reportId"],
        "reportNumber": summary["reportNumber"],
        "name": summary["name"],
        "userId": user,
        "ledger": summary["entity"],
        "currencyCode": currency,
        "approvalStatus": "Approved",
        "approvalStatusId": "A_APPR",
        "submitDate": summary["submitDate"],
        "isSubmitted": True,
        "isFinancialIntegrationEnabled": True,
        "reportVersion": 1,
        "reportTotal": {"value": summary["total"], "currencyCode": currency},
        "approvedAmount": {"value": summary["total"], "currencyCode": currency},
        "paymentStatus": payment_status,
        "paymentStatusId": payment_id,
        "paymentConfirmedAmount": {"value": paid, "currencyCode": currency},
        "postingStatus": posting_status,
        "erpDocumentNumber": state.get("erpDocumentNumber"),
        "erpPostingDocuments": state.get("postingDocs", []),
        "postingMessages": state.get("messages", []),
        "links": [
            {
                "rel": "self",
                "href": f"{base_url}/expensereports/v4/users/{user}/context/TRAVELER/reports/{summary['reportId']}",
                "method": "GET",
                "isTemplated": False,
            }
        ],
    }


def _money(rng: random.Random, lo: int, hi: int) -> Decimal:
    return (Decimal(rng.randint(lo * 100, hi * 100)) / 100).quantize(CENT)


def new_report(seed: int, k: int, today: date, employees: list[Employee], description: str | None) -> Report:
    """The k-th report created by ``/sandbox/touch``: deterministic from (seed, k), submitted and
    approved the day before ``today`` (like seeded history, never ahead of the sandbox's clock)."""
    rng = random.Random(f"concur-touch|{seed}|{k}")
    emp = rng.choice([e for e in employees if e.status == "Active"] or employees)
    entity = next(e for e in ENTITIES if e[0] == emp.entity)
    currency, country = entity[2], entity[3]
    city = rng.choice(CITIES[country])
    report = Report(
        doc_id=stable_id("fis-touch", seed, k),
        report_id=stable_id("rpt-touch", seed, k, length=20),
        report_key=900000 + k,
        number=stable_id("num-touch", seed, k, length=6),
        name=f"Trip to {city}",
        entity=emp.entity,
        currency=currency,
        employee=emp,
        submitted=today - timedelta(days=1),
        approved=today - timedelta(days=1),
    )
    for j in range(rng.randint(1, 3)):
        code, name, account, (lo, hi) = rng.choice(EXPENSE_TYPES)
        amount = _money(rng, lo, hi)
        report.lines.append(
            Line(
                entry_id=stable_id("entry-touch", seed, k, j),
                allocation_id=stable_id("alloc-touch", seed, k, j),
                date=report.submitted - timedelta(days=rng.randint(0, 5)),
                expense_type=code,
                expense_type_name=name,
                gl_account=account,
                description=description if description is not None else f"{name} - {city}",
                merchant=rng.choice(MERCHANTS[code]),
                city=city,
                amount=amount,
                original_amount=amount,
                original_currency=currency,
                cost_center=emp.cost_center,
                project="",
                tax_code=rng.choice(TAX_CODES[country])[0],
            )
        )
    return report
