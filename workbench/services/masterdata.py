"""Master data upsert: the ERP's copy, written only by the master-data sync."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from workbench.models import (
    AccountingPeriod,
    Budget,
    CostCenter,
    Currency,
    Employee,
    GLAccount,
    LegalEntity,
    PaymentTerm,
    Project,
    PurchaseCategory,
    Supplier,
    SupplierContract,
    TaxCode,
)
from workbench.money import parse_amount
from workbench.services import ownership
from workbench.services.documents import _date

# stream -> (model, fields taken from the record besides entity/code)
STREAMS = {
    "payment_terms": (PaymentTerm, ["name", "due_date_calculation", "discount_percent"]),
    "currencies": (Currency, ["name", "symbol", "decimals"]),
    "cost_centers": (CostCenter, ["name"]),
    "gl_accounts": (GLAccount, ["name", "category", "blocked"]),
    "tax_codes": (TaxCode, ["name", "tax_type"]),
    "accounting_periods": (AccountingPeriod, ["name", "start", "end", "closed"]),
    "employees": (Employee, ["name", "email", "status"]),
    "projects": (Project, ["name"]),
    "suppliers": (Supplier, ["name", "tax_id", "currency", "blocked", "changed_by_email"]),
}
ORDER = ["legal_entities", *STREAMS, "budgets"]  # entities first: everything else hangs off them
PERCENT_PLACES = Decimal("0.0001")  # PaymentTerm.discount_percent's decimal_places
MAX_DECIMALS = 4  # Currency.decimals: ISO 4217 minor units go up to 4 (CLF, UYW)
# Owned by the procurement suite, not the ERP: read from it by the procurement pull.
PROCUREMENT_STREAMS = ["commodities", "contracts"]


def field_value(field: str, rec: dict):
    """A record's value as the ledger stores it. Raises ValueError for a value the ledger cannot
    hold (a percent that is not a number...): the caller reports that record instead of storing it."""
    v = rec.get(field)
    if field == "discount_percent":
        percent = parse_amount(v).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)
        if not 0 <= percent <= 100:
            raise ValueError(f"discount percent {v!r} is not between 0 and 100")
        return percent
    if field == "decimals":
        if isinstance(v, bool) or not re.fullmatch(r"\d+", str(v).strip()) or int(v) > MAX_DECIMALS:
            raise ValueError(f"decimals {v!r} is not a whole number from 0 to {MAX_DECIMALS}")
        return int(v)
    if field in ("start", "end"):
        return _date(v)
    if field == "blocked" and not isinstance(v, bool):
        v = str(v or "").strip()
        return v if v in ("Payment", "All") else ""
    if field in ("blocked", "closed"):
        return bool(v)
    if field == "tax_id":
        return str(v or "").replace(" ", "").upper()[:40]
    if field in ("cost_center", "manager_code", "due_date_calculation"):
        return str(v or "")[:40]
    if field == "symbol":
        return str(v or "")[:8]
    if field == "currency":
        return str(v or "")[:3].upper()
    if field == "status":
        return str(v or "active").lower()
    return "" if v is None else str(v)[:200]


# Fields another system may send besides the ERP's (the identity provider knows where people sit).
EXTRA_FIELDS = {"employees": ["cost_center", "manager_code"]}


@transaction.atomic
def masterdata_upsert(*, stream: str, records: list[dict], source: str = "erp", source_name: str = "",
                      connection=None) -> tuple[int, list[str]]:
    """Upsert one page from `source` (a connection role); returns (stored, errors).

    Unknown entities are errors, not crashes. Only fields every record of the page carries are
    written, and only those `source` may change (`services/ownership.py`): a different value for a
    field another connected system owns is kept out and raised as an ownership conflict."""
    errors: list[str] = []
    if stream == "legal_entities":
        rows = [LegalEntity(code=str(r["code"])[:20], name=str(r.get("name") or "")[:200],
                            currency=str(r.get("currency") or "USD")[:3], erp_id=str(r.get("external_id") or ""))
                for r in records if r.get("code")]
        LegalEntity.objects.bulk_create(rows, update_conflicts=True, unique_fields=["code"],
                                        update_fields=["name", "currency", "erp_id"])
        return len(rows), errors
    if stream in ("budgets", "commodities", "contracts"):
        return _upsert_other(stream, records)
    model, erp_fields = STREAMS[stream]
    fields = [f for f in [*erp_fields, *EXTRA_FIELDS.get(stream, [])] if records and all(f in r for r in records)]
    object_type = ownership.OBJECT_OF_STREAM[stream]
    guard = ownership.Guard.for_source(object_type, fields, source)
    entities = dict(LegalEntity.objects.values_list("code", "pk"))
    rows, incoming = [], {}
    for r in records:
        entity_id = entities.get(r.get("entity"))
        if entity_id is None or not r.get("code"):
            errors.append(f"{stream}: {r.get('code')!r} names unknown entity {r.get('entity')!r}")
            continue
        try:
            values = {f: field_value(f, r) for f in fields}
        except ValueError as exc:
            errors.append(f"{stream}: {r.get('entity')}/{r.get('code')}: {exc}")
            continue
        code = str(r["code"])[:40]
        # Only the ERP's id goes into erp_id; other systems' ids live in the crosswalk.
        erp_id = {"erp_id": str(r.get("external_id") or "")} if source == "erp" else {}
        rows.append(model(entity_id=entity_id, code=code, **erp_id, **values))
        incoming[(str(r["entity"]), code)] = values
    checking = bool(guard.guarded) or ownership.active_conflicts(object_type).exists()
    before = _stored(model, incoming) if guard.guarded else {}
    # New records take every field; existing ones only what this source may change.
    model.objects.bulk_create(rows, update_conflicts=True, unique_fields=["entity", "code"],
                              update_fields=[*guard.writable, *(["erp_id"] if source == "erp" else []), "synced_at"])
    if checking:
        # A record created just now has no earlier value to conflict with.
        existing = {k: incoming[k] for k in incoming if k in before} if guard.guarded else incoming
        ownership.conflicts_record(guard=guard, rows=_stored(model, incoming), incoming=existing,
                                   source_name=source_name or ownership.role_label(source), connection=connection)
    return len(rows), errors


def _stored(model, keys) -> dict[tuple[str, str], object]:
    if not keys:
        return {}
    codes = {k[1] for k in keys}
    return {(o.entity.code, o.code): o for o in model.objects.filter(code__in=codes).select_related("entity")
            if (o.entity.code, o.code) in keys}


def _upsert_other(stream: str, records: list[dict]) -> tuple[int, list[str]]:
    errors: list[str] = []
    if stream == "budgets":
        entities = {e.code: e for e in LegalEntity.objects.all()}
        rows = []
        for r in records:
            entity = entities.get(r.get("entity"))
            try:
                amount = parse_amount(r.get("amount"))
            except ValueError as exc:
                errors.append(f"budgets: {r.get('external_id')}: {exc}")
                continue
            if entity is None or not r.get("cost_center") or not r.get("gl_account") or not r.get("period"):
                errors.append(f"budgets: {r.get('external_id')!r} names unknown entity {r.get('entity')!r} or lacks keys")
                continue
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(r["period"])) or abs(amount) >= 10**15:
                errors.append(f"budgets: {r.get('external_id')!r}: period {r['period']!r} or amount {amount} out of range")
                continue
            rows.append(Budget(entity=entity, cost_center=str(r["cost_center"])[:40], gl_account=str(r["gl_account"])[:40],
                               period=str(r["period"])[:7], amount=amount, currency=entity.currency,
                               erp_id=str(r.get("external_id") or "")[:64]))
        Budget.objects.bulk_create(rows, update_conflicts=True, unique_fields=["entity", "cost_center", "gl_account", "period"],
                                   update_fields=["amount", "currency", "erp_id", "synced_at"])
        return len(rows), errors
    if stream == "commodities":
        rows = [PurchaseCategory(code=str(r["code"])[:40], name=str(r.get("name") or "")[:200],
                                 gl_account=str(r.get("gl_account") or "")[:40],
                                 contract_required=bool(r.get("contract_required")), external_id=str(r.get("external_id") or "")[:64])
                for r in records if r.get("code")]
        PurchaseCategory.objects.bulk_create(rows, update_conflicts=True, unique_fields=["code"],
                                             update_fields=["name", "gl_account", "contract_required", "external_id"])
        return len(rows), errors
    rows = [SupplierContract(number=str(r["number"])[:60], supplier_code=str(r.get("supplier_code") or "")[:40],
                             category=str(r.get("category") or "")[:40], start=_date(r.get("start")), end=_date(r.get("end")),
                             status=str(r.get("status") or "published")[:20], external_id=str(r.get("external_id") or "")[:64])
            for r in records if r.get("number")]
    SupplierContract.objects.bulk_create(rows, update_conflicts=True, unique_fields=["number"],
                                         update_fields=["supplier_code", "category", "start", "end", "status", "external_id"])
    return len(rows), errors
