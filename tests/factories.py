"""Realistic finance data for tests, deterministic (factory_boy sequences, fixed dates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory

from workbench.models import AccountingPeriod, CostCenter, Employee, GLAccount, LegalEntity, TaxCode
from workbench.services.documents import documents_upsert_from_source


class LegalEntityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegalEntity
        django_get_or_create = ["code"]

    code = "NW-US"
    name = "Northwind Traders Inc."
    currency = "USD"


def master_data(entity_code: str = "NW-US", currency: str = "USD") -> LegalEntity:
    """One entity with cost centers, tax codes, accounts, employees and periods (Sep closed, Oct-Dec open)."""
    entity = LegalEntityFactory(code=entity_code, currency=currency)
    for code, name in [("SALES", "Sales"), ("ENG", "Engineering"), ("FIN", "Finance")]:
        CostCenter.objects.get_or_create(entity=entity, code=code, defaults={"name": name})
    for code in ["EXEMPT", "TAXABLE"]:
        TaxCode.objects.get_or_create(entity=entity, code=code, defaults={"name": code.title()})
    for code in ["8110", "8120", "8130"]:
        GLAccount.objects.get_or_create(entity=entity, code=code, defaults={"name": "Travel"})
    for code in ["6110", "6120", "6130", "6140", "6150", "6160", "6170"]:  # procure-to-pay
        GLAccount.objects.get_or_create(entity=entity, code=code, defaults={"name": "Purchases"})
    Employee.objects.get_or_create(entity=entity, code="E0001", defaults={"name": "Mary Smith", "status": "active"})
    Employee.objects.get_or_create(
        entity=entity, code="E0002", defaults={"name": "Gone Person", "status": "terminated"}
    )
    for month, closed in [(9, True), (10, False), (11, False), (12, False)]:
        start = date(2026, month, 1)
        end = date(2026, month + 1, 1).replace(day=1) if month < 12 else date(2027, 1, 1)
        AccountingPeriod.objects.get_or_create(
            entity=entity,
            code=f"2026-{month:02d}",
            defaults={"start": start, "end": date.fromordinal(end.toordinal() - 1), "closed": closed},
        )
    return entity


_seq = iter(range(1, 10**9))


def expense_record(**overrides) -> dict:
    """A canonical expense report record (what a connector returns)."""
    n = next(_seq)
    lines = overrides.pop("lines", None) or [expense_line()]
    rec = {
        "external_id": f"DOC{n:05d}",
        "report_id": f"RPT{n:05d}",
        "number": f"R{n:05d}",
        "name": f"Trip {n}",
        "entity": "NW-US",
        "employee_code": "E0001",
        "employee_name": "Mary Smith",
        "currency": "USD",
        "total": sum((Decimal(str(ln["amount"])) for ln in lines), Decimal("0")),
        "version": "1",
        "submitted_at": "2026-11-10T10:00:00Z",
        "approved_at": "2026-11-11T10:00:00Z",
        "approval_status": "approved",
        "lines": lines,
    }
    rec.update(overrides)
    return rec


def expense_line(**overrides) -> dict:
    line = {
        "external_id": f"L{next(_seq)}",
        "date": "2026-11-05",
        "category": "LODNG",
        "category_name": "Hotel",
        "description": "Hotel - Chicago",
        "merchant": "Hilton",
        "amount": Decimal("212.40"),
        "currency": "USD",
        "gl_account": "8130",
        "cost_center": "SALES",
        "project": "",
        "tax_code": "EXEMPT",
    }
    line.update(overrides)
    return line


def expense_report(**overrides):
    return documents_upsert_from_source(system="concur", records=[expense_record(**overrides)]).created[0]
