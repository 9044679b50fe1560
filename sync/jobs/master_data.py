"""Master data from the ERP (the system of record for accounting structures and the vendor master)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from connectors.base import Page
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import cursor_of, cursor_save, progress, read_with_retries
from workbench.models import Connection
from workbench.services.masterdata import masterdata_upsert
from workbench.services.revalidation import documents_revalidate_open
from workbench.streams import ORDER


def pull_master_data(run: SyncRun) -> str:
    connection = run.connection
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=len(ORDER))
    errors: list[str] = []
    for stream in ORDER:
        cur = cursor_of(connection, stream)

        def on_page(page: Page, stream=stream, cur=cur) -> None:
            with transaction.atomic():
                stored, errs = masterdata_upsert(stream=stream, records=page.records)
                errors.extend(errs + [e.message for e in page.errors])
                cursor_save(cur, page)
            progress(run, records_read=stored, records_failed=len(errs) + len(page.errors))

        read_with_retries(connection, lambda stream=stream, cur=cur: connector.read(stream, cur.value), on_page)
        progress(run, progress_done=1)
    Connection.objects.filter(pk=connection.pk).update(master_data_synced_at=timezone.now())
    # New or changed master data can fix (or break) documents waiting in the queue.
    documents_revalidate_open()
    return "; ".join(errors[:5])
