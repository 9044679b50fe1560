"""Objects as the signed-in account may see them: outside its legal entities they do not exist (404)."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from workbench import roles
from workbench.models import Document, ExceptionItem
from workbench.roles import may_work  # noqa: F401 - the screens and API ask it here, beside the scope checks


def items_for(user, qs=None):
    return roles.in_scope(ExceptionItem.objects.all() if qs is None else qs, user)


def documents_for(user, qs=None):
    return roles.in_scope(Document.objects.all() if qs is None else qs, user)


def item_or_404(request, pk, qs=None) -> ExceptionItem:
    return get_object_or_404(items_for(request.user, qs), pk=pk)


def document_or_404(request, pk, qs=None) -> Document:
    return get_object_or_404(documents_for(request.user, qs), pk=pk)


def item_to_work(request, pk, qs=None) -> ExceptionItem:
    """An item this account may act on: in scope (else 404) and of its kind of work (else 403)."""
    item = item_or_404(request, pk, qs)
    if not may_work(request.user, item):
        kind = "integration engineers" if item.kind == ExceptionItem.Kind.TECHNICAL else "finance"
        raise PermissionDenied(f"This is a {item.get_kind_display().lower()} item: it is work for {kind}.")
    return item
