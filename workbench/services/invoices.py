"""What an analyst does with a supplier invoice's match exception.

- accept the variance, within their authority and with a reason (the invoice then goes on to posting);
- ask the supplier for a credit note (the invoice is disputed in the source; the item waits);
- route the variance to an approver (the approval engine decides; approval accepts it);
- reject the invoice back to the supplier channel (nothing is posted; its items close as rejected).
Every action is an event on the item and on the invoice.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from workbench import roles
from workbench.errors import InvalidTransition
from workbench.models import ApprovalTask, Document, Employee, ExceptionItem, MatchTolerance
from workbench.models.exceptions import ACTIVE_STATUSES, Status
from workbench.selectors import supplier_changed_by
from workbench.services.approvals import approval_chain
from workbench.services.credit_notes import credit_note_link
from workbench.services.exception_items import exception_item_transition, exception_items_resolve
from workbench.services.item_actions import exception_item_override
from workbench.services.p2p_documents import invoice_release
from workbench.services.postings import approval_task_enqueue, invoice_status_enqueue
from workbench.services.trace import document_event_add, system_user

VARIANCES = ("PRICE_VARIANCE", "QUANTITY_VARIANCE")
MATCH_CODES = ("PRICE_VARIANCE", "QUANTITY_VARIANCE", "NOT_RECEIVED", "NO_PURCHASE_ORDER", "DUPLICATE_INVOICE")


def _invoice(item: ExceptionItem) -> Document:
    doc = item.document
    if doc is None or doc.kind != Document.Kind.SUPPLIER_INVOICE:
        raise InvalidTransition("This action is for supplier invoice exceptions.")
    if not item.is_active:
        raise InvalidTransition("This item is no longer open.")
    return doc


def variance_of(item: ExceptionItem) -> Decimal:
    try:
        return abs(Decimal(str(item.detail.get("variance") or item.amount_at_risk)))
    except InvalidOperation:
        return item.amount_at_risk


def accept_limit(doc: Document) -> Decimal:
    tol = (
        MatchTolerance.objects.filter(entity_id=doc.entity_id).first()
        or MatchTolerance.objects.filter(entity__isnull=True).first()
    )
    return tol.accept_limit if tol else Decimal(1000)


def invoice_variance(item: ExceptionItem) -> Decimal:
    """The invoice's whole variance: every open variance item on it, so splitting one invoice into
    several items (a price and a quantity variance, or one per line) never fits under the limit."""
    if item.document is None:
        return variance_of(item)
    items = ExceptionItem.objects.filter(document=item.document, code__in=VARIANCES, status__in=ACTIVE_STATUSES)
    return sum((variance_of(i) for i in items), Decimal(0)) or variance_of(item)


def can_accept(user, item: ExceptionItem) -> bool:
    if user.has_perm(roles.APPROVE):
        return True
    return item.document is not None and invoice_variance(item) <= accept_limit(item.document)


def invoice_accept_variance(*, item: ExceptionItem, reason: str, actor) -> ExceptionItem:
    doc = _invoice(item)
    if item.code not in VARIANCES:
        raise InvalidTransition(f"{item.code} is not a variance; fix its cause or reject the invoice.")
    if not reason.strip():
        raise InvalidTransition("Accepting a variance needs a reason.")
    if not can_accept(actor, item):
        raise InvalidTransition(
            f"This invoice's variance of {invoice_variance(item):,.2f} {doc.currency} is above your authority "
            f"({accept_limit(doc):,.2f} {doc.currency}); route it to an approver."
        )
    with transaction.atomic():
        if item.status == Status.WAITING:  # e.g. a credit note was asked for and the analyst accepts instead
            exception_item_transition(
                item=item, to=Status.OPEN, actor=actor, action="taken_back", reason="Decided here instead of waiting"
            )
        return exception_item_override(item=item, reason=f"Variance accepted: {reason}", actor=actor)


@transaction.atomic
def invoice_request_credit_note(*, item: ExceptionItem, reason: str, actor) -> ExceptionItem:
    doc = _invoice(item)
    if item.code not in VARIANCES + ("DUPLICATE_INVOICE",):
        raise InvalidTransition("A credit note is asked for a price or quantity variance (or a duplicate).")
    text = reason.strip() or f"Please send a credit note for {variance_of(item):,.2f} {doc.currency}: {item.message}"
    if item.status != Status.WAITING:
        exception_item_transition(
            item=item, to=Status.WAITING, actor=actor, action="credit_note_requested", reason=text
        )
    document_event_add(document=doc, system="workbench", action="credit_note_requested", message=text, actor=actor)
    invoice_status_enqueue(doc, "disputed", text, reason_key=f"credit:{item.pk}")
    return item


@transaction.atomic
def invoice_route_to_approver(*, item: ExceptionItem, actor, approver: str = "") -> ApprovalTask:
    doc = _invoice(item)
    if item.code not in VARIANCES + ("NO_PURCHASE_ORDER", "NOT_RECEIVED"):
        raise InvalidTransition(f"{item.code} is not decided by an approver.")
    if not approver:
        req = doc.parent.parent if doc.parent_id and doc.parent and doc.parent.parent_id else None
        if req is not None:
            steps, _ = approval_chain(req)
            approver = steps[0].approver if steps else ""
    if not approver:
        raise InvalidTransition("No approver found for this invoice's PO; name one.")
    person = Employee.objects.filter(code__iexact=approver, status="active").first()
    if person is None:
        raise InvalidTransition(f"'{approver}' is not an active employee code (e.g. E0012).")
    approver = person.code
    supplier_changer = supplier_changed_by(doc)
    if approver in supplier_changer:
        raise InvalidTransition(
            f"{approver} created or changed supplier {doc.party_code}: segregation of duties forbids "
            "them approving its invoice."
        )
    live = ApprovalTask.objects.filter(
        correlation_key__startswith=f"{doc.posting_key}:variance:{item.pk}:", state=ApprovalTask.State.REQUESTED
    ).first()
    if live is not None:
        raise InvalidTransition(f"{live.approver_code} has this variance already; wait for their decision.")
    # Each routing is its own task (a rejected one is history): the attempt number keeps keys apart.
    attempt = (
        ApprovalTask.objects.filter(correlation_key__startswith=f"{doc.posting_key}:variance:{item.pk}:").count() + 1
    )
    task = ApprovalTask.objects.create(
        correlation_key=f"{doc.posting_key}:variance:{item.pk}:{attempt}:{approver}",
        document=doc,
        sequence=1,
        approver_code=approver,
        reason=f"{item.code} on invoice {doc.number}",
        state=ApprovalTask.State.REQUESTED,
    )
    if item.status != Status.WAITING:
        exception_item_transition(
            item=item,
            to=Status.WAITING,
            actor=actor,
            action="routed_to_approver",
            reason=f"Routed to {approver} for a decision",
        )
    approval_task_enqueue(task)
    return task


@transaction.atomic
def invoice_reject(*, item: ExceptionItem, reason: str, actor) -> Document:
    doc = _invoice(item)
    if not reason.strip():
        raise InvalidTransition("Rejecting an invoice needs a reason for the supplier.")
    if doc.financial_status not in (Document.FinancialStatus.NOT_POSTED, Document.FinancialStatus.REJECTED):
        raise InvalidTransition("This invoice already went to the ERP; reverse it there.")
    Document.objects.filter(pk=doc.pk).update(business_status=Document.BusinessStatus.REJECTED)
    invoice_release(document=doc)  # its quantities no longer count against the PO
    document_event_add(
        document=doc,
        system="workbench",
        action="rejected_to_supplier",
        actor=actor,
        message=f"Rejected back to the supplier: {reason}",
    )
    exception_items_resolve(
        items=ExceptionItem.objects.filter(document=doc, status__in=ACTIVE_STATUSES),
        reason=f"Invoice rejected back to the supplier: {reason}",
        action="rejected_to_supplier",
        actor=actor,
    )
    invoice_status_enqueue(
        doc, "disputed" if doc.source_system != "einvoice" else "rejected", reason, reason_key=f"reject:{item.pk}"
    )
    return doc


@transaction.atomic
def credit_note_apply(*, credit_note: Document) -> int:
    """A supplier's credit note arrived: the variances we asked it for are settled, and their invoices go on.

    Items waiting on a credit-note request from the same supplier (and PO, when the credit note names
    one) are accepted, oldest first, while the credit note's amount covers their variance. The credit
    note is linked to the invoice it corrects: the one the supplier named, else the first it settles.
    """
    if credit_note.total >= 0:
        return 0
    credit_note_link(credit_note=credit_note)
    if not credit_note.party_code:
        return 0
    left = -credit_note.total
    waiting = (
        ExceptionItem.objects.filter(
            status=Status.WAITING,
            code__in=VARIANCES,
            document__party_code=credit_note.party_code,
            events__action="credit_note_requested",
        )
        .select_related("document")
        .distinct()
        .order_by("opened_at", "id")
    )
    if credit_note.po_number:
        waiting = waiting.filter(document__po_number=credit_note.po_number)
    n = 0
    for item in waiting:
        variance = variance_of(item)
        if variance > left:
            break
        left -= variance
        exception_item_transition(
            item=item,
            to=Status.OPEN,
            action="credit_note_received",
            reason=f"Credit note {credit_note.number} received ({-credit_note.total:,.2f} {credit_note.currency})",
        )
        item.refresh_from_db()
        exception_item_override(item=item, reason=f"Settled by credit note {credit_note.number}", actor=system_user())
        credit_note_link(credit_note=credit_note, invoice=item.document)
        document_event_add(
            document=credit_note,
            system="workbench",
            action="settles",
            message=f"Settles {item.code} on invoice {item.document.number} ({variance:,.2f} {credit_note.currency})",
        )
        n += 1
    if not n:
        document_event_add(
            document=credit_note,
            system="workbench",
            action="credit_note",
            message="Credit note received; no disputed invoice of this supplier waits for it. "
            "It is booked in the ERP as a purchase credit memo"
            + (f", applied to invoice {credit_note.corrects.number}." if credit_note.corrects_id else "."),
        )
    return n
