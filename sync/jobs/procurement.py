"""The procurement suite (Coupa): categories and contracts, suppliers (matched to the ERP's vendors),
requisitions (validated, then routed for approval), and receipts and invoices as queues (stored,
matched, then marked exported)."""

from __future__ import annotations

import logging

from django.db import transaction

from connectors.base import ConnectorError, Page, WriteOp
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import (
    Skipped,
    cursor_of,
    cursor_save,
    progress,
    quarantine,
    queue_pages,
    read_with_retries,
    record_summary,
    split_records,
)
from workbench.models import Document
from workbench.rules.context import MasterDataContext
from workbench.selectors.connections import erp_master_data_ready
from workbench.selectors.suppliers import ErpVendors
from workbench.services.approvals import requisition_send_for_approval
from workbench.services.invoices import credit_note_apply
from workbench.services.masterdata import masterdata_upsert
from workbench.services.p2p_documents import check_p2p_record, p2p_documents_upsert
from workbench.services.postings import postings_enqueue
from workbench.services.revalidation import invoices_revalidate_for
from workbench.services.supplier_links import supplier_links_refresh
from workbench.services.validation import documents_validate
from workbench.streams import PROCUREMENT_STREAMS

log = logging.getLogger(__name__)
KIND = Document.Kind


def _split(kind: str, page: Page):
    return split_records(page, lambda rec: check_p2p_record(kind, rec), record_summary)


def pull_procurement(run: SyncRun) -> str:
    connection = run.connection
    if not erp_master_data_ready():
        raise Skipped(
            "Waiting for the ERP's master data: procurement documents are pulled after the first master-data sync."
        )
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=6)

    for stream in PROCUREMENT_STREAMS:
        cur = cursor_of(connection, stream)

        def on_master(page: Page, stream=stream, cur=cur) -> None:
            with transaction.atomic():
                stored, errs = masterdata_upsert(stream=stream, records=page.records)
                cursor_save(cur, page)
            progress(run, records_read=stored, records_failed=len(errs) + len(page.errors))

        read_with_retries(connection, lambda stream=stream, cur=cur: connector.read(stream, cur.value), on_master)
    progress(run, progress_done=1)

    # Suppliers: matched against the ERP's vendor master into the crosswalk, never written to it (the
    # ERP owns vendors). Before the documents, so that they find their vendor through it.
    scur = cursor_of(connection, "suppliers")
    vendors = ErpVendors.load()  # read and indexed once per run, not per page

    def on_suppliers(page: Page) -> None:
        with transaction.atomic():
            supplier_links_refresh(system=connection.kind, records=page.records, connection=connection, vendors=vendors)
            cursor_save(scur, page)
        progress(run, records_read=len(page.records), records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("suppliers", scur.value), on_suppliers)
    progress(run, progress_done=1)

    # Requisitions: stored, validated; valid ones waiting for approval are routed.
    cur = cursor_of(connection, "requisitions")
    ctx = MasterDataContext.load()

    def on_requisitions(page: Page) -> None:
        good, bad = _split(KIND.REQUISITION, page)
        with transaction.atomic():
            result = p2p_documents_upsert(system=connection.kind, kind=KIND.REQUISITION, records=good)
            pending = [d for d in result.touched if d.business_status == Document.BusinessStatus.PENDING]
            for doc in documents_validate(documents=pending, ctx=ctx):
                requisition_send_for_approval(doc)
            for err in bad:
                quarantine(connection, err)
            cursor_save(cur, page)
        progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad))

    read_with_retries(connection, lambda: connector.read("requisitions", cur.value), on_requisitions)
    progress(run, progress_done=1)

    # Receipts and invoices are queues: what is stored is marked exported, so it is never read again.
    for stream, kind, obj in (
        ("receipts", KIND.GOODS_RECEIPT, "receipts"),
        ("invoices", KIND.SUPPLIER_INVOICE, "invoices"),
    ):
        seen: set[str] = set()

        def on_queue(page: Page, kind=kind, obj=obj, seen=seen) -> None:
            good, bad = _split(kind, page)
            with transaction.atomic():
                result = p2p_documents_upsert(system=connection.kind, kind=kind, records=good)
                if kind == KIND.GOODS_RECEIPT:
                    invoices_revalidate_for(po_numbers={d.po_number for d in result.touched})
                else:
                    for doc in result.created:
                        if doc.total < 0:
                            credit_note_apply(credit_note=doc)
                    clean = documents_validate(documents=result.touched, ctx=ctx)
                    postings_enqueue(
                        [d for d in clean if d.financial_status == Document.FinancialStatus.NOT_POSTED], run_id=run.pk
                    )
                for err in bad:
                    quarantine(connection, err)
            ids = [r["external_id"] for r in page.records if r.get("external_id")] + [
                e.external_id for e in page.errors if e.external_id
            ]
            if ids:
                try:
                    connector.write(
                        WriteOp("mark_exported", {"object": obj, "ids": ids}),
                        idempotency_key=f"exported:{obj}:{ids[0]}:{len(ids)}",
                    )
                except ConnectorError as exc:
                    log.warning(
                        "%s: marking %s exported failed (%s); they will be read again", connection.name, obj, exc
                    )
            seen.update(ids)
            progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad))

        read_with_retries(connection, lambda stream=stream, seen=seen: queue_pages(connector, stream, seen), on_queue)
        progress(run, progress_done=1)
    return ""
