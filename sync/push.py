"""Outbound writes: the outbox and the handlers that record each vendor's answer.

A write is first a row (`OutboundWrite`) with a deterministic idempotency key, committed together
with the state change that caused it; a worker then claims it (compare-and-set), calls the vendor
outside any transaction, and records the outcome in a new transaction. An uncertain outcome is
retried with the same key; the ERP connector looks the document number up before creating, so a
retry can never post twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConfigError, ConnectorError, MalformedPayload, Rejected, TransientError, WriteOp
from sync.backoff import delay_for
from sync.health import connector_for, record_failure, record_success
from sync.models import OutboundWrite
from workbench.models import Connection, CostCenter, Document, DocumentLine
from workbench.services.documents import document_event_add, document_mark_posted, document_mark_rejected
from workbench.services.exception_items import exception_item_raise, exception_items_resolve

log = logging.getLogger(__name__)

POST = "post_expense_report"
POST_INVOICE = "post_supplier_invoice"
CREATE_PO = "create_purchase_order"
CONFIRM = "posting_confirmation"
PAYMENT = "payment_confirmation"
# What "posting" a document to the ERP means, per kind (the outbox treats them alike).
POSTING_ACTIONS = {"expense_report": POST, "supplier_invoice": POST_INVOICE, "requisition": CREATE_PO}
ERP_POSTINGS = set(POSTING_ACTIONS.values())
# Procure-to-pay writes whose outcome sync/p2p.py records.
P2P_ACTIONS = {POST_INVOICE, CREATE_PO, "create_approval", "cancel_approval", "requisition_decision",
               "requisition_ordered", "invoice_status", "requisition_validation"}


def erp_connection() -> Connection | None:
    return Connection.objects.filter(role=Connection.Role.ERP, enabled=True).first()


def system_connection(system: str) -> Connection | None:
    """The enabled connection of a source system ("coupa", "concur"...), if any."""
    return Connection.objects.filter(kind=system, enabled=True).first()


def source_connection(doc: Document) -> Connection | None:
    return system_connection(doc.source_system)


def erp_document_number(doc: Document) -> str:
    """The number the ERP stores as the vendor invoice number: short (BC allows 35), unique per content."""
    digest = hashlib.sha1(doc.posting_key.encode()).hexdigest()[:16].upper()
    return f"EXP-{digest}"


def posting_payload(doc: Document, lines=None) -> dict:
    lines = list(doc.lines.all()) if lines is None else lines
    if doc.kind != Document.Kind.EXPENSE_REPORT:
        from sync.p2p import p2p_posting_payload

        return p2p_posting_payload(doc, lines)
    dates = [ln.date for ln in lines if ln.date]
    posting_date = max(dates) if dates else timezone.now().date()
    return {
        "entity": doc.entity_code,
        "vendor_number": doc.party_code,
        "document_number": erp_document_number(doc),
        "posting_date": posting_date.isoformat(),
        "currency": doc.currency,
        "description": f"{doc.number} {doc.name}"[:100],
        "correlation_id": str(doc.correlation_id),
        "lines": [
            {"account": ln.gl_account, "amount": str(ln.amount), "description": (ln.description or ln.category_name)[:100],
             "cost_center": ln.cost_center, "project": ln.project, "tax_code": ln.tax_code}
            for ln in lines
        ],
    }


def enqueue_postings(docs: list[Document], run=None) -> list[OutboundWrite]:
    """Queue the posting of each approved, unposted document (call inside the page's transaction)."""
    erp = erp_connection()
    if erp is None:
        return []
    docs = [d for d in docs if d.business_status == Document.BusinessStatus.APPROVED
            and d.financial_status in (Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED)
            # Supplier credit notes settle a disputed invoice (sync/p2p.py); they are not posted as invoices.
            and not (d.kind == Document.Kind.SUPPLIER_INVOICE and d.total < 0)]
    if not docs:
        return []
    existing = {w.idempotency_key: w for w in OutboundWrite.objects.filter(idempotency_key__in=[d.posting_key for d in docs])}
    now = timezone.now()
    fresh = [d for d in docs if d.posting_key not in existing]
    claimed = list(fresh)
    for doc in docs:
        prior = existing.get(doc.posting_key)
        if prior is None or prior.status != OutboundWrite.Status.REJECTED:
            continue  # new (below), or on its way, done, or dead (a dead write is replayed with its own key)
        # A refused posting is retried as a new revision (a new ERP document number). Claim it by
        # compare-and-set: of two retries at once only one may bump, or both would post.
        if Document.objects.filter(
            pk=doc.pk, revision=doc.revision,
            financial_status__in=[Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED],
        ).update(financial_status=Document.FinancialStatus.POSTING, revision=F("revision") + 1, updated_at=now):
            doc.revision += 1
            claimed.append(doc)
    if not claimed:
        return []
    lines_by_doc: dict[int, list] = {}
    for ln in DocumentLine.objects.filter(document_id__in=[d.pk for d in claimed]).order_by("document_id", "line_no"):
        lines_by_doc.setdefault(ln.document_id, []).append(ln)
    for doc in claimed:
        if doc.kind == Document.Kind.SUPPLIER_INVOICE:
            from workbench.services.p2p_documents import invoice_consume

            invoice_consume(document=doc)  # its quantities now count against the PO lines
    writes = [OutboundWrite(connection=erp, document=doc, action=POSTING_ACTIONS[doc.kind], idempotency_key=doc.posting_key,
                            payload=posting_payload(doc, lines_by_doc.get(doc.pk, [])), run=run) for doc in claimed]
    # New documents share their key with any concurrent attempt: the unique key keeps it to one write.
    OutboundWrite.objects.bulk_create(writes, ignore_conflicts=True)
    Document.objects.filter(pk__in=[d.pk for d in fresh]).update(financial_status=Document.FinancialStatus.POSTING, updated_at=now)
    for doc in claimed:
        doc.financial_status = Document.FinancialStatus.POSTING
    from workbench.models import DocumentEvent

    DocumentEvent.objects.bulk_create([
        DocumentEvent(document=w.document, at=now, system="workbench", action="posting_queued",
                      message=(f"Approved; queued to create PO {w.payload['number']} in {erp.name}" if w.action == CREATE_PO
                               else f"Validated; queued for posting to {erp.name} as {w.payload['document_number']}"),
                      correlation_id=w.document.correlation_id, data={"idempotency_key": w.idempotency_key})
        for w in writes
    ])
    if writes:
        kick_outbox()
    return writes


def postings_withdraw(docs: list[Document], reason: str) -> list[Document]:
    """Take back the queued ERP postings of expense reports that something new now blocks.

    Only a write no attempt may have delivered is taken back: pending, or dead after failures that
    certainly did not reach the ERP (not `uncertain`). A conditional delete does it, so a worker's
    claim cannot interleave. The report returns to "not posted" and is queued again, under the
    same key, once it is clean. A posting that may already be in the ERP stays, and the report's
    trace says so: if it posts, reversing it is a decision for the ERP's users.
    """
    withdrawn = []
    for doc in docs:
        if doc.kind != Document.Kind.EXPENSE_REPORT or doc.financial_status != Document.FinancialStatus.POSTING:
            continue
        write = OutboundWrite.objects.filter(document=doc, action=POST, idempotency_key=doc.posting_key).first()
        if write is None:
            continue
        deleted, _ = OutboundWrite.objects.filter(
            pk=write.pk, status__in=[OutboundWrite.Status.PENDING, OutboundWrite.Status.DEAD], uncertain=False).delete()
        if not deleted:
            document_event_add(document=doc, system="workbench", action="posting_not_withdrawn",
                               message=f"Could not withdraw the posting: it may already be in the ERP ({reason}). "
                                       "If it posts, reverse it there if it should not be paid.")
            continue
        exception_items_resolve(items=doc.exceptions.filter(code="POSTING_FAILED", detail__write_id=write.pk),
                                action="withdrawn", reason="The posting was withdrawn before it reached the ERP.")
        Document.objects.filter(pk=doc.pk, financial_status=Document.FinancialStatus.POSTING).update(
            financial_status=Document.FinancialStatus.NOT_POSTED, updated_at=timezone.now())
        doc.financial_status = Document.FinancialStatus.NOT_POSTED
        document_event_add(document=doc, system="workbench", action="posting_withdrawn",
                           message=f"Posting withdrawn before it was sent: {reason}")
        withdrawn.append(doc)
    return withdrawn


def enqueue_write(conn: Connection | None, doc: Document | None, action: str, key: str, payload: dict) -> None:
    """Queue one write in the outbox (once per key) and ask a worker to send it."""
    if conn is None:
        return
    OutboundWrite.objects.get_or_create(idempotency_key=key, defaults=dict(connection=conn, document=doc, action=action, payload=payload))
    kick_outbox()


def enqueue_confirmation(doc: Document) -> None:
    """Tell the source what the ERP did (the closed loop): the document number, or the refusal."""
    doc.refresh_from_db()
    if doc.kind != Document.Kind.EXPENSE_REPORT:
        from sync.p2p import p2p_confirmation

        return p2p_confirmation(doc)
    if doc.financial_status in (Document.FinancialStatus.POSTED, Document.FinancialStatus.PAID):
        payload = {"doc_id": doc.source_id, "status": "success", "messages": [], "documents": [{
            "company": doc.entity_code, "document_number": doc.erp_document_number, "fiscal_year": doc.erp_fiscal_year,
            "posting_date": (doc.posted_at or timezone.now()).date().isoformat()}]}
    else:
        payload = {"doc_id": doc.source_id, "status": "error", "documents": [],
                   "messages": [{"id": "ERP", "text": doc.erp_message[:250]}]}
    key = f"{doc.source_system}:{doc.source_id}:v{doc.version}.r{doc.revision}:confirm:{payload['status']}"
    enqueue_write(source_connection(doc), doc, CONFIRM, key, payload)


def enqueue_send_back(item, reason: str) -> bool:
    """A refusal to the source (FIS posting confirmation with status error) carrying the analyst's words."""
    doc = item.document
    if doc is not None and doc.kind != Document.Kind.EXPENSE_REPORT:
        from sync.p2p import p2p_send_back

        return p2p_send_back(item, reason)
    if doc is not None:
        conn, doc_id = source_connection(doc), doc.source_id
        key = f"{doc.source_system}:{doc.source_id}:v{doc.version}.r{doc.revision}:sendback:{item.pk}"
    else:
        conn = system_connection(item.detail.get("source", ""))
        doc_id = item.detail.get("external_id") or ""
        key = f"{item.detail.get('source')}:{doc_id}:sendback:{item.pk}"
    if conn is None or not doc_id:
        return False
    payload = {"doc_id": doc_id, "status": "error", "documents": [],
               "messages": [{"id": item.code, "text": reason[:250]}]}
    enqueue_write(conn, doc, CONFIRM, key, payload)
    return True


def enqueue_payment_confirmation(doc: Document, erp_record: dict) -> None:
    if doc.kind != Document.Kind.EXPENSE_REPORT:
        from sync.p2p import p2p_paid

        return p2p_paid(doc)
    payload = {"doc_id": doc.source_id, "status_code": "CP", "amount": str(doc.total), "currency": doc.currency,
               "date": (erp_record.get("paid_at") or timezone.now().isoformat())[:10],
               "reference": f"{doc.entity_code}/{doc.erp_document_number}/{doc.erp_fiscal_year}"}
    enqueue_write(source_connection(doc), doc, PAYMENT, f"{doc.source_system}:{doc.source_id}:paid", payload)


def writes_by_document_number(numbers: list[str]):
    return OutboundWrite.objects.filter(action__in=[POST, POST_INVOICE], payload__document_number__in=numbers)


# --- processing ---------------------------------------------------------------------------------------

_draining = threading.local()


def _send_kick() -> None:
    from sync.tasks import process_outbox_task

    process_outbox_task.delay()


def kick_outbox() -> None:
    """Ask a worker to drain the outbox once this transaction commits: one message per transaction,
    none while a drain is running (its loop picks new writes up). The schedule is the safety net."""
    if getattr(_draining, "active", False):
        return
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        _send_kick()
    elif not any(entry[1] is _send_kick for entry in conn.run_on_commit):
        transaction.on_commit(_send_kick)


def drain(limit: int = 50, rounds: int = 20) -> int:
    """Process the outbox until nothing is due (bounded); what a worker's drain task does."""
    _draining.active = True
    total = 0
    try:
        for _ in range(rounds):
            n = process_outbox(limit)
            total += n
            if n == 0:
                break
    finally:
        _draining.active = False
    return total



def claim_next() -> tuple[OutboundWrite, object] | None:
    """Claim one due write by compare-and-set; an expired lease (a killed worker) makes it due again.

    One at a time, so a lease starts when its write is really about to be sent. Returns the write
    and its lease, which every later update must still hold.
    """
    now = timezone.now()
    due = (OutboundWrite.objects
           .filter(Q(status=OutboundWrite.Status.PENDING, next_attempt_at__lte=now)
                   | Q(status=OutboundWrite.Status.SENDING, lease_until__lt=now))
           .exclude(connection__health=Connection.Health.DOWN).exclude(connection__enabled=False)
           .order_by("id").values_list("pk", "status")[:5])
    lease = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    for pk, status in due:
        q = OutboundWrite.objects.filter(pk=pk, status=status)
        changes = {"status": OutboundWrite.Status.SENDING, "lease_until": lease, "attempts": F("attempts") + 1}
        if status == OutboundWrite.Status.SENDING:
            q = q.filter(lease_until__lt=now)
            changes["uncertain"] = True  # a lease expired mid-send: the call may have gone through
        if q.update(**changes):
            return OutboundWrite.objects.select_related("connection", "document").get(pk=pk), lease
    return None


def _owned(w: OutboundWrite, lease):
    """The write, if this worker still holds it; a result arriving after the lease expired is dropped."""
    return OutboundWrite.objects.filter(pk=w.pk, status=OutboundWrite.Status.SENDING, lease_until=lease)


def process_outbox(limit: int = 50) -> int:
    """Send up to `limit` due writes; returns how many were attempted."""
    connectors = {}
    n = 0
    while n < limit:
        claimed = claim_next()
        if claimed is None:
            break
        w, lease = claimed
        n += 1
        conn = w.connection
        try:
            connector = connectors.get(conn.pk) or connectors.setdefault(conn.pk, connector_for(conn))
            result = connector.write(WriteOp(w.action, w.payload), idempotency_key=w.idempotency_key)
        except Rejected as exc:
            record_success(conn)
            _rejected(w, lease, exc)
        except (TransientError, MalformedPayload) as exc:
            down = record_failure(conn, exc)
            _failed(w, lease, exc, held=down)
        except ConfigError as exc:
            record_failure(conn, exc)
            _failed(w, lease, exc, held=True)
        except ConnectorError as exc:
            _failed(w, lease, exc, held=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a write the connector does not support: it dies, with an item
            log.exception("outbox write %s failed unexpectedly", w.idempotency_key)
            OutboundWrite.objects.filter(pk=w.pk).update(attempts=settings.SYNC_MAX_ATTEMPTS)
            _failed(w, lease, ConnectorError(f"{exc.__class__.__name__}: {exc}"), held=False)
        else:
            record_success(conn)
            _done(w, lease, result)
    return n


def _plain(data):
    """Vendor answers may carry Decimals (amounts): stored as their exact text."""
    import json

    return json.loads(json.dumps(data or {}, default=str))


@transaction.atomic
def _done(w: OutboundWrite, lease, result) -> None:
    if not _owned(w, lease).update(status=OutboundWrite.Status.DONE, lease_until=None, last_error="",
                                   result={"external_id": result.external_id, "status": result.status,
                                           "message": result.message, "data": _plain(result.data)}):
        return
    doc = w.document
    exception_items_resolve(items=doc.exceptions.filter(code="POSTING_FAILED", detail__write_id=w.pk) if doc else [],
                            action="replayed", reason="The write went through.")
    if w.action in P2P_ACTIONS:
        from sync.p2p import p2p_write_done

        p2p_write_done(w, result)
    elif w.action == POST and doc is not None:
        data = result.data or {}
        document_mark_posted(document=doc, erp_system=w.connection.kind, erp_id=result.external_id,
                             number=str(data.get("number") or ""), fiscal_year=str(data.get("fiscal_year") or ""),
                             posting_date=str(data.get("posting_date") or ""))
        enqueue_confirmation(doc)
    elif w.action == CONFIRM and doc is not None:
        if w.payload["status"] == "success":
            what = f"ERP document {w.payload['documents'][0]['document_number']}"
        else:
            what = "why it was not posted: " + "; ".join(m["text"] for m in w.payload.get("messages", []))
        document_event_add(document=doc, system=w.connection.kind, action="confirmation_received",
                           message=f"{w.connection.name} was told {what}")
    elif w.action == PAYMENT and doc is not None:
        document_event_add(document=doc, system=w.connection.kind, action="payment_confirmed",
                           message=f"{w.connection.name} was told the report is paid ({w.payload['reference']})")


@transaction.atomic
def _rejected(w: OutboundWrite, lease, exc: Rejected) -> None:
    if not _owned(w, lease).update(status=OutboundWrite.Status.REJECTED, lease_until=None,
                                   last_error=f"{exc.code}: {exc.message}"[:2000],
                                   result={"code": exc.code, "message": exc.message}):
        return
    doc = w.document
    if w.action in P2P_ACTIONS and doc is not None:
        from sync.p2p import p2p_write_rejected

        p2p_write_rejected(w, exc)
    elif w.action == POST and doc is not None:
        if exc.field == "cost_center" and exc.value and doc.entity_id:
            # The ERP (system of record) says this cost center is blocked: stop offering it and flag it early.
            CostCenter.objects.filter(entity_id=doc.entity_id, code=exc.value).update(active=False)
        document_mark_rejected(document=doc, erp_system=w.connection.kind, code=exc.code, message=exc.message)
        enqueue_confirmation(doc)
    elif doc is not None:
        exception_item_raise(code="POSTING_FAILED", fp=f"POSTING_FAILED:write{w.pk}", document=doc,
                             message=f"{w.connection.name} refused the {w.action.replace('_', ' ')}: {exc.message}",
                             detail={"write_id": w.pk, "error": f"{exc.code}: {exc.message}"})


@transaction.atomic
def _failed(w: OutboundWrite, lease, exc: Exception, *, held: bool) -> None:
    w.refresh_from_db()
    uncertain = w.uncertain or bool(getattr(exc, "uncertain", False))
    message = f"{exc.__class__.__name__}: {exc}"[:2000]
    if held:
        # The connection's outage is the incident; this write waits for recovery without using up attempts.
        _owned(w, lease).update(status=OutboundWrite.Status.PENDING, lease_until=None, attempts=F("attempts") - 1,
                                uncertain=uncertain, last_error=message)
        return
    if w.attempts >= settings.SYNC_MAX_ATTEMPTS:
        if not _owned(w, lease).update(status=OutboundWrite.Status.DEAD, lease_until=None, uncertain=uncertain,
                                       last_error=message):
            return
        if w.document is not None:
            exception_item_raise(
                code="POSTING_FAILED", fp=f"POSTING_FAILED:write{w.pk}", document=w.document,
                message=f"Gave up on the {w.action.replace('_', ' ')} to {w.connection.name} after {w.attempts} attempts: {message}",
                detail={"write_id": w.pk, "error": message})
        return
    retry_after = getattr(exc, "retry_after", None)
    _owned(w, lease).update(status=OutboundWrite.Status.PENDING, lease_until=None, uncertain=uncertain, last_error=message,
                            next_attempt_at=timezone.now() + timedelta(seconds=delay_for(w.attempts, retry_after)))


@transaction.atomic
def replay(write: OutboundWrite) -> None:
    """Dead-letter replay: same key, attempts reset. A refused write-back (not a posting) may be replayed too."""
    replayable = [OutboundWrite.Status.DEAD] + ([OutboundWrite.Status.REJECTED] if write.action not in ERP_POSTINGS else [])
    OutboundWrite.objects.filter(pk=write.pk, status__in=replayable).update(
        status=OutboundWrite.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), lease_until=None)
    kick_outbox()
