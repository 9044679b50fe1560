from django.shortcuts import get_object_or_404, render

from workbench.models import Document
from workbench.selectors import document_trace


def document_detail(request, pk):
    doc = get_object_or_404(Document.objects.select_related("entity"), pk=pk)
    return render(
        request,
        "workbench/document.html",
        {
            "doc": doc,
            "lines": doc.lines.all(),
            "trace": document_trace(doc),
            "refs": doc.refs.all(),
            "items": doc.exceptions.order_by("id"),
        },
    )
