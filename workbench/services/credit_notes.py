"""Supplier credit notes and the invoices they correct.

A credit note is a supplier invoice with a negative total (from the procurement suite or a UBL
``CreditNote``). It is booked in the ERP as the ERP's own credit document, applied to the invoice it
corrects, so that the supplier's balance there is right. The link is kept on our side
(``Document.corrects``), found by the reference the supplier gave (``corrects_number``: UBL's
``BillingReference``, Coupa's original invoice number), else by the variance the credit note
settled. A credit note whose invoice is not booked in the ERP yet waits for it, and says so in its
trace; posting that invoice releases it (services/postings.py).
"""

from __future__ import annotations

from django.db.models import Q

from workbench.models import Document, DocumentEvent
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.rules.p2p_context import number_key
from workbench.services.exception_items import exception_item_raise, exception_items_resolve
from workbench.services.trace import document_event_add

KIND = Document.Kind
FIN = Document.FinancialStatus
BOOKED = (FIN.POSTED, FIN.READY_FOR_PAYMENT, FIN.PAID)
WAITS = "waits_for_invoice"
WAITING = "CREDIT_NOTE_WAITING"


def is_credit_note(doc: Document) -> bool:
    return doc.kind == KIND.SUPPLIER_INVOICE and doc.total < 0


def _same_supplier(doc: Document) -> Q:
    """The supplier's documents: by supplier code, or by tax id when the code is not known (e-invoices)."""
    if doc.party_code:
        return Q(party_code=doc.party_code)
    if doc.party_tax_id:
        return Q(party_tax_id=doc.party_tax_id)
    return Q(pk__in=[])


def credit_note_link(*, credit_note: Document, invoice: Document | None = None) -> Document | None:
    """Link a credit note to the invoice it corrects: ``invoice`` (the one whose variance it settled)
    unless the supplier named another; returns the linked invoice, or None if there is none yet."""
    if not is_credit_note(credit_note):
        return None
    if credit_note.corrects_id:
        return credit_note.corrects
    named = None
    if credit_note.corrects_number:
        named = (
            Document.objects.filter(
                _same_supplier(credit_note),
                kind=KIND.SUPPLIER_INVOICE,
                total__gt=0,
                number_key=number_key(credit_note.corrects_number),
            )
            .exclude(business_status=Document.BusinessStatus.REJECTED)
            .order_by("id")
            .first()
        )
    target = named or (invoice if invoice is not None and not credit_note.corrects_number else None)
    if target is None or target.currency != credit_note.currency:
        return None
    Document.objects.filter(pk=credit_note.pk).update(corrects=target)
    credit_note.corrects = target
    document_event_add(
        document=credit_note,
        system="workbench",
        action="corrects_invoice",
        message=f"Corrects invoice {target.number}"
        + (" (the invoice the supplier named)" if named else " (the invoice whose variance it settles)"),
        data={"invoice_id": target.pk},
    )
    return target


def credit_note_ready(credit_note: Document) -> bool:
    """May the credit note go to the ERP now? Yes unless the invoice it corrects (named, or linked) is
    not booked there yet; then it waits, and its trace says for what (once per wait)."""
    invoice = credit_note_link(credit_note=credit_note)
    booked = invoice is not None and invoice.financial_status in BOOKED and bool(invoice.erp_document_number)
    # No invoice named or settled: a credit on account, booked on the supplier without an invoice.
    if booked or (invoice is None and not credit_note.corrects_number):
        exception_items_resolve(
            items=credit_note.exceptions.filter(code=WAITING, status__in=ACTIVE_STATUSES),
            action="invoice_booked",
            reason="The invoice it corrects is booked in the ERP; the credit note follows it.",
        )
        return True
    what = f"invoice {invoice.number}" if invoice is not None else f"invoice {credit_note.corrects_number}"
    message = (
        f"Credit note {credit_note.number} waits for {what} to be booked in the ERP"
        + ("" if invoice is not None else " (not received yet)")
        + ": the credit memo is applied to it there, so it is posted once that invoice is."
    )
    last = DocumentEvent.objects.filter(document=credit_note).order_by("-at", "-id").first()
    if last is None or last.action != WAITS:
        document_event_add(document=credit_note, system="workbench", action=WAITS, message=message)
    exception_item_raise(
        code=WAITING,
        fp=f"{WAITING}:doc{credit_note.pk}",
        document=credit_note,
        message=message,
        root_cause=invoice.number if invoice is not None else credit_note.corrects_number,
        currency=credit_note.currency,
    )
    return False


def credit_notes_waiting_for(invoice: Document) -> list[Document]:
    """The approved, unposted credit notes that correct ``invoice`` (linked, or naming its number), linked now."""
    if invoice.kind != KIND.SUPPLIER_INVOICE or invoice.total <= 0:
        return []
    found = Document.objects.filter(
        _same_supplier(invoice),
        Q(corrects=invoice) | Q(corrects__isnull=True, corrects_number__gt=""),
        kind=KIND.SUPPLIER_INVOICE,
        total__lt=0,
        business_status=Document.BusinessStatus.APPROVED,
        financial_status=FIN.NOT_POSTED,
    ).order_by("id")
    out = []
    for doc in found:
        if doc.corrects_id is None and number_key(doc.corrects_number) != invoice.number_key:
            continue
        if credit_note_link(credit_note=doc) == invoice:
            out.append(doc)
    return out
