"""Master data upsert: the ERP's copy, written only by the master-data sync."""

from __future__ import annotations

from django.db import transaction

from workbench.models import AccountingPeriod, CostCenter, Employee, GLAccount, LegalEntity, Project, TaxCode
from workbench.services.documents import _date

# stream -> (model, fields taken from the record besides entity/code)
STREAMS = {
    "cost_centers": (CostCenter, ["name"]),
    "gl_accounts": (GLAccount, ["name", "category", "blocked"]),
    "tax_codes": (TaxCode, ["name", "tax_type"]),
    "accounting_periods": (AccountingPeriod, ["name", "start", "end", "closed"]),
    "employees": (Employee, ["name", "email", "status"]),
    "projects": (Project, ["name"]),
}
ORDER = ["legal_entities", *STREAMS]  # entities first: everything else hangs off them


def _value(field: str, rec: dict):
    v = rec.get(field)
    if field in ("start", "end"):
        return _date(v)
    if field in ("blocked", "closed"):
        return bool(v)
    if field == "status":
        return str(v or "active").lower()
    return "" if v is None else str(v)[:200]


@transaction.atomic
def masterdata_upsert(*, stream: str, records: list[dict]) -> tuple[int, list[str]]:
    """Upsert one page; returns (stored, errors). Unknown entities are errors, not crashes."""
    errors: list[str] = []
    if stream == "legal_entities":
        rows = [LegalEntity(code=str(r["code"])[:20], name=str(r.get("name") or "")[:200],
                            currency=str(r.get("currency") or "USD")[:3], erp_id=str(r.get("external_id") or ""))
                for r in records if r.get("code")]
        LegalEntity.objects.bulk_create(rows, update_conflicts=True, unique_fields=["code"],
                                        update_fields=["name", "currency", "erp_id"])
        return len(rows), errors
    model, fields = STREAMS[stream]
    entities = dict(LegalEntity.objects.values_list("code", "pk"))
    rows = []
    for r in records:
        entity_id = entities.get(r.get("entity"))
        if entity_id is None or not r.get("code"):
            errors.append(f"{stream}: {r.get('code')!r} names unknown entity {r.get('entity')!r}")
            continue
        obj = model(entity_id=entity_id, code=str(r["code"])[:40], erp_id=str(r.get("external_id") or ""),
                    **{f: _value(f, r) for f in fields})
        rows.append(obj)
    model.objects.bulk_create(rows, update_conflicts=True, unique_fields=["entity", "code"],
                              update_fields=[*fields, "erp_id", "synced_at"])
    return len(rows), errors
