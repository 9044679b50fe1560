from django.shortcuts import render

from workbench.models import Document
from workbench.selectors import document_trace
from workbench.selectors.due_soon import invoice_payment_outlook
from workbench.web.scoping import document_or_404


def document_detail(request, pk):
    doc = document_or_404(request, pk, Document.objects.select_related("entity"))
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
        },
    )
