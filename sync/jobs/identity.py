"""The employee directory pull: people from the identity provider (SCIM 2.0), incrementally.

Per page, in one transaction: store the employees (the identity provider owns name, e-mail, status,
home cost center and manager; see `workbench/services/ownership.py`), keep each one's directory id
in the crosswalk, and re-check the open expense reports of everyone whose status changed, so that
a person deactivated in the directory stops their unposted reports with INACTIVE_EMPLOYEE (and a
reactivated one releases them), and loses the workbench at once: their account (same sign-in name or
e-mail) is deactivated, its API tokens revoked and its sessions ended (`account_deactivate`). Then move
the cursor.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.base import Page
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import Skipped, cursor_of, cursor_save, progress, quarantine, read_with_retries
from workbench.models import Connection, Employee, MasterDataLink
from workbench.selectors.connections import erp_connection
from workbench.services.accounts import accounts_deactivate_departed
from workbench.services.masterdata import masterdata_upsert
from workbench.services.revalidation import employees_reports_revalidate

STREAM = "employees"


def pull_identity(run: SyncRun) -> str:
    connection = run.connection
    erp = erp_connection()
    if erp is not None and erp.master_data_synced_at is None:
        raise Skipped("Waiting for the ERP's master data: employees are matched to its legal entities.")
    connector = connector_for(connection)
    cur = cursor_of(connection, STREAM)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=1)
    changed_total = 0
    errors: list[str] = []

    def on_page(page: Page) -> None:
        nonlocal changed_total
        records = [{**r, "manager_code": r.get("manager", "")} for r in page.records]
        with transaction.atomic():
            before = _statuses(records)
            stored, errs = masterdata_upsert(
                stream=STREAM,
                records=records,
                source=Connection.Role.IDENTITY,
                source_name=connection.name,
                connection=connection,
            )
            _links_save(connection.kind, records)
            changed = {k for k, v in _statuses(records).items() if before.get(k) != v}
            checked = employees_reports_revalidate(changed)
            accounts_deactivate_departed(
                emails=[str(r.get("email") or "") for r in records if r.get("status") == "inactive"],
                reason=f"inactive in the directory ({connection.name})",
            )
            for err in page.errors:
                quarantine(connection, err)
            cursor_save(cur, page)
        changed_total += len(changed)
        progress(run, records_read=stored, records_failed=len(errs) + len(page.errors), records_posted=checked)
        if errs:
            errors[:] = errs[:5]

    read_with_retries(connection, lambda: connector.read(STREAM, cur.value), on_page)
    SyncRun.objects.filter(pk=run.pk).update(progress_done=F("progress_total"))
    Connection.objects.filter(pk=connection.pk).update(master_data_synced_at=timezone.now())
    return "; ".join(errors)


def _statuses(records: list[dict]) -> dict[tuple[str, str], str]:
    codes = {str(r.get("code") or "")[:40] for r in records}
    return {
        (e, c): s for e, c, s in Employee.objects.filter(code__in=codes).values_list("entity__code", "code", "status")
    }


def _links_save(system: str, records: list[dict]) -> None:
    """The crosswalk: each employee's directory id, matched by employee number (an exact key)."""
    now = timezone.now()
    links = [
        MasterDataLink(
            object_type="employee",
            system=system,
            external_id=str(r["external_id"])[:128],
            external_number=str(r["code"])[:64],
            external_name=str(r.get("name") or "")[:200],
            entity_code=str(r.get("entity") or "")[:20],
            code=str(r["code"])[:40],
            status=MasterDataLink.Status.CONFIRMED,
            certainty="certain",
            score=1,
            reasons=["same employee number"],
            decided_at=now,
        )
        for r in records
        if r.get("external_id") and r.get("code")
    ]
    MasterDataLink.objects.bulk_create(
        links,
        update_conflicts=True,
        unique_fields=["object_type", "system", "external_id"],
        update_fields=["external_number", "external_name", "entity_code", "code", "updated_at"],
    )
