"""The approval engine (ServiceNow): approvers' managers, and decisions, which move the chains on;
then tasks past their SLA are escalated."""

from __future__ import annotations

from django.db import transaction

from connectors.base import Page
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import cursor_of, cursor_save, progress, read_with_retries
from workbench.models import Connection
from workbench.services.approvals import approval_decisions_apply, approvals_escalate_overdue
from workbench.services.ownership import employees_field_update


def pull_approvals(run: SyncRun) -> str:
    connection = run.connection
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=2)
    cur = cursor_of(connection, "users")

    def on_users(page: Page) -> None:
        with transaction.atomic():
            # The identity provider owns managers once it is connected: then this is only a cross-check.
            employees_field_update(
                field="manager_code",
                source=Connection.Role.APPROVALS,
                source_name=connection.name,
                connection=connection,
                values={
                    str(r["employee_number"])[:40]: str(r.get("manager") or "")[:40]
                    for r in page.records
                    if r.get("employee_number")
                },
            )
            cursor_save(cur, page)
        progress(run, records_read=len(page.records))

    read_with_retries(connection, lambda: connector.read("users", cur.value), on_users)
    progress(run, progress_done=1)
    dcur = cursor_of(connection, "approvals")

    def on_decisions(page: Page) -> None:
        with transaction.atomic():
            n = approval_decisions_apply(page.records)
            cursor_save(dcur, page)
        progress(run, records_read=len(page.records), records_posted=n, records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("approvals", dcur.value), on_decisions)
    progress(run, progress_done=1)
    approvals_escalate_overdue()
    return ""
