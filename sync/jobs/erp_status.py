"""What the ERP knows about our documents: posting status and payments, and its purchase orders.

The ERP owns posting status. A posting whose answer we lost (a timeout, a killed worker) is found
here by its document number and marked posted with what the ERP says; a payment in the ERP marks
the document paid. Both are written back to the source. POs (ours and those entered in the ERP)
are what supplier invoices are matched against.
"""

from __future__ import annotations

from django.db import transaction

from connectors.base import Page
from sync.health import connector_for
from sync.models import SyncRun
from sync.runs import cursor_of, cursor_save, progress, quarantine, read_with_retries, record_summary, split_records
from workbench.models import Document, DocumentRef
from workbench.selectors import writes_by_document_number
from workbench.services.documents import document_mark_paid, document_mark_posted
from workbench.services.p2p_documents import check_p2p_record, p2p_documents_upsert
from workbench.services.postings import confirmation_enqueue, payment_confirmation_enqueue
from workbench.services.revalidation import invoices_revalidate_for
from workbench.values import as_datetime

UNPOSTED = ("not_posted", "posting", "rejected")


def pull_posting_status(run: SyncRun) -> str:
    connection = run.connection
    connector = connector_for(connection)
    cur = cursor_of(connection, "purchase_invoices")

    def on_page(page: Page) -> None:
        ids = [r["external_id"] for r in page.records]
        refs = dict(
            DocumentRef.objects.filter(system=connection.kind, kind="erp_invoice", external_id__in=ids).values_list(
                "external_id", "document_id"
            )
        )
        numbers = [r.get("vendor_invoice_number") for r in page.records if r["external_id"] not in refs]
        by_number = (
            {w.payload.get("document_number"): w.document_id for w in writes_by_document_number(numbers)}
            if numbers
            else {}
        )
        changed = 0
        with transaction.atomic():
            for rec in page.records:
                doc_id = refs.get(rec["external_id"]) or by_number.get(rec.get("vendor_invoice_number"))
                if doc_id is None:
                    continue
                doc = Document.objects.get(pk=doc_id)
                status = rec.get("status")
                if status in ("open", "paid") and doc.financial_status in UNPOSTED:
                    # Posted in the ERP while we did not know (our answer was lost): what the ERP says.
                    if document_mark_posted(
                        document=doc,
                        erp_system=connection.kind,
                        erp_id=rec["external_id"],
                        number=rec.get("number") or "",
                        fiscal_year=rec.get("fiscal_year") or "",
                        posting_date=rec.get("posting_date") or "",
                    ):
                        confirmation_enqueue(doc)
                        changed += 1
                if status == "paid" and document_mark_paid(
                    document=doc, erp_system=connection.kind, paid_at=as_datetime(rec.get("paid_at"))
                ):
                    payment_confirmation_enqueue(doc, rec.get("paid_at") or "")
                    changed += 1
            cursor_save(cur, page)
        progress(run, records_read=len(page.records), records_posted=changed, progress_done=1)

    read_with_retries(connection, lambda: connector.read("purchase_invoices", cur.value), on_page)
    pull_purchase_orders(run, connector)
    return ""


def pull_purchase_orders(run: SyncRun, connector) -> None:
    """The ERP's purchase orders (ours and those entered there): what invoices are matched against."""
    connection = run.connection
    if not any(s.name == "purchase_orders" for s in connector.discover()):
        return
    cur = cursor_of(connection, "purchase_orders")

    def on_page(page: Page) -> None:
        good, bad = split_records(page, lambda rec: check_p2p_record(Document.Kind.PURCHASE_ORDER, rec), record_summary)
        with transaction.atomic():
            result = p2p_documents_upsert(system=connection.kind, kind=Document.Kind.PURCHASE_ORDER, records=good)
            invoices_revalidate_for(po_numbers={d.number for d in result.touched})
            for err in bad:
                quarantine(connection, err)
            cursor_save(cur, page)
        progress(run, records_read=len(page.records), records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("purchase_orders", cur.value), on_page)
