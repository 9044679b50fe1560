"""Master data from the ERP (the system of record for accounting structures and the vendor master)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from connectors.base import Page
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import Skipped, cursor_of, cursor_save, progress, read_with_retries, run_recorded
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


def pull_stream_full(run: SyncRun, stream: str) -> SyncRun:
    """One master-data stream read from the start (a drift item's "Pull again"), under the master-data
    job's lease. Its cursor is neither used nor moved: the incremental pull carries on where it was."""

    def body() -> str:
        if stream not in ORDER:
            raise Skipped(f"{stream!r} is not a master-data stream.")
        connector = connector_for(run.connection)
        SyncRun.objects.filter(pk=run.pk).update(progress_total=1)
        errors: list[str] = []

        def on_page(page: Page) -> None:
            stored, errs = masterdata_upsert(stream=stream, records=page.records, connection=run.connection)
            errors.extend(errs + [e.message for e in page.errors])
            progress(run, records_read=stored, records_failed=len(errs) + len(page.errors))

        read_with_retries(run.connection, lambda: connector.read(stream, None), on_page)
        progress(run, progress_done=1)
        documents_revalidate_open()
        return f"Full pull of {stream}. " + "; ".join(errors[:5])

    return run_recorded(run, job=run.job, body=body)
