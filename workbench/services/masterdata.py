"""Master data upsert: the ERP's copy, written only by the master-data sync."""

from __future__ import annotations

import logging
import re

from django.db import transaction

from workbench.models import (
    Budget,
    CostCenter,
    LegalEntity,
    PurchaseCategory,
    SupplierContract,
)
from workbench.money import parse_amount
from workbench.services import ownership
from workbench.services.calendars import close_timetables_seed
from workbench.services.snooze import WAKE_STREAMS, anything_waits_for_an_event, legal_entities_wake, master_data_wake
from workbench.streams import EXTRA_FIELDS, STREAMS, field_value
from workbench.values import as_date

log = logging.getLogger(__name__)


@transaction.atomic
def masterdata_upsert(
    *, stream: str, records: list[dict], source: str = "erp", source_name: str = "", connection=None
) -> tuple[int, list[str]]:
    """Upsert one page from `source` (a connection role); returns (stored, errors).

    Unknown entities are errors, not crashes. Only fields every record of the page carries are
    written, and only those `source` may change (`services/ownership.py`): a different value for a
    field another connected system owns is kept out and raised as an ownership conflict."""
    errors: list[str] = []
    if stream == "legal_entities":
        rows = [
            LegalEntity(
                code=str(r["code"])[:20],
                name=str(r.get("name") or "")[:200],
                currency=str(r.get("currency") or "USD")[:3],
                erp_id=str(r.get("external_id") or ""),
            )
            for r in records
            if r.get("code")
        ]
        LegalEntity.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["code"], update_fields=["name", "currency", "erp_id"]
        )
        if anything_waits_for_an_event():
            legal_entities_wake([r.code for r in rows])
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
    model.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["entity", "code"],
        update_fields=[*guard.writable, *(["erp_id"] if source == "erp" else []), "synced_at"],
    )
    if checking:
        # A record created just now has no earlier value to conflict with.
        existing = {k: incoming[k] for k in incoming if k in before} if guard.guarded else incoming
        ownership.conflicts_record(
            guard=guard,
            rows=_stored(model, incoming),
            incoming=existing,
            source_name=source_name or ownership.role_label(source),
            connection=connection,
        )
    if (
        stream in WAKE_STREAMS and anything_waits_for_an_event()
    ):  # items snoozed until this page's change wake (one query for the page)
        master_data_wake(
            stream=stream, rows=_stored(model, incoming), source=source_name or ownership.role_label(source)
        )
    if stream == "accounting_periods" and rows:
        # Every period the ERP brings gets its close dates; items follow a moved period end.
        close_timetables_seed(entity_ids={r.entity_id for r in rows})
    return len(rows), errors


def cost_center_blocked_by_erp(*, entity_id: int, code: str, reason: str) -> bool:
    """The ERP refused a posting because this cost center is blocked there. The ERP owns cost centers
    (the system of record), so its word is applied at once: the cost center is no longer offered, and
    documents naming it are flagged before they reach the ERP. The next master-data pull confirms it."""
    changed = CostCenter.objects.filter(entity_id=entity_id, code=code, active=True).update(active=False)
    if changed:
        log.info("cost center %s of entity %s blocked on the ERP's word: %s", code, entity_id, reason)
    return bool(changed)


def _stored(model, keys) -> dict[tuple[str, str], object]:
    if not keys:
        return {}
    codes = {k[1] for k in keys}
    return {
        (o.entity.code, o.code): o
        for o in model.objects.filter(code__in=codes).select_related("entity")
        if (o.entity.code, o.code) in keys
    }


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
                errors.append(
                    f"budgets: {r.get('external_id')!r} names unknown entity {r.get('entity')!r} or lacks keys"
                )
                continue
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(r["period"])) or abs(amount) >= 10**15:
                errors.append(
                    f"budgets: {r.get('external_id')!r}: period {r['period']!r} or amount {amount} out of range"
                )
                continue
            rows.append(
                Budget(
                    entity=entity,
                    cost_center=str(r["cost_center"])[:40],
                    gl_account=str(r["gl_account"])[:40],
                    period=str(r["period"])[:7],
                    amount=amount,
                    currency=entity.currency,
                    erp_id=str(r.get("external_id") or "")[:64],
                )
            )
        Budget.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["entity", "cost_center", "gl_account", "period"],
            update_fields=["amount", "currency", "erp_id", "synced_at"],
        )
        return len(rows), errors
    if stream == "commodities":
        rows = [
            PurchaseCategory(
                code=str(r["code"])[:40],
                name=str(r.get("name") or "")[:200],
                gl_account=str(r.get("gl_account") or "")[:40],
                contract_required=bool(r.get("contract_required")),
                external_id=str(r.get("external_id") or "")[:64],
            )
            for r in records
            if r.get("code")
        ]
        PurchaseCategory.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["code"],
            update_fields=["name", "gl_account", "contract_required", "external_id"],
        )
        return len(rows), errors
    rows = [
        SupplierContract(
            number=str(r["number"])[:60],
            supplier_code=str(r.get("supplier_code") or "")[:40],
            category=str(r.get("category") or "")[:40],
            start=as_date(r.get("start")),
            end=as_date(r.get("end")),
            status=str(r.get("status") or "published")[:20],
            external_id=str(r.get("external_id") or "")[:64],
        )
        for r in records
        if r.get("number")
    ]
    SupplierContract.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["number"],
        update_fields=["supplier_code", "category", "start", "end", "status", "external_id"],
    )
    return len(rows), errors
