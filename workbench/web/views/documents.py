from django.shortcuts import render

from workbench.models import Document
from workbench.selectors import document_trace
from workbench.selectors.balances import supplier_open_balance
from workbench.selectors.due_soon import invoice_payment_outlook
from workbench.web.scoping import document_or_404
from workbench.web.views.discussion import discussion_context


def document_detail(request, pk):
    doc = document_or_404(request, pk, Document.objects.select_related("entity", "corrects"))
    invoice = doc.kind == Document.Kind.SUPPLIER_INVOICE
    return render(
        request,
        "workbench/document.html",
        {
            "doc": doc,
            "lines": doc.lines.all(),
            "trace": document_trace(doc),
            "refs": doc.refs.all(),
            "items": doc.exceptions.order_by("id"),
            "payment": invoice_payment_outlook(doc),
            # Supplier invoices: the credit notes against it (or the invoice a credit note corrects),
            # and what the supplier is owed in the books, to compare with the ERP's vendor balance.
            "credit_notes": doc.credit_notes.order_by("id") if invoice else [],
            "open_balance": supplier_open_balance(doc.entity, doc.party_code) if invoice and doc.entity_id else {},
            **discussion_context(request.user, document=doc),  # comments and watchers
        },
    )
