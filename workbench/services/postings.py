"""Postings and write-backs: what the workbench asks other systems to do, and what their answer means.

**Intent.** A service that wants the ERP or a source system told something calls one of the
`*_enqueue` functions here, inside its own transaction: an `OutboundWrite` row with the payload
built here and one deterministic idempotency key (`write_key`), and a request that a worker drain
the outbox once the transaction commits (`workbench.jobs`).

**Delivery** is sync's (sync/push.py): claim, call the connector outside any transaction, back off.

**Outcome.** sync/push.py reports each answer through `write_succeeded`, `write_refused` or
`write_dead`, which apply what it means for the document (its financial status, its exception
items), for master data (a cost center the ERP says is blocked), and queue the closed loop: the
ERP's number, status or refusal goes back to the system the document came from.

The payloads are canonical (connectors/README.md): one builder per payload, whoever queues it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workbench import jobs
from workbench.models import (
    ApprovalTask,
    Connection,
    Document,
    DocumentEvent,
    DocumentLine,
    DocumentRef,
    ErpPosting,
    ExceptionItem,
    OutboundWrite,
    write_key,
)
from workbench.money import parse_amount, quantize
from workbench.selectors.connections import connection_of_role, connection_of_system, erp_connection, source_connection
from workbench.services import masterdata
from workbench.services.accruals import (
    POST_JOURNAL,
    accrual_journal_failed,
    accrual_journal_posted,
    accrual_journal_refused,
)
from workbench.services.credit_notes import credit_note_ready, credit_notes_waiting_for, is_credit_note
from workbench.services.documents import (
    document_financial_transition,
    document_mark_posted,
    document_mark_rejected,
    documents_financial_transition,
)
from workbench.services.exception_items import exception_item_raise, exception_item_transition, exception_items_resolve
from workbench.services.incidents import incident_holdings_refresh
from workbench.services.p2p_documents import invoice_consume, invoice_release
from workbench.services.trace import document_event_add
from workbench.values import as_date

KIND = Document.Kind
FIN = Document.FinancialStatus

# Actions (what a connector's write(op) is asked to do; connectors/README.md).
POST_EXPENSE = "post_expense_report"
POST_INVOICE = "post_supplier_invoice"
CREATE_PO = "create_purchase_order"
CONFIRM = "posting_confirmation"
PAYMENT = "payment_confirmation"
CREATE_APPROVAL = "create_approval"
CANCEL_APPROVAL = "cancel_approval"
REQUISITION_DECISION = "requisition_decision"
REQUISITION_ORDERED = "requisition_ordered"
REQUISITION_VALIDATION = "requisition_validation"
INVOICE_STATUS = "invoice_status"
POST_CREDIT_NOTE = "post_credit_note"
# POST_JOURNAL ("post_accrual_journal"): a period-end accrual or its reversal (services/accruals.py).
# What "posting" a document to the ERP means, per kind.
POSTING_ACTIONS = {KIND.EXPENSE_REPORT: POST_EXPENSE, KIND.SUPPLIER_INVOICE: POST_INVOICE, KIND.REQUISITION: CREATE_PO}
ERP_POSTINGS = frozenset([*POSTING_ACTIONS.values(), POST_CREDIT_NOTE])
POSTABLE = (FIN.NOT_POSTED, FIN.REJECTED)


# --- payloads ---------------------------------------------------------------------------------------------


def erp_document_number(doc: Document) -> str:
    """The number the ERP stores as the vendor invoice number: short (BC allows 35), unique per content."""
    digest = hashlib.sha1(doc.posting_key.encode()).hexdigest()[:16].upper()
    return f"EXP-{digest}"


def po_number_for(doc: Document) -> str:
    """The ERP PO number of a requisition: one per requisition, never shared (manual numbering in the ERP)."""
    return f"PO-R{doc.pk:07d}"


def _today() -> date:
    return timezone.now().date()


def expense_posting_payload(doc: Document, lines: list[DocumentLine]) -> dict:
    dates = [ln.date for ln in lines if ln.date]
    return {
        "entity": doc.entity_code,
        "vendor_number": doc.party_code,
        "document_number": erp_document_number(doc),
        "posting_date": (max(dates) if dates else _today()).isoformat(),
        "currency": doc.currency,
        "description": f"{doc.number} {doc.name}"[:100],
        "correlation_id": str(doc.correlation_id),
        "lines": [
            {
                "account": ln.gl_account,
                "amount": str(ln.amount),
                "description": (ln.description or ln.category_name)[:100],
                "cost_center": ln.cost_center,
                "project": ln.project,
                "tax_code": ln.tax_code,
            }
            for ln in lines
        ],
    }


def purchase_order_payload(doc: Document, lines: list[DocumentLine]) -> dict:
    return {
        "entity": doc.entity_code,
        "number": po_number_for(doc),
        "vendor_number": next((ln.supplier_code for ln in lines if ln.supplier_code), ""),
        "order_date": _today().isoformat(),
        "currency": doc.currency,
        "requisition": doc.number,
        "correlation_id": str(doc.correlation_id),
        "lines": [
            {
                "account": ln.gl_account,
                "description": ln.description[:100],
                "quantity": str(ln.quantity or 1),
                "unit_cost": str(ln.unit_price if ln.unit_price is not None else ln.amount),
                "cost_center": ln.cost_center,
                "project": ln.project,
            }
            for ln in lines
        ],
    }


def supplier_invoice_payload(doc: Document, lines: list[DocumentLine]) -> dict:
    return {
        "entity": doc.entity_code,
        "vendor_number": doc.party_code,
        "document_number": doc.number[:35],
        "invoice_date": (doc.document_date or _today()).isoformat(),
        "posting_date": _today().isoformat(),
        "currency": doc.currency,
        "order_number": doc.po_number,
        "correlation_id": str(doc.correlation_id),
        "lines": [
            {
                "account": (ln.po_line.gl_account if ln.po_line_id else ln.gl_account) or ln.gl_account,
                "description": (ln.description or "")[:100],
                "quantity": str(ln.quantity or 1),
                "unit_cost": str(ln.unit_price if ln.unit_price is not None else ln.amount),
                "cost_center": (ln.po_line.cost_center if ln.po_line_id else ln.cost_center) or "",
                "tax_code": ln.tax_code,
                "po_line_no": ln.po_line.line_no if ln.po_line_id else None,
            }
            for ln in lines
        ],
    }


def _abs_or(value, default):
    return abs(value) if value is not None else default


def credit_note_payload(doc: Document, lines: list[DocumentLine]) -> dict:
    """A credit note as the ERP's credit document: the supplier's credit as positive quantities and
    costs, applied to the ERP invoice of the invoice it corrects. A line without an account or cost
    center takes those of the corrected invoice's line (same PO line, else same number, else first):
    a credit note corrects what that invoice booked."""
    invoice = doc.corrects
    inv_lines = list(invoice.lines.select_related("po_line")) if invoice is not None else []

    def corrected(ln: DocumentLine) -> DocumentLine | None:
        return (
            next((i for i in inv_lines if ln.po_line_no and i.po_line_no == ln.po_line_no), None)
            or next((i for i in inv_lines if i.line_no == ln.line_no), None)
            or (inv_lines[0] if inv_lines else None)
        )

    def coded(ln: DocumentLine | None, field: str) -> str:
        if ln is None:
            return ""
        return (getattr(ln.po_line, field) if ln.po_line_id else "") or getattr(ln, field)

    out = []
    for ln in lines:
        src = corrected(ln)
        quantity = _abs_or(ln.quantity, None) or 1
        unit_cost = _abs_or(ln.unit_price, None)
        if unit_cost is None:  # no price: the whole line amount as one unit
            quantity, unit_cost = 1, abs(ln.amount)
        out.append(
            {
                "account": coded(ln, "gl_account") or coded(src, "gl_account"),
                "description": (ln.description or "")[:100],
                "quantity": str(quantity),
                "unit_cost": str(unit_cost),
                "cost_center": coded(ln, "cost_center") or coded(src, "cost_center"),
                "tax_code": ln.tax_code,
            }
        )
    erp_invoice = (
        ErpPosting.objects.filter(document=invoice, kind=ErpPosting.Kind.SUPPLIER_INVOICE).first()
        if invoice is not None
        else None
    )
    return {
        "entity": doc.entity_code,
        "vendor_number": doc.party_code,
        "document_number": doc.number[:35],
        "credit_memo_date": (doc.document_date or _today()).isoformat(),
        "posting_date": _today().isoformat(),
        "currency": doc.currency,
        "invoice_number": invoice.erp_document_number if invoice is not None else "",
        "invoice_id": erp_invoice.erp_id if erp_invoice is not None else "",
        "corrects": invoice.number if invoice is not None else "",
        "correlation_id": str(doc.correlation_id),
        "lines": out,
    }


def posting_action(doc: Document) -> str:
    """What posting this document asks of the ERP: a credit note is the ERP's credit document."""
    return POST_CREDIT_NOTE if is_credit_note(doc) else POSTING_ACTIONS[doc.kind]


POSTING_PAYLOADS = {
    KIND.EXPENSE_REPORT: expense_posting_payload,
    KIND.REQUISITION: purchase_order_payload,
    KIND.SUPPLIER_INVOICE: supplier_invoice_payload,
}


def posting_payload(doc: Document, lines: list[DocumentLine] | None = None) -> dict:
    lines = list(doc.lines.select_related("po_line").all()) if lines is None else lines
    if is_credit_note(doc):
        return credit_note_payload(doc, lines)
    return POSTING_PAYLOADS[doc.kind](doc, lines)


def expense_confirmation_payload(doc: Document) -> dict:
    """The expense platform's posting confirmation (Concur FIS): the ERP's number, posting date and
    fiscal year as the ERP gave them, or its refusal."""
    if doc.financial_status in (FIN.POSTED, FIN.PAID):
        posted_on = doc.erp_posting_date or (doc.posted_at or timezone.now()).date()
        return {
            "doc_id": doc.source_id,
            "status": "success",
            "messages": [],
            "documents": [
                {
                    "company": doc.entity_code,
                    "document_number": doc.erp_document_number,
                    "fiscal_year": doc.erp_fiscal_year,
                    "posting_date": posted_on.isoformat(),
                }
            ],
        }
    return {
        "doc_id": doc.source_id,
        "status": "error",
        "documents": [],
        "messages": [{"id": "ERP", "text": doc.erp_message[:250]}],
    }


def invoice_status_payload(
    doc: Document, status: str, *, comment: str = "", erp_number: str = "", payment_status: str = ""
) -> dict:
    """The procurement suite's invoice status (approved, disputed, voided), the one builder of it."""
    return {
        "invoice_id": doc.source_id,
        "status": status,
        "erp_document_number": erp_number,
        "payment_status": payment_status,
        "comment": comment[:500],
    }


def requisition_validation_payload(doc: Document, status: str, messages: list[str]) -> dict:
    return {"requisition_id": doc.source_id, "status": status, "messages": [m[:500] for m in messages]}


def approval_task_payload(task: ApprovalTask) -> dict:
    doc = task.document
    return {
        "correlation_key": task.correlation_key,
        "document_number": doc.number,
        "approver": task.approver_code,
        "amount": str(doc.total),
        "currency": doc.currency,
        "description": f"{doc.get_kind_display()} {doc.number}: {doc.name} ({doc.total:,.2f} {doc.currency}) — "
        f"{task.reason}"[:300],
        "due_date": task.due_at.isoformat() if task.due_at else "",
        "sequence": task.sequence,
    }


# --- intent ------------------------------------------------------------------------------------------------


def write_enqueue(conn: Connection | None, doc: Document | None, action: str, key: str, payload: dict) -> bool:
    """Queue one write in the outbox (once per key) and ask a worker to send it. False when there is
    no connection to send it to."""
    if conn is None:
        return False
    OutboundWrite.objects.get_or_create(
        idempotency_key=key, defaults={"connection": conn, "document": doc, "action": action, "payload": payload}
    )
    if conn.health == Connection.Health.DOWN:
        incident_holdings_refresh(connection=conn)  # held from the start: the outage now holds it too
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    return True


def postings_enqueue(docs: list[Document], run_id: int | None = None) -> list[OutboundWrite]:
    """Queue the ERP posting of each approved, unposted document (call inside the caller's transaction).

    A requisition's posting is its PO; a supplier invoice's is the invoice (its quantities then count
    against the PO lines); a supplier credit note's is the ERP's credit document, once the invoice it
    corrects is booked there (until then it waits, visibly: services/credit_notes.py).
    """
    erp = erp_connection()
    if erp is None:
        return []
    docs = [
        d
        for d in docs
        if d.kind in POSTING_ACTIONS
        and d.business_status == Document.BusinessStatus.APPROVED
        and d.financial_status in POSTABLE
        and (not is_credit_note(d) or credit_note_ready(d))
    ]
    if not docs:
        return []
    existing = {
        w.idempotency_key: w for w in OutboundWrite.objects.filter(idempotency_key__in=[d.posting_key for d in docs])
    }
    fresh = [d for d in docs if d.posting_key not in existing]
    claimed = list(fresh)
    for doc in docs:
        prior = existing.get(doc.posting_key)
        if prior is None or prior.status != OutboundWrite.Status.REJECTED:
            continue  # new (above), or on its way, done, or dead (a dead write is replayed with its own key)
        # A refused posting is retried as a new revision (a new ERP document number). Claim it by
        # compare-and-set: of two retries at once only one may bump, or both would post.
        if document_financial_transition(
            document=doc, to=FIN.POSTING, revision=doc.revision, changes={"revision": F("revision") + 1}
        ):
            doc.revision += 1
            claimed.append(doc)
    if not claimed:
        return []
    lines_by_doc: dict[int, list[DocumentLine]] = {}
    for ln in (
        DocumentLine.objects.filter(document_id__in=[d.pk for d in claimed])
        .select_related("po_line")
        .order_by("document_id", "line_no")
    ):
        lines_by_doc.setdefault(ln.document_id, []).append(ln)
    for doc in claimed:
        if doc.kind == KIND.SUPPLIER_INVOICE and not is_credit_note(doc):
            invoice_consume(document=doc)  # its quantities now count against the PO lines
    writes = [
        OutboundWrite(
            connection=erp,
            document=doc,
            action=posting_action(doc),
            idempotency_key=doc.posting_key,
            payload=posting_payload(doc, lines_by_doc.get(doc.pk, [])),
            run_id=run_id,
        )
        for doc in claimed
    ]
    # New documents share their key with any concurrent attempt: the unique key keeps it to one write.
    OutboundWrite.objects.bulk_create(writes, ignore_conflicts=True)
    documents_financial_transition(documents=fresh, to=FIN.POSTING)
    now = timezone.now()
    DocumentEvent.objects.bulk_create(
        [
            DocumentEvent(
                document=w.document,
                at=now,
                system="workbench",
                action="posting_queued",
                message=_queued_message(w, erp),
                correlation_id=w.document.correlation_id,
                data={"idempotency_key": w.idempotency_key},
            )
            for w in writes
        ]
    )
    if erp.health == Connection.Health.DOWN:
        incident_holdings_refresh(connection=erp)  # held from the start: the outage now holds them too
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    return writes


def _queued_message(write: OutboundWrite, erp: Connection) -> str:
    if write.action == CREATE_PO:
        return f"Approved; queued to create PO {write.payload['number']} in {erp.name}"
    if write.action == POST_CREDIT_NOTE:
        applied = write.payload.get("invoice_number")
        return f"Validated; queued for posting to {erp.name} as credit memo {write.payload['document_number']}" + (
            f", applied to invoice {write.payload['corrects']} ({applied})" if applied else ""
        )
    return f"Validated; queued for posting to {erp.name} as {write.payload['document_number']}"


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
        if doc.kind != KIND.EXPENSE_REPORT or doc.financial_status != FIN.POSTING:
            continue
        write = OutboundWrite.objects.filter(document=doc, action=POST_EXPENSE, idempotency_key=doc.posting_key).first()
        if write is None:
            continue
        deleted, _ = OutboundWrite.objects.filter(
            pk=write.pk, status__in=[OutboundWrite.Status.PENDING, OutboundWrite.Status.DEAD], uncertain=False
        ).delete()
        if not deleted:
            document_event_add(
                document=doc,
                system="workbench",
                action="posting_not_withdrawn",
                message=f"Could not withdraw the posting: it may already be in the ERP ({reason}). "
                "If it posts, reverse it there if it should not be paid.",
            )
            continue
        exception_items_resolve(
            items=doc.exceptions.filter(code="POSTING_FAILED", detail__write_id=write.pk),
            action="withdrawn",
            reason="The posting was withdrawn before it reached the ERP.",
        )
        document_financial_transition(document=doc, to=FIN.NOT_POSTED)
        document_event_add(
            document=doc,
            system="workbench",
            action="posting_withdrawn",
            message=f"Posting withdrawn before it was sent: {reason}",
        )
        withdrawn.append(doc)
    return withdrawn


def confirmation_enqueue(doc: Document) -> None:
    """Tell the source what the ERP did with its document (the closed loop): the ERP's number and
    status, or its refusal in the ERP's words."""
    doc.refresh_from_db()
    if is_credit_note(doc):
        credit_note_confirmation_enqueue(doc)
        return
    source = source_connection(doc)
    if doc.kind == KIND.EXPENSE_REPORT:
        payload = expense_confirmation_payload(doc)
        write_enqueue(source, doc, CONFIRM, write_key(doc, "confirm", payload["status"]), payload)
    elif doc.kind == KIND.SUPPLIER_INVOICE and _procurement(source):
        if doc.financial_status in (FIN.POSTED, FIN.READY_FOR_PAYMENT, FIN.PAID):
            payload = invoice_status_payload(
                doc,
                "approved",
                erp_number=doc.erp_document_number,
                payment_status="paid" if doc.financial_status == FIN.PAID else "ready_for_payment",
                comment="Matched to PO and receipt; posted in the ERP.",
            )
        else:
            payload = invoice_status_payload(doc, "disputed", comment=f"The ERP refused the invoice: {doc.erp_message}")
        write_enqueue(source, doc, INVOICE_STATUS, write_key(doc, "post", "status", doc.financial_status), payload)
    elif doc.kind == KIND.REQUISITION and _procurement(source) and doc.financial_status == FIN.REJECTED:
        # The requisition was approved, but the ERP would not create its PO: the requester sees why.
        payload = requisition_validation_payload(
            doc, "invalid", [f"The ERP refused to create the PO: {doc.erp_message}"]
        )
        write_enqueue(source, doc, REQUISITION_VALIDATION, write_key(doc, "post", "refused"), payload)


def credit_note_confirmation_enqueue(doc: Document) -> None:
    """Close the loop on a credit note: the procurement suite sees it approved with the ERP's credit
    memo number (or disputed in the ERP's words); a UBL credit note has no channel back, and its trace
    says so."""
    source = source_connection(doc)
    booked = doc.financial_status in (FIN.POSTED, FIN.READY_FOR_PAYMENT, FIN.PAID)
    if not _procurement(source):
        document_event_add(
            document=doc,
            system="workbench",
            action="no_source_channel",
            message=f"{doc.source_system or 'The source'} has no channel back: tell the supplier "
            + (
                f"that credit note {doc.number} is booked as {doc.erp_document_number}."
                if booked
                else f"why credit note {doc.number} was refused: {doc.erp_message}"
            ),
        )
        return
    if booked:
        applied = f", applied to invoice {doc.corrects.number}" if doc.corrects_id else ""
        payload = invoice_status_payload(
            doc,
            "approved",
            erp_number=doc.erp_document_number,
            comment=f"Booked in the ERP as credit memo {doc.erp_document_number}{applied}.",
        )
    else:
        payload = invoice_status_payload(doc, "disputed", comment=f"The ERP refused the credit note: {doc.erp_message}")
    write_enqueue(source, doc, INVOICE_STATUS, write_key(doc, "post", "status", doc.financial_status), payload)


def payment_confirmation_enqueue(doc: Document, paid_on: str = "") -> None:
    """Tell the source a document is paid (once per document)."""
    source = source_connection(doc)
    key = write_key(f"{doc.source_system}:{doc.source_id}", "paid")
    if doc.kind == KIND.EXPENSE_REPORT:
        payload = {
            "doc_id": doc.source_id,
            "status_code": "CP",
            "amount": str(doc.total),
            "currency": doc.currency,
            "date": (paid_on or timezone.now().isoformat())[:10],
            "reference": f"{doc.entity_code}/{doc.erp_document_number}/{doc.erp_fiscal_year}",
        }
        write_enqueue(source, doc, PAYMENT, key, payload)
    elif doc.kind == KIND.SUPPLIER_INVOICE and _procurement(source):
        write_enqueue(
            source,
            doc,
            INVOICE_STATUS,
            key,
            invoice_status_payload(
                doc, "approved", erp_number=doc.erp_document_number, payment_status="paid", comment="Paid in the ERP."
            ),
        )


def invoice_status_enqueue(doc: Document, status: str, comment: str, *, reason_key: str) -> bool:
    """Dispute, void or reject an invoice in its source with our words (the supplier's channel)."""
    source = source_connection(doc)
    if source is None:
        document_event_add(
            document=doc,
            system="workbench",
            action="supplier_notified",
            message=f"No connection to {doc.source_system}: tell the supplier through its channel.",
        )
        return False
    return write_enqueue(
        source,
        doc,
        INVOICE_STATUS,
        write_key(doc, "post", reason_key),
        invoice_status_payload(doc, status, comment=comment),
    )


def send_back_enqueue(item: ExceptionItem, reason: str) -> bool:
    """Return an item's document to its source with the analyst's words; False if the source cannot be told."""
    doc = item.document
    if doc is None:  # a record that could not be read: refuse it at the source by its id
        source_system, doc_id = item.detail.get("source", ""), item.detail.get("external_id") or ""
        if not doc_id:
            return False
        payload = {
            "doc_id": doc_id,
            "status": "error",
            "documents": [],
            "messages": [{"id": item.code, "text": reason[:250]}],
        }
        return write_enqueue(
            connection_of_system(source_system),
            None,
            CONFIRM,
            write_key(f"{source_system}:{doc_id}", "sendback", item.pk),
            payload,
        )
    source = source_connection(doc)
    if doc.kind == KIND.EXPENSE_REPORT:
        payload = {
            "doc_id": doc.source_id,
            "status": "error",
            "documents": [],
            "messages": [{"id": item.code, "text": reason[:250]}],
        }
        return write_enqueue(source, doc, CONFIRM, write_key(doc, "sendback", item.pk), payload)
    if not _procurement(source):
        return False
    key = write_key(doc, "post", "sendback", item.pk)
    if doc.kind == KIND.REQUISITION:
        return write_enqueue(
            source, doc, REQUISITION_VALIDATION, key, requisition_validation_payload(doc, "invalid", [reason])
        )
    if doc.kind == KIND.SUPPLIER_INVOICE:
        return write_enqueue(source, doc, INVOICE_STATUS, key, invoice_status_payload(doc, "disputed", comment=reason))
    return False


def requisition_decision_enqueue(doc: Document, decision: str, comment: str, approver: str) -> None:
    """The approval engine decided: tell the procurement suite; an approval also queues the PO."""
    write_enqueue(
        source_connection(doc),
        doc,
        REQUISITION_DECISION,
        write_key(doc, "post", "decision", decision),
        {"requisition_id": doc.source_id, "decision": decision, "comment": comment, "approver": approver},
    )
    if decision == "approved":
        postings_enqueue([doc])


def approval_task_enqueue(task: ApprovalTask) -> None:
    write_enqueue(
        connection_of_role(Connection.Role.APPROVALS),
        task.document,
        CREATE_APPROVAL,
        write_key(task.correlation_key, "create"),
        approval_task_payload(task),
    )


def approval_cancel_enqueue(task: ApprovalTask, comment: str) -> None:
    if task.external_id:
        write_enqueue(
            connection_of_role(Connection.Role.APPROVALS),
            task.document,
            CANCEL_APPROVAL,
            write_key(task.correlation_key, "cancel"),
            {"sys_id": task.external_id, "comments": comment},
        )


@transaction.atomic
def write_replay(write: OutboundWrite) -> bool:
    """Dead-letter replay: same key, attempts reset. A refused write-back (not a posting) may be replayed too."""
    replayable = [OutboundWrite.Status.DEAD] + (
        [OutboundWrite.Status.REJECTED] if write.action not in ERP_POSTINGS else []
    )
    replayed = OutboundWrite.objects.filter(pk=write.pk, status__in=replayable).update(
        status=OutboundWrite.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), lease_until=None
    )
    jobs.enqueue_on_commit(jobs.PROCESS_OUTBOX)
    return bool(replayed)


def _procurement(source: Connection | None) -> bool:
    return source is not None and source.role == Connection.Role.PROCUREMENT


# --- outcomes ---------------------------------------------------------------------------------------------


def _plain(data):
    """Vendor answers may carry Decimals (amounts): stored as their exact text."""
    return json.loads(json.dumps(data or {}, default=str))


def result_record(result) -> dict:
    """What is kept of a vendor's answer on the write."""
    return {
        "external_id": result.external_id,
        "status": result.status,
        "message": result.message,
        "data": _plain(result.data),
    }


def booked_amount(payload: dict, currency: str) -> Decimal:
    """What a purchase invoice or credit memo we send adds to the ERP's books before the tax the
    ERP computes: each line rounded to the currency's minor units, as the ERP rounds line amounts,
    then summed. The nightly proof compares this with the ERP's total excluding tax."""
    total = Decimal(0)
    for line in payload.get("lines") or []:
        if line.get("unit_cost") is not None:
            amount = parse_amount(line.get("quantity") or 1) * parse_amount(line["unit_cost"])
        else:
            amount = parse_amount(line.get("amount") or 0)
        total += quantize(amount, currency)
    return total


def erp_posting_record(
    *,
    write: OutboundWrite,
    result,
    kind: str,
    entity_id: int,
    amount,
    currency: str,
    posting_date: str | date,
    reference: str = "",
    document: Document | None = None,
) -> ErpPosting:
    """Remember what the ERP now holds because of this write (once per ERP document): the nightly
    proof sums these, the posted-document reconciliation looks each one up again."""
    day = posting_date if isinstance(posting_date, date) else date.fromisoformat(str(posting_date)[:10])
    data = result.data or {}
    posting, _ = ErpPosting.objects.get_or_create(
        connection=write.connection,
        kind=kind,
        erp_id=str(result.external_id)[:100],
        defaults={
            "entity_id": entity_id,
            "document": document,
            "write": write,
            "erp_number": str(data.get("number") or "")[:60],
            "reference": reference[:60],
            "amount": amount,
            "currency": currency,
            "posting_date": day,
            "period": day.isoformat()[:7],
        },
    )
    return posting


def write_succeeded(write: OutboundWrite, result) -> None:
    """The vendor did it. Call inside the transaction that marked the write done."""
    if write.action == POST_JOURNAL:
        _journal_succeeded(write, result)
        return
    doc = write.document
    if doc is None:
        return
    exception_items_resolve(
        items=doc.exceptions.filter(code="POSTING_FAILED", detail__write_id=write.pk),
        action="replayed",
        reason="The write went through.",
    )
    data = result.data or {}
    conn = write.connection
    if write.action in (POST_EXPENSE, POST_INVOICE):
        posted_now = document_mark_posted(
            document=doc,
            erp_system=conn.kind,
            erp_id=result.external_id,
            number=str(data.get("number") or ""),
            fiscal_year=str(data.get("fiscal_year") or ""),
            posting_date=str(data.get("posting_date") or ""),
        )
        if not posted_now and write.payload.get("reposted_from"):
            _document_reposted(doc, conn, result)
        if doc.entity_id and data.get("posting_date"):
            erp_posting_record(
                write=write,
                result=result,
                kind=ErpPosting.Kind.EXPENSE_REPORT
                if write.action == POST_EXPENSE
                else ErpPosting.Kind.SUPPLIER_INVOICE,
                entity_id=doc.entity_id,
                amount=booked_amount(write.payload, doc.currency),
                currency=doc.currency,
                posting_date=str(data["posting_date"]),
                reference=str(write.payload.get("document_number") or ""),
                document=doc,
            )
        # Ready for payment once, whichever of the answer and the posting-status pull saw it posted first.
        if (
            write.action == POST_INVOICE and document_financial_transition(document=doc, to=FIN.READY_FOR_PAYMENT)
            if doc.financial_status == FIN.POSTED
            else False
        ):
            document_event_add(
                document=doc,
                system="workbench",
                action="ready_for_payment",
                message="Matched and posted: ready for payment",
            )
        confirmation_enqueue(doc)
        if write.action == POST_INVOICE:
            # Credit notes that waited for this invoice to be booked can follow it now.
            postings_enqueue(credit_notes_waiting_for(doc))
    elif write.action == POST_CREDIT_NOTE:
        credit_note_booked(write, result)
    elif write.action == CREATE_PO:
        number = str(data.get("number") or write.payload.get("number"))
        document_mark_posted(document=doc, erp_system=conn.kind, erp_id=result.external_id, number=number)
        write_enqueue(
            source_connection(doc),
            doc,
            REQUISITION_ORDERED,
            write_key(doc, "post", "ordered"),
            {
                "requisition_id": doc.source_id,
                "po_number": number,
                "commitment": str(data.get("total") or doc.total),
                "currency": doc.currency,
            },
        )
    elif write.action == CREATE_APPROVAL:
        ApprovalTask.objects.filter(correlation_key=write.payload.get("correlation_key")).update(
            external_id=result.external_id
        )
        document_event_add(
            document=doc,
            system=conn.kind,
            action="approval_requested",
            message=f"Approval requested from {write.payload.get('approver')} in {conn.name}",
        )
    elif write.action == CONFIRM:
        if write.payload["status"] == "success":
            what = f"ERP document {write.payload['documents'][0]['document_number']}"
        else:
            what = "why it was not posted: " + "; ".join(m["text"] for m in write.payload.get("messages", []))
        document_event_add(
            document=doc, system=conn.kind, action="confirmation_received", message=f"{conn.name} was told {what}"
        )
    elif write.action == PAYMENT:
        document_event_add(
            document=doc,
            system=conn.kind,
            action="payment_confirmed",
            message=f"{conn.name} was told the report is paid ({write.payload['reference']})",
        )
    else:
        document_event_add(
            document=doc,
            system=conn.kind,
            action=write.action,
            message=f"{conn.name} was told: {write.action.replace('_', ' ')}",
        )


def credit_note_booked(write: OutboundWrite, result) -> None:
    """The ERP booked a credit note as its credit memo: the credit note is posted, the ledger row
    remembers the (negative) amount, both the credit note and its invoice say so, and the source is told."""
    doc, conn, data = write.document, write.connection, result.data or {}
    number = str(data.get("number") or "")
    first = document_mark_posted(
        document=doc,
        erp_system=conn.kind,
        erp_id=result.external_id,
        number=number,
        fiscal_year=str(data.get("fiscal_year") or ""),
        posting_date=str(data.get("posting_date") or ""),
    )
    if doc.entity_id and data.get("posting_date"):
        erp_posting_record(
            write=write,
            result=result,
            kind=ErpPosting.Kind.CREDIT_MEMO,
            entity_id=doc.entity_id,
            amount=-booked_amount(write.payload, doc.currency),
            currency=doc.currency,
            posting_date=str(data["posting_date"]),
            reference=str(write.payload.get("document_number") or ""),
            document=doc,
        )
    applied = str(data.get("invoice_number") or "")
    invoice = doc.corrects
    if not first:  # a second delivery of the same answer: the trace already says it
        return
    document_event_add(
        document=doc,
        system=conn.kind,
        action="credit_memo_booked",
        message=f"Booked in {conn.name} as credit memo {number}"
        + (f", applied to invoice {invoice.number if invoice else ''} ({applied})" if applied else " (on account)"),
        data={"erp_id": result.external_id, "invoice_number": applied},
    )
    if invoice is not None:
        document_event_add(
            document=invoice,
            system=conn.kind,
            action="credit_note_booked",
            message=f"Credit note {doc.number} ({doc.total:,.2f} {doc.currency}) booked in {conn.name} as credit "
            f"memo {number}" + (f", applied to this invoice ({applied})" if applied else ""),
            data={"credit_note_id": doc.pk, "erp_id": result.external_id},
        )
    confirmation_enqueue(doc)


def _journal_succeeded(write: OutboundWrite, result) -> None:
    """An accrual journal (or its reversal) is booked: recorded with what it adds to the books."""
    journal = accrual_journal_posted(write, result)
    if journal is None:
        return
    erp_posting_record(
        write=write,
        result=result,
        kind=ErpPosting.Kind.ACCRUAL if journal.kind == "accrual" else ErpPosting.Kind.ACCRUAL_REVERSAL,
        entity_id=journal.entity_id,
        amount=journal.amount,  # signed: the reversal's is negative
        currency=journal.currency,
        posting_date=str((result.data or {}).get("posting_date") or journal.posting_date),
        reference=journal.document_number,
    )


def _document_reposted(doc: Document, conn: Connection, result) -> None:
    """A re-post of a document the ERP lost (services/reconciliation_items.py) went through: the
    document now answers to the ERP's new number; the lost one stays in its trace."""
    data = result.data or {}
    number = str(data.get("number") or "")
    day = as_date(str(data.get("posting_date") or ""))
    Document.objects.filter(pk=doc.pk).update(
        erp_document_number=number, **({"erp_posting_date": day} if day else {}), updated_at=timezone.now()
    )
    DocumentRef.objects.get_or_create(
        system=conn.kind, kind="erp_invoice", external_id=result.external_id, defaults={"document": doc}
    )
    if number:
        DocumentRef.objects.get_or_create(
            system=conn.kind, kind="erp_number", external_id=f"{doc.entity_code}:{number}", defaults={"document": doc}
        )
    # The lost posting is history now: the proof and the next reconciliation count the new one.
    ErpPosting.objects.filter(document=doc, connection=conn, superseded_at__isnull=True).exclude(
        erp_id=str(result.external_id)[:100]
    ).update(superseded_at=timezone.now())
    document_event_add(document=doc, system=conn.kind, action="posted", message=f"Posted again in the ERP as {number}")


def write_refused(write: OutboundWrite, *, code: str, message: str, field: str = "", value: str = "") -> None:
    """The vendor refused it (a business answer, not retried). Call inside the transaction that marked
    the write rejected."""
    if write.action == POST_JOURNAL:
        accrual_journal_refused(write, code=code, message=message)
        return
    doc = write.document
    if doc is None:
        return
    conn = write.connection
    if write.payload.get("reposted_from"):
        _repost_refused(write, code=code, message=message)
        return
    if write.action in ERP_POSTINGS:
        if write.action == POST_EXPENSE and field == "cost_center" and value and doc.entity_id:
            # The ERP (the system of record for cost centers) says this one is blocked.
            masterdata.cost_center_blocked_by_erp(entity_id=doc.entity_id, code=value, reason=message)
        if write.action == POST_INVOICE:
            invoice_release(document=doc)  # counted again when a fix or retry queues it anew
        document_mark_rejected(document=doc, erp_system=conn.kind, code=code, message=message)
        confirmation_enqueue(doc)
    elif write.action == CREATE_APPROVAL and ":variance:" in str(write.payload.get("correlation_key")):
        key = str(write.payload["correlation_key"])
        ApprovalTask.objects.filter(correlation_key=key).update(
            state=ApprovalTask.State.CANCELLED, comments=message[:2000]
        )
        item = ExceptionItem.objects.filter(pk=int(key.split(":variance:")[1].split(":")[0]), status="waiting").first()
        if item is not None:
            exception_item_transition(
                item=item,
                to="open",
                action="routing_refused",
                reason=f"{conn.name} refused the approval for {write.payload.get('approver')}: {message}",
            )
    elif write.action == CREATE_APPROVAL:
        exception_item_raise(
            code="NO_APPROVER",
            fp=f"NO_APPROVER:write{write.pk}",
            document=doc,
            message=f"{conn.name} refused the approval task for {write.payload.get('approver')}: {message}",
            root_cause=str(write.payload.get("approver") or ""),
        )
    else:
        exception_item_raise(
            code="POSTING_FAILED",
            fp=f"POSTING_FAILED:write{write.pk}",
            document=doc,
            message=f"{conn.name} refused the {write.action.replace('_', ' ')}: {message}",
            detail={"write_id": write.pk, "error": f"{code}: {message}"},
        )


def _repost_refused(write: OutboundWrite, *, code: str, message: str) -> None:
    """The ERP refused to book again a document it had lost. The document keeps its state (it was
    posted, maybe paid); the drift item that asked for the re-post goes back to a person with the
    ERP's words."""
    doc = write.document
    document_event_add(
        document=doc,
        system=write.connection.kind,
        action="repost_refused",
        message=f"{write.connection.name} refused to post it again: {message}",
        data={"code": code, "write_id": write.pk},
    )
    for item in ExceptionItem.objects.filter(
        code="POSTING_DRIFT", detail__repost_write_id=write.pk, status=ExceptionItem.Status.WAITING
    ):
        exception_item_transition(
            item=item, to="open", action="repost_refused", reason=f"The ERP refused the re-post: {message}"
        )


def write_dead(write: OutboundWrite, *, attempts: int, error: str) -> None:
    """Gave up after the last attempt: a technical item with a Replay action."""
    if write.action == POST_JOURNAL:
        accrual_journal_failed(write, error=error)
        return
    if write.document is not None:
        exception_item_raise(
            code="POSTING_FAILED",
            fp=f"POSTING_FAILED:write{write.pk}",
            document=write.document,
            message=f"Gave up on the {write.action.replace('_', ' ')} to {write.connection.name} after {attempts} attempts: "
            f"{error}",
            detail={"write_id": write.pk, "error": error},
        )
