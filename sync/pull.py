"""Pull jobs: master data from the ERP, expense reports from the expense platform, posting status.

Per page, in one transaction: upsert, run the rules, raise items, queue postings, save the cursor.
The cursor never moves ahead of committed data. Transient failures are retried in place with
backoff (honouring Retry-After), restarting from the last committed cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.base import ConnectorError, Page, TransientError, WriteOp
from sync import push
from sync.backoff import delay_for
from sync.health import connector_for, record_failure, record_success
from sync.models import SyncCursor, SyncRun
from workbench.models import Connection, Document, DocumentRef, ExceptionItem
from workbench.rules.context import MasterDataContext
from workbench.services.documents import (
    check_record,
    document_mark_paid,
    document_mark_posted,
    documents_upsert_from_source,
)
from workbench.services.exception_items import exception_item_raise, exception_items_resolve
from workbench.services.masterdata import ORDER as MASTER_DATA_STREAMS
from workbench.services.masterdata import masterdata_upsert
from workbench.services.validation import documents_validate

log = logging.getLogger(__name__)

MAX_PAGE_ATTEMPTS = 6
MAX_SLEEP = 30.0  # never park a worker longer than this on one Retry-After


class Skipped(Exception):
    pass


def _progress(run: SyncRun, **counts) -> None:
    SyncRun.objects.filter(pk=run.pk).update(**{k: F(k) + v for k, v in counts.items()})


def read_with_retries(connection: Connection, read: Callable[[], Iterator[Page]], on_page: Callable[[Page], None]) -> None:
    """Feed pages to on_page; on a transient error, back off and read again from the saved cursor."""
    attempt = 0
    while True:
        try:
            for page in read():
                on_page(page)
                attempt = 0
            record_success(connection)
            return
        except TransientError as exc:
            attempt += 1
            down = record_failure(connection, exc)
            if attempt >= MAX_PAGE_ATTEMPTS or down:
                raise
            wait = min(MAX_SLEEP, delay_for(attempt, exc.retry_after))
            log.info("%s: %s; retry %d in %.1fs", connection.name, exc, attempt, wait)
            time.sleep(wait)


def _cursor(connection: Connection, stream: str) -> SyncCursor:
    cursor, _ = SyncCursor.objects.get_or_create(connection=connection, stream=stream)
    return cursor


def claim(connection: Connection, job: str, seconds: int = 900) -> bool:
    """One run of a job per connection at a time: compare-and-set on the job's lease."""
    lease = _cursor(connection, f"lease:{job}")
    now = timezone.now()
    from django.db.models import Q

    if not SyncCursor.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=lease.pk).update(
            lease_until=now + timedelta(seconds=seconds)):
        return False
    # We hold the job now: any run still marked running lost its worker (killed mid-way).
    SyncRun.objects.filter(connection=connection, job=job, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.FAILED, finished_at=now, message="The worker running this was lost; the next run carried on.")
    return True


def release(connection: Connection, job: str) -> None:
    SyncCursor.objects.filter(connection=connection, stream=f"lease:{job}").update(lease_until=None)


# --- master data --------------------------------------------------------------------------------


def pull_master_data(run: SyncRun) -> None:
    connection = run.connection
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=len(MASTER_DATA_STREAMS))
    errors: list[str] = []
    for stream in MASTER_DATA_STREAMS:
        cur = _cursor(connection, stream)

        def on_page(page: Page, stream=stream, cur=cur) -> None:
            with transaction.atomic():
                stored, errs = masterdata_upsert(stream=stream, records=page.records)
                errors.extend(errs + [e.message for e in page.errors])
                if page.next_cursor is not None:
                    cur.value = page.next_cursor
                    cur.save(update_fields=["value", "updated_at"])
            _progress(run, records_read=stored, records_failed=len(errs) + len(page.errors))

        read_with_retries(connection, lambda stream=stream, cur=cur: connector.read(stream, cur.value), on_page)
        _progress(run, progress_done=1)
    Connection.objects.filter(pk=connection.pk).update(master_data_synced_at=timezone.now())
    if errors:
        SyncRun.objects.filter(pk=run.pk).update(message="; ".join(errors[:5])[:2000])
    # New or changed master data can fix (or break) documents waiting in the queue.
    revalidate_open_documents()


def revalidate_open_documents() -> int:
    docs = list(Document.objects.filter(exceptions__status__in=["open", "in_progress"],
                                        exceptions__category__in=["master_data", "policy"]).distinct())
    if not docs:
        return 0
    ctx = MasterDataContext.load()
    n = 0
    for i in range(0, len(docs), 200):
        batch = docs[i:i + 200]
        with transaction.atomic():
            clean = documents_validate(documents=batch, ctx=ctx)
            push.enqueue_postings([d for d in clean if d.financial_status == Document.FinancialStatus.NOT_POSTED])
        n += len(batch)
    return n


# --- expense reports (a queue: read, commit, acknowledge) -------------------------------------------


def pull_expense_reports(run: SyncRun) -> None:
    connection = run.connection
    erp = Connection.objects.filter(role=Connection.Role.ERP, enabled=True).first()
    if erp is None or erp.master_data_synced_at is None:
        raise Skipped("Waiting for the ERP's master data: expense reports are pulled after the first master-data sync.")
    connector = connector_for(connection)
    ctx = MasterDataContext.load()
    seen: set[str] = set()
    posted_any = False

    def on_page(page: Page) -> None:
        nonlocal posted_any
        good, bad = [], list(page.errors)
        for rec in page.records:
            problem = check_record(rec)
            if problem:
                from connectors.base import RecordError

                bad.append(RecordError(str(rec.get("external_id") or ""), problem, repr(rec)[:4000]))
            else:
                good.append(rec)
        with transaction.atomic():
            result = documents_upsert_from_source(system=connection.kind, records=good)
            # A readable version of a record that was quarantined closes its MALFORMED_RECORD item.
            fixed = [f"MALFORMED_RECORD:{connection.kind}:{r['external_id']}" for r in good]
            exception_items_resolve(items=ExceptionItem.objects.filter(fingerprint__in=fixed),
                                    action="rule_passed", reason="A readable version of the record arrived.")
            clean = documents_validate(documents=result.touched, ctx=ctx)
            queued = push.enqueue_postings(clean, run=run)
            for err in bad:
                quarantine(connection, err)
        posted_any = posted_any or bool(queued)
        _progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad), progress_done=1)
        # Only now that the page is committed may the source forget it.
        ids = [r["external_id"] for r in page.records if r.get("external_id")] + [e.external_id for e in page.errors if e.external_id]
        if ids:
            try:
                connector.write(WriteOp("acknowledge", {"doc_ids": ids}), idempotency_key=f"ack:{ids[0]}:{len(ids)}")
            except ConnectorError as exc:
                log.warning("%s: acknowledgement failed (%s); the documents will be read again", connection.name, exc)
        seen.update(ids)

    read_with_retries(connection, lambda: queue_pages(connector, "expense_reports", seen), on_page)
    if posted_any:
        push.kick_outbox()


def queue_pages(connector, stream: str, seen: set[str]) -> Iterator[Page]:
    """Pages of a queue stream (read, commit, acknowledge). The queue shrinks as we acknowledge, so
    always take its first page again (following page links would skip documents). Stop when it is
    empty or only repeats what we have (or records without ids, which cannot be acknowledged)."""
    for _ in range(100_000):
        first = next(iter(connector.read(stream, None)), None)
        if first is None or not (first.records or first.errors):
            return
        ids = ({r.get("external_id") for r in first.records} | {e.external_id for e in first.errors}) - {None, ""}
        if ids <= seen:
            return
        yield first


def quarantine(connection: Connection, err) -> None:
    """A record that cannot be read becomes one technical item that says what could still be read."""
    import hashlib

    from workbench.money import parse_amount

    info = getattr(err, "summary", {}) or {}
    what = " ".join(x for x in (info.get("number"), info.get("name")) if x)
    who = f" from {info['party']}" if info.get("party") else ""
    try:
        amount = parse_amount(info["amount"]) if info.get("amount") else None
    except ValueError:
        amount = None
    currency = info.get("currency", "") if len(info.get("currency", "")) == 3 else ""
    ref = err.external_id or hashlib.sha1(err.raw.encode()).hexdigest()[:16]
    exception_item_raise(
        code="MALFORMED_RECORD", fp=f"MALFORMED_RECORD:{connection.kind}:{ref}",
        message=f"{connection.name} sent {('report ' + what) if what else 'a record'}{who} that cannot be read: {err.message}",
        detail={"source": connection.kind, "external_id": err.external_id, "raw": err.raw[:4000], "summary": info},
        amount=amount, currency=currency.upper(), search_extra=" ".join(info.values()),
    )


# --- posting status and payments from the ERP ---------------------------------------------------


def pull_posting_status(run: SyncRun) -> None:
    """The ERP owns posting status: confirm postings we lost track of and notice payments."""
    connection = run.connection
    connector = connector_for(connection)
    cur = _cursor(connection, "purchase_invoices")

    def on_page(page: Page) -> None:
        ids = [r["external_id"] for r in page.records]
        refs = dict(DocumentRef.objects.filter(system=connection.kind, kind="erp_invoice", external_id__in=ids)
                    .values_list("external_id", "document_id"))
        by_number = {}
        numbers = [r.get("vendor_invoice_number") for r in page.records if r["external_id"] not in refs]
        if numbers:
            for w in push.writes_by_document_number(numbers):
                by_number[w.payload.get("document_number")] = w.document_id
        changed = 0
        with transaction.atomic():
            for rec in page.records:
                doc_id = refs.get(rec["external_id"]) or by_number.get(rec.get("vendor_invoice_number"))
                if doc_id is None:
                    continue
                doc = Document.objects.get(pk=doc_id)
                status = rec.get("status")
                if status in ("open", "paid") and doc.financial_status in ("not_posted", "posting", "rejected"):
                    document_mark_posted(document=doc, erp_system=connection.kind, erp_id=rec["external_id"],
                                         number=rec.get("number") or "", posting_date=rec.get("posting_date") or "")
                    push.enqueue_confirmation(doc)
                    changed += 1
                if status == "paid" and document_mark_paid(document=doc, erp_system=connection.kind, paid_at=None):
                    push.enqueue_payment_confirmation(doc, rec)
                    changed += 1
            if page.next_cursor is not None:
                cur.value = page.next_cursor
                cur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records), records_posted=changed, progress_done=1)

    read_with_retries(connection, lambda: connector.read("purchase_invoices", cur.value), on_page)
    pull_purchase_orders(run, connector)


def pull_purchase_orders(run: SyncRun, connector) -> None:
    """The ERP's purchase orders (ours and those entered there): what invoices are matched against."""
    from sync.p2p import invoices_revalidate_for
    from workbench.services.p2p_documents import p2p_documents_upsert

    connection = run.connection
    if not any(s.name == "purchase_orders" for s in connector.discover()):
        return
    cur = _cursor(connection, "purchase_orders")

    def on_page(page: Page) -> None:
        from sync.p2p import _split

        good, bad = _split(Document.Kind.PURCHASE_ORDER, page)
        with transaction.atomic():
            result = p2p_documents_upsert(system=connection.kind, kind=Document.Kind.PURCHASE_ORDER, records=good)
            invoices_revalidate_for(po_numbers={d.number for d in result.touched})
            for err in bad:
                quarantine(connection, err)
            if page.next_cursor is not None:
                cur.value = page.next_cursor
                cur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records), records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("purchase_orders", cur.value), on_page)


def _procurement(run):
    from sync.p2p import pull_procurement

    pull_procurement(run)


def _approvals(run):
    from sync.p2p import escalate_overdue, pull_approvals

    pull_approvals(run)
    escalate_overdue()


def _identity(run):
    from sync.identity import pull_identity

    pull_identity(run)


JOBS = {
    SyncRun.Job.MASTER_DATA: pull_master_data,
    SyncRun.Job.EXPENSE_PULL: pull_expense_reports,
    SyncRun.Job.POSTING_STATUS: pull_posting_status,
    SyncRun.Job.PROCUREMENT_PULL: _procurement,
    SyncRun.Job.APPROVALS_PULL: _approvals,
    SyncRun.Job.IDENTITY_PULL: _identity,
}


def run_job(run: SyncRun) -> SyncRun:
    """Run one job to the end and record how it went. Never raises for vendor trouble."""
    connection = run.connection
    if not claim(connection, run.job):
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SKIPPED, finished_at=timezone.now(),
                                                 message="Another run of this job is in progress.")
        return run
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.RUNNING, started_at=timezone.now())
    status, message = SyncRun.Status.SUCCEEDED, ""
    try:
        if not connection.enabled:
            raise Skipped("The connection is disabled.")
        JOBS[run.job](run)
    except Skipped as exc:
        status, message = SyncRun.Status.SKIPPED, str(exc)
    except ConnectorError as exc:
        status, message = SyncRun.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
        record_failure(connection, exc)
    except Exception as exc:  # noqa: BLE001 - the run must end recorded, whatever happened
        log.exception("sync run %s failed", run.pk)
        status, message = SyncRun.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
    finally:
        release(connection, run.job)
    updates = {"status": status, "finished_at": timezone.now()}
    if message:
        updates["message"] = message[:2000]
    SyncRun.objects.filter(pk=run.pk).update(**updates)
    run.refresh_from_db()
    return run
