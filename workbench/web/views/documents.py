from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import render
from django.views.decorators.vary import vary_on_headers

from workbench.filters import DocumentFilter
from workbench.models import Document, ExceptionItem
from workbench.models.exceptions import ACTIVE_STATUSES
from workbench.selectors import document_trace
from workbench.selectors.balances import supplier_open_balance
from workbench.selectors.due_soon import invoice_payment_outlook
from workbench.selectors.suppliers import system_label
from workbench.web.scoping import document_or_404, documents_for
from workbench.web.views.discussion import discussion_context
from workbench.web.views.incidents import held_by_context

PAGE_SIZE = 50


@vary_on_headers("HX-Request")
def document_list(request):
    """Every document in the account's entities, filtered like the queue; HTMX swaps the results only."""
    filterset = DocumentFilter(request.GET, queryset=documents_for(request.user), request=request)
    page = Paginator(filterset.qs.select_related("entity").order_by("-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    # Open items counted for the page's rows only, not joined into the count of the whole list.
    open_items = dict(
        ExceptionItem.objects.filter(document__in=[d.pk for d in page], status__in=ACTIVE_STATUSES)
        .values("document")
        .annotate(n=Count("id"))
        .values_list("document", "n")
    )
    for doc in page:
        doc.open_items = open_items.get(doc.pk, 0)
        doc.source_label = system_label(doc.source_system)
    params = request.GET.copy()
    params.pop("page", None)
    context = {"filter": filterset, "page": page, "params": params.urlencode()}
    template = (
        "workbench/documents.html#results" if request.htmx and not request.htmx.boosted else "workbench/documents.html"
    )
    return render(request, template, context)


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
            **held_by_context(doc, request.user),
            **discussion_context(request.user, document=doc),  # comments and watchers
        },
    )
