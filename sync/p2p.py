"""Procure-to-pay sync: requisitions, approvals, POs, receipts and supplier invoices across systems.

- procurement pull (Coupa): categories and contracts; requisitions (validated, then routed for
  approval); receipts and invoices as queues (stored, matched, then marked exported);
- approvals pull (ServiceNow): approvers' managers, and decisions, which move the chain on;
- ERP (Business Central): vendor master and budgets come with master data; POs are read back;
- writes go through the outbox like every other: approval tasks, the PO of an approved
  requisition, the posting of a matched invoice, and the closed loop back to the source (decision,
  ERP PO number and commitment, invoice status and payment readiness).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError, Page, RecordError, WriteOp
from sync import push
from sync.health import connector_for
from sync.models import OutboundWrite, SyncRun
from sync.pull import _cursor, _progress
from workbench.errors import WorkbenchError
from workbench.models import ApprovalTask, Connection, Document, Employee
from workbench.rules.context import MasterDataContext
from workbench.services import approvals
from workbench.services.documents import document_event_add, document_mark_posted, document_mark_rejected
from workbench.services.exception_items import exception_item_raise
from workbench.services.masterdata import PROCUREMENT_STREAMS, masterdata_upsert
from workbench.services.ownership import employees_field_update
from workbench.services.p2p_documents import check_p2p_record, p2p_documents_upsert
from workbench.services.supplier_links import ErpVendors, supplier_links_refresh
from workbench.services.validation import documents_validate

log = logging.getLogger(__name__)
KIND = Document.Kind


def connection_of(role: str) -> Connection | None:
    return Connection.objects.filter(role=role, enabled=True).first()


def _split(kind: str, page: Page) -> tuple[list[dict], list[RecordError]]:
    good, bad = [], list(page.errors)
    for rec in page.records:
        problem = check_p2p_record(kind, rec)
        if problem:
            bad.append(RecordError(str(rec.get("external_id") or ""), problem, repr(rec)[:4000],
                                   {"number": str(rec.get("number") or ""), "amount": str(rec.get("total") or ""),
                                    "currency": str(rec.get("currency") or "")}))
        else:
            good.append(rec)
    return good, bad


# --- procurement pull ---------------------------------------------------------------------------------


def pull_procurement(run: SyncRun) -> None:
    from sync.pull import Skipped, quarantine, queue_pages, read_with_retries

    connection = run.connection
    erp = connection_of(Connection.Role.ERP)
    if erp is None or erp.master_data_synced_at is None:
        raise Skipped("Waiting for the ERP's master data: procurement documents are pulled after the first master-data sync.")
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=6)

    for stream in PROCUREMENT_STREAMS:
        cur = _cursor(connection, stream)

        def on_master(page: Page, stream=stream, cur=cur) -> None:
            with transaction.atomic():
                stored, errs = masterdata_upsert(stream=stream, records=page.records)
                if page.next_cursor is not None:
                    cur.value = page.next_cursor
                    cur.save(update_fields=["value", "updated_at"])
            _progress(run, records_read=stored, records_failed=len(errs) + len(page.errors))

        read_with_retries(connection, lambda stream=stream, cur=cur: connector.read(stream, cur.value), on_master)
    _progress(run, progress_done=1)

    # Suppliers: matched against the ERP's vendor master into the crosswalk, never written to it (the
    # ERP owns vendors). Before the documents, so that they find their vendor through it.
    scur = _cursor(connection, "suppliers")
    vendors = ErpVendors.load()  # read and indexed once per run, not per page

    def on_suppliers(page: Page) -> None:
        with transaction.atomic():
            supplier_links_refresh(system=connection.kind, records=page.records, connection=connection, vendors=vendors)
            if page.next_cursor is not None:
                scur.value = page.next_cursor
                scur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records), records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("suppliers", scur.value), on_suppliers)
    _progress(run, progress_done=1)

    # Requisitions: stored, validated; valid ones waiting for approval are routed.
    cur = _cursor(connection, "requisitions")
    ctx = MasterDataContext.load()

    def on_requisitions(page: Page) -> None:
        good, bad = _split(KIND.REQUISITION, page)
        with transaction.atomic():
            result = p2p_documents_upsert(system=connection.kind, kind=KIND.REQUISITION, records=good)
            pending = [d for d in result.touched if d.business_status == Document.BusinessStatus.PENDING]
            clean = documents_validate(documents=pending, ctx=ctx)
            for doc in clean:
                requisition_send_for_approval(doc)
            for err in bad:
                quarantine(connection, err)
            if page.next_cursor is not None:
                cur.value = page.next_cursor
                cur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad))

    read_with_retries(connection, lambda: connector.read("requisitions", cur.value), on_requisitions)
    _progress(run, progress_done=1)

    # Receipts and invoices are queues: what is stored is marked exported, so it is never read again.
    for stream, kind, obj in (("receipts", KIND.GOODS_RECEIPT, "receipts"), ("invoices", KIND.SUPPLIER_INVOICE, "invoices")):
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
                            from workbench.services.invoices import credit_note_apply

                            credit_note_apply(credit_note=doc)
                    clean = documents_validate(documents=result.touched, ctx=ctx)
                    push.enqueue_postings([d for d in clean if d.financial_status == Document.FinancialStatus.NOT_POSTED], run=run)
                for err in bad:
                    quarantine(connection, err)
            ids = [r["external_id"] for r in page.records if r.get("external_id")] + [e.external_id for e in page.errors if e.external_id]
            if ids:
                try:
                    connector.write(WriteOp("mark_exported", {"object": obj, "ids": ids}),
                                    idempotency_key=f"exported:{obj}:{ids[0]}:{len(ids)}")
                except ConnectorError as exc:
                    log.warning("%s: marking %s exported failed (%s); they will be read again", connection.name, obj, exc)
            seen.update(ids)
            _progress(run, records_read=len(page.records) + len(page.errors), records_failed=len(bad))

        read_with_retries(connection, lambda stream=stream, seen=seen: queue_pages(connector, stream, seen), on_queue)
        _progress(run, progress_done=1)
    push.kick_outbox()


def invoices_revalidate_for(*, po_numbers: set[str]) -> int:
    """A receipt (or a PO) arrived: invoices waiting on it are matched again."""
    po_numbers = {n for n in po_numbers if n}
    if not po_numbers:
        return 0
    docs = list(Document.objects.filter(kind=KIND.SUPPLIER_INVOICE, po_number__in=po_numbers,
                                        financial_status=Document.FinancialStatus.NOT_POSTED))
    if docs:
        clean = documents_validate(documents=docs)
        push.enqueue_postings(clean)
    return len(docs)


# --- approvals ------------------------------------------------------------------------------------------


def requisition_send_for_approval(doc: Document) -> None:
    """Route a valid requisition and send its first approval task to the approval engine."""
    tasks = approvals.requisition_route(document=doc)
    for task in tasks:
        if task.state == ApprovalTask.State.REQUESTED and not task.external_id:
            send_task(task)


def send_task(task: ApprovalTask) -> None:
    doc = task.document
    conn = connection_of(Connection.Role.APPROVALS)
    payload = {"correlation_key": task.correlation_key, "document_number": doc.number, "approver": task.approver_code,
               "amount": str(doc.total), "currency": doc.currency,
               "description": f"{doc.get_kind_display()} {doc.number}: {doc.name} ({doc.total:,.2f} {doc.currency}) — {task.reason}"[:300],
               "due_date": task.due_at.isoformat() if task.due_at else "", "sequence": task.sequence}
    push.enqueue_write(conn, doc, "create_approval", f"{task.correlation_key}:create", payload)


def pull_approvals(run: SyncRun) -> None:
    from sync.pull import read_with_retries

    connection = run.connection
    connector = connector_for(connection)
    SyncRun.objects.filter(pk=run.pk).update(progress_total=2)
    cur = _cursor(connection, "users")

    def on_users(page: Page) -> None:
        with transaction.atomic():
            # The identity provider owns managers once it is connected: then this is only a cross-check.
            employees_field_update(field="manager_code", source=Connection.Role.APPROVALS, source_name=connection.name,
                                   connection=connection,
                                   values={str(r["employee_number"])[:40]: str(r.get("manager") or "")[:40]
                                           for r in page.records if r.get("employee_number")})
            if page.next_cursor is not None:
                cur.value = page.next_cursor
                cur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records))

    read_with_retries(connection, lambda: connector.read("users", cur.value), on_users)
    _progress(run, progress_done=1)
    dcur = _cursor(connection, "approvals")

    def on_decisions(page: Page) -> None:
        with transaction.atomic():
            n = approval_decisions_apply(page.records)
            if page.next_cursor is not None:
                dcur.value = page.next_cursor
                dcur.save(update_fields=["value", "updated_at"])
        _progress(run, records_read=len(page.records), records_posted=n, records_failed=len(page.errors))

    read_with_retries(connection, lambda: connector.read("approvals", dcur.value), on_decisions)
    _progress(run, progress_done=1)


def approval_decisions_apply(records: list[dict]) -> int:
    keys = [r.get("correlation_key") for r in records if r.get("correlation_key")]
    tasks = {t.correlation_key: t for t in ApprovalTask.objects.filter(correlation_key__in=keys).select_related("document")}
    n = 0
    for rec in records:
        task = tasks.get(rec.get("correlation_key") or "")
        if task is None or rec.get("state") not in ("approved", "rejected"):
            continue
        try:
            with transaction.atomic():
                if ":variance:" in task.correlation_key:
                    from workbench.services.invoices import variance_decision

                    if task.state == ApprovalTask.State.REQUESTED and variance_decision(
                            task=task, state=rec["state"], comments=str(rec.get("comments") or ""),
                            approver=str(rec.get("approver") or "")):
                        n += 1
                    continue
                outcome = approvals.approval_decision_apply(task=task, state=rec["state"], comments=str(rec.get("comments") or ""),
                                                            approver=str(rec.get("approver") or ""))
        except WorkbenchError as exc:
            # One decision that cannot apply must not hold back the others (nor the cursor).
            log.warning("approval decision for %s not applied: %s", task.correlation_key, exc)
            continue
        if not outcome.applied:
            continue
        n += 1
        doc = task.document
        if outcome.next_task is not None:
            send_task(outcome.next_task)
        if outcome.requisition_decided:
            source = push.source_connection(doc)
            push.enqueue_write(source, doc, "requisition_decision", f"{doc.posting_key}:decision:{outcome.requisition_decided}",
                     {"requisition_id": doc.source_id, "decision": outcome.requisition_decided,
                      "comment": str(rec.get("comments") or ""), "approver": task.approver_code})
            if outcome.requisition_decided == "approved":
                push.enqueue_postings([doc])  # the PO in the ERP
    return n


def escalate_overdue() -> int:
    """Approvals past their SLA raise APPROVAL_OVERDUE and go to the approver's manager as well."""
    n = 0
    for task in approvals.overdue_tasks():
        doc = task.document
        manager = _escalation_target(task)
        exception_item_raise(
            code="APPROVAL_OVERDUE", fp=f"APPROVAL_OVERDUE:task{task.pk}", document=doc,
            message=f"{task.approver_name or task.approver_code} has not decided on requisition {doc.number} since "
                    f"{task.due_at:%Y-%m-%d %H:%M} UTC" + (f"; escalated to {manager}." if manager else "; nobody to escalate to."),
            root_cause=task.approver_code)
        with transaction.atomic():
            if manager and manager != doc.requester_code and not doc.approval_tasks.filter(approver_code=manager,
                                                                                            escalated_from=task.approver_code).exists():
                ApprovalTask.objects.filter(pk=task.pk).update(state=ApprovalTask.State.CANCELLED,
                                                               comments="Escalated after the SLA passed")
                if task.external_id:
                    push.enqueue_write(connection_of(Connection.Role.APPROVALS), doc, "cancel_approval",
                             f"{task.correlation_key}:cancel", {"sys_id": task.external_id, "comments": "Escalated"})
                new = ApprovalTask.objects.create(
                    document=doc, sequence=task.sequence, approver_code=manager, escalated_from=task.approver_code,
                    reason=f"escalated from {task.approver_code}", state=ApprovalTask.State.REQUESTED,
                    correlation_key=f"{task.correlation_key}:esc:{manager}",
                    due_at=timezone.now() + (task.due_at - task.created_at))
                send_task(new)
                n += 1
    return n


def _escalation_target(task: ApprovalTask) -> str:
    """The approver's manager, or the next one up, who is neither the requester nor already in the chain."""
    doc = task.document
    taken = set(doc.approval_tasks.exclude(state=ApprovalTask.State.CANCELLED).values_list("approver_code", flat=True))
    person = task.approver_code
    for _ in range(6):
        person = Employee.objects.filter(code=person).values_list("manager_code", flat=True).first() or ""
        if not person:
            return ""
        if person != doc.requester_code and person not in taken:
            return person
    return ""


# --- writes: payloads and outcomes ------------------------------------------------------------------------


def p2p_posting_payload(doc: Document, lines) -> dict:
    if doc.kind == KIND.REQUISITION:
        return {"entity": doc.entity_code, "number": po_number_for(doc),
                "vendor_number": next((ln.supplier_code for ln in lines if ln.supplier_code), ""),
                "order_date": timezone.now().date().isoformat(), "currency": doc.currency,
                "requisition": doc.number, "correlation_id": str(doc.correlation_id),
                "lines": [{"account": ln.gl_account, "description": ln.description[:100], "quantity": str(ln.quantity or 1),
                           "unit_cost": str(ln.unit_price if ln.unit_price is not None else ln.amount),
                           "cost_center": ln.cost_center, "project": ln.project} for ln in lines]}
    return {"entity": doc.entity_code, "vendor_number": doc.party_code, "document_number": doc.number[:35],
            "invoice_date": (doc.document_date or timezone.now().date()).isoformat(),
            "posting_date": timezone.now().date().isoformat(), "currency": doc.currency, "order_number": doc.po_number,
            "correlation_id": str(doc.correlation_id),
            "lines": [{"account": (ln.po_line.gl_account if ln.po_line_id else ln.gl_account) or ln.gl_account,
                       "description": (ln.description or "")[:100], "quantity": str(ln.quantity or 1),
                       "unit_cost": str(ln.unit_price if ln.unit_price is not None else ln.amount),
                       "cost_center": (ln.po_line.cost_center if ln.po_line_id else ln.cost_center) or "",
                       "tax_code": ln.tax_code, "po_line_no": ln.po_line.line_no if ln.po_line_id else None}
                      for ln in lines]}


def p2p_confirmation(doc: Document) -> None:
    """The ERP's answer on a procurement document, for its source (when sync learnt it from the ERP's side)."""
    source = push.source_connection(doc)
    if source is None or source.role != Connection.Role.PROCUREMENT or doc.kind != KIND.SUPPLIER_INVOICE:
        return
    if doc.financial_status in (Document.FinancialStatus.POSTED, Document.FinancialStatus.READY_FOR_PAYMENT,
                                Document.FinancialStatus.PAID):
        payload = {"invoice_id": doc.source_id, "status": "approved", "erp_document_number": doc.erp_document_number,
                   "payment_status": "paid" if doc.financial_status == "paid" else "ready_for_payment", "comment": ""}
    else:
        payload = {"invoice_id": doc.source_id, "status": "disputed", "erp_document_number": "", "payment_status": "",
                   "comment": doc.erp_message[:500]}
    push.enqueue_write(source, doc, "invoice_status", f"{doc.posting_key}:status:{doc.financial_status}", payload)


def p2p_paid(doc: Document) -> None:
    source = push.source_connection(doc)
    if source is None or source.role != Connection.Role.PROCUREMENT or doc.kind != KIND.SUPPLIER_INVOICE:
        return
    push.enqueue_write(source, doc, "invoice_status", f"{doc.source_system}:{doc.source_id}:paid",
             {"invoice_id": doc.source_id, "status": "approved", "erp_document_number": doc.erp_document_number,
              "payment_status": "paid", "comment": "Paid in the ERP."})


def p2p_send_back(item, reason: str) -> bool:
    """Send a requisition back to its requester (invalid, with our words), or dispute an invoice with its supplier."""
    doc = item.document
    source = push.source_connection(doc)
    if source is None or source.role != Connection.Role.PROCUREMENT:
        return False
    key = f"{doc.posting_key}:sendback:{item.pk}"
    if doc.kind == KIND.REQUISITION:
        push.enqueue_write(source, doc, "requisition_validation", key,
                 {"requisition_id": doc.source_id, "status": "invalid", "messages": [reason[:500]]})
    elif doc.kind == KIND.SUPPLIER_INVOICE:
        push.enqueue_write(source, doc, "invoice_status", key, {"invoice_id": doc.source_id, "status": "disputed",
                                                      "erp_document_number": "", "payment_status": "", "comment": reason[:500]})
    else:
        return False
    return True


def po_number_for(doc: Document) -> str:
    """The ERP PO number of a requisition: one per requisition, never shared (manual numbering in the ERP)."""
    return f"PO-R{doc.pk:07d}"


@transaction.atomic
def p2p_write_done(w: OutboundWrite, result) -> None:
    doc = w.document
    data = result.data or {}
    if doc is None:
        return
    source = push.source_connection(doc)
    if w.action == push.CREATE_PO:
        number = str(data.get("number") or w.payload.get("number"))
        document_mark_posted(document=doc, erp_system=w.connection.kind, erp_id=result.external_id, number=number)
        commitment = str(data.get("total") or doc.total)
        push.enqueue_write(source, doc, "requisition_ordered", f"{doc.posting_key}:ordered",
                 {"requisition_id": doc.source_id, "po_number": number, "commitment": commitment, "currency": doc.currency})
    elif w.action == push.POST_INVOICE:
        document_mark_posted(document=doc, erp_system=w.connection.kind, erp_id=result.external_id,
                             number=str(data.get("number") or ""), fiscal_year=str(data.get("fiscal_year") or ""),
                             posting_date=str(data.get("posting_date") or ""))
        Document.objects.filter(pk=doc.pk, financial_status=Document.FinancialStatus.POSTED).update(
            financial_status=Document.FinancialStatus.READY_FOR_PAYMENT)
        document_event_add(document=doc, system="workbench", action="ready_for_payment",
                           message="Matched and posted: ready for payment")
        if source is not None and source.role == Connection.Role.PROCUREMENT:
            push.enqueue_write(source, doc, "invoice_status", f"{doc.posting_key}:status:ready",
                     {"invoice_id": doc.source_id, "status": "approved", "erp_document_number": str(data.get("number") or ""),
                      "payment_status": "ready_for_payment", "comment": "Matched to PO and receipt; posted in the ERP."})
    elif w.action == "create_approval":
        ApprovalTask.objects.filter(correlation_key=w.payload.get("correlation_key")).update(external_id=result.external_id)
        document_event_add(document=doc, system=w.connection.kind, action="approval_requested",
                           message=f"Approval requested from {w.payload.get('approver')} in {w.connection.name}")
    else:
        document_event_add(document=doc, system=w.connection.kind, action=w.action,
                           message=f"{w.connection.name} was told: {w.action.replace('_', ' ')}")


@transaction.atomic
def p2p_write_rejected(w: OutboundWrite, exc) -> None:
    doc = w.document
    if w.action in (push.CREATE_PO, push.POST_INVOICE):
        if w.action == push.POST_INVOICE:
            from workbench.services.p2p_documents import invoice_release

            invoice_release(document=doc)  # counted again when a fix or retry queues it anew
        document_mark_rejected(document=doc, erp_system=w.connection.kind, code=exc.code, message=exc.message)
    elif w.action == "create_approval" and ":variance:" in str(w.payload.get("correlation_key")):
        from workbench.models import ExceptionItem
        from workbench.services.exception_items import exception_item_transition

        key = str(w.payload["correlation_key"])
        ApprovalTask.objects.filter(correlation_key=key).update(state=ApprovalTask.State.CANCELLED, comments=exc.message[:2000])
        item = ExceptionItem.objects.filter(pk=int(key.split(":variance:")[1].split(":")[0]), status="waiting").first()
        if item is not None:
            exception_item_transition(item=item, to="open", action="routing_refused",
                                      reason=f"{w.connection.name} refused the approval for {w.payload.get('approver')}: {exc.message}")
    elif w.action == "create_approval":
        exception_item_raise(code="NO_APPROVER", fp=f"NO_APPROVER:write{w.pk}", document=doc,
                             message=f"{w.connection.name} refused the approval task for {w.payload.get('approver')}: {exc.message}",
                             root_cause=str(w.payload.get("approver") or ""))
    else:
        exception_item_raise(code="POSTING_FAILED", fp=f"POSTING_FAILED:write{w.pk}", document=doc,
                             message=f"{w.connection.name} refused the {w.action.replace('_', ' ')}: {exc.message}",
                             detail={"write_id": w.pk, "error": f"{exc.code}: {exc.message}"})
