"""Expense reports from the expense platform: a queue (read, commit, acknowledge)."""

from __future__ import annotations

import logging

from django.db import transaction

from connectors.base import ConnectorError, Page, WriteOp
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import Skipped, progress, quarantine, queue_pages, read_with_retries, split_records
from workbench.models import ExceptionItem
from workbench.rules.context import MasterDataContext
from workbench.selectors.connections import erp_master_data_ready
from workbench.services.documents import check_record, documents_upsert_from_source
from workbench.services.exception_items import exception_items_resolve
from workbench.services.postings import postings_enqueue
from workbench.services.validation import documents_validate

log = logging.getLogger(__name__)


def pull_expense_reports(run: SyncRun) -> str:
    connection = run.connection
    if not erp_master_data_ready():
        raise Skipped("Waiting for the ERP's master data: expense reports are pulled after the first master-data sync.")
    connector = connector_for(connection)
    ctx = MasterDataContext.load()
    seen: set[str] = set()

    def on_page(page: Page) -> None:
        good, bad = split_records(page, check_record)
        with transaction.atomic():
            result = documents_upsert_from_source(system=connection.kind, records=good)
            # A readable version of a record that was quarantined closes its MALFORMED_RECORD item.
            fixed = [f"MALFORMED_RECORD:{connection.kind}:{r['external_id']}" for r in good]
            exception_items_resolve(
                items=ExceptionItem.objects.filter(fingerprint__in=fixed),
                action="rule_passed",
                reason="A readable version of the record arrived.",
            )
            clean = documents_validate(documents=result.touched, ctx=ctx)
            postings_enqueue(clean, run_id=run.pk)
            for err in bad:
                quarantine(connection, err)
        progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad), progress_done=1)
        # Only now that the page is committed may the source forget it.
        ids = [r["external_id"] for r in page.records if r.get("external_id")] + [
            e.external_id for e in page.errors if e.external_id
        ]
        if ids:
            try:
                connector.write(WriteOp("acknowledge", {"doc_ids": ids}), idempotency_key=f"ack:{ids[0]}:{len(ids)}")
            except ConnectorError as exc:
                log.warning("%s: acknowledgement failed (%s); the documents will be read again", connection.name, exc)
        seen.update(ids)

    read_with_retries(connection, lambda: queue_pages(connector, "expense_reports", seen), on_page)
    return ""
